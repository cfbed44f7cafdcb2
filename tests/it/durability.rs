//! Durability through the public API: a lessor built on a data directory rebuilds every lease
//! and attachment after a restart or a SIGKILL, and refuses a second opener.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lessor::test_util::MemFs;
use lessor::{Error, FsyncPolicy, LeaseId, Lessor, ManualClock, Remaining};

fn open(dir: &Path, clock: &ManualClock) -> Lessor {
    Lessor::builder()
        .clock(clock.clone())
        .min_ttl(Duration::from_millis(1))
        .expiry_thread(false)
        .data_dir(dir)
        .build()
        .expect("the log opens")
}

fn snapshot(l: &Lessor) -> BTreeMap<i64, (Duration, Vec<Vec<u8>>)> {
    l.leases()
        .into_iter()
        .map(|x| (x.id().get(), (x.ttl(), x.keys().to_vec())))
        .collect()
}

#[test]
fn every_change_round_trips_including_extreme_ids() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let before = {
        let l = open(dir.path(), &clock);
        for (n, ttl) in [(i64::MAX, 60), (i64::MIN, 61), (-1, 62), (1, 63), (42, 64)] {
            l.grant(LeaseId::new(n), Duration::from_secs(ttl)).unwrap();
        }
        l.attach(LeaseId::new(i64::MAX), ["a", "b", "c"]).unwrap();
        l.attach(LeaseId::new(-1), ["b"]).unwrap(); // moves b
        l.detach(LeaseId::new(i64::MAX), ["c"]).unwrap();
        l.attach(LeaseId::new(42), ["z"]).unwrap();
        l.revoke(LeaseId::new(42)).unwrap();
        l.checkpoint(LeaseId::new(i64::MIN), Duration::from_secs(5))
            .unwrap();
        snapshot(&l)
    };
    let l = open(dir.path(), &clock);
    assert_eq!(snapshot(&l), before);
    assert_eq!(l.get_lease("b"), LeaseId::new(-1));
    assert_eq!(l.get_lease("z"), LeaseId::NONE);
    assert_eq!(l.check_invariants(), Ok(()));
    let r = l.recovery().unwrap();
    assert_eq!((r.leases, r.keys), (4, 2));
    // Deadlines restart as etcd's promote gives them: the checkpoint, else the full TTL.
    let left = |n: i64| l.lookup(LeaseId::new(n)).unwrap().remaining();
    assert_eq!(left(i64::MIN), Remaining::Left(Duration::from_secs(5)));
    assert_eq!(left(i64::MAX), Remaining::Left(Duration::from_secs(60)));
}

/// A lessor with a log on an in-memory file system that can lose power, checkpointing leases
/// of at least a minute once a minute (when `run_maintenance_once` is called).
fn open_mem(fs: &MemFs, clock: &ManualClock) -> Lessor {
    Lessor::builder()
        .clock(clock.clone())
        .min_ttl(Duration::from_millis(1))
        .expiry_thread(false)
        .checkpoints(Some(Duration::from_secs(60)), 1000)
        .data_dir("/data")
        .file_system(fs.clone())
        .build()
        .expect("the log opens")
}

fn left(l: &Lessor, n: i64) -> Remaining {
    l.lookup(LeaseId::new(n))
        .expect("the lease is there")
        .remaining()
}

/// Grants leases 1 and 2 for ten minutes, checkpoints both at 5 s, renews lease 1, then ends
/// the lessor with `end` (a power loss or a clean stop) and reopens what is left.
fn renew_after_checkpoint_then(end: impl FnOnce(Lessor, &MemFs) -> MemFs) -> Lessor {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open_mem(&fs, &clock);
    for n in [1, 2] {
        l.grant(LeaseId::new(n), Duration::from_secs(600)).unwrap();
        l.checkpoint(LeaseId::new(n), Duration::from_secs(5))
            .unwrap();
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.renew(LeaseId::new(1)).unwrap(), Duration::from_secs(600));
    let after = end(l, &fs);
    open_mem(&after, &clock)
}

#[test]
fn a_renew_clears_a_checkpoint_in_the_log_before_a_crash() {
    let l = renew_after_checkpoint_then(|l, fs| {
        let durable = fs.crashed(); // the power goes out as soon as renew returned
        drop(l);
        durable
    });
    // etcd proposes the clearing through raft before the renew answers: a renewed lease
    // does not come back with its old, small remaining TTL.
    assert_eq!(left(&l, 1), Remaining::Left(Duration::from_secs(600)));
    assert_eq!(left(&l, 2), Remaining::Left(Duration::from_secs(5)));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_renew_clears_a_checkpoint_in_the_log_before_a_clean_stop() {
    let l = renew_after_checkpoint_then(|l, fs| {
        l.stop();
        drop(l);
        fs.clone()
    });
    assert_eq!(left(&l, 1), Remaining::Left(Duration::from_secs(600)));
    assert_eq!(left(&l, 2), Remaining::Left(Duration::from_secs(5)));
}

#[test]
fn the_pass_after_a_renew_checkpoints_the_renewed_time_left() {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    {
        let l = open_mem(&fs, &clock);
        l.grant(LeaseId::new(1), Duration::from_secs(600)).unwrap();
        l.grant(LeaseId::new(2), Duration::from_secs(600)).unwrap();
        l.grant(LeaseId::new(3), Duration::from_secs(30)).unwrap(); // shorter than the interval
        clock.advance(Duration::from_secs(100));
        assert_eq!(
            l.run_maintenance_once().unwrap(),
            2,
            "two long leases checkpointed"
        );
        l.renew(LeaseId::new(2)).unwrap(); // clears lease 2's checkpoint, in the log too
        clock.advance(Duration::from_secs(60));
        assert_eq!(l.run_maintenance_once().unwrap(), 2, "both again");
        assert_eq!(l.check_invariants(), Ok(()));
    }
    let l = open_mem(&fs, &clock);
    assert_eq!(left(&l, 1), Remaining::Left(Duration::from_secs(440)));
    assert_eq!(left(&l, 2), Remaining::Left(Duration::from_secs(540)));
    assert_eq!(left(&l, 3), Remaining::Left(Duration::from_secs(30)));
}

/// Threads renew while checkpoint passes and compactions run; then the power goes out. The
/// log must say what memory says: every lease comes back with the checkpoint that memory has
/// in force (seen through a demote and promote of the old lessor), or with its TTL.
#[test]
fn renews_racing_checkpoint_passes_leave_memory_and_log_in_agreement() {
    const LEASES: i64 = 48;
    const PASSES: usize = 120;
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(Duration::from_millis(1))
        .expiry_thread(false)
        .checkpoints(Some(Duration::from_secs(1)), u32::MAX)
        .shards(4)
        .data_dir("/data")
        .file_system(fs.clone())
        .build()
        .unwrap();
    for n in 1..=LEASES {
        l.grant(LeaseId::new(n), Duration::from_secs(3600)).unwrap();
    }
    let done = AtomicBool::new(false);
    let renewed = std::thread::scope(|s| {
        let renewers: Vec<_> = (0..2u64)
            .map(|t| {
                let (l, done) = (&l, &done);
                s.spawn(move || {
                    let mut x = 0x9E37_79B9_7F4A_7C15 ^ t;
                    let mut count = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let n = (x % LEASES as u64) as i64 + 1;
                        l.renew(LeaseId::new(n)).unwrap();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        for pass in 0..PASSES {
            clock.advance(Duration::from_secs(1));
            l.run_maintenance_once().unwrap();
            if pass % 25 == 24 {
                l.compact().unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
        renewers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert!(renewed > 0);
    // One more pass checkpoints every lease; then a renew of every other one, which only
    // the renew itself can clear in the log.
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.run_maintenance_once().unwrap(), LEASES as usize);
    for n in (1..=LEASES).step_by(2) {
        l.renew(LeaseId::new(n)).unwrap();
    }
    assert_eq!(l.check_invariants(), Ok(()));
    let durable = fs.crashed();
    // What memory holds: a promote gives each lease its checkpoint in force, else its TTL.
    l.demote();
    l.promote(Duration::ZERO);
    let in_memory: Vec<(i64, Remaining)> = (1..=LEASES).map(|n| (n, left(&l, n))).collect();
    drop(l);
    let again = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(Duration::from_millis(1))
        .expiry_thread(false)
        .data_dir("/data")
        .file_system(durable)
        .build()
        .unwrap();
    let in_log: Vec<(i64, Remaining)> = (1..=LEASES).map(|n| (n, left(&again, n))).collect();
    assert_eq!(in_log, in_memory);
    let full = Remaining::Left(Duration::from_secs(3600));
    for (n, r) in &in_memory {
        assert_eq!(*r == full, n % 2 == 1, "lease {n}: {r:?}");
    }
}

/// Leases whose deadlines tie are listed in grant order; a compaction writes its snapshot in
/// that order, so a reopen lists them the same way. `churn` leases are granted and revoked
/// after each kept one, which spreads the kept leases' grant numbers apart.
fn grant_order_survives_compaction(churn: i64) {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let open = |fs: &MemFs| {
        Lessor::builder()
            .clock(clock.clone())
            .min_ttl(Duration::from_millis(1))
            .expiry_thread(false)
            .shards(16)
            .data_dir("/data")
            .file_system(fs.clone())
            .build()
            .unwrap()
    };
    let ids = |l: &Lessor| -> Vec<i64> { l.leases().iter().map(|x| x.id().get()).collect() };
    let l = open(&fs);
    // Ids in an order that neither their values nor their hashes follow.
    let mut granted: Vec<i64> = (1..=300).map(|i: i64| (i * 7919) % 1009 - 500).collect();
    granted.retain(|n| *n != 0);
    for (i, n) in granted.iter().enumerate() {
        let id = LeaseId::new(*n);
        l.grant(id, Duration::from_secs(60)).unwrap();
        if i % 3 == 0 {
            l.attach(id, [format!("key-{n}")]).unwrap();
        }
        if i % 7 == 0 {
            // A checkpoint of the whole TTL keeps the tie after a restart.
            l.checkpoint(id, Duration::from_secs(60)).unwrap();
        }
        for c in 0..churn {
            let passing = LeaseId::new(1_000_000 + c);
            l.grant(passing, Duration::from_secs(60)).unwrap();
            l.revoke(passing).unwrap();
        }
    }
    // A re-grant goes to the end.
    let moved = granted.remove(10);
    l.revoke(LeaseId::new(moved)).unwrap();
    l.grant(LeaseId::new(moved), Duration::from_secs(60))
        .unwrap();
    granted.push(moved);
    assert_eq!(ids(&l), granted);
    l.compact().unwrap();
    // Grants after the compaction follow the snapshot's.
    l.grant(LeaseId::new(100_000), Duration::from_secs(60))
        .unwrap();
    granted.push(100_000);
    let before = snapshot(&l);
    drop(l);
    let fs = fs.crashed();
    let l = open(&fs);
    assert_eq!(ids(&l), granted);
    assert_eq!(snapshot(&l), before);
    assert_eq!(l.check_invariants(), Ok(()));
    // And a second compaction, of a log that starts with a snapshot, keeps it too.
    l.compact().unwrap();
    drop(l);
    assert_eq!(ids(&open(&fs)), granted);
}

#[test]
fn compaction_keeps_grant_order_among_ties() {
    grant_order_survives_compaction(0);
}

#[test]
fn compaction_keeps_grant_order_among_ties_after_churn() {
    grant_order_survives_compaction(3);
}

/// Compactions racing grants, attaches, detaches, revokes and checkpoints: the snapshot reads
/// leases after its boundary (their keys as late as when it writes them), and whatever it
/// catches of the changes after the boundary, replaying the segments after it on top gives
/// the state memory has. Then a power loss: the log must say what memory says.
#[test]
fn compactions_racing_changes_lose_nothing() {
    const IDS: u64 = 24;
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open_mem(&fs, &clock);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let l = &l;
                s.spawn(move || {
                    let mut x = 0x2545_F491_4F6C_DD1D ^ (t + 1);
                    for _ in 0..3000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let id = LeaseId::new((x % IDS) as i64 + 1);
                        let key = format!("key-{}", (x >> 8) % 16);
                        let _ = match (x >> 16) % 6 {
                            0 => l.grant(id, Duration::from_secs(600)).map(drop),
                            1 => l.revoke(id),
                            2 => l.detach(id, [&key]),
                            3 => l.checkpoint(id, Duration::from_secs(1 + (x >> 24) % 500)),
                            _ => l.attach(id, [&key]),
                        };
                    }
                })
            })
            .collect();
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                l.compact().unwrap();
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(l.check_invariants(), Ok(()));
    let durable = fs.crashed();
    let keys: Vec<String> = (0..16).map(|k| format!("key-{k}")).collect();
    let owners = |l: &Lessor| -> Vec<LeaseId> { keys.iter().map(|k| l.get_lease(k)).collect() };
    let before = (snapshot(&l), owners(&l));
    l.demote();
    l.promote(Duration::ZERO);
    let in_force: Vec<(i64, Remaining)> = l
        .leases()
        .iter()
        .map(|x| (x.id().get(), x.remaining()))
        .collect();
    drop(l);
    let again = open_mem(&durable, &clock);
    assert_eq!((snapshot(&again), owners(&again)), before);
    let mut got: Vec<(i64, Remaining)> = again
        .leases()
        .iter()
        .map(|x| (x.id().get(), x.remaining()))
        .collect();
    let mut want = in_force;
    got.sort();
    want.sort();
    assert_eq!(got, want, "the checkpoints in force");
    assert_eq!(again.check_invariants(), Ok(()));
}

#[test]
fn a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let first = open(dir.path(), &clock);
    let second = Lessor::builder().data_dir(dir.path()).build();
    assert!(matches!(second, Err(Error::LogLocked { .. })), "{second:?}");
    drop(first);
    assert!(Lessor::builder().data_dir(dir.path()).build().is_ok());
}

#[test]
fn compaction_keeps_the_directory_bounded_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let l = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(Duration::from_millis(1))
        .expiry_thread(false)
        .fsync(FsyncPolicy::Never)
        .log_sizes(16 << 10, 64 << 10)
        .data_dir(dir.path())
        .build()
        .unwrap();
    let mut largest = 0u64;
    for round in 0..200i64 {
        for n in 1..=100 {
            let id = LeaseId::new(round * 100 + n);
            l.grant(id, Duration::from_secs(60)).unwrap();
            if n % 10 != 0 {
                l.revoke(id).unwrap();
            }
        }
        l.run_maintenance_once().unwrap();
        let size: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        largest = largest.max(size);
    }
    assert_eq!(l.len(), 2000);
    // 2000 live leases take ~40 KB as a snapshot; without compaction 20,000 grants and
    // 18,000 revokes would take ~500 KB.
    assert!(largest < 300 << 10, "directory grew to {largest} bytes");
    let before = snapshot(&l);
    drop(l);
    assert_eq!(snapshot(&open(dir.path(), &clock)), before);
}

/// One step of the crash child's deterministic script over leases 1..=40.
#[derive(Debug, Clone, Copy)]
enum Step {
    Grant(i64),
    Attach(i64, u8),
    Revoke(i64),
}

fn script(seed: u64, n: usize) -> Vec<Step> {
    let mut x = seed | 1;
    let mut live = BTreeSet::new();
    let mut steps = Vec::with_capacity(n);
    while steps.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = (x % 40) as i64 + 1;
        let step = if !live.contains(&id) {
            live.insert(id);
            Step::Grant(id)
        } else if x % 3 == 0 {
            live.remove(&id);
            Step::Revoke(id)
        } else {
            Step::Attach(id, (x >> 8) as u8 % 16)
        };
        steps.push(step);
    }
    steps
}

/// The state after the first `n` steps: lease -> its keys (keys move between leases).
fn model(steps: &[Step]) -> BTreeMap<i64, BTreeSet<Vec<u8>>> {
    let mut leases: BTreeMap<i64, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for step in steps {
        match *step {
            Step::Grant(id) => {
                leases.insert(id, BTreeSet::new());
            }
            Step::Revoke(id) => {
                leases.remove(&id);
            }
            Step::Attach(id, k) => {
                let key = format!("key-{k}").into_bytes();
                for keys in leases.values_mut() {
                    keys.remove(&key);
                }
                leases.get_mut(&id).unwrap().insert(key);
            }
        }
    }
    leases
}

fn state(l: &Lessor) -> BTreeMap<i64, BTreeSet<Vec<u8>>> {
    l.leases()
        .into_iter()
        .map(|x| (x.id().get(), x.keys().iter().cloned().collect()))
        .collect()
}

/// The child side of the crash test: runs the script with fsync before every return and
/// prints the number of each acknowledged step. Only runs when the parent starts it.
#[test]
#[ignore = "run by crash_tests_lose_nothing_acknowledged as a child process"]
fn crash_child() {
    let (Ok(dir), Ok(seed)) = (
        std::env::var("LESSOR_CRASH_DIR"),
        std::env::var("LESSOR_CRASH_SEED"),
    ) else {
        return;
    };
    let l = Lessor::builder()
        .min_ttl(Duration::from_millis(1))
        .log_sizes(8 << 10, 32 << 10)
        .data_dir(&dir)
        .build()
        .unwrap();
    let mut out = std::io::stdout().lock();
    for (i, step) in script(seed.parse().unwrap(), 100_000)
        .into_iter()
        .enumerate()
    {
        match step {
            Step::Grant(id) => drop(
                l.grant(LeaseId::new(id), Duration::from_secs(3600))
                    .unwrap(),
            ),
            Step::Revoke(id) => l.revoke(LeaseId::new(id)).unwrap(),
            Step::Attach(id, k) => l.attach(LeaseId::new(id), [format!("key-{k}")]).unwrap(),
        }
        writeln!(out, "ack {}", i + 1).unwrap();
        out.flush().unwrap();
        if i % 500 == 499 {
            l.compact().unwrap();
        }
    }
}

#[test]
fn crash_tests_lose_nothing_acknowledged() {
    let exe = std::env::current_exe().unwrap();
    for round in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let seed = 0x9E37_79B9 + round;
        let kill_after = 20 + (round * 97) % 1500;
        let mut child = Command::new(&exe)
            .args([
                "durability::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("LESSOR_CRASH_DIR", dir.path())
            .env("LESSOR_CRASH_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ack = |line: std::io::Result<String>| -> Option<usize> {
            line.ok()?.strip_prefix("ack ")?.parse().ok()
        };
        let mut acked = 0usize;
        for line in lines.by_ref() {
            acked = ack(line).unwrap_or(acked);
            if acked as u64 >= kill_after {
                break;
            }
        }
        assert!(
            acked as u64 >= kill_after,
            "round {round}: the child acknowledged only {acked} steps"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The child went on until the signal landed: what it acknowledged meanwhile is still
        // in the pipe.
        for line in lines {
            acked = ack(line).unwrap_or(acked);
        }
        let steps = script(seed, acked + 1);
        let clock = ManualClock::new();
        let l = open(dir.path(), &clock);
        let got = state(&l);
        // Every acknowledged step is there; the one in flight may or may not be.
        let ok = got == model(&steps[..acked]) || got == model(&steps[..=acked]);
        assert!(
            ok,
            "round {round}: after {acked} acknowledged steps the log opened to {got:?}"
        );
        assert_eq!(l.check_invariants(), Ok(()));
        drop(l);
        open(dir.path(), &clock); // and it opens cleanly again
    }
}
