//! The `lessor bench` command line ([`BenchArgs`]) and the [`Plan`] resolved from it: every
//! default filled in, every knob checked. Parsing errors are clap errors, so they print the
//! usage and exit with code 2.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, ValueEnum};

/// The lease counts of `--sweep` when `--sizes` does not name others.
pub(crate) const SWEEP_SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// The most leases one run may ask for.
pub(crate) const MAX_LEASES: u64 = 100_000_000;
/// etcd's largest TTL, 9,000,000,000 s (lessor's `MAX_TTL`).
const MAX_TTL: Duration = lessor::MAX_TTL;

/// `lessor bench`: measure one lease workload on lessor, on an etcd-style reference lessor and,
/// for the map operations, on a bare hashbrown floor, in the same process and the same run.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// The workload to run.
    #[arg(value_enum)]
    pub(crate) scenario: Scenario,

    /// Leases (sessions) in the engine: 1000, 1_000_000 and 1e6 all work
    /// [default: 1e6; 1e4 with --quick, 2000 for expiry]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) leases: Option<u64>,

    /// Worker threads [default: the number of cores]
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: Option<u16>,

    /// Seconds each measurement runs; for expiry, the longest wait after the last deadline
    /// [default: 3; 10 for expiry; 0.25 with --quick, 1 for expiry]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) duration: Option<f64>,

    /// TTL distribution: fixed:60s, uniform:1s..10s, or a bare duration (ms, s, m, h)
    /// [default: fixed:60s; mixed fixed:10s; expiry fixed:1s (the deadline offset)]
    #[arg(long, value_name = "DIST", value_parser = TtlDist::parse)]
    pub(crate) ttl: Option<TtlDist>,

    /// Keys attached to each lease (revoke, mixed) or per attach call (attach: at least 1)
    #[arg(long, value_name = "K", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub(crate) keys_per_lease: u16,

    /// Seed of every random choice (TTLs, orders, phases)
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(crate) seed: u64,

    /// Print one JSON object per run, one line each, instead of the table
    #[arg(long)]
    pub(crate) json: bool,

    /// Draw throughput against lease count (and, for expiry, the lateness histogram) as SVG
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,

    /// Run at 1e3, 1e4, 1e5 and 1e6 leases (or at --sizes) instead of --leases
    #[arg(long)]
    pub(crate) sweep: bool,

    /// Lease counts for a sweep, comma-separated (implies --sweep): --sizes 1e3,1e5,1e7
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_count)]
    pub(crate) sizes: Vec<u64>,

    /// Small sizes and short runs, for CI and smoke tests
    #[arg(long)]
    pub(crate) quick: bool,

    /// mixed: fraction of the sessions replaced (revoke + grant + attach) per TTL
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = parse_fraction)]
    pub(crate) churn: f64,

    /// The reference lessor's expiry queue: fix (etcd >= 3.4's LeaseExpiredNotifier, one
    /// entry per lease, heap.Fix on renew) or lazy (etcd 3.3's leaseHeap, a push per renew)
    #[arg(long, value_enum, value_name = "KIND", default_value_t = HeapKind::Fix)]
    pub(crate) baseline_heap: HeapKind,

    /// lessor's expiry wheel tick, 1ms..1s
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_tick)]
    pub(crate) tick: Duration,
}

const AFTER_HELP: &str = "\
Every scenario runs three times in the same process: on lessor, on the reference lessor built the
way etcd builds its own (one mutex, a hash map, a binary heap, a 500 ms scan revoking at most
1000 leases/s), and on a bare hashbrown map (the floor) for grant, renew, revoke and attach.
Latencies are sampled on one operation in 256 (every one in mixed); throughput counts all.

Exit codes: 0 ok; 1 a sanity check failed (ops counted != ops the engine shows); 2 bad
arguments or a scenario that is not available yet.";

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Grant fresh leases into an engine holding N (it grows to at most 2N)
    Grant,
    /// Renew random leases among N
    Renew,
    /// Revoke leases (and their keys) from an engine holding N (it shrinks to N/2)
    Revoke,
    /// Attach K fresh keys per call to leases among N
    Attach,
    /// Session tracking: N sessions renewing every TTL/3, plus a churn of grants and revokes
    Mixed,
    /// N leases expiring at once (fixed TTL) or spread (uniform TTL): delivery lateness
    Expiry,
    /// Promote N leases (with etcd's spreading of pile-ups)
    Promote,
    /// Rebuild N leases from the write-ahead log (not available yet)
    Recovery,
    /// Grant with the write-ahead log under each fsync policy (not available yet)
    DurableGrant,
    /// Load an etcd-compatible endpoint over gRPC (not available yet)
    Grpc,
}

impl Scenario {
    /// Why this scenario cannot run yet, or `None` when it can.
    pub(crate) fn unavailable(self) -> Option<&'static str> {
        match self {
            Scenario::Recovery | Scenario::DurableGrant => Some(
                "it needs the write-ahead log, which this harness does not drive yet \
                 (the library's `data_dir`/`fsync` options are newer than the harness)",
            ),
            Scenario::Grpc => Some("it needs the gRPC server, which lessor does not have yet"),
            _ => None,
        }
    }

    /// True when the hashbrown floor has a counterpart for this scenario's operation.
    pub(crate) fn has_floor(self) -> bool {
        matches!(
            self,
            Scenario::Grant | Scenario::Renew | Scenario::Revoke | Scenario::Attach
        )
    }

    /// The name used on the command line and in the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Grant => "grant",
            Scenario::Renew => "renew",
            Scenario::Revoke => "revoke",
            Scenario::Attach => "attach",
            Scenario::Mixed => "mixed",
            Scenario::Expiry => "expiry",
            Scenario::Promote => "promote",
            Scenario::Recovery => "recovery",
            Scenario::DurableGrant => "durable-grant",
            Scenario::Grpc => "grpc",
        }
    }
}

/// Which expiry queue the reference lessor keeps (see `baseline::queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HeapKind {
    /// etcd >= 3.4: one heap entry per lease, moved in place on renew (`heap.Fix`).
    Fix,
    /// etcd 3.3: a new heap entry on every renew; stale ones are dropped when they surface.
    Lazy,
}

impl HeapKind {
    /// The name used on the command line and in the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HeapKind::Fix => "fix",
            HeapKind::Lazy => "lazy",
        }
    }
}

// ===== TTL distributions =====

/// How TTLs are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtlDist {
    /// Every lease gets this TTL.
    Fixed(Duration),
    /// Uniform over whole milliseconds from `lo` to `hi`, both included.
    Uniform(Duration, Duration),
}

impl TtlDist {
    /// Parses `fixed:60s`, `uniform:1s..10s` or a bare duration.
    pub(crate) fn parse(s: &str) -> Result<TtlDist, String> {
        let s = s.trim();
        let dist = if let Some(rest) = s.strip_prefix("fixed:") {
            TtlDist::Fixed(parse_duration(rest)?)
        } else if let Some(rest) = s.strip_prefix("uniform:") {
            let (lo, hi) = rest
                .split_once("..")
                .ok_or_else(|| format!("`{s}`: a uniform TTL is written uniform:LO..HI"))?;
            let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
            if lo > hi {
                return Err(format!("`{s}`: the low end is above the high end"));
            }
            TtlDist::Uniform(lo, hi)
        } else if s.contains(':') {
            return Err(format!(
                "`{s}`: unknown distribution; use fixed:DURATION or uniform:LO..HI"
            ));
        } else {
            TtlDist::Fixed(parse_duration(s)?)
        };
        let (lo, hi) = dist.bounds();
        if lo < Duration::from_millis(1) {
            return Err(format!("`{s}`: TTLs must be at least 1ms"));
        }
        if hi > MAX_TTL {
            return Err(format!(
                "`{s}`: TTLs must be at most 9000000000s (etcd's limit)"
            ));
        }
        Ok(dist)
    }

    /// The smallest and largest TTL the distribution can give.
    pub(crate) fn bounds(self) -> (Duration, Duration) {
        match self {
            TtlDist::Fixed(d) => (d, d),
            TtlDist::Uniform(lo, hi) => (lo, hi),
        }
    }

    /// Draws one TTL (whole milliseconds) from a random word.
    pub(crate) fn sample(self, random: u64) -> Duration {
        match self {
            TtlDist::Fixed(d) => d,
            TtlDist::Uniform(lo, hi) => {
                let (lo_ms, hi_ms) = (millis(lo), millis(hi));
                Duration::from_millis(lo_ms + random % (hi_ms - lo_ms + 1))
            }
        }
    }
}

impl fmt::Display for TtlDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlDist::Fixed(d) => write!(f, "fixed:{}", show_duration(*d)),
            TtlDist::Uniform(lo, hi) => {
                write!(f, "uniform:{}..{}", show_duration(*lo), show_duration(*hi))
            }
        }
    }
}

/// Whole milliseconds of `d` (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `d` in whole seconds when it is a whole number of them (`60s`), else in ms (`1500ms`).
fn show_duration(d: Duration) -> String {
    let ms = millis(d);
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

// ===== value parsers =====

/// A count: `1000`, `1_000_000`, `1e6`, `2.5e5`.
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let bad = || format!("`{s}` is not a count (write 1000, 1_000_000 or 1e6)");
    let n = if let Some((m, e)) = t.split_once(['e', 'E']) {
        let m: f64 = m.parse().map_err(|_| bad())?;
        let e: i32 = e.parse().map_err(|_| bad())?;
        let v = m * 10f64.powi(e);
        if !(0.0..=1e18).contains(&v) || v.fract() != 0.0 {
            return Err(bad());
        }
        v as u64
    } else {
        t.parse().map_err(|_| bad())?
    };
    if n == 0 || n > MAX_LEASES {
        return Err(format!("`{s}`: must be from 1 to {MAX_LEASES}"));
    }
    Ok(n)
}

/// A duration: `250ms`, `1.5s`, `2m`, `1h`, `500us`; a bare number is seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a duration (write 250ms, 1.5s, 2m or 1h)");
    let v: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("`{s}`: must be from 0.01 to 3600 seconds"));
    }
    Ok(d.as_secs_f64())
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}`: must be from 0 to 1"));
    }
    Ok(v)
}

fn parse_tick(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(1) {
        return Err(format!("`{s}`: the tick must be from 1ms to 1s"));
    }
    Ok(d)
}

// ===== the resolved plan =====

/// Everything a run needs, defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The workload.
    pub(crate) scenario: Scenario,
    /// Lease counts to run at, in order (one unless sweeping).
    pub(crate) sizes: Vec<u64>,
    /// Worker threads.
    pub(crate) threads: usize,
    /// Time per measurement (expiry: the longest wait after the last deadline).
    pub(crate) duration: Duration,
    /// TTL distribution.
    pub(crate) ttl: TtlDist,
    /// Keys per lease (per call for attach).
    pub(crate) keys: usize,
    /// The seed.
    pub(crate) seed: u64,
    /// mixed: fraction of sessions replaced per TTL.
    pub(crate) churn: f64,
    /// The reference lessor's queue.
    pub(crate) heap: HeapKind,
    /// lessor's wheel tick.
    pub(crate) tick: Duration,
    /// JSON lines instead of a table.
    pub(crate) json: bool,
    /// Where to draw the SVG.
    pub(crate) plot: Option<PathBuf>,
}

impl BenchArgs {
    /// Fills in the defaults and checks what clap could not; a bad combination is a clap
    /// usage error (exit code 2).
    pub(crate) fn resolve(&self) -> Result<Plan, clap::Error> {
        let s = self.scenario;
        let quick = self.quick;
        let default_leases = match (quick, s) {
            (true, Scenario::Expiry) => 2_000,
            (true, _) => 10_000,
            (false, _) => 1_000_000,
        };
        let sizes = if !self.sizes.is_empty() {
            self.sizes.clone()
        } else if self.sweep {
            if quick {
                vec![1_000, 10_000]
            } else {
                SWEEP_SIZES.to_vec()
            }
        } else {
            vec![self.leases.unwrap_or(default_leases)]
        };
        if self.leases.is_some() && (self.sweep || !self.sizes.is_empty()) {
            return Err(usage(
                ErrorKind::ArgumentConflict,
                "--leases cannot be combined with --sweep or --sizes (use --sizes LIST)",
            ));
        }
        let duration = self.duration.map_or_else(
            || match (quick, s) {
                (true, Scenario::Expiry) => Duration::from_secs(1),
                (true, _) => Duration::from_millis(250),
                (false, Scenario::Expiry) => Duration::from_secs(10),
                (false, _) => Duration::from_secs(3),
            },
            Duration::from_secs_f64,
        );
        let ttl = self.ttl.unwrap_or(match (quick, s) {
            (true, Scenario::Expiry) => TtlDist::Fixed(Duration::from_millis(200)),
            (false, Scenario::Expiry) => TtlDist::Fixed(Duration::from_secs(1)),
            (true, Scenario::Mixed) => TtlDist::Fixed(Duration::from_millis(600)),
            (false, Scenario::Mixed) => TtlDist::Fixed(Duration::from_secs(10)),
            _ => TtlDist::Fixed(Duration::from_secs(60)),
        });
        if s == Scenario::Mixed && ttl.bounds().0 < Duration::from_millis(30) {
            return Err(usage(
                ErrorKind::ValueValidation,
                "mixed renews every TTL/3: TTLs must be at least 30ms",
            ));
        }
        if let Some(path) = &self.plot {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                return Err(usage(
                    ErrorKind::ValueValidation,
                    format!("--plot {}: its folder does not exist", path.display()),
                ));
            }
        }
        let threads = self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            usize::from,
        );
        let mut keys = usize::from(self.keys_per_lease);
        if s == Scenario::Attach {
            keys = keys.max(1);
        }
        Ok(Plan {
            scenario: s,
            sizes,
            threads,
            duration,
            ttl,
            keys,
            seed: self.seed,
            churn: self.churn,
            heap: self.baseline_heap,
            tick: self.tick,
            json: self.json,
            plot: self.plot.clone(),
        })
    }
}

/// A usage error in clap's format, for `lessor bench`.
pub(crate) fn usage(kind: ErrorKind, msg: impl fmt::Display) -> clap::Error {
    let mut cmd = crate::Cli::command();
    let bench = cmd
        .find_subcommand_mut("bench")
        .expect("bench is a subcommand")
        .clone();
    bench.bin_name("lessor bench").error(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("1e6"), Ok(1_000_000));
        assert_eq!(parse_count("2.5e5"), Ok(250_000));
        assert!(parse_count("0").is_err());
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("1e9").is_err());
        assert!(parse_count("ten").is_err());
        assert!(parse_count("1.23e1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn ttl_distributions() {
        let s = Duration::from_secs;
        assert_eq!(TtlDist::parse("fixed:60s"), Ok(TtlDist::Fixed(s(60))));
        assert_eq!(TtlDist::parse("60s"), Ok(TtlDist::Fixed(s(60))));
        assert_eq!(
            TtlDist::parse("uniform:1s..10s"),
            Ok(TtlDist::Uniform(s(1), s(10)))
        );
        assert!(TtlDist::parse("uniform:10s..1s").is_err());
        assert!(TtlDist::parse("uniform:1s").is_err());
        assert!(TtlDist::parse("normal:1s").is_err());
        assert!(TtlDist::parse("fixed:0s").is_err());
        assert!(TtlDist::parse("fixed:9000000001s").is_err());
        for text in [
            "fixed:60s",
            "uniform:1s..10s",
            "fixed:1500ms",
            "fixed:7200s",
        ] {
            assert_eq!(TtlDist::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn uniform_samples_stay_in_bounds_and_reach_both_ends() {
        let d = TtlDist::Uniform(Duration::from_millis(10), Duration::from_millis(12));
        let got: Vec<u64> = (0..30).map(|r| millis(d.sample(r))).collect();
        assert!(got.iter().all(|ms| (10..=12).contains(ms)));
        assert!(got.contains(&10) && got.contains(&12));
    }
}
