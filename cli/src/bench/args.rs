//! The `lessor bench` command line ([`BenchArgs`]) and the [`Plan`] resolved from it: every
//! default filled in, every knob checked. Parsing errors are clap errors, so they print the
//! usage and exit with code 2.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, ValueEnum};
use lessor::FsyncPolicy;

pub(crate) use super::values::{millis, GrpcOp, TtlDist};
use super::values::{
    parse_count, parse_endpoint, parse_fraction, parse_fsync, parse_secs, parse_tick,
    DEFAULT_FSYNC_INTERVAL,
};

/// The lease counts of `--sweep` when `--sizes` does not name others.
pub(crate) const SWEEP_SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// The most leases one run may ask for.
pub(crate) const MAX_LEASES: u64 = 100_000_000;
/// The `grpc` scenario's default concurrency levels.
pub(crate) const DEFAULT_CLIENTS: [usize; 3] = [1, 16, 64];
/// The `grpc` scenario's default endpoint (etcd's default client URL).
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

/// `lessor bench`: measure one lease workload on lessor, on an etcd-style reference lessor and,
/// for the map operations, on a bare hashbrown floor, in the same process and the same run.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// The workload to run.
    #[arg(value_enum)]
    pub(crate) scenario: Scenario,

    /// Leases (sessions) in the engine: 1000, 1_000_000 and 1e6 all work; for grpc, the
    /// leases granted beforehand per revoke round
    /// [default: 1e6; 1e4 with --quick, 2000 for expiry; durable-grant 1e5; grpc 2e4]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) leases: Option<u64>,

    /// Worker threads; durable-grant takes a list (1,2,4) and runs at each
    /// [default: the number of cores]
    #[arg(long, value_name = "T", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: Vec<u16>,

    /// Seconds each measurement runs; for expiry, the longest wait after the last deadline
    /// [default: 3; 10 for expiry; 0.25 with --quick, 1 for expiry]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) duration: Option<f64>,

    /// TTL distribution: fixed:60s, uniform:1s..10s, or a bare duration (ms, s, m, h)
    /// [default: fixed:60s; mixed fixed:10s; expiry fixed:1s (the deadline offset)]
    #[arg(long, value_name = "DIST", value_parser = TtlDist::parse)]
    pub(crate) ttl: Option<TtlDist>,

    /// Keys attached to each lease (revoke, mixed, recovery) or per attach call (attach: at
    /// least 1)
    #[arg(long, visible_alias = "keys", value_name = "K", default_value_t = 0,
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

    /// durable-grant, recovery: fsync policies, comma-separated, one run each: always,
    /// interval (10ms), interval:DURATION, never
    /// [default: durable-grant always,interval,never; recovery never (the fill's policy)]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_fsync)]
    pub(crate) fsync: Vec<FsyncPolicy>,

    /// durable-grant, recovery: the folder in which each run makes (and removes) its log's
    /// temporary directory [default: the system's temporary folder]
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// grpc: an etcd-compatible endpoint, http://HOST:PORT; repeat it or separate with
    /// commas, clients are spread over them [default: http://127.0.0.1:2379]
    #[arg(long, value_name = "URL", value_delimiter = ',', value_parser = parse_endpoint)]
    pub(crate) endpoint: Vec<String>,

    /// grpc: concurrent clients, comma-separated, one run each [default: 1,16,64]
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub(crate) clients: Vec<u16>,

    /// grpc: the operations to run, comma-separated [default: grant,keep-alive,revoke]
    #[arg(long, value_enum, value_name = "LIST", value_delimiter = ',')]
    pub(crate) ops: Vec<GrpcOp>,

    /// grpc: HTTP/2 connections per endpoint; clients share them round-robin
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) connections: u16,
}

const AFTER_HELP: &str = "\
Every scenario runs three times in the same process: on lessor, on the reference lessor built the
way etcd builds its own (one mutex, a hash map, a binary heap, a 500 ms scan revoking at most
1000 leases/s), and on a bare hashbrown map (the floor) for grant, renew, revoke and attach.
Latencies are sampled on one operation in 256 (every one in mixed); throughput counts all.

recovery, durable-grant and grpc measure one target and have no baseline (`null` in the JSON):
the etcd-style reference has no log, and grpc loads whatever server --endpoint names (run it
against etcd and lessor and compare, as scripts/bench-vs-etcd does). They time every operation.
  recovery       fills a log with N leases (K keys each), closes it, and times reopening it:
                 replay from the segments, then from a snapshot after compact()
  durable-grant  grants fresh ids through the log under each --fsync policy and --threads
  grpc           LeaseGrant, LeaseKeepAlive (one stream per client, one request in flight)
                 and LeaseRevoke against --endpoint, at each --clients level

Exit codes: 0 ok; 1 a sanity check failed (ops counted != ops the engine shows) or an
endpoint could not be reached; 2 bad arguments.";

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
    /// Rebuild N leases from the write-ahead log: replay from segments, then from a snapshot
    Recovery,
    /// Grant through the write-ahead log under each fsync policy
    DurableGrant,
    /// Load an etcd-compatible endpoint over gRPC: grant, keep-alive, revoke
    Grpc,
}

impl Scenario {
    /// True for the scenarios that measure one target with no in-process reference
    /// (recovery, durable-grant, grpc: see `bench::solo`).
    pub(crate) fn is_solo(self) -> bool {
        matches!(
            self,
            Scenario::Recovery | Scenario::DurableGrant | Scenario::Grpc
        )
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

// ===== the resolved plan =====

/// Everything a run needs, defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The workload.
    pub(crate) scenario: Scenario,
    /// Lease counts to run at, in order (one unless sweeping).
    pub(crate) sizes: Vec<u64>,
    /// Worker threads (the first of `thread_counts`).
    pub(crate) threads: usize,
    /// durable-grant: every thread count to run at (the others: just `threads`).
    pub(crate) thread_counts: Vec<usize>,
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
    /// durable-grant, recovery: the fsync policies, one run each.
    pub(crate) fsync: Vec<FsyncPolicy>,
    /// durable-grant, recovery: where the temporary log directories go.
    pub(crate) data_dir: PathBuf,
    /// grpc: the endpoints.
    pub(crate) endpoints: Vec<String>,
    /// grpc: the concurrency levels, one run each.
    pub(crate) clients: Vec<usize>,
    /// grpc: the operations, one run each.
    pub(crate) ops: Vec<GrpcOp>,
    /// grpc: connections per endpoint.
    pub(crate) connections: usize,
}

impl BenchArgs {
    /// Fills in the defaults and checks what clap could not; a bad combination is a clap
    /// usage error (exit code 2).
    pub(crate) fn resolve(&self) -> Result<Plan, clap::Error> {
        let s = self.scenario;
        let quick = self.quick;
        let default_leases = match (quick, s) {
            (true, Scenario::Expiry) => 2_000,
            (true, Scenario::DurableGrant | Scenario::Grpc) => 1_000,
            (true, _) => 10_000,
            (false, Scenario::DurableGrant) => 100_000,
            (false, Scenario::Grpc) => 20_000,
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
        // grpc's checks count the leases the server lists: none may expire during a run (a
        // revoke run takes at most twice its duration).
        let outlast = 2 * duration + Duration::from_secs(10);
        if s == Scenario::Grpc && ttl.bounds().0 < outlast {
            return Err(usage(
                ErrorKind::ValueValidation,
                format!(
                    "grpc's leases must outlast the run: TTLs must be at least 2 x --duration \
                     + 10s ({}s here)",
                    outlast.as_secs_f64()
                ),
            ));
        }
        if let Some(path) = &self.plot {
            if s.is_solo() {
                return Err(usage(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--plot draws the in-process comparisons; {} has none",
                        s.name()
                    ),
                ));
            }
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                return Err(usage(
                    ErrorKind::ValueValidation,
                    format!("--plot {}: its folder does not exist", path.display()),
                ));
            }
        }
        let solo = self.solo_knobs()?;
        let mut keys = usize::from(self.keys_per_lease);
        if s == Scenario::Attach {
            keys = keys.max(1);
        }
        Ok(Plan {
            scenario: s,
            sizes,
            threads: solo.thread_counts[0],
            thread_counts: solo.thread_counts,
            duration,
            ttl,
            keys,
            seed: self.seed,
            churn: self.churn,
            heap: self.baseline_heap,
            tick: self.tick,
            json: self.json,
            plot: self.plot.clone(),
            fsync: solo.fsync,
            data_dir: solo.data_dir,
            endpoints: solo.endpoints,
            clients: solo.clients,
            ops: solo.ops,
            connections: usize::from(self.connections),
        })
    }

    /// The thread counts and the knobs of recovery, durable-grant and grpc, checked: each
    /// belongs to its scenarios only, so that a knob that would do nothing is an error.
    fn solo_knobs(&self) -> Result<SoloKnobs, clap::Error> {
        let s = self.scenario;
        let only = |given: bool, flag: &str, allowed: &[Scenario]| {
            if given && !allowed.contains(&s) {
                let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
                return Err(usage(
                    ErrorKind::ArgumentConflict,
                    format!("{flag} applies to {} only", names.join(" and ")),
                ));
            }
            Ok(())
        };
        let logged = [Scenario::DurableGrant, Scenario::Recovery];
        only(
            self.threads.len() > 1,
            "a list of --threads",
            &[Scenario::DurableGrant],
        )?;
        only(!self.fsync.is_empty(), "--fsync", &logged)?;
        only(self.data_dir.is_some(), "--data-dir", &logged)?;
        only(!self.endpoint.is_empty(), "--endpoint", &[Scenario::Grpc])?;
        only(!self.clients.is_empty(), "--clients", &[Scenario::Grpc])?;
        only(!self.ops.is_empty(), "--ops", &[Scenario::Grpc])?;
        if s == Scenario::Recovery && self.fsync.len() > 1 {
            return Err(usage(
                ErrorKind::ArgumentConflict,
                "recovery takes one --fsync policy (the one its log is filled with)",
            ));
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        if !data_dir.is_dir() {
            return Err(usage(
                ErrorKind::ValueValidation,
                format!("--data-dir {}: not a folder", data_dir.display()),
            ));
        }
        let fsync = match (s, self.fsync.is_empty()) {
            (_, false) => dedup(self.fsync.clone()),
            (Scenario::Recovery, true) => vec![FsyncPolicy::Never],
            (_, true) => vec![
                FsyncPolicy::Always,
                FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL),
                FsyncPolicy::Never,
            ],
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let thread_counts = match self.threads.is_empty() {
            true => vec![cores],
            false => dedup(self.threads.iter().map(|&t| usize::from(t)).collect()),
        };
        let endpoints = match self.endpoint.is_empty() {
            true => vec![DEFAULT_ENDPOINT.to_string()],
            false => dedup(self.endpoint.clone()),
        };
        let clients = match self.clients.is_empty() {
            true => DEFAULT_CLIENTS.to_vec(),
            false => dedup(self.clients.iter().map(|&c| usize::from(c)).collect()),
        };
        let ops = match self.ops.is_empty() {
            true => GrpcOp::ALL.to_vec(),
            false => dedup(self.ops.clone()),
        };
        Ok(SoloKnobs {
            thread_counts,
            fsync,
            data_dir,
            endpoints,
            clients,
            ops,
        })
    }
}

/// What [`BenchArgs::solo_knobs`] resolves.
#[derive(Debug)]
struct SoloKnobs {
    thread_counts: Vec<usize>,
    fsync: Vec<FsyncPolicy>,
    data_dir: PathBuf,
    endpoints: Vec<String>,
    clients: Vec<usize>,
    ops: Vec<GrpcOp>,
}

/// `v` without repeats, in first-seen order.
fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
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
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn resolve(args: &[&str]) -> Result<Plan, clap::Error> {
        let argv = ["lessor", "bench"].iter().chain(args);
        let Command::Bench(b) = Cli::try_parse_from(argv)?.command else {
            panic!("{args:?} is a bench command");
        };
        b.resolve()
    }

    #[test]
    fn solo_defaults() {
        let p = resolve(&["durable-grant"]).unwrap();
        assert_eq!(p.sizes, vec![100_000]);
        let ten = FsyncPolicy::Interval(Duration::from_millis(10));
        assert_eq!(p.fsync, vec![FsyncPolicy::Always, ten, FsyncPolicy::Never]);
        assert_eq!(p.thread_counts, vec![p.threads]);
        let p = resolve(&["recovery", "--quick"]).unwrap();
        assert_eq!(
            (p.sizes[0], p.fsync.clone()),
            (10_000, vec![FsyncPolicy::Never])
        );
        let p = resolve(&["grpc"]).unwrap();
        assert_eq!(p.endpoints, vec![DEFAULT_ENDPOINT.to_string()]);
        assert_eq!(p.clients, DEFAULT_CLIENTS.to_vec());
        assert_eq!(p.ops, GrpcOp::ALL.to_vec());
        assert_eq!((p.sizes[0], p.connections), (20_000, 1));
    }

    #[test]
    fn solo_lists_are_parsed_and_deduplicated() {
        let p = resolve(&[
            "durable-grant",
            "--threads",
            "1,2,2",
            "--fsync",
            "never,always",
        ])
        .unwrap();
        assert_eq!(p.thread_counts, vec![1, 2]);
        assert_eq!((p.threads, p.fsync.len()), (1, 2));
        let p = resolve(&[
            "grpc",
            "--endpoint",
            "127.0.0.1:1,http://127.0.0.1:2",
            "--endpoint",
            "127.0.0.1:3",
            "--clients",
            "4,8",
            "--ops",
            "keep-alive,revoke",
        ])
        .unwrap();
        assert_eq!(p.endpoints.len(), 3);
        assert_eq!(p.endpoints[0], "http://127.0.0.1:1");
        assert_eq!(p.clients, vec![4, 8]);
        assert_eq!(p.ops, vec![GrpcOp::KeepAlive, GrpcOp::Revoke]);
        let p = resolve(&["recovery", "--keys", "3"]).unwrap();
        assert_eq!(p.keys, 3);
    }

    #[test]
    fn knobs_of_other_scenarios_are_refused() {
        for args in [
            &["grant", "--threads", "1,2"][..],
            &["grant", "--fsync", "never"],
            &["grpc", "--fsync", "never"],
            &["recovery", "--fsync", "never,always"],
            &["durable-grant", "--endpoint", "127.0.0.1:1"],
            &["renew", "--clients", "4"],
            &["revoke", "--ops", "grant"],
            &["recovery", "--plot", "x.svg"],
            &["grpc", "--ttl", "5s"],
            &["grpc", "--endpoint", "https://127.0.0.1:1"],
            &["durable-grant", "--data-dir", "/no/such/folder"],
        ] {
            assert!(resolve(args).is_err(), "{args:?} should be refused");
        }
        assert!(resolve(&["grpc", "--ttl", "30s", "--duration", "10"]).is_ok());
    }
}
