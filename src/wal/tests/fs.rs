//! The real file system behind the seam.

use std::io;

use crate::wal::fs::{FileSystem, StdFs};

#[test]
fn std_fs_basics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a/b");
    let fs = StdFs;
    fs.create_dir_all(&dir).expect("mkdir");
    let p = dir.join("f");
    let mut f = fs.create(&p).expect("create");
    f.append(b"hello world").expect("write");
    f.truncate(5).expect("truncate");
    f.append(b"!")
        .expect("write after truncate lands at the end");
    f.sync().expect("sync");
    assert_eq!(fs.read(&p).expect("read"), b"hello!");
    let q = dir.join("g");
    fs.rename(&p, &q).expect("rename");
    fs.sync_dir(&dir).expect("sync dir");
    assert_eq!(fs.list(&dir).expect("list"), vec!["g".to_owned()]);
    fs.remove(&q).expect("remove");
    assert!(fs.list(&dir).expect("list").is_empty());
}

#[cfg(unix)]
#[test]
fn std_lock_is_exclusive_within_the_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("LOCK");
    let first = StdFs.lock(&p).expect("first lock");
    let err = StdFs.lock(&p).expect_err("second lock");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(first);
    StdFs.lock(&p).expect("lock after release");
}
