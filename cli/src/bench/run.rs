//! `lessor bench`: resolves the plan, runs the scenario on every target at every lease count,
//! prints each run (table or JSON line), draws the plot, and picks the exit code. The
//! one-target scenarios (recovery, durable-grant, grpc) go to `bench::solo` instead.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::args::{BenchArgs, Plan, Scenario};
use super::baseline::EtcdLessor;
use super::floor::Floor;
use super::outcome::Comparison;
use super::plot::{self, Bars, Series, COLORS};
use super::progress::Progress;
use super::report::Record;
use super::scenario::common::{interleave, Ctx, Measurement, SLICES};
use super::scenario::{attach, expiry, grant, mixed, promote, renew, revoke};
use super::solo;
use super::target::{LessorTarget, TargetConfig};

/// Exit code for a run whose sanity checks failed.
const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for bad arguments (clap's own is 2 too).
const EXIT_USAGE: u8 = 2;

/// Runs `lessor bench`.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    super::alloc::start_counting();
    let plan = match args.resolve() {
        Ok(plan) => plan,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if plan.scenario.is_solo() {
        return solo::run(&plan);
    }
    let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let steps = match plan.scenario {
        Scenario::Mixed | Scenario::Expiry => 2,
        s => (2 + u32::from(s.has_floor())) * SLICES,
    };
    let progress = Progress::new(
        !plan.json && tty,
        plan.sizes.len() as u64 * u64::from(steps),
    );
    let mut records = Vec::new();
    let mut last = None;
    let mut failed = false;
    for &n in &plan.sizes {
        let c = compare(&plan, n, &progress);
        let rec = Record::new(&plan, n, &c);
        progress.suspend(|| {
            if plan.json {
                println!("{}", rec.json_line());
            } else {
                println!("{}", rec.table());
            }
        });
        if !rec.checks_ok {
            failed = true;
            if plan.json {
                for f in rec.failures() {
                    eprintln!("check failed: {f}");
                }
            }
        }
        records.push(rec);
        last = Some(c);
    }
    progress.finish();
    if let (Some(path), Some(last)) = (&plan.plot, &last) {
        let svg = draw(&plan, &records, last);
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("error: cannot write the plot to {}: {e}", path.display());
            return ExitCode::from(EXIT_CHECK_FAILED);
        }
        if !plan.json {
            println!("plot written to {}", path.display());
        }
    }
    if failed {
        ExitCode::from(EXIT_CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the plan's scenario at `n` leases on lessor, the reference lessor and the floor.
pub(crate) fn compare(plan: &Plan, n: u64, progress: &Progress) -> Comparison {
    let ctx = Ctx {
        n,
        threads: plan.threads,
        duration: plan.duration,
        ttl: plan.ttl,
        keys: plan.keys,
        seed: plan.seed,
        churn: plan.churn,
        config: TargetConfig {
            threads: plan.threads,
            primary: true,
            tick: plan.tick,
            heap: plan.heap,
        },
        progress,
    };
    // Map scenarios and promote: the targets take turns (see `scenario::common`).
    macro_rules! turns {
        ($scenario:ident, $($target:ty),+) => {{
            let ms: Vec<Box<dyn Measurement + '_>> =
                vec![$(Box::new($scenario::Run::<$target>::new(&ctx))),+];
            let mut outs = interleave(&ctx, ms).into_iter();
            let lessor = outs.next().expect("lessor's outcome");
            let baseline = outs.next().expect("the reference's outcome");
            (lessor, baseline, outs.next())
        }};
    }
    // mixed and expiry run in real time, one target after the other.
    macro_rules! in_turn {
        ($scenario:ident) => {{
            let lessor = $scenario::run::<LessorTarget>(&ctx);
            progress.step();
            let baseline = $scenario::run::<EtcdLessor>(&ctx);
            progress.step();
            (lessor, baseline, None)
        }};
    }
    let (lessor, baseline, floor) = match plan.scenario {
        Scenario::Grant => turns!(grant, LessorTarget, EtcdLessor, Floor),
        Scenario::Renew => turns!(renew, LessorTarget, EtcdLessor, Floor),
        Scenario::Revoke => turns!(revoke, LessorTarget, EtcdLessor, Floor),
        Scenario::Attach => turns!(attach, LessorTarget, EtcdLessor, Floor),
        Scenario::Promote => turns!(promote, LessorTarget, EtcdLessor),
        Scenario::Mixed => in_turn!(mixed),
        Scenario::Expiry => in_turn!(expiry),
        Scenario::Recovery | Scenario::DurableGrant | Scenario::Grpc => {
            unreachable!("the one-target scenarios run in `bench::solo`")
        }
    };
    Comparison {
        lessor,
        baseline,
        floor,
    }
}

/// The SVG: throughput against lease count, plus the lateness histogram for expiry.
fn draw(plan: &Plan, records: &[Record], last: &Comparison) -> String {
    let pick = |f: fn(&Record) -> Option<f64>| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter_map(|r| f(r).map(|v| (r.leases as f64, v)))
            .collect()
    };
    let mut series = vec![
        Series {
            label: "lessor",
            color: COLORS[0],
            points: pick(|r| Some(r.ops_per_sec)),
        },
        Series {
            label: "etcd-style (one mutex + heap)",
            color: COLORS[1],
            points: pick(|r| r.baseline_ops_per_sec),
        },
    ];
    let floor = pick(|r| r.floor_ops_per_sec);
    if !floor.is_empty() {
        series.push(Series {
            label: "floor (bare hashbrown)",
            color: COLORS[2],
            points: floor,
        });
    }
    let unit = match plan.scenario {
        Scenario::Expiry => "leases delivered/s",
        Scenario::Promote => "leases promoted/s",
        _ => "ops/s",
    };
    let threads = match plan.threads {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    let title = format!(
        "{}: {unit} against lease count ({threads})",
        plan.scenario.name()
    );
    let mut charts = vec![plot::throughput(&title, &series, plot::offset(0))];
    if let (Some(l), Some(b)) = (&last.lessor.lateness, &last.baseline.lateness) {
        let n = records.last().map_or(0, |r| r.leases);
        let groups = [
            Bars {
                label: "lessor",
                color: COLORS[0],
                hist: l,
            },
            Bars {
                label: "etcd-style",
                color: COLORS[1],
                hist: b,
            },
        ];
        let title = format!("expiry lateness, {n} leases, ttl {}", plan.ttl);
        charts.push(plot::lateness(&title, &groups, plot::offset(1)));
    }
    plot::document(&charts)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn plan(args: &[&str]) -> Plan {
        let argv = ["lessor", "bench"].iter().chain(args);
        let Command::Bench(b) = Cli::try_parse_from(argv).expect("valid arguments").command else {
            panic!("{args:?} is a bench command");
        };
        b.resolve().expect("a valid plan")
    }

    fn run_ok(args: &[&str], n: u64) -> Comparison {
        let p = plan(args);
        let c = compare(&p, n, &Progress::hidden());
        let rec = Record::new(&p, n, &c);
        assert!(rec.checks_ok, "{args:?}: {:?}", rec.failures());
        assert!(c.lessor.ops > 0 && c.baseline.ops > 0, "{args:?}");
        assert_eq!(c.floor.is_some(), p.scenario.has_floor(), "{args:?}");
        c
    }

    #[test]
    fn grant_counts_match_the_engine_on_every_target() {
        let c = run_ok(&["grant", "--threads", "2", "--duration", "0.05"], 1000);
        for o in [&c.lessor, &c.baseline, c.floor.as_ref().unwrap()] {
            let check = &o.checks[0];
            assert_eq!(check.observed, 1000 * o.rounds + o.ops - o.errors);
            assert!(o.latency.len() > 0);
        }
    }

    #[test]
    fn map_scenarios_hold_their_checks() {
        for s in ["renew", "revoke", "attach"] {
            let args = [
                s,
                "--threads",
                "2",
                "--duration",
                "0.05",
                "--keys-per-lease",
                "2",
            ];
            run_ok(&args, 1000);
        }
    }

    #[test]
    fn promote_and_mixed_hold_their_checks() {
        run_ok(&["promote", "--threads", "2", "--duration", "0.05"], 1500);
        let c = run_ok(
            &[
                "mixed",
                "--threads",
                "2",
                "--duration",
                "0.2",
                "--ttl",
                "90ms",
                "--churn",
                "0.5",
            ],
            500,
        );
        assert!(c.lessor.offered_ops_per_sec.unwrap() > 0.0);
        assert!(c.lessor.behind.as_ref().unwrap().len() > 0);
    }

    #[test]
    fn lazy_heap_grows_with_renewals() {
        let c = run_ok(
            &[
                "renew",
                "--threads",
                "1",
                "--duration",
                "0.05",
                "--baseline-heap",
                "lazy",
            ],
            100,
        );
        let entries = c.baseline.queue_entries.unwrap();
        assert!(entries > 100, "{entries} entries for 100 leases");
    }
}
