//! The scenarios that measure one target, with no in-process reference: `recovery`,
//! `durable-grant` and `grpc`. Each runs every variant its plan asks for (a lease count and a
//! replay source; an fsync policy and a thread count; an operation and a concurrency), prints
//! one table row or JSON line per variant as it completes, and picks the exit code: 1 when a
//! check failed or a run could not be carried out (an endpoint that does not answer, a log
//! that cannot be written).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

use super::args::{GrpcOp, Plan, Scenario};
use super::grpc::load::{measure, Load, Pool};
use super::outcome::Outcome;
use super::progress::Progress;
use super::report::{duration_ns, rate, Record, SoloFields};
use super::scenario::common::Ctx;
use super::scenario::durable;
use super::scenario::recovery::{self, Replay};
use super::target::TargetConfig;
use super::values::show_fsync;

/// Exit code for failed checks and runs that could not be carried out.
const EXIT_FAILED: u8 = 1;

/// Runs a one-target scenario.
pub(crate) fn run(plan: &Plan) -> ExitCode {
    let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let sizes = plan.sizes.len() as u64;
    let steps = match plan.scenario {
        Scenario::Recovery => 3 * sizes,
        Scenario::DurableGrant => sizes * (plan.fsync.len() * plan.thread_counts.len()) as u64,
        _ => sizes * (plan.ops.len() * plan.clients.len()) as u64,
    };
    let progress = Progress::new(!plan.json && tty, steps);
    let mut printer = Printer::new(plan, &progress);
    let result = match plan.scenario {
        Scenario::Recovery => run_recovery(plan, &progress, &mut printer),
        Scenario::DurableGrant => run_durable(plan, &progress, &mut printer),
        _ => run_grpc(plan, &progress, &mut printer),
    };
    printer.close_group();
    progress.finish();
    match result {
        Err(e) => {
            eprintln!("error: {} failed: {e}", plan.scenario.name());
            ExitCode::from(EXIT_FAILED)
        }
        Ok(()) if printer.failed => ExitCode::from(EXIT_FAILED),
        Ok(()) => ExitCode::SUCCESS,
    }
}

/// The run context of one lease count and thread count.
fn ctx<'p>(plan: &Plan, n: u64, threads: usize, progress: &'p Progress) -> Ctx<'p> {
    Ctx {
        n,
        threads,
        duration: plan.duration,
        ttl: plan.ttl,
        keys: plan.keys,
        seed: plan.seed,
        churn: plan.churn,
        config: TargetConfig {
            threads,
            primary: true,
            tick: plan.tick,
            heap: plan.heap,
        },
        progress,
    }
}

/// recovery at every lease count: the segments, then the snapshot.
fn run_recovery(plan: &Plan, progress: &Progress, printer: &mut Printer<'_>) -> Result<(), String> {
    let fsync = plan.fsync[0];
    for &n in &plan.sizes {
        printer.open_group(format!(
            "recovery: {n} leases, {} keys/lease, log filled on {} thread{} with fsync {}, \
             {} s of reopens per source, in {}",
            plan.keys,
            plan.threads,
            plural(plan.threads),
            show_fsync(fsync),
            plan.duration.as_secs_f64(),
            plan.data_dir.display()
        ));
        let c = ctx(plan, n, plan.threads, progress);
        recovery::run(&c, &plan.data_dir, fsync, |r: Replay| {
            let solo = SoloFields {
                fsync: Some(show_fsync(fsync)),
                replay_from: Some(r.from.name()),
                replay_records: Some(r.records),
                log_bytes: Some(r.log_bytes),
                ..SoloFields::default()
            };
            let rec = Record::solo(plan, n, plan.threads, &r.out, Some(r.bytes_per_lease), solo);
            printer.emit(rec, None);
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// durable-grant at every lease count, fsync policy and thread count.
fn run_durable(plan: &Plan, progress: &Progress, printer: &mut Printer<'_>) -> Result<(), String> {
    for &n in &plan.sizes {
        printer.open_group(format!(
            "durable-grant: {n} leases in the log beforehand, fresh grants for {} s per run, \
             ttl {}, log in {}",
            plan.duration.as_secs_f64(),
            plan.ttl,
            plan.data_dir.display()
        ));
        for &fsync in &plan.fsync {
            for &threads in &plan.thread_counts {
                let c = ctx(plan, n, threads, progress);
                let d = durable::run(&c, &plan.data_dir, fsync).map_err(|e| e.to_string())?;
                progress.step();
                let solo = SoloFields {
                    fsync: Some(show_fsync(fsync)),
                    ..SoloFields::default()
                };
                let rec = Record::solo(plan, n, threads, &d.out, Some(d.bytes_per_lease), solo);
                printer.emit(rec, None);
            }
        }
    }
    Ok(())
}

/// grpc at every operation and concurrency (and lease count, for revoke's rounds).
fn run_grpc(plan: &Plan, progress: &Progress, printer: &mut Printer<'_>) -> Result<(), String> {
    let mut builder = if plan.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(plan.threads);
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let endpoint = plan.endpoints.join(",");
    progress.say(format!("connecting to {endpoint}"));
    let pool = runtime.block_on(Pool::connect(&plan.endpoints, plan.connections))?;
    for &n in &plan.sizes {
        printer.open_group(format!(
            "grpc: {endpoint}, {} connection{} per endpoint, {} runtime thread{}, ttl {}, \
             {} s per run, {n} leases per revoke round",
            plan.connections,
            plural(plan.connections),
            plan.threads,
            plural(plan.threads),
            plan.ttl,
            plan.duration.as_secs_f64(),
        ));
        for &op in &plan.ops {
            for &clients in &plan.clients {
                progress.say(format!("{} with {clients} clients", op.name()));
                let load = Load {
                    op,
                    clients,
                    duration: plan.duration,
                    leases: n,
                    ttl: plan.ttl,
                    seed: plan.seed,
                };
                let (out, first_error) = runtime.block_on(measure(&pool, &load))?;
                progress.step();
                let rec = grpc_record(plan, n, &endpoint, op, clients, &out);
                printer.emit(rec, first_error);
            }
        }
    }
    Ok(())
}

/// The record of one grpc run.
fn grpc_record(
    plan: &Plan,
    n: u64,
    endpoint: &str,
    op: GrpcOp,
    clients: usize,
    out: &Outcome,
) -> Record {
    let solo = SoloFields {
        endpoint: Some(endpoint.to_string()),
        clients: Some(clients as u64),
        connections: Some(plan.connections as u64),
        op: Some(op.name()),
        ..SoloFields::default()
    };
    Record::solo(plan, n, plan.threads, out, None, solo)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ===== printing =====

/// Prints records as JSON lines, or as a table of one row per record under a title per group,
/// with the group's checks after its rows.
#[derive(Debug)]
struct Printer<'a> {
    plan: &'a Plan,
    progress: &'a Progress,
    /// True once any check has failed.
    failed: bool,
    /// The open group's checks (how many) and failures (one line each).
    checks: usize,
    failures: Vec<String>,
    open: bool,
}

impl<'a> Printer<'a> {
    fn new(plan: &'a Plan, progress: &'a Progress) -> Self {
        Printer {
            plan,
            progress,
            failed: false,
            checks: 0,
            failures: Vec::new(),
            open: false,
        }
    }

    /// Closes the open group and starts one under `title`.
    fn open_group(&mut self, title: String) {
        self.close_group();
        self.open = true;
        if !self.plan.json {
            let header = header(self.plan.scenario);
            self.progress.suspend(|| println!("{title}\n  {header}"));
        }
    }

    /// Prints one record (and the first error of its run, if any).
    fn emit(&mut self, rec: Record, first_error: Option<String>) {
        let failures = rec.failures();
        self.failed |= !rec.checks_ok;
        self.checks += rec.lessor.checks.len();
        self.progress.suspend(|| {
            if self.plan.json {
                println!("{}", rec.json_line());
                for f in &failures {
                    eprintln!("check failed: {f}");
                }
                if let Some(e) = &first_error {
                    eprintln!("first error: {e}");
                }
            } else {
                println!("  {}", row(&rec));
            }
        });
        let what = row_name(&rec);
        self.failures
            .extend(failures.into_iter().map(|f| format!("{what}: {f}")));
        if let Some(e) = first_error {
            self.failures.push(format!("{what}: first error: {e}"));
        }
    }

    /// Prints the open group's checks.
    fn close_group(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let mut s = String::new();
        if self.failures.is_empty() {
            let _ = writeln!(
                s,
                "  checks: all {} hold (ops counted = ops the engine shows)",
                self.checks
            );
        } else {
            for f in &self.failures {
                let _ = writeln!(s, "  CHECK FAILED: {f}");
            }
        }
        if !self.plan.json {
            self.progress.suspend(|| println!("{s}"));
        }
        self.checks = 0;
        self.failures.clear();
    }
}

/// The column header of a scenario's table.
fn header(scenario: Scenario) -> String {
    let lat = format!("{:>10}{:>10}{:>10}", "p50", "p99", "p999");
    match scenario {
        Scenario::Recovery => format!(
            "{:<13}{:>12}{:>13}{:>13}{:>11}{:>12}{:>13}",
            "replay from",
            "leases/s",
            "reopen p50",
            "reopen max",
            "records",
            "log MiB",
            "bytes/lease"
        ),
        Scenario::DurableGrant => format!(
            "{:<16}{:>8}{:>12}{lat}{:>9}{:>13}",
            "fsync", "threads", "ops/s", "errors", "bytes/lease"
        ),
        _ => format!(
            "{:<12}{:>8}{:>12}{lat}{:>9}",
            "op", "clients", "ops/s", "errors"
        ),
    }
}

/// One record's row.
fn row(r: &Record) -> String {
    let ns = |v: Option<u64>| v.map_or_else(|| "-".into(), duration_ns);
    let lat = format!(
        "{:>10}{:>10}{:>10}",
        ns(r.p50_ns),
        ns(r.p99_ns),
        ns(r.p999_ns)
    );
    let bytes = r
        .bytes_per_lease
        .map_or_else(|| "-".into(), |b| format!("{b:.1}"));
    match (r.solo.replay_from, &r.solo.op) {
        (Some(from), _) => format!(
            "{from:<13}{:>12}{:>13}{:>13}{:>11}{:>12.1}{bytes:>13}",
            rate(r.ops_per_sec),
            ns(r.p50_ns),
            ns(r.lessor.max_ns),
            r.solo.replay_records.unwrap_or(0),
            r.solo.log_bytes.unwrap_or(0) as f64 / f64::from(1u32 << 20),
        ),
        (None, Some(op)) => format!(
            "{op:<12}{:>8}{:>12}{lat}{:>9}",
            r.solo.clients.unwrap_or(0),
            rate(r.ops_per_sec),
            r.lessor.errors
        ),
        (None, None) => format!(
            "{:<16}{:>8}{:>12}{lat}{:>9}{bytes:>13}",
            r.solo.fsync.as_deref().unwrap_or("-"),
            r.threads,
            rate(r.ops_per_sec),
            r.lessor.errors
        ),
    }
}

/// What a row is, for failure messages: "snapshot", "always x 2 threads", "grant x 16 clients".
fn row_name(r: &Record) -> String {
    match (r.solo.replay_from, r.solo.op) {
        (Some(from), _) => format!("replay from {from}"),
        (None, Some(op)) => format!("{op} x {} clients", r.solo.clients.unwrap_or(0)),
        (None, None) => format!(
            "fsync {} x {} threads",
            r.solo.fsync.as_deref().unwrap_or("-"),
            r.threads
        ),
    }
}
