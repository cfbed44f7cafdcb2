//! Injected I/O faults: a failed write, a failed fsync, a full disk, a failed rollback, a
//! failed rotation. The caller gets `Error::Io`; what was acknowledged before is all there
//! after a reopen (and after a crash); the failed records never come back; the log opens.

use std::io;

use super::support::{default_opts, dir, grant, opts, reopen_twice};
use crate::error::Error;
use crate::wal::fake::{FailingFs, MemFs, Op};
use crate::wal::{FsyncPolicy, Lsn, Record, Wal};

fn failing() -> (MemFs, FailingFs) {
    let mem = MemFs::new();
    let fs = FailingFs::new(mem.clone());
    (mem, fs)
}

fn open(fs: &FailingFs) -> Wal {
    Wal::open(&dir(), default_opts(fs.clone())).expect("open").0
}

fn assert_io(r: crate::error::Result<Lsn>, kind: Option<io::ErrorKind>) {
    match r {
        Err(Error::Io(e)) => {
            if let Some(k) = kind {
                assert_eq!(e.kind(), k, "{e}");
            }
        }
        other => panic!("expected an i/o error, got {other:?}"),
    }
}

/// Acknowledged records survive both a clean reopen and a crash; the failed ones never come
/// back.
fn check_after(mem: &MemFs, wal: Wal, acknowledged: &[Record]) {
    let crashed = mem.crashed();
    assert_eq!(
        reopen_twice(&crashed).records,
        acknowledged,
        "after a crash"
    );
    drop(wal);
    assert_eq!(reopen_twice(mem).records, acknowledged, "after a reopen");
}

#[test]
fn a_failed_write_is_rolled_back() {
    let (mem, fs) = failing();
    let wal = open(&fs);
    wal.append(&[grant(1), grant(2)]).expect("append");
    fs.fail_nth(Op::Write, 1);
    assert_io(wal.append(&[grant(3), grant(4)]), None);
    assert_eq!(wal.append(&[grant(5)]).expect("goes on"), Lsn(3));
    check_after(&mem, wal, &[grant(1), grant(2), grant(5)]);
}

#[test]
fn a_failed_fsync_is_rolled_back() {
    let (mem, fs) = failing();
    let wal = open(&fs);
    wal.append(&[grant(1)]).expect("append");
    fs.fail_nth(Op::Sync, 1);
    assert_io(wal.append(&[grant(2)]), None);
    // The failed group's bytes were written and are cut again: a reopen must not see them.
    wal.append(&[grant(3)]).expect("goes on");
    check_after(&mem, wal, &[grant(1), grant(3)]);
}

#[test]
fn a_full_disk_fails_the_caller_and_recovers() {
    let (mem, fs) = failing();
    let wal = open(&fs);
    wal.append(&[grant(1)]).expect("append");
    fs.set_disk_full(true);
    for i in 0..3 {
        assert_io(
            wal.append(&[grant(10 + i)]),
            Some(io::ErrorKind::StorageFull),
        );
    }
    fs.set_disk_full(false);
    wal.append(&[grant(2)]).expect("space again");
    check_after(&mem, wal, &[grant(1), grant(2)]);
}

#[test]
fn a_failed_rollback_fails_the_writer_and_the_log_still_opens() {
    let (mem, fs) = failing();
    let wal = open(&fs);
    wal.append(&[grant(1)]).expect("append");
    fs.fail_nth(Op::Write, 1);
    fs.fail_nth(Op::Truncate, 1);
    // One record, so the half of it that the failed write put down is no whole frame.
    let big = Record::Attach {
        id: 1,
        keys: vec![vec![7; 100]],
    };
    assert_io(wal.append(&[big]), None);
    match wal.append(&[grant(4)]) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("reopen"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(wal.begin_compaction(), Err(Error::Io(_))));
    assert!(matches!(wal.close(), Err(Error::Io(_))));
    // Half of the failed group is still in the file: the next open cuts it as a torn tail.
    let (wal, rec) = Wal::open(&dir(), default_opts(mem.clone())).expect("open");
    assert_eq!(rec.records, vec![grant(1)]);
    assert!(rec.truncated_tail.is_some());
    drop(wal);
    assert_eq!(reopen_twice(&mem).records, vec![grant(1)]);
}

#[test]
fn a_failed_interval_fsync_fails_the_writer() {
    let (mem, fs) = failing();
    let o = opts(
        fs.clone(),
        FsyncPolicy::Interval(std::time::Duration::ZERO),
        1 << 20,
    );
    let (wal, _) = Wal::open(&dir(), o).expect("open");
    wal.append(&[grant(1)]).expect("append");
    fs.fail_nth(Op::Sync, 1);
    // Written, so acknowledged under this policy; its fsync failed, so the writer stops.
    wal.append(&[grant(2)]).expect("acknowledged once written");
    assert_io(wal.append(&[grant(3)]), None);
    drop(wal);
    let rec = reopen_twice(&mem);
    assert_eq!(rec.records[0], grant(1));
    assert!(rec.records.len() <= 2);
}

#[test]
fn a_failed_rotation_keeps_the_writer_on_its_segment() {
    let (mem, fs) = failing();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 64)).expect("open");
    fs.fail_nth(Op::Create, 1);
    let first: Vec<Record> = (0..5).map(grant).collect();
    wal.append(&first)
        .expect("append (the rotation after it fails)");
    wal.append(&[grant(5)])
        .expect("append to the old segment, then rotate");
    let mut all = first;
    all.push(grant(5));
    assert!(fs.calls(Op::Create) >= 2);
    check_after(&mem, wal, &all);
}

#[test]
fn a_failed_rotation_that_cannot_clean_up_fails_the_writer() {
    let (mem, fs) = failing();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 64)).expect("open");
    fs.fail_nth(Op::Sync, 2); // the new segment's header fsync (the group's is the first)
    fs.fail_nth(Op::Remove, 1);
    let first: Vec<Record> = (0..5).map(grant).collect();
    wal.append(&first).expect("append");
    assert_io(wal.append(&[grant(5)]), None);
    drop(wal);
    assert_eq!(reopen_twice(&mem).records, first);
}

#[test]
fn a_failure_while_opening_leaves_a_log_that_opens() {
    let (mem, fs) = failing();
    {
        let wal = open(&fs);
        wal.append(&[grant(1)]).expect("append");
    }
    for op in [
        Op::Create,
        Op::Write,
        Op::Sync,
        Op::SyncDir,
        Op::Read,
        Op::Lock,
    ] {
        fs.fail_nth(op, 1);
        assert!(
            matches!(
                Wal::open(&dir(), default_opts(fs.clone())),
                Err(Error::Io(_))
            ),
            "{op:?}"
        );
    }
    assert_eq!(reopen_twice(&mem).records, vec![grant(1)]);
}

#[test]
fn the_process_dying_at_any_point_of_appends_loses_nothing_acknowledged() {
    for lives in 0..40 {
        let (mem, fs) = failing();
        let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 80)).expect("open");
        fs.die_after(lives);
        let mut acknowledged = Vec::new();
        for i in 0..12 {
            let batch = vec![grant(i), grant(100 + i)];
            if wal.append(&batch).is_ok() {
                acknowledged.extend(batch);
            }
        }
        let crashed = mem.crashed();
        drop(wal);
        let rec = reopen_twice(&crashed);
        assert_eq!(rec.records, acknowledged, "died after {lives} calls");
    }
}
