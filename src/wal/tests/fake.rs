//! The fake file systems themselves.

use std::io;
use std::path::PathBuf;

use crate::wal::fake::{FailingFs, MemFs, Op};
use crate::wal::fs::FileSystem;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn crash_keeps_only_synced_bytes_and_names() {
    let fs = MemFs::new();
    fs.create_dir_all(&p("/d")).expect("mkdir");
    let mut a = fs.create(&p("/d/a")).expect("create");
    a.append(b"synced").expect("write");
    a.sync().expect("sync");
    fs.sync_dir(&p("/d")).expect("sync dir");
    a.append(b" lost").expect("write");
    let mut b = fs.create(&p("/d/b")).expect("create");
    b.append(b"data synced, name not").expect("write");
    b.sync().expect("sync");

    let after = fs.crashed();
    assert_eq!(after.file(&p("/d/a")).as_deref(), Some(&b"synced"[..]));
    assert_eq!(after.file(&p("/d/b")), None);
    assert_eq!(fs.file(&p("/d/a")).as_deref(), Some(&b"synced lost"[..]));
}

#[test]
fn crash_undoes_unsynced_truncate_and_rename() {
    let fs = MemFs::new();
    fs.create_dir_all(&p("/d")).expect("mkdir");
    let mut a = fs.create(&p("/d/a")).expect("create");
    a.append(b"0123456789").expect("write");
    a.sync().expect("sync");
    fs.sync_dir(&p("/d")).expect("sync dir");
    a.truncate(4).expect("truncate");
    fs.rename(&p("/d/a"), &p("/d/z")).expect("rename");
    let after = fs.crashed();
    assert_eq!(after.file(&p("/d/a")).as_deref(), Some(&b"0123456789"[..]));
    assert_eq!(after.file(&p("/d/z")), None);

    a.sync().expect("sync");
    fs.sync_dir(&p("/d")).expect("sync dir");
    let after = fs.crashed();
    assert_eq!(after.file(&p("/d/a")), None);
    assert_eq!(after.file(&p("/d/z")).as_deref(), Some(&b"0123"[..]));
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let fs = MemFs::new();
    fs.create_dir_all(&p("/d")).expect("mkdir");
    let held = fs.lock(&p("/d/LOCK")).expect("lock");
    let err = fs.lock(&p("/d/LOCK")).expect_err("held");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(held);
    fs.lock(&p("/d/LOCK")).expect("free again");
}

#[test]
fn failing_fs_fails_what_it_is_told() {
    let mem = MemFs::new();
    let fs = FailingFs::new(mem.clone());
    fs.create_dir_all(&p("/d")).expect("mkdir");
    let mut f = fs.create(&p("/d/f")).expect("create");
    fs.fail_nth(Op::Write, 2);
    f.append(b"ok").expect("first write");
    f.append(b"abcd").expect_err("second write fails");
    assert_eq!(mem.file(&p("/d/f")).as_deref(), Some(&b"okab"[..]));
    f.append(b"!").expect("third write");

    fs.set_disk_full(true);
    let err = f.append(b"xy").expect_err("disk full");
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    fs.set_disk_full(false);

    fs.die_after(1);
    f.sync().expect("one more call");
    f.append(b"never").expect_err("dead");
    fs.rename(&p("/d/f"), &p("/d/g")).expect_err("dead");
    assert_eq!(mem.file(&p("/d/f")).as_deref(), Some(&b"okab!x"[..]));
    assert_eq!(fs.calls(Op::Write), 5);
}
