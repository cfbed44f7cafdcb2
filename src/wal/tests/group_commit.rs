//! Group commit: concurrent appends share writes and fsyncs, and every acknowledged record is
//! in the log exactly once, in the order of the lsns handed out.

use std::collections::BTreeMap;

use super::support::{dir, opts, reopen_twice, wait_until};
use crate::sync::Arc;
use crate::wal::fake::{FailingFs, MemFs, Op};
use crate::wal::{FsyncPolicy, Lsn, Record, Wal};

const THREADS: i64 = 64;

/// The `i`-th record of thread `t`.
fn rec(t: i64, i: i64) -> Record {
    Record::Grant {
        id: t * 1_000_000 + i,
        ttl_ms: u64::try_from(i).expect("small"),
    }
}

#[test]
fn appends_waiting_behind_an_fsync_share_the_next_one() {
    let mem = MemFs::new();
    let fs = FailingFs::new(mem.clone());
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)).expect("open");
    let wal = Arc::new(wal);
    let syncs_before = fs.calls(Op::Sync);
    let writes_before = fs.calls(Op::Write);

    let gate = fs.hold_syncs();
    let spawn = |t: i64| {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || wal.append(&[rec(t, 0)]).expect("append"))
    };
    // The first append goes alone and its fsync is held at the gate...
    let mut threads = vec![spawn(0)];
    wait_until("the first fsync to block", || fs.syncs_waiting() == 1);
    // ...while the other 63 queue behind it.
    threads.extend((1..THREADS).map(spawn));
    wait_until("63 appends to queue", || wal.queued() == 63);
    drop(gate);
    let mut lsns: Vec<Lsn> = threads
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    lsns.sort();
    assert_eq!(lsns, (1..=64).map(Lsn).collect::<Vec<_>>());
    assert_eq!(fs.calls(Op::Sync) - syncs_before, 2, "one fsync per group");
    assert_eq!(
        fs.calls(Op::Write) - writes_before,
        2,
        "one write per group"
    );
    wal.close().expect("close");
    assert_eq!(reopen_twice(&mem).records.len(), 64);
}

fn hammer(policy: FsyncPolicy, segment_bytes: u64, per_thread: i64) {
    let mem = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(mem.clone(), policy, segment_bytes)).expect("open");
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..per_thread {
                    // One to three records per call.
                    let batch: Vec<Record> = (0..(i % 3 + 1)).map(|j| rec(t, i * 3 + j)).collect();
                    let end = wal.append(&batch).expect("append");
                    acked.push((end, batch));
                }
                acked
            })
        })
        .collect();
    let mut by_end = BTreeMap::new();
    let mut appends = 0u64;
    for h in threads {
        for (end, batch) in h.join().expect("thread") {
            appends += 1;
            assert!(
                by_end.insert(end, batch).is_none(),
                "lsn {end:?} handed out twice"
            );
        }
    }
    let stats = wal.stats();
    wal.close().expect("close");

    let records = reopen_twice(&mem).records;
    let total: usize = by_end.values().map(Vec::len).sum();
    assert_eq!(
        records.len(),
        total,
        "every acknowledged record, exactly once"
    );
    for (end, batch) in &by_end {
        let end = usize::try_from(end.0).expect("small");
        assert_eq!(&records[end - batch.len()..end], batch.as_slice());
    }
    if policy == FsyncPolicy::Always {
        assert!(
            stats.fsyncs <= appends + stats.segments,
            "{} fsyncs for {appends} appends",
            stats.fsyncs
        );
        assert!(stats.writes <= appends);
    }
}

#[test]
fn concurrent_appends_are_each_present_once() {
    hammer(FsyncPolicy::Always, 1 << 20, 40);
}

#[test]
fn concurrent_appends_across_rotations() {
    hammer(FsyncPolicy::Always, 2048, 20);
}

#[test]
fn concurrent_appends_without_fsync() {
    hammer(FsyncPolicy::Never, 4096, 40);
}
