//! Injected I/O faults: a failed write, a failed fsync, a full disk, a failed rollback, a
//! failed rotation. The caller gets `Error::Io`; what was acknowledged before is all there
//! after a reopen (and after a crash); the failed records never come back; the log opens.

use std::io;

use super::support::{default_opts, dir, grant, opts, reopen_twice};
use crate::error::Error;
use crate::wal::fake::{FailingFs, MemFs, Op};
use crate::wal::format;
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

/// Kills the process after each of 0..`calls` mutating calls in turn, during appends to a log
/// on a fresh `make()`; what a crash keeps must be exactly what was acknowledged.
fn dying_at_any_point_loses_nothing_acknowledged(make: fn() -> MemFs, calls: u64) {
    for lives in 0..calls {
        let mem = make();
        let fs = FailingFs::new(mem.clone());
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
        assert_eq!(
            reopen_small(&crashed, 80),
            acknowledged,
            "died after {lives} calls"
        );
    }
}

#[test]
fn the_process_dying_at_any_point_of_appends_loses_nothing_acknowledged() {
    dying_at_any_point_loses_nothing_acknowledged(MemFs::new, 40);
}

/// Opens and closes the log on `fs` with `segment_bytes`, twice; returns the first open's
/// records after checking that the second found no torn tail and the same records.
fn reopen_small(fs: &MemFs, segment_bytes: u64) -> Vec<Record> {
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (wal, rec) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, segment_bytes))
            .expect("reopen");
        wal.close().expect("close");
        seen.push(rec);
    }
    assert_eq!(seen[1].truncated_tail, None, "the first open left a tail");
    assert_eq!(seen[1].records, seen[0].records);
    seen.swap_remove(0).records
}

#[test]
fn preallocated_space_is_written_over_and_cut_when_sealed() {
    let mem = MemFs::preallocating();
    let (wal, _) = Wal::open(&dir(), opts(mem.clone(), FsyncPolicy::Always, 200)).expect("open");
    let segment = |n| mem.file(&format::segment_path(&dir(), n)).expect("segment");
    // A new segment is its header, then zeros up to the segment size.
    assert_eq!(segment(0).len(), 200);
    wal.append(&[grant(1)]).expect("append");
    let first = segment(0);
    assert_eq!(
        first.len(),
        200,
        "the append went into the preallocated space"
    );
    let mut acknowledged = vec![grant(1)];
    for i in 2..40 {
        wal.append(&[grant(i)]).expect("append");
        acknowledged.push(grant(i));
    }
    let live = crate::wal::tests::support::segments(&mem, &dir());
    assert!(live.len() > 2, "rotated: {live:?}");
    for &n in &live[..live.len() - 1] {
        assert_ne!(segment(n).last(), Some(&0), "segment {n} ends in a record");
    }
    // Compaction seals a segment before it is full: its unused space is cut.
    let active = *live.last().expect("a segment");
    wal.append(&[grant(40)]).expect("append");
    acknowledged.push(grant(40));
    assert_eq!(segment(active).len(), 200);
    let upto = wal.begin_compaction().expect("begin");
    let sealed = segment(active);
    assert!(
        sealed.len() < 200,
        "cut to its records: {} bytes",
        sealed.len()
    );
    assert_ne!(sealed.last(), Some(&0));
    assert_eq!(
        mem.crashed().file(&format::segment_path(&dir(), active)),
        Some(sealed)
    );
    wal.finish_compaction(upto, acknowledged.iter().cloned())
        .expect("finish");
    wal.append(&[grant(41)]).expect("append");
    acknowledged.push(grant(41));
    assert_eq!(reopen_small(&mem.crashed(), 200), acknowledged);
    drop(wal);
    assert_eq!(reopen_small(&mem, 200), acknowledged);
}

#[test]
fn the_process_dying_at_any_point_with_preallocation_loses_nothing_acknowledged() {
    // Preallocation and the cut at open add calls: more points to die at.
    dying_at_any_point_loses_nothing_acknowledged(MemFs::preallocating, 70);
}

#[test]
fn a_failed_preallocation_leaves_a_log_that_works() {
    let mem = MemFs::preallocating();
    let fs = FailingFs::new(mem.clone());
    fs.fail_nth(Op::Preallocate, 1);
    fs.fail_nth(Op::Preallocate, 3);
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 80)).expect("open");
    let mut acknowledged = Vec::new();
    for i in 0..12 {
        wal.append(&[grant(i)]).expect("append");
        acknowledged.push(grant(i));
    }
    fs.set_disk_full(true);
    assert_io(wal.append(&[grant(99)]), Some(io::ErrorKind::StorageFull));
    fs.set_disk_full(false);
    wal.append(&[grant(12)]).expect("append");
    acknowledged.push(grant(12));
    let crashed = mem.crashed();
    drop(wal);
    assert_eq!(reopen_small(&crashed, 80), acknowledged);
    assert_eq!(reopen_small(&mem, 80), acknowledged);
}
