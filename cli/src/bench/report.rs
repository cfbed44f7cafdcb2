//! What a run prints: one JSON object per run ([`Record`], stable field names) or a table.
//!
//! # The JSON schema (`schema: 1`)
//!
//! Top level, always present (numbers unless noted; `null` where the note says so):
//! `schema`, `scenario` (string), `leases`, `threads`, `duration_secs`, `seed`, `ttl` (string),
//! `keys_per_lease`, `baseline_heap` (string), `ops`, `ops_per_sec`, `p50_ns`, `p99_ns`,
//! `p999_ns`, `baseline_ops_per_sec`, `ratio_vs_baseline`, `floor_ops_per_sec` (null without a
//! floor), `cost_vs_floor` (lessor's time per op / the floor's; null without a floor),
//! `bytes_per_lease`, `baseline_bytes_per_lease`, `floor_bytes_per_lease` (null without a
//! floor), `lateness_p99_ms`, `lateness_max_ms`, `baseline_lateness_p99_ms`,
//! `baseline_lateness_max_ms`, `delivered`, `baseline_delivered` (these six null except for
//! expiry), `checks_ok` (bool), and `lessor`, `baseline`, `floor` (null without a floor): one
//! [`Detail`] object each. Fields may be added; none is renamed or removed without a new
//! `schema` number.
//!
//! recovery, durable-grant and grpc (`bench::solo`) measure one target: their `lessor` object
//! holds it (for grpc, the server at `endpoint`, whichever it is), and `baseline_ops_per_sec`,
//! `ratio_vs_baseline`, `baseline_bytes_per_lease` and `baseline` are null (the etcd-style
//! reference has no log, and grpc's comparison is between two runs), as is `bytes_per_lease`
//! for grpc (whose `lessor.bytes_per_lease` is 0: the server's memory is not in this process). Their own fields, null for every other scenario: `fsync` (string, durable-grant
//! and recovery), `fsyncs` (null: the library does not expose its fsync count yet),
//! `replay_from` ("segments" or "snapshot"), `replay_records`, `log_bytes` (recovery),
//! `endpoint` (string, the endpoints comma-separated), `clients`, `connections` and `op`
//! ("grant", "keep-alive" or "revoke") for grpc.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::Plan;
use super::outcome::{Comparison, Outcome};
use super::stats::Hist;

/// The schema number written in every record.
pub(crate) const SCHEMA: u32 = 1;

/// One run, as one JSON object.
#[derive(Debug, Serialize)]
pub(crate) struct Record {
    pub(crate) schema: u32,
    pub(crate) scenario: &'static str,
    pub(crate) leases: u64,
    pub(crate) threads: u64,
    pub(crate) duration_secs: f64,
    pub(crate) seed: u64,
    pub(crate) ttl: String,
    pub(crate) keys_per_lease: u64,
    pub(crate) baseline_heap: &'static str,
    pub(crate) ops: u64,
    pub(crate) ops_per_sec: f64,
    pub(crate) p50_ns: Option<u64>,
    pub(crate) p99_ns: Option<u64>,
    pub(crate) p999_ns: Option<u64>,
    pub(crate) baseline_ops_per_sec: Option<f64>,
    pub(crate) ratio_vs_baseline: Option<f64>,
    pub(crate) floor_ops_per_sec: Option<f64>,
    pub(crate) cost_vs_floor: Option<f64>,
    pub(crate) bytes_per_lease: Option<f64>,
    pub(crate) baseline_bytes_per_lease: Option<f64>,
    pub(crate) floor_bytes_per_lease: Option<f64>,
    pub(crate) lateness_p99_ms: Option<f64>,
    pub(crate) lateness_max_ms: Option<f64>,
    pub(crate) baseline_lateness_p99_ms: Option<f64>,
    pub(crate) baseline_lateness_max_ms: Option<f64>,
    pub(crate) delivered: Option<u64>,
    pub(crate) baseline_delivered: Option<u64>,
    pub(crate) checks_ok: bool,
    pub(crate) lessor: Detail,
    pub(crate) baseline: Option<Detail>,
    pub(crate) floor: Option<Detail>,
    #[serde(flatten)]
    pub(crate) solo: SoloFields,
}

/// The fields of recovery, durable-grant and grpc; all null for the other scenarios.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SoloFields {
    pub(crate) fsync: Option<String>,
    pub(crate) fsyncs: Option<u64>,
    pub(crate) replay_from: Option<&'static str>,
    pub(crate) replay_records: Option<u64>,
    pub(crate) log_bytes: Option<u64>,
    pub(crate) endpoint: Option<String>,
    pub(crate) clients: Option<u64>,
    pub(crate) connections: Option<u64>,
    pub(crate) op: Option<&'static str>,
}

/// One target's figures.
#[derive(Debug, Serialize)]
pub(crate) struct Detail {
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed_secs: f64,
    pub(crate) rounds: u64,
    pub(crate) ops_per_sec: f64,
    pub(crate) samples: u64,
    pub(crate) p50_ns: Option<u64>,
    pub(crate) p99_ns: Option<u64>,
    pub(crate) p999_ns: Option<u64>,
    pub(crate) max_ns: Option<u64>,
    pub(crate) bytes_per_lease: f64,
    pub(crate) lateness_p50_ms: Option<f64>,
    pub(crate) lateness_p99_ms: Option<f64>,
    pub(crate) lateness_max_ms: Option<f64>,
    pub(crate) delivered: Option<u64>,
    pub(crate) early: u64,
    pub(crate) early_max_ms: f64,
    pub(crate) lost: Option<u64>,
    pub(crate) behind_p99_ms: Option<f64>,
    pub(crate) behind_max_ms: Option<f64>,
    pub(crate) offered_ops_per_sec: Option<f64>,
    pub(crate) followup_p50_ms: Option<f64>,
    pub(crate) queue_entries: Option<u64>,
    pub(crate) checks: Vec<CheckDetail>,
}

/// One sanity check.
#[derive(Debug, Serialize)]
pub(crate) struct CheckDetail {
    pub(crate) what: &'static str,
    pub(crate) expected: u64,
    pub(crate) observed: u64,
    pub(crate) ok: bool,
}

/// `x` rounded to `digits` decimals.
fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// Nanoseconds as milliseconds, 3 decimals.
fn ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|v| round(v as f64 / 1e6, 3))
}

impl Detail {
    /// The figures of one outcome.
    pub(crate) fn of(o: &Outcome) -> Self {
        let q = |h: &Hist, p| h.quantile(p);
        let late = o.lateness.as_ref();
        let behind = o.behind.as_ref();
        Detail {
            ops: o.ops,
            errors: o.errors,
            elapsed_secs: round(o.elapsed.as_secs_f64(), 6),
            rounds: o.rounds,
            ops_per_sec: round(o.ops_per_sec(), 1),
            samples: o.latency.len(),
            p50_ns: q(&o.latency, 0.5),
            p99_ns: q(&o.latency, 0.99),
            p999_ns: q(&o.latency, 0.999),
            max_ns: o.latency.max(),
            bytes_per_lease: round(o.bytes_per_lease, 1),
            lateness_p50_ms: ms(late.and_then(|h| h.quantile(0.5))),
            lateness_p99_ms: ms(late.and_then(|h| h.quantile(0.99))),
            lateness_max_ms: ms(late.and_then(Hist::max)),
            delivered: o.delivered,
            early: o.early,
            early_max_ms: round(o.early_by.as_secs_f64() * 1e3, 3),
            lost: o.lost,
            behind_p99_ms: ms(behind.and_then(|h| h.quantile(0.99))),
            behind_max_ms: ms(behind.and_then(Hist::max)),
            offered_ops_per_sec: o.offered_ops_per_sec.map(|r| round(r, 1)),
            followup_p50_ms: ms(o.followup.as_ref().and_then(|h| h.quantile(0.5))),
            queue_entries: o.queue_entries,
            checks: o
                .checks
                .iter()
                .map(|c| CheckDetail {
                    what: c.what,
                    expected: c.expected,
                    observed: c.observed,
                    ok: c.ok(),
                })
                .collect(),
        }
    }
}

impl Record {
    /// The record of one run at `leases`.
    pub(crate) fn new(plan: &Plan, leases: u64, c: &Comparison) -> Self {
        let (l, b) = (Detail::of(&c.lessor), Detail::of(&c.baseline));
        let f = c.floor.as_ref().map(Detail::of);
        let ratio = |a: f64, b: f64| (a > 0.0 && b > 0.0).then(|| round(a / b, 4));
        let base = Record::base(plan, leases, plan.threads, l);
        let l = &base.lessor;
        Record {
            baseline_ops_per_sec: Some(b.ops_per_sec),
            ratio_vs_baseline: ratio(l.ops_per_sec, b.ops_per_sec),
            floor_ops_per_sec: f.as_ref().map(|f| f.ops_per_sec),
            cost_vs_floor: f.as_ref().and_then(|f| ratio(f.ops_per_sec, l.ops_per_sec)),
            bytes_per_lease: Some(l.bytes_per_lease),
            baseline_bytes_per_lease: Some(b.bytes_per_lease),
            floor_bytes_per_lease: f.as_ref().map(|f| f.bytes_per_lease),
            lateness_p99_ms: l.lateness_p99_ms,
            lateness_max_ms: l.lateness_max_ms,
            baseline_lateness_p99_ms: b.lateness_p99_ms,
            baseline_lateness_max_ms: b.lateness_max_ms,
            delivered: l.delivered,
            baseline_delivered: b.delivered,
            checks_ok: c.lessor.checks_ok()
                && c.baseline.checks_ok()
                && c.floor.as_ref().is_none_or(Outcome::checks_ok),
            baseline: Some(b),
            floor: f,
            ..base
        }
    }

    /// The record of a run with one target and no baseline (recovery, durable-grant, grpc):
    /// `threads` and `solo` as that run had them; `bytes_per_lease` when it could be measured.
    pub(crate) fn solo(
        plan: &Plan,
        leases: u64,
        threads: usize,
        out: &Outcome,
        bytes_per_lease: Option<f64>,
        solo: SoloFields,
    ) -> Self {
        let mut l = Detail::of(out);
        l.bytes_per_lease = bytes_per_lease.map_or(0.0, |b| round(b, 1));
        Record {
            bytes_per_lease: bytes_per_lease.map(|b| round(b, 1)),
            checks_ok: out.checks_ok(),
            solo,
            ..Record::base(plan, leases, threads, l)
        }
    }

    /// What every record has: the plan, lessor's own figures, and nothing of a baseline, a
    /// floor or expiry (each constructor fills in what its run has).
    fn base(plan: &Plan, leases: u64, threads: usize, l: Detail) -> Self {
        Record {
            schema: SCHEMA,
            scenario: plan.scenario.name(),
            leases,
            threads: threads as u64,
            duration_secs: plan.duration.as_secs_f64(),
            seed: plan.seed,
            ttl: plan.ttl.to_string(),
            keys_per_lease: plan.keys as u64,
            baseline_heap: plan.heap.name(),
            ops: l.ops,
            ops_per_sec: l.ops_per_sec,
            p50_ns: l.p50_ns,
            p99_ns: l.p99_ns,
            p999_ns: l.p999_ns,
            baseline_ops_per_sec: None,
            ratio_vs_baseline: None,
            floor_ops_per_sec: None,
            cost_vs_floor: None,
            bytes_per_lease: None,
            baseline_bytes_per_lease: None,
            floor_bytes_per_lease: None,
            lateness_p99_ms: None,
            lateness_max_ms: None,
            baseline_lateness_p99_ms: None,
            baseline_lateness_max_ms: None,
            delivered: None,
            baseline_delivered: None,
            checks_ok: true,
            lessor: l,
            baseline: None,
            floor: None,
            solo: SoloFields::default(),
        }
    }

    /// The record as one line of JSON.
    pub(crate) fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serialises")
    }

    /// Every failed check, one line each.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut lines = Vec::new();
        // grpc measures whatever server its endpoint is.
        let first = if self.solo.endpoint.is_some() {
            "server"
        } else {
            "lessor"
        };
        let targets = [
            (first, Some(&self.lessor)),
            ("etcd-style", self.baseline.as_ref()),
            ("floor", self.floor.as_ref()),
        ];
        for (name, detail) in targets {
            let Some(d) = detail else { continue };
            for c in d.checks.iter().filter(|c| !c.ok) {
                lines.push(format!(
                    "{name}: {}: expected {}, observed {}",
                    c.what, c.expected, c.observed
                ));
            }
            if d.early > 0 {
                lines.push(format!(
                    "{name}: {} leases delivered before their deadline",
                    d.early
                ));
            }
        }
        lines
    }

    /// The human-readable table.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} leases, {} thread{}, {} s per target, ttl {}, {} keys/lease, seed {}, baseline heap {}",
            self.scenario,
            self.leases,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.duration_secs,
            self.ttl,
            self.keys_per_lease,
            self.seed,
            self.baseline_heap
        );
        let kind = Kind::of(self.scenario);
        let _ = writeln!(s, "  {}", kind.header());
        let rows = [
            ("lessor", Some(&self.lessor)),
            ("etcd-style", self.baseline.as_ref()),
            ("floor", self.floor.as_ref()),
        ];
        for (name, d) in rows {
            if let Some(d) = d {
                let _ = writeln!(s, "  {}", kind.row(name, d, self.lessor.ops_per_sec));
            }
        }
        if let Some(r) = self.ratio_vs_baseline {
            let _ = write!(s, "  lessor: {r:.2}x the etcd-style throughput");
            if let Some(c) = self.cost_vs_floor {
                let _ = write!(s, "; {c:.2}x the floor's time per operation");
            }
            let _ = writeln!(s);
        }
        if let Some(offered) = self.lessor.offered_ops_per_sec {
            let _ = writeln!(s, "  offered load: {}", rate(offered));
        }
        let failures = self.failures();
        if failures.is_empty() {
            let n: usize = rows
                .iter()
                .flat_map(|(_, d)| d.map(|d| d.checks.len()))
                .sum();
            let _ = writeln!(
                s,
                "  checks: all {n} hold (ops counted = ops the engine shows)"
            );
        } else {
            for f in failures {
                let _ = writeln!(s, "  CHECK FAILED: {f}");
            }
        }
        s
    }
}

/// Which columns a scenario's table has.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ops,
    Expiry,
    Mixed,
    Promote,
}

impl Kind {
    fn of(scenario: &str) -> Self {
        match scenario {
            "expiry" => Kind::Expiry,
            "mixed" => Kind::Mixed,
            "promote" => Kind::Promote,
            _ => Kind::Ops,
        }
    }

    fn header(self) -> String {
        let common = format!("{:<11}{:>12}{:>11}", "target", "ops/s", "vs lessor");
        let rest = match self {
            Kind::Ops => format!(
                "{:>10}{:>10}{:>10}{:>13}",
                "p50", "p99", "p999", "bytes/lease"
            ),
            Kind::Expiry => format!(
                "{:>12}{:>12}{:>12}{:>11}{:>13}",
                "late p50", "late p99", "late max", "delivered", "bytes/lease"
            ),
            Kind::Mixed => format!(
                "{:>10}{:>10}{:>10}{:>8}{:>12}{:>13}",
                "p50", "p99", "p999", "lost", "behind p99", "bytes/lease"
            ),
            Kind::Promote => format!(
                "{:>13}{:>10}{:>13}{:>13}",
                "promote p50", "max", "follow-up", "bytes/lease"
            ),
        };
        format!("{common}{rest}")
    }

    fn row(self, name: &str, d: &Detail, lessor_rate: f64) -> String {
        let vs = if lessor_rate > 0.0 {
            format!("{:.2}x", d.ops_per_sec / lessor_rate)
        } else {
            "-".into()
        };
        let common = format!("{name:<11}{:>12}{vs:>11}", rate(d.ops_per_sec));
        let ns = |v: Option<u64>| v.map_or_else(|| "-".into(), duration_ns);
        let msf = |v: Option<f64>| v.map_or_else(|| "-".into(), |m| duration_ns((m * 1e6) as u64));
        let rest = match self {
            Kind::Ops => format!(
                "{:>10}{:>10}{:>10}{:>13.1}",
                ns(d.p50_ns),
                ns(d.p99_ns),
                ns(d.p999_ns),
                d.bytes_per_lease
            ),
            Kind::Expiry => format!(
                "{:>12}{:>12}{:>12}{:>11}{:>13.1}",
                msf(d.lateness_p50_ms),
                msf(d.lateness_p99_ms),
                msf(d.lateness_max_ms),
                d.delivered.map_or_else(|| "-".into(), |v| v.to_string()),
                d.bytes_per_lease
            ),
            Kind::Mixed => format!(
                "{:>10}{:>10}{:>10}{:>8}{:>12}{:>13.1}",
                ns(d.p50_ns),
                ns(d.p99_ns),
                ns(d.p999_ns),
                d.lost.map_or_else(|| "-".into(), |v| v.to_string()),
                msf(d.behind_p99_ms),
                d.bytes_per_lease
            ),
            Kind::Promote => format!(
                "{:>13}{:>10}{:>13}{:>13.1}",
                ns(d.p50_ns),
                ns(d.max_ns),
                msf(d.followup_p50_ms),
                d.bytes_per_lease
            ),
        };
        format!("{common}{rest}")
    }
}

/// A rate: `12.35 M/s`.
pub(crate) fn rate(per_sec: f64) -> String {
    if per_sec >= 1e9 {
        format!("{:.2} G/s", per_sec / 1e9)
    } else if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.1} /s")
    }
}

/// A duration in nanoseconds, in a readable unit: `85 ns`, `1.20 us`, `3.4 ms`, `1.25 s`.
pub(crate) fn duration_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.2} us", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(rate(12_345_678.0), "12.35 M/s");
        assert_eq!(rate(950.0), "950.0 /s");
        assert_eq!(duration_ns(85), "85 ns");
        assert_eq!(duration_ns(1_200), "1.20 us");
        assert_eq!(duration_ns(3_400_000), "3.4 ms");
        assert_eq!(duration_ns(1_250_000_000), "1.25 s");
        assert_eq!(round(1.23456, 2), 1.23);
    }
}
