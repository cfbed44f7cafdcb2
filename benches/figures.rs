//! Figures that criterion cannot give: memory per lease, expiry lateness on the real clock,
//! the expiry worker's throughput, promote at 1M leases, and renew throughput with and
//! without the expiry thread. Prints one line per figure.
//!
//! `cargo bench --bench figures` (about a minute on 2 cores);
//! `cargo bench --bench figures -- --quick` runs each at 1/10 scale;
//! `cargo bench --bench figures -- --test` (what `cargo bench -- --test` passes) is a smoke run
//! of a few seconds: 1/100 of the leases and 1/10 of the waiting on the real clock.
//! Positional arguments pick figures by name (`-- durable recovery`); `--list` lists them.
//! Logs go to per-process temporary directories under `<target>/tmp`.

#![allow(unsafe_code)] // the counting allocator below; the engine itself has no unsafe

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lessor::{Clock, LeaseId, Lessor, Remaining, SystemClock};

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn now() -> Instant {
    SystemClock.now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn memory(n: i64) {
    let before = LIVE.load(Ordering::SeqCst);
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .expiry_thread(false)
        .build()
        .unwrap();
    for i in 1..=n {
        l.grant(LeaseId::new(i), Duration::from_secs(3600)).unwrap();
    }
    l.run_expiry_once().unwrap(); // file every lease in the wheel
    let after = LIVE.load(Ordering::SeqCst);
    println!(
        "memory: {:.1} bytes per lease at {n} leases without keys (maps + wheel), heap counted",
        (after - before) as f64 / n as f64
    );
    drop(l);
}

/// Grants `n` leases while not primary, then promotes: every deadline is now + ttl(i).
fn promoted(n: i64, tick: Duration, ttl: impl Fn(i64) -> Duration) -> (Lessor, Instant) {
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .tick(tick)
        .primary(false)
        .revoke_rate(u32::MAX)
        .expiry_channel(1 << 16, 4096)
        .build()
        .unwrap();
    for i in 1..=n {
        l.grant(LeaseId::new(i), ttl(i)).unwrap();
    }
    let before = now();
    l.promote(Duration::ZERO);
    // The engine's "now" at promote lies between `before` and the first lookup.
    let Remaining::Left(left) = l.lookup(LeaseId::new(1)).unwrap().remaining() else {
        panic!("lease 1 should have time left");
    };
    let base = now() + left - ttl(1);
    let _ = before;
    (l, base)
}

fn lateness(label: &str, n: i64, tick_ms: u64, ttl: impl Fn(i64) -> Duration + Copy) {
    let (l, base) = promoted(n, ms(tick_ms), ttl);
    let rx = l.expired_leases();
    let mut late = Vec::with_capacity(n as usize);
    let mut seen = vec![false; n as usize + 1];
    let mut last = base;
    while late.len() < n as usize {
        let batch = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("expiries arrive");
        let t = now();
        last = t;
        for lease in batch {
            let id = lease.id().get();
            // Notify mode delivers unrevoked leases again after 3 s: count the first time.
            if std::mem::replace(&mut seen[id as usize], true) {
                continue;
            }
            let deadline = base + ttl(id);
            late.push(t.saturating_duration_since(deadline).as_secs_f64() * 1000.0);
        }
    }
    late.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "expiry {label}: {n} leases, tick {tick_ms} ms: lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; last delivered {:.1} ms after the last deadline",
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late[late.len() - 1],
        last.saturating_duration_since(base + (1..=n).map(ttl).max().unwrap()).as_secs_f64() * 1000.0,
    );
    l.stop();
}

/// The worker's capacity: `n` leases expiring over one second, stepped tick by tick as the
/// expiry thread does (manual clock, so only the work is timed).
fn worker_throughput(n: i64) {
    let clock = lessor::ManualClock::new();
    let l = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(ms(1))
        .expiry_thread(false)
        .expiry_channel(1 << 16, 4096)
        .build()
        .unwrap();
    for i in 1..=n {
        l.grant(
            LeaseId::new(i),
            Duration::from_secs(10) + ms((i % 1000) as u64),
        )
        .unwrap();
    }
    l.run_expiry_once().unwrap();
    clock.advance(Duration::from_secs(10) - ms(10));
    let mut busy = Duration::ZERO;
    let mut got = 0;
    for _ in 0..102 {
        clock.advance(ms(10));
        let t = now();
        got += l.run_expiry_once().unwrap();
        busy += t.elapsed();
        l.expired_leases().try_iter().for_each(drop);
    }
    assert_eq!(got, n as usize);
    println!(
        "expiry worker: {n} leases expiring over 1 s, stepped every 10 ms tick: {:.1} ms of work = {:.2} M leases/s",
        busy.as_secs_f64() * 1000.0,
        n as f64 / busy.as_secs_f64() / 1e6
    );
}

/// The worker's burst capacity: `n` leases with one deadline, expired in one step.
fn worker_burst(n: i64) {
    let clock = lessor::ManualClock::new();
    let l = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(ms(1))
        .expiry_thread(false)
        .revoke_rate(u32::MAX)
        .expiry_channel(1 << 16, 4096)
        .build()
        .unwrap();
    for i in 1..=n {
        l.grant(LeaseId::new(i), Duration::from_secs(3600)).unwrap();
    }
    l.run_expiry_once().unwrap();
    l.demote();
    l.promote(Duration::ZERO); // every lease now shares one deadline
    l.run_expiry_once().unwrap();
    clock.advance(Duration::from_secs(3600));
    let t = now();
    let got = l.run_expiry_once().unwrap();
    let took = t.elapsed();
    assert_eq!(got, n as usize);
    println!(
        "expiry worker burst: {n} leases with one deadline expired in one step in {:.1} ms = {:.2} M leases/s",
        took.as_secs_f64() * 1000.0,
        n as f64 / took.as_secs_f64() / 1e6
    );
}

fn promote_time(n: i64) {
    for (label, spread) in [
        ("same TTL, spread at 1000/s", true),
        ("random TTLs, no spreading", false),
    ] {
        let l = Lessor::builder()
            .min_ttl(ms(1))
            .primary(false)
            .revoke_rate(if spread { 1000 } else { u32::MAX })
            .expiry_thread(false)
            .build()
            .unwrap();
        let mut rng = Rng(7);
        for i in 1..=n {
            let ttl = if spread {
                60_000
            } else {
                1 + rng.next() % 600_000
            };
            l.grant(LeaseId::new(i), ms(ttl)).unwrap();
        }
        let t = now();
        l.promote(Duration::ZERO);
        let took = t.elapsed();
        let t = now();
        l.run_expiry_once().unwrap();
        let refile = t.elapsed();
        println!(
            "promote: {n} leases ({label}) in {:.1} ms; the worker's wheel rebuild after it {:.1} ms",
            took.as_secs_f64() * 1000.0,
            refile.as_secs_f64() * 1000.0
        );
    }
}

/// A lessor holding the leases `1..=n` (TTL one hour), with or without the expiry thread.
fn renew_bed(n: i64, with_thread: bool) -> Lessor {
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .expiry_thread(with_thread)
        .build()
        .unwrap();
    for i in 1..=n {
        l.grant(LeaseId::new(i), Duration::from_secs(3600)).unwrap();
    }
    l
}

/// Renews random leases of `l` (holding `1..=n`) from `threads` threads for `run`; returns how
/// many renews were done.
fn renew_ops(l: &Lessor, n: i64, threads: usize, run: Duration, seed: u64) -> u64 {
    let ops = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let ops = &ops;
            s.spawn(move || {
                let mut rng = Rng(seed * 64 + t as u64 + 1);
                let start = now();
                let mut done = 0u64;
                while start.elapsed() < run {
                    for _ in 0..1024 {
                        let id = 1 + (rng.next() % n as u64) as i64;
                        l.renew(LeaseId::new(id)).unwrap();
                    }
                    done += 1024;
                }
                ops.fetch_add(done, Ordering::Relaxed);
            });
        }
    });
    ops.load(Ordering::Relaxed)
}

/// Renew throughput without and with the expiry thread, in ops/s: both lessors are built
/// first (the second one's thread has filed its leases by the time it is measured), then
/// measured in alternating slices, so that the machine's drift during the run (other tenants of
/// a shared VM) falls on both alike.
fn renew_rates(n: i64, threads: usize, run: Duration) -> (f64, f64) {
    const SLICES: u32 = 6;
    let without = renew_bed(n, false);
    let with = renew_bed(n, true);
    let slice = run / SLICES;
    let (mut a, mut b) = (0, 0);
    for i in 0..u64::from(SLICES) {
        a += renew_ops(&without, n, threads, slice, 2 * i);
        b += renew_ops(&with, n, threads, slice, 2 * i + 1);
    }
    let secs = (slice * SLICES).as_secs_f64();
    (a as f64 / secs, b as f64 / secs)
}

/// A fresh directory for a log, on the target dir's disk (not a tmpfs):
/// `<target>/tmp/figures-<name>-<pid>-<random>`, unique to this process so that two runs at
/// once never share a log (the second would fail with `LogLocked`), and removed on drop.
fn log_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("figures-{name}-{}-", std::process::id()))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a temporary directory")
}

/// Durable grants (fsync before every return) from `threads` callers through group commit.
fn durable_grants(threads: usize, per_thread: i64) {
    let dir = log_dir("durable");
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .data_dir(dir.path())
        .build()
        .unwrap();
    let t = now();
    std::thread::scope(|s| {
        for th in 0..threads as i64 {
            let l = &l;
            s.spawn(move || {
                for i in 0..per_thread {
                    l.grant(
                        LeaseId::new(1 + th * per_thread + i),
                        Duration::from_secs(3600),
                    )
                    .unwrap();
                }
            });
        }
    });
    let took = t.elapsed();
    let n = threads as f64 * per_thread as f64;
    println!(
        "durable grant: {threads} callers, fsync before return: {:.0} grants/s ({:.0} us a grant per caller)",
        n / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / per_thread as f64
    );
    drop(l);
}

/// Recovery and compaction of `n` leases.
fn recovery(n: i64) {
    let dir = log_dir("recovery");
    {
        let l = Lessor::builder()
            .min_ttl(ms(1))
            .fsync(lessor::FsyncPolicy::Never)
            .data_dir(dir.path())
            .build()
            .unwrap();
        for i in 1..=n {
            l.grant(LeaseId::new(i), Duration::from_secs(3600)).unwrap();
        }
    }
    let t = now();
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .data_dir(dir.path())
        .build()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(l.len(), n as usize);
    println!(
        "recovery: {n} leases from the log (replay + promote) in {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    let t = now();
    l.compact().unwrap();
    println!(
        "compaction: snapshot of {n} live leases written, fsynced and swapped in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(l);
    let t = now();
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .data_dir(dir.path())
        .build()
        .unwrap();
    println!(
        "recovery: {n} leases from the snapshot in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(l);
}

/// The figures, by the names that positional arguments match.
const FIGURES: [&str; 7] = [
    "memory", "worker", "promote", "lateness", "durable", "recovery", "renew",
];

/// How big each figure is.
struct Scale {
    /// Leases per figure.
    leases: i64,
    /// Durable grants per caller, with 1 and with 64 callers.
    durable: (i64, i64),
    /// Real-clock waits (lateness TTLs, the renew run) are divided by this.
    slow_down: u32,
}

impl Scale {
    fn from_args() -> Self {
        let has = |flag: &str| std::env::args().any(|a| a == flag);
        if has("--test") {
            Scale {
                leases: 10_000,
                durable: (20, 10),
                slow_down: 10,
            }
        } else if has("--quick") {
            Scale {
                leases: 100_000,
                durable: (200, 100),
                slow_down: 1,
            }
        } else {
            Scale {
                leases: 1_000_000,
                durable: (2000, 2000),
                slow_down: 1,
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if std::env::args().any(|a| a == "--list") {
        for name in FIGURES.into_iter().filter(|name| want(name)) {
            println!("figures/{name}: bench");
        }
        return;
    }
    let scale = Scale::from_args();
    let n = scale.leases;
    let real = |d: Duration| d / scale.slow_down;
    if want("memory") {
        memory(n);
    }
    if want("worker") {
        worker_throughput(n);
        worker_burst(n);
    }
    if want("promote") {
        promote_time(n);
    }
    if want("lateness") {
        let same = real(Duration::from_secs(2));
        lateness("same deadline", n, 10, |_| same);
        let spread = u64::try_from(real(Duration::from_secs(10)).as_millis()).unwrap();
        let label = format!("spread over {:.0} s", spread as f64 / 1000.0);
        lateness(&label, n, 10, |i| ms(1 + (i as u64 * 7919) % spread));
    }
    if want("durable") {
        durable_grants(1, scale.durable.0);
        durable_grants(64, scale.durable.1);
    }
    if want("recovery") {
        recovery(n);
    }
    if want("renew") {
        let run = real(Duration::from_millis(3000));
        let (without, with) = renew_rates(n, 2, run);
        println!(
            "renew: {n} leases, 2 threads, alternating slices: {:.2} M ops/s without the expiry thread, {:.2} M ops/s with it ({:.0}%)",
            without / 1e6,
            with / 1e6,
            with / without * 100.0
        );
    }
}
