//! A real crash: a child process (this test binary, re-run on one ignored test) appends with
//! fsync-before-return from four threads and prints every acknowledgement; the parent kills
//! it (SIGKILL) after a varying number of them, then opens the log on disk. Every
//! acknowledged record must be there, every record must be one the child sent, in its
//! thread's order, and a second open must be clean.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::wal::{Lsn, Record, Wal, WalOptions};

/// The child's log directory; the child test does nothing without it.
const DIR_VAR: &str = "LESSOR_WAL_KILL_DIR";

const THREADS: i64 = 4;

fn record(t: i64, i: i64) -> Record {
    Record::Attach {
        id: t * 1_000_000 + i,
        keys: vec![format!("key/{t}/{i}").into_bytes(); usize::try_from(i % 3).expect("small")],
    }
}

/// The child: appends until killed, printing `ack <thread> <i> <end lsn>` after each append.
#[test]
#[ignore = "run by `a_killed_writer_loses_nothing_acknowledged` in a child process"]
fn child_appends_until_killed() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let opts = WalOptions {
        segment_bytes: 16 << 10,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.as_ref(), opts).expect("the child opens the log");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let wal = &wal;
            s.spawn(move || {
                for i in 0.. {
                    let batch = [record(t, 2 * i), record(t, 2 * i + 1)];
                    let Lsn(end) = wal.append(&batch).expect("append");
                    println!("ack {t} {i} {end}");
                }
            });
        }
    });
}

#[test]
fn a_killed_writer_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("the test binary");
    let mut total_acks = 0;
    for round in 0..12u64 {
        // Kill after 1 to 120 acknowledgements (the appends go on while the kill is sent).
        let kill_after = 1 + (round * 37 + 11) % 120;
        let mut child = Command::new(&exe)
            .args(["--exact", "wal::tests::kill::child_appends_until_killed"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        let mut acks = Vec::new();
        for line in out.lines() {
            let line = line.expect("read");
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let n: Vec<i64> = rest
                .split(' ')
                .map(|x| x.parse().expect("number"))
                .collect();
            acks.push((n[0], n[1], n[2]));
            if acks.len() as u64 >= kill_after {
                child.kill().expect("kill");
                break;
            }
        }
        child.wait().expect("reap");
        assert_eq!(
            acks.len() as u64,
            kill_after,
            "round {round}: the child stopped early"
        );
        total_acks += acks.len();

        let (wal, rec) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
        drop(wal);
        check(&rec.records, &acks, round);
        let (wal, again) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
        drop(wal);
        assert_eq!(again.truncated_tail, None, "round {round}");
        assert_eq!(again.records, rec.records, "round {round}");
    }
    assert!(total_acks >= 12);
}

/// Every acknowledged pair sits just below its lsn; per thread, the records are exactly
/// `record(t, 0..n)` in order (across all rounds, each round starting where the last ended).
fn check(records: &[Record], acks: &[(i64, i64, i64)], round: u64) {
    for &(t, i, end) in acks {
        let end = usize::try_from(end).expect("lsn");
        let got = &records[end - 2..end];
        assert_eq!(
            got,
            [record(t, 2 * i), record(t, 2 * i + 1)],
            "round {round}: ack {t}/{i} at {end}"
        );
    }
    let mut per_thread: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in records {
        let Record::Attach { id, .. } = r else {
            panic!("round {round}: unexpected record {r:?}");
        };
        per_thread
            .entry(id / 1_000_000)
            .or_default()
            .push(id % 1_000_000);
    }
    for (t, seq) in per_thread {
        // Each round's run of a thread is 0, 1, 2, ... k; runs follow one another.
        let mut expect = 0;
        for x in seq {
            if x == 0 {
                expect = 0;
            }
            assert_eq!(x, expect, "round {round}: thread {t} out of order");
            expect += 1;
        }
    }
}
