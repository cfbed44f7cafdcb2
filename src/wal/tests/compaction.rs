//! Compaction: a snapshot replaces a prefix of the log, appends go on meanwhile, a crash at
//! any step opens to the same state, a damaged snapshot is never trusted, and the directory
//! stays bounded under churn.

use std::collections::BTreeMap;

use super::support::{self, dir, grant, ops, opts, reopen_twice, wait_until, Model};
use crate::error::Error;
use crate::sync::{self, Arc, Mutex};
use crate::wal::fake::{FailingFs, MemFs};
use crate::wal::format;
use crate::wal::{FsyncPolicy, Lsn, Record, Wal};

fn append_all(wal: &Wal, records: &[Record]) {
    for chunk in records.chunks(4) {
        wal.append(chunk).expect("append");
    }
}

#[test]
fn a_snapshot_replaces_the_prefix() {
    let fs = MemFs::new();
    let o = || opts(fs.clone(), FsyncPolicy::Always, 256);
    let (wal, _) = Wal::open(&dir(), o()).expect("open");
    let a = ops(1, 300);
    append_all(&wal, &a);
    let before = wal.stats();
    assert!(before.segments > 10);
    let upto = wal.begin_compaction().expect("begin");
    assert_eq!(upto, Lsn(300));
    let snap = Model::of(&a).snapshot();
    wal.finish_compaction(upto, snap.clone().into_iter())
        .expect("finish");
    let after = wal.stats();
    assert_eq!(after.segments, 1, "only the active segment is left");
    assert_eq!(after.snapshot_upto, upto);
    assert!(after.snapshot_bytes > 0);
    assert!(after.segment_bytes < before.segment_bytes);
    assert_eq!(support::segments(&fs, &dir()).len(), 1);
    assert_eq!(
        support::snapshot_files(&fs, &dir()),
        vec![format!("snapshot-{:020}.snap", 300)]
    );

    let b = ops(2, 50);
    append_all(&wal, &b);
    wal.close().expect("close");
    let rec = reopen_twice(&fs);
    assert_eq!(rec.snapshot_records, snap.len());
    assert_eq!(rec.records[..snap.len()], snap[..]);
    assert_eq!(rec.next_lsn, Lsn(350));
    let all: Vec<Record> = a.iter().chain(&b).cloned().collect();
    assert_eq!(Model::of(&rec.records), Model::of(&all));

    // A second compaction replaces the first snapshot.
    let (wal, _) = Wal::open(&dir(), o()).expect("open");
    let upto = wal.begin_compaction().expect("begin");
    assert_eq!(upto, Lsn(350));
    wal.finish_compaction(upto, Model::of(&all).snapshot().into_iter())
        .expect("finish");
    wal.close().expect("close");
    assert_eq!(
        support::snapshot_files(&fs, &dir()),
        vec![format!("snapshot-{:020}.snap", 350)]
    );
    assert_eq!(Model::of(&reopen_twice(&fs).records), Model::of(&all));
}

#[test]
fn an_old_or_future_boundary_is_handled() {
    let fs = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)).expect("open");
    wal.append(&[grant(1), grant(2)]).expect("append");
    let upto = wal.begin_compaction().expect("begin");
    wal.finish_compaction(upto, [grant(1), grant(2)].into_iter())
        .expect("finish");
    let snap = support::snapshot_files(&fs, &dir());
    // At or below the current snapshot: nothing to do.
    wal.finish_compaction(upto, std::iter::empty())
        .expect("no-op");
    wal.finish_compaction(Lsn(0), std::iter::empty())
        .expect("no-op");
    assert_eq!(support::snapshot_files(&fs, &dir()), snap);
    // Past the end: refused.
    assert!(matches!(
        wal.finish_compaction(Lsn(99), std::iter::empty()),
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput
    ));
    // Nothing appended since: the boundary does not move and no segment is made.
    assert_eq!(wal.begin_compaction().expect("begin"), upto);
    assert_eq!(wal.stats().segments, 1);
    wal.close().expect("close");
    assert_eq!(reopen_twice(&fs).records, vec![grant(1), grant(2)]);
}

#[test]
fn a_boundary_inside_a_segment_skips_the_covered_records() {
    let fs = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)).expect("open");
    let upto = wal.append(&[grant(1), grant(2)]).expect("append");
    wal.append(&[grant(3)]).expect("append");
    // An lsn from an append rather than from begin_compaction: segment 0 holds records on
    // both sides of it, so it stays and replay skips the first two.
    wal.finish_compaction(upto, [grant(1), grant(2)].into_iter())
        .expect("finish");
    wal.close().expect("close");
    assert_eq!(support::segments(&fs, &dir()), vec![0]);
    let rec = reopen_twice(&fs);
    assert_eq!(rec.records, vec![grant(1), grant(2), grant(3)]);
    assert_eq!(rec.snapshot_records, 2);
}

/// Thread `t`'s records: `ops` moved to ids and keys of its own, so threads never touch the
/// same lease or key.
fn thread_ops(t: i64, n: usize) -> Vec<Record> {
    let own_key = |k: &[u8]| {
        let mut v = format!("t{t}/").into_bytes();
        v.extend_from_slice(k);
        v
    };
    let own_id = |id: i64| id + t * 100;
    ops(u64::try_from(t).expect("small") + 11, n)
        .into_iter()
        .map(|r| match r {
            Record::Grant { id, ttl_ms } => Record::Grant {
                id: own_id(id),
                ttl_ms,
            },
            Record::Revoke { id } => Record::Revoke { id: own_id(id) },
            Record::Attach { id, keys } => Record::Attach {
                id: own_id(id),
                keys: keys.iter().map(|k| own_key(k)).collect(),
            },
            Record::Detach { id, keys } => Record::Detach {
                id: own_id(id),
                keys: keys.iter().map(|k| own_key(k)).collect(),
            },
            Record::Checkpoint { id, remaining_ms } => Record::Checkpoint {
                id: own_id(id),
                remaining_ms,
            },
            Record::Put {
                key,
                value,
                lease,
                revision,
            } => Record::Put {
                key: own_key(&key),
                value,
                lease: own_id(lease),
                revision,
            },
            Record::DeleteRange {
                key,
                range_end,
                revision,
            } => Record::DeleteRange {
                key: own_key(&key),
                range_end,
                revision,
            },
            other @ (Record::StoreEntry { .. } | Record::StoreRevision { .. }) => other,
        })
        .collect()
}

/// Appends each appender thread makes in `appends_go_on_during_compaction` (two records each).
const APPENDS: usize = 140;

/// Checks that `fs` opens to `snapshot` (taken at `upto`) and then to every record of `acked`
/// (acknowledged records by lsn) from `upto` on, each at its place: none lost, none replayed
/// twice. Returns the records replayed after the snapshot.
fn check_replay(
    fs: &MemFs,
    upto: u64,
    snapshot: &[Record],
    acked: &BTreeMap<u64, Record>,
) -> Vec<Record> {
    let rec = reopen_twice(fs);
    assert_eq!(rec.records[..rec.snapshot_records], snapshot[..]);
    let tail = rec.records[rec.snapshot_records..].to_vec();
    for (lsn, r) in acked.range(upto..) {
        let at = usize::try_from(lsn - upto).expect("small");
        assert_eq!(tail.get(at), Some(r), "lsn {lsn}, snapshot at {upto}");
    }
    tail
}

/// Eight threads append while four compactions run. The threads may append only as far as an
/// allowance the compacting thread raises step by step, so that in every compaction, however
/// the threads are scheduled, appends race with the rotation, the boundary's segment is
/// sealed with records past the boundary in the segments after it, and appends race with the
/// snapshot and the removals. (Left to the scheduler, a loaded machine could run all four
/// compactions before the first append, leaving nothing to compact.) After each compaction,
/// what a crash would leave must open to the snapshot and every acknowledged record after it.
#[test]
fn appends_go_on_during_compaction() {
    let fs = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1024)).expect("open");
    let wal = Arc::new(wal);
    // Every acknowledged record by lsn.
    let log: Arc<Mutex<BTreeMap<u64, Record>>> = Arc::default();
    let (allowances, threads): (Vec<_>, Vec<_>) = (0..8)
        .map(|t| {
            let (tx, rx) = crossbeam_channel::unbounded::<usize>();
            let (wal, log) = (Arc::clone(&wal), Arc::clone(&log));
            let h = std::thread::spawn(move || {
                let mut allowed = 0;
                for (n, chunk) in thread_ops(t, 2 * APPENDS).chunks(2).enumerate() {
                    while n >= allowed {
                        allowed = rx.recv().expect("an allowance");
                    }
                    let end = wal.append(chunk).expect("append").0;
                    let mut log = sync::lock(&log);
                    for (i, r) in chunk.iter().enumerate() {
                        log.insert(end - (chunk.len() - i) as u64, r.clone());
                    }
                }
            });
            (tx, h)
        })
        .unzip();
    let allow = |appends: usize| {
        for tx in &allowances {
            tx.send(appends).expect("the thread waits for it");
        }
    };
    let all_acked = |appends: usize| {
        wait_until("the allowed appends", || {
            sync::lock(&log).len() == 8 * 2 * appends
        });
    };

    // A first part of the log to compact.
    allow(10);
    all_acked(10);
    let mut last = (0, Vec::new());
    for round in 0..4 {
        let allowed = 10 + 30 * round;
        // These race with the rotation: they may land on either side of the boundary.
        allow(allowed + 10);
        let upto = wal.begin_compaction().expect("begin").0;
        // These come after it. Once all are in (8 * 10 * 2 records, well over a 1 KiB
        // segment), the records below the boundary are all acknowledged too, and the segment
        // that begins at the boundary is sealed.
        allow(allowed + 20);
        all_acked(allowed + 20);
        let snapshot = Model::of(sync::lock(&log).range(..upto).map(|(_, r)| r)).snapshot();
        // These race with the snapshot and the removals.
        allow(allowed + 30);
        wal.finish_compaction(Lsn(upto), snapshot.clone().into_iter())
            .expect("finish");
        assert_eq!(wal.stats().snapshot_upto, Lsn(upto), "round {round}");
        // Acknowledged before the copy, so durable in it.
        let acked = sync::lock(&log).clone();
        check_replay(&fs.crashed(), upto, &snapshot, &acked);
        last = (upto, snapshot);
    }
    allow(APPENDS);
    for h in threads {
        h.join().expect("thread");
    }
    wal.close().expect("close");
    let log = sync::lock(&log);
    assert_eq!(log.len(), 8 * 2 * APPENDS);
    let (upto, snapshot) = last;
    let tail = check_replay(&fs, upto, &snapshot, &log);
    assert_eq!(tail.len(), log.range(upto..).count());
    let replayed = snapshot.iter().chain(&tail);
    assert_eq!(Model::of(replayed), Model::of(log.values()));
}

#[test]
fn a_crash_at_any_step_of_compaction_opens_to_the_same_state() {
    let a = ops(7, 60);
    let b = ops(8, 10);
    let mut lives = 0;
    loop {
        let mem = MemFs::new();
        let fs = FailingFs::new(mem.clone());
        let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 200)).expect("open");
        append_all(&wal, &a);
        fs.die_after(lives);
        let finished = wal
            .begin_compaction()
            .and_then(|upto| wal.finish_compaction(upto, Model::of(&a).snapshot().into_iter()))
            .is_ok();
        let crashed = mem.crashed();
        drop(wal);

        let rec = reopen_twice(&crashed);
        assert_eq!(
            Model::of(&rec.records),
            Model::of(&a),
            "died after {lives} calls"
        );
        let snaps = support::snapshot_files(&crashed, &dir());
        assert!(
            snaps.len() <= 1 && snaps.iter().all(|s| s.ends_with(".snap")),
            "{snaps:?}"
        );

        // And the log goes on: more appends, another compaction, a reopen.
        let (wal, _) =
            Wal::open(&dir(), opts(crashed.clone(), FsyncPolicy::Always, 200)).expect("open");
        append_all(&wal, &b);
        let upto = wal.begin_compaction().expect("begin");
        let all: Vec<Record> = a.iter().chain(&b).cloned().collect();
        wal.finish_compaction(upto, Model::of(&all).snapshot().into_iter())
            .expect("finish");
        wal.close().expect("close");
        assert_eq!(Model::of(&reopen_twice(&crashed).records), Model::of(&all));

        if finished {
            break;
        }
        lives += 1;
        assert!(lives < 100, "compaction never finished");
    }
    assert!(lives > 5, "only {lives} steps");
}

fn compacted_log() -> (MemFs, Vec<Record>) {
    let fs = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)).expect("open");
    let snap = vec![
        grant(-3),
        Record::Attach {
            id: -3,
            keys: vec![b"x".to_vec()],
        },
    ];
    wal.append(&snap).expect("append");
    let upto = wal.begin_compaction().expect("begin");
    wal.finish_compaction(upto, snap.clone().into_iter())
        .expect("finish");
    wal.close().expect("close");
    (fs, snap)
}

#[test]
fn a_damaged_or_partial_snapshot_is_never_trusted() {
    let (fs, snap) = compacted_log();
    assert_eq!(reopen_twice(&fs).records, snap);
    let path = format::snapshot_path(&dir(), 2);
    let good = fs.file(&path).expect("snapshot");
    for off in 0..good.len() {
        for mask in [1u8 << (off % 8), 0xff] {
            let mut bad = good.clone();
            bad[off] ^= mask;
            fs.set_file(&path, &bad);
            match Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)) {
                Err(Error::CorruptSnapshot { offset, file, .. }) => {
                    assert!(offset <= off as u64, "byte {off}: at {offset}");
                    assert_eq!(file, path);
                }
                Err(Error::UnsupportedLogVersion { .. }) => assert!((8..10).contains(&off)),
                other => panic!("byte {off}: {other:?}"),
            }
        }
    }
    for cut in 0..good.len() {
        fs.set_file(&path, &good[..cut]);
        assert!(
            matches!(
                Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)),
                Err(Error::CorruptSnapshot { .. })
            ),
            "cut at {cut}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    fs.set_file(&path, &longer);
    assert!(matches!(
        Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Always, 1 << 20)),
        Err(Error::CorruptSnapshot { reason, .. }) if reason.contains("after its end")
    ));
    fs.set_file(&path, &good);
    assert_eq!(reopen_twice(&fs).records, snap);
}

#[test]
fn churn_with_compaction_keeps_the_directory_bounded() {
    let fs = MemFs::new();
    let (wal, _) = Wal::open(&dir(), opts(fs.clone(), FsyncPolicy::Never, 1024)).expect("open");
    let mut model = Model::default();
    let mut peak = 0;
    for round in 0..40i64 {
        for i in 0..100 {
            let id = round * 100 + i;
            let rs = [grant(id), Record::Revoke { id: id - 50 }];
            wal.append(&rs).expect("append");
            for r in &rs {
                model.apply(r);
            }
        }
        let s = wal.stats();
        peak = peak.max(s.segment_bytes + s.snapshot_bytes);
        // Compact once the log is much larger than the live state.
        if s.segment_bytes > 4 * s.snapshot_bytes.max(1024) {
            let upto = wal.begin_compaction().expect("begin");
            wal.finish_compaction(upto, model.snapshot().into_iter())
                .expect("finish");
        }
    }
    wal.close().expect("close");
    assert!(peak < 32 * 1024, "peak {peak} bytes");
    assert!(support::segments(&fs, &dir()).len() < 10);
    assert_eq!(Model::of(&reopen_twice(&fs).records), model);
}
