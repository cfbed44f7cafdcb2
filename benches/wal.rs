//! Write-ahead log benches: durable appends from 1, 8 and 64 threads (group commit) and
//! appends without fsync; recovery of 1M grants; a compaction of 1M live leases.
//!
//! # Conventions
//!
//! - The log lives in a temporary directory under cargo's `CARGO_TARGET_TMPDIR` (the target
//!   dir's disk: `/tmp` may be a tmpfs, where an fsync costs nothing).
//! - `wal/append`: one criterion iteration is one single-record append (a small `Grant`) *on
//!   every thread*, so criterion's elem/s is the total records per second across threads.
//!   Threads start together behind a barrier; the time of a batch is the slowest thread's.
//!   After each bench, the fsyncs per record over the whole run are printed.
//! - 10 samples, short warm-up and measurement. Manual timing reads `SystemClock::now()`.
//! - The log is `pub(crate)`, so its files are compiled here as private modules. They reach
//!   the crate only through `super::` (`Error`, `Result`, `Clock`, `SystemClock`, `sync`),
//!   which this file supplies from the public API and std.

use std::hint::black_box;
use std::path::Path;
use std::sync::Barrier;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use lessor::{Clock, Error, Result, SystemClock};

/// The `crate::sync` items the log uses, from std.
#[allow(dead_code)]
mod sync {
    pub(crate) use std::sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    };

    /// Locks a mutex, recovering the guard if a panicking thread poisoned it.
    pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[path = "../src/wal/format.rs"]
#[allow(dead_code)]
mod format;
#[path = "../src/wal/fs.rs"]
#[allow(dead_code)]
mod fs;
#[path = "../src/wal/log.rs"]
#[allow(dead_code)]
mod log;
#[path = "../src/wal/options.rs"]
#[allow(dead_code, unreachable_pub)]
mod options;
#[path = "../src/wal/reader.rs"]
#[allow(dead_code)]
mod reader;
#[path = "../src/wal/record.rs"]
#[allow(dead_code)]
mod record;
#[path = "../src/wal/reply.rs"]
#[allow(dead_code)]
mod reply;
#[path = "../src/wal/segment.rs"]
#[allow(dead_code)]
mod segment;
#[path = "../src/wal/snapshot.rs"]
#[allow(dead_code)]
mod snapshot;
#[path = "../src/wal/writer.rs"]
#[allow(dead_code)]
mod writer;

use self::log::Wal;
use self::options::{FsyncPolicy, WalOptions};
use self::record::Record;

/// A temporary directory on the target dir's disk.
fn tempdir() -> tempfile::TempDir {
    crate::common::tempdir("wal-bench-")
}

fn open(dir: &Path, fsync: FsyncPolicy) -> Wal {
    let opts = WalOptions {
        fsync,
        ..WalOptions::default()
    };
    Wal::open(dir, opts).expect("the log opens").0
}

fn grant(id: u64) -> Record {
    Record::Grant {
        id: i64::try_from(id).expect("small ids"),
        ttl_ms: 60_000,
    }
}

/// `threads` threads each append `iters` one-record grants; returns the wall time from the
/// common start to the last thread's end.
fn run_appends(wal: &Wal, threads: u64, iters: u64) -> Duration {
    let barrier = Barrier::new(usize::try_from(threads).expect("few threads") + 1);
    let start = std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    black_box(wal.append(&[grant(t << 32 | i)]).expect("append"));
                }
            });
        }
        barrier.wait();
        SystemClock.now()
    });
    // The scope returned once every thread had finished.
    SystemClock.now() - start
}

/// Registers `wal/append`, `wal/recover_1m` and `wal/compact_1m`.
pub(crate) fn register_benches(c: &mut Criterion) {
    append(c);
    recover(c);
    compact(c);
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal/append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.sampling_mode(SamplingMode::Flat);
    for (name, policy) in [
        ("always", FsyncPolicy::Always),
        ("never", FsyncPolicy::Never),
    ] {
        for threads in [1u64, 8, 64] {
            let tmp = tempdir();
            let wal = open(tmp.path(), policy);
            group.throughput(Throughput::Elements(threads));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| run_appends(&wal, threads, iters));
            });
            let s = wal.stats();
            if s.next_lsn.0 > 0 {
                eprintln!(
                    "wal/append/{name}/{threads}: {} records, {} writes, {} fsyncs: \
                 {:.3} fsyncs per record, {:.1} records per write",
                    s.next_lsn.0,
                    s.writes,
                    s.fsyncs,
                    s.fsyncs as f64 / s.next_lsn.0.max(1) as f64,
                    s.next_lsn.0 as f64 / s.writes.max(1) as f64,
                );
            }
            wal.close().expect("close");
        }
    }
    group.finish();
}

const MILLION: u64 = 1_000_000;

/// A log of a million grants, in appends of 1000.
fn million_grants() -> tempfile::TempDir {
    let tmp = tempdir();
    let wal = open(tmp.path(), FsyncPolicy::Never);
    let batch: Vec<u64> = (0..1000).collect();
    for chunk in 0..MILLION / 1000 {
        let records: Vec<Record> = batch.iter().map(|i| grant(chunk * 1000 + i + 1)).collect();
        wal.append(&records).expect("append");
    }
    wal.close().expect("close");
    tmp
}

fn recover(c: &mut Criterion) {
    // Written on first use, so a filtered-out bench writes nothing.
    let mut tmp = None;
    let mut group = c.benchmark_group("wal/recover_1m");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(MILLION));
    group.bench_function("grants", |b| {
        let tmp = tmp.get_or_insert_with(million_grants);
        b.iter(|| {
            let (wal, recovered) =
                Wal::open(tmp.path(), WalOptions::default()).expect("the log opens");
            assert_eq!(recovered.records.len() as u64, MILLION);
            wal.close().expect("close");
            black_box(recovered)
        });
    });
    group.finish();
}

fn compact(c: &mut Criterion) {
    let tmp = tempdir();
    let wal = open(tmp.path(), FsyncPolicy::Always);
    let mut group = c.benchmark_group("wal/compact_1m");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(MILLION));
    let mut next = 0;
    group.bench_function("grants", |b| {
        b.iter(|| {
            // Move the log on by one record so that every snapshot is a new one.
            next += 1;
            wal.append(&[grant(next)]).expect("append");
            let upto = wal.begin_compaction().expect("begin");
            wal.finish_compaction(upto, (1..=MILLION).map(grant))
                .expect("finish");
        });
    });
    group.finish();
    let s = wal.stats();
    eprintln!(
        "wal/compact_1m: snapshot of {} bytes, {} live segments",
        s.snapshot_bytes, s.segments
    );
    wal.close().expect("close");
}
