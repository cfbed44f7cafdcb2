//! The `lessor bench` binary, run as a user runs it: its numbers are sane (ops counted equal
//! the ops the engine shows, lateness never negative), its JSON schema is stable, and bad
//! arguments fail clearly with exit code 2. No test asserts a timing. The grpc tests start
//! `lessor serve` on a free port and stop it when they end.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Num,
    Str,
    Bool,
    Obj,
    /// A number, or null when the scenario has no such figure.
    NumOrNull,
    /// A string, or null when the scenario has no such field.
    StrOrNull,
    /// An object, or null (the floor's details).
    ObjOrNull,
}

/// Every top-level field of schema 1 and its type.
const FIELDS: &[(&str, Ty)] = &[
    ("schema", Ty::Num),
    ("scenario", Ty::Str),
    ("leases", Ty::Num),
    ("threads", Ty::Num),
    ("duration_secs", Ty::Num),
    ("seed", Ty::Num),
    ("ttl", Ty::Str),
    ("keys_per_lease", Ty::Num),
    ("baseline_heap", Ty::Str),
    ("ops", Ty::Num),
    ("ops_per_sec", Ty::Num),
    ("p50_ns", Ty::Num),
    ("p99_ns", Ty::Num),
    ("p999_ns", Ty::Num),
    ("baseline_ops_per_sec", Ty::NumOrNull),
    ("ratio_vs_baseline", Ty::NumOrNull),
    ("floor_ops_per_sec", Ty::NumOrNull),
    ("cost_vs_floor", Ty::NumOrNull),
    ("bytes_per_lease", Ty::NumOrNull),
    ("baseline_bytes_per_lease", Ty::NumOrNull),
    ("floor_bytes_per_lease", Ty::NumOrNull),
    ("lateness_p99_ms", Ty::NumOrNull),
    ("lateness_max_ms", Ty::NumOrNull),
    ("baseline_lateness_p99_ms", Ty::NumOrNull),
    ("baseline_lateness_max_ms", Ty::NumOrNull),
    ("delivered", Ty::NumOrNull),
    ("baseline_delivered", Ty::NumOrNull),
    ("checks_ok", Ty::Bool),
    ("lessor", Ty::Obj),
    ("baseline", Ty::ObjOrNull),
    ("floor", Ty::ObjOrNull),
    ("fsync", Ty::StrOrNull),
    ("fsyncs", Ty::NumOrNull),
    ("replay_from", Ty::StrOrNull),
    ("replay_records", Ty::NumOrNull),
    ("log_bytes", Ty::NumOrNull),
    ("endpoint", Ty::StrOrNull),
    ("clients", Ty::NumOrNull),
    ("connections", Ty::NumOrNull),
    ("op", Ty::StrOrNull),
];

/// The fields that only the in-process comparisons fill: null for recovery, durable-grant and
/// grpc, which have no baseline and no floor.
const NO_BASELINE: &[&str] = &[
    "baseline_ops_per_sec",
    "ratio_vs_baseline",
    "baseline_bytes_per_lease",
    "baseline",
    "floor_ops_per_sec",
    "floor",
];

/// Every field of a per-target detail object.
const DETAIL_FIELDS: &[(&str, Ty)] = &[
    ("ops", Ty::Num),
    ("errors", Ty::Num),
    ("elapsed_secs", Ty::Num),
    ("rounds", Ty::Num),
    ("ops_per_sec", Ty::Num),
    ("samples", Ty::Num),
    ("p50_ns", Ty::NumOrNull),
    ("p99_ns", Ty::NumOrNull),
    ("p999_ns", Ty::NumOrNull),
    ("max_ns", Ty::NumOrNull),
    ("bytes_per_lease", Ty::Num),
    ("lateness_p50_ms", Ty::NumOrNull),
    ("lateness_p99_ms", Ty::NumOrNull),
    ("lateness_max_ms", Ty::NumOrNull),
    ("delivered", Ty::NumOrNull),
    ("early", Ty::Num),
    ("early_max_ms", Ty::Num),
    ("lost", Ty::NumOrNull),
    ("behind_p99_ms", Ty::NumOrNull),
    ("behind_max_ms", Ty::NumOrNull),
    ("offered_ops_per_sec", Ty::NumOrNull),
    ("followup_p50_ms", Ty::NumOrNull),
    ("queue_entries", Ty::NumOrNull),
    ("checks", Ty::Obj),
];

fn lessor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lessor"))
        .args(args)
        .output()
        .expect("run the lessor binary")
}

fn has_type(v: &Value, ty: Ty) -> bool {
    match ty {
        Ty::Num => v.is_number(),
        Ty::Str => v.is_string(),
        Ty::Bool => v.is_boolean(),
        Ty::Obj => v.is_object() || v.is_array(),
        Ty::NumOrNull => v.is_number() || v.is_null(),
        Ty::StrOrNull => v.is_string() || v.is_null(),
        Ty::ObjOrNull => v.is_object() || v.is_null(),
    }
}

fn check_fields(obj: &Value, fields: &[(&str, Ty)], what: &str) {
    for (name, ty) in fields {
        let v = obj
            .get(name)
            .unwrap_or_else(|| panic!("{what}: field `{name}` missing in {obj}"));
        assert!(
            has_type(v, *ty),
            "{what}: `{name}` should be {ty:?}, is {v}"
        );
    }
}

/// Runs `lessor bench ARGS --json`, checks the exit code and the schema of every line, and
/// returns the parsed lines.
fn bench_json(args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["bench"];
    argv.extend_from_slice(args);
    argv.push("--json");
    let out = lessor(&argv);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{argv:?}: {:?}\n{stderr}", out.status);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for rec in &lines {
        check_fields(rec, FIELDS, "record");
        assert_eq!(rec["schema"], 1);
        assert_eq!(rec["checks_ok"], true, "{rec}");
        for target in ["lessor", "baseline", "floor"] {
            if rec[target].is_null() {
                continue;
            }
            check_fields(&rec[target], DETAIL_FIELDS, target);
            for c in rec[target]["checks"].as_array().expect("checks") {
                assert_eq!(c["expected"], c["observed"], "{target}: {c}");
                assert_eq!(c["ok"], true);
            }
        }
        // Latency percentiles are ordered.
        let p = |k: &str| rec[k].as_u64().unwrap();
        assert!(
            p("p50_ns") <= p("p99_ns") && p("p99_ns") <= p("p999_ns"),
            "{rec}"
        );
    }
    lines
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
fn grant_counts_equal_what_the_engine_holds() {
    let lines = bench_json(&["grant", "--quick", "--leases", "2000", "--duration", "0.1"]);
    assert_eq!(lines.len(), 1);
    let rec = &lines[0];
    assert_eq!(rec["scenario"], "grant");
    assert_eq!(rec["leases"], 2000);
    assert!(num(&rec["floor_ops_per_sec"]) > 0.0);
    assert_eq!(rec["lateness_p99_ms"], Value::Null);
    for target in ["lessor", "baseline", "floor"] {
        let d = &rec[target];
        let (ops, errors, rounds) = (num(&d["ops"]), num(&d["errors"]), num(&d["rounds"]));
        assert!(ops > 0.0, "{target}");
        // The engine holds N leases plus every grant counted, in every round.
        let check = &d["checks"][0];
        assert_eq!(
            num(&check["observed"]),
            2000.0 * rounds + ops - errors,
            "{target}"
        );
        assert!(num(&d["bytes_per_lease"]) > 0.0, "{target}");
    }
    assert_eq!(rec["ops"], rec["lessor"]["ops"]);
}

#[test]
fn map_scenarios_report_a_floor_and_hold_their_checks() {
    for s in ["renew", "revoke", "attach"] {
        let rec = &bench_json(&[s, "--quick", "--duration", "0.1", "--keys-per-lease", "2"])[0];
        assert_eq!(rec["scenario"], s);
        assert!(num(&rec["floor_ops_per_sec"]) > 0.0, "{s}");
        assert!(num(&rec["cost_vs_floor"]) > 0.0, "{s}");
        assert!(num(&rec["ratio_vs_baseline"]) > 0.0, "{s}");
    }
}

#[test]
fn engine_scenarios_have_no_floor() {
    for s in ["mixed", "promote"] {
        let rec = &bench_json(&[s, "--quick", "--duration", "0.15"])[0];
        assert_eq!(rec["floor"], Value::Null, "{s}");
        assert_eq!(rec["floor_ops_per_sec"], Value::Null, "{s}");
        assert_eq!(rec["lateness_max_ms"], Value::Null, "{s}");
    }
}

/// Lateness is delivery time minus a deadline the engine cannot beat, so it is never negative;
/// an engine that delivers a lease before its deadline is caught, counted apart (`early`,
/// `early_max_ms`) and fails the run with exit code 1 and a line saying so. (lessor's coarse
/// clock can make that happen on a loaded machine; the harness must report it either way.)
#[test]
fn expiry_lateness_is_never_negative_and_early_deliveries_are_caught() {
    let out = lessor(&[
        "bench",
        "expiry",
        "--quick",
        "--leases",
        "1000",
        "--ttl",
        "uniform:100ms..300ms",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rec: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    check_fields(&rec, FIELDS, "record");
    for key in [
        "lateness_p99_ms",
        "lateness_max_ms",
        "baseline_lateness_p99_ms",
        "baseline_lateness_max_ms",
    ] {
        assert!(num(&rec[key]) >= 0.0, "{key}: {rec}");
    }
    assert!(num(&rec["lateness_p99_ms"]) <= num(&rec["lateness_max_ms"]));
    // lessor delivers every lease; etcd's design at most 500 per 500 ms scan.
    assert_eq!(rec["delivered"], 1000);
    assert!(num(&rec["baseline_delivered"]) <= 1000.0);
    let mut early_total = 0.0;
    for target in ["lessor", "baseline"] {
        let d = &rec[target];
        check_fields(d, DETAIL_FIELDS, target);
        let (early, by) = (num(&d["early"]), num(&d["early_max_ms"]));
        assert_eq!(early > 0.0, by > 0.0, "{target}: {d}");
        if early > 0.0 {
            assert!(
                stderr.contains("delivered before their deadline"),
                "{stderr}"
            );
        }
        for c in d["checks"].as_array().expect("checks") {
            assert_eq!(c["expected"], c["observed"], "{target}: {c}");
        }
        early_total += early;
    }
    // The exit code follows the checks: 0 when nothing came early, 1 (check failed) if any did.
    let want = if early_total > 0.0 { 1 } else { 0 };
    assert_eq!(out.status.code(), Some(want), "{stderr}");
    assert_eq!(rec["checks_ok"], early_total == 0.0);
}

#[test]
fn a_sweep_prints_one_line_per_size_and_draws_the_plot() {
    let svg: PathBuf = [env!("CARGO_TARGET_TMPDIR"), "lessor-sweep.svg"]
        .iter()
        .collect();
    let _ = std::fs::remove_file(&svg);
    let path = svg.to_str().expect("utf-8 path");
    let lines = bench_json(&[
        "renew",
        "--sizes",
        "500,1e3",
        "--duration",
        "0.05",
        "--plot",
        path,
    ]);
    let sizes: Vec<u64> = lines
        .iter()
        .map(|r| r["leases"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [500, 1000]);
    let text = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert!(text.contains("<polyline"));
}

#[test]
fn the_lazy_baseline_heap_grows_with_renewals() {
    let rec = &bench_json(&[
        "renew",
        "--leases",
        "200",
        "--threads",
        "1",
        "--duration",
        "0.05",
        "--baseline-heap",
        "lazy",
    ])[0];
    assert_eq!(rec["baseline_heap"], "lazy");
    assert!(num(&rec["baseline"]["queue_entries"]) > 200.0, "{rec}");
}

#[test]
fn the_table_names_every_target_and_the_checks() {
    let out = lessor(&["bench", "renew", "--quick", "--duration", "0.05"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "lessor",
        "etcd-style",
        "floor",
        "ops/s",
        "p999",
        "checks: all",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
}

#[test]
fn bad_arguments_fail_clearly_with_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "nosuch"], "invalid value 'nosuch'"),
        (&["bench"], "SCENARIO"),
        (&["bench", "renew", "--leases", "0"], "must be from 1"),
        (&["bench", "renew", "--leases", "many"], "is not a count"),
        (&["bench", "renew", "--threads", "0"], "--threads"),
        (
            &["bench", "renew", "--ttl", "normal:5s"],
            "unknown distribution",
        ),
        (
            &["bench", "renew", "--ttl", "uniform:9s..1s"],
            "low end is above",
        ),
        (&["bench", "renew", "--duration", "0"], "from 0.01 to 3600"),
        (
            &["bench", "renew", "--leases", "10", "--sweep"],
            "cannot be combined",
        ),
        (&["bench", "mixed", "--ttl", "10ms"], "at least 30ms"),
        (
            &["bench", "renew", "--plot", "/no/such/dir/x.svg"],
            "does not exist",
        ),
        (&["bench", "renew", "--churn", "2"], "from 0 to 1"),
        (&["bench", "renew", "--tick", "5s"], "1ms to 1s"),
    ];
    for (args, want) in cases {
        let out = lessor(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "{args:?}: `{want}` not in:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

/// The checks of a one-target record, with the figure each compared.
fn checks(rec: &Value) -> Vec<(String, f64, f64)> {
    rec["lessor"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            let what = c["what"].as_str().expect("what").to_string();
            (what, num(&c["expected"]), num(&c["observed"]))
        })
        .collect()
}

fn has_no_baseline(rec: &Value) {
    for key in NO_BASELINE {
        assert_eq!(rec[key], Value::Null, "{key}: {rec}");
    }
}

#[test]
fn recovery_rebuilds_n_leases_from_the_segments_then_a_snapshot() {
    let args = [
        "recovery",
        "--quick",
        "--leases",
        "3000",
        "--keys",
        "2",
        "--duration",
        "0.05",
    ];
    let lines = bench_json(&args);
    let from: Vec<&str> = lines
        .iter()
        .map(|r| r["replay_from"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["segments", "snapshot"]);
    for rec in &lines {
        has_no_baseline(rec);
        assert_eq!(
            (rec["leases"].as_u64(), rec["fsync"].as_str()),
            (Some(3000), Some("never"))
        );
        let rounds = num(&rec["lessor"]["rounds"]);
        assert_eq!(
            num(&rec["ops"]),
            3000.0 * rounds,
            "ops are leases rebuilt: {rec}"
        );
        let checks = checks(rec);
        let rebuilt = checks
            .iter()
            .find(|c| c.0.starts_with("leases rebuilt"))
            .unwrap();
        assert_eq!(
            rebuilt.2,
            3000.0 * rounds,
            "recovery().leases = N on every reopen"
        );
        let keys = checks
            .iter()
            .find(|c| c.0.starts_with("keys rebuilt"))
            .unwrap();
        assert_eq!(keys.2, 6000.0 * rounds);
        assert!(num(&rec["replay_records"]) >= 3000.0 && num(&rec["log_bytes"]) > 0.0);
        assert!(num(&rec["bytes_per_lease"]) > 0.0);
        assert_eq!(rec["fsyncs"], Value::Null);
    }
}

#[test]
fn durable_grant_runs_each_policy_at_each_thread_count() {
    let args = [
        "durable-grant",
        "--quick",
        "--threads",
        "1,2",
        "--fsync",
        "always,never",
        "--duration",
        "0.05",
    ];
    let lines = bench_json(&args);
    let runs: Vec<(&str, u64)> = lines
        .iter()
        .map(|r| (r["fsync"].as_str().unwrap(), r["threads"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        runs,
        [("always", 1), ("always", 2), ("never", 1), ("never", 2)]
    );
    for rec in &lines {
        has_no_baseline(rec);
        let ops = num(&rec["ops"]);
        assert!(ops > 0.0 && num(&rec["lessor"]["errors"]) == 0.0, "{rec}");
        assert_eq!(num(&rec["lessor"]["samples"]), ops, "every grant is timed");
        // Every grant counted is in the engine, and in the log when it is reopened.
        let after = checks(rec);
        let reopened = after
            .iter()
            .find(|c| c.0.starts_with("leases rebuilt after"))
            .unwrap();
        assert_eq!(reopened.2, 1000.0 + ops, "{rec}");
    }
}

/// `lessor serve` on a free port, killed when dropped.
struct Served(Child, String);

impl Served {
    fn start() -> Served {
        let port = || {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("its address").port()
        };
        let (client, peer) = (port(), port());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{client}"));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new(env!("CARGO_BIN_EXE_lessor"))
            .args(["serve", "--fsync", "never", "--data-dir"])
            .arg(&dir)
            .arg("--listen-client-urls")
            .arg(format!("http://127.0.0.1:{client}"))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lessor serve");
        let served = Served(child, format!("http://127.0.0.1:{client}"));
        for _ in 0..1200 {
            if TcpStream::connect(("127.0.0.1", client)).is_ok() {
                return served;
            }
            // Waiting on another process, which offers nothing to block on but its port.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lessor serve did not listen on port {client} within 60 s");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn grpc_loads_a_server_with_every_op_at_every_concurrency() {
    let server = Served::start();
    let args = [
        "grpc",
        "--quick",
        "--endpoint",
        &server.1,
        "--clients",
        "1,3",
        "--duration",
        "0.1",
        "--leases",
        "50",
    ];
    let lines = bench_json(&args);
    let runs: Vec<(&str, u64)> = lines
        .iter()
        .map(|r| (r["op"].as_str().unwrap(), r["clients"].as_u64().unwrap()))
        .collect();
    let want = [
        ("grant", 1),
        ("grant", 3),
        ("keep-alive", 1),
        ("keep-alive", 3),
    ];
    assert_eq!(runs[..4], want);
    assert_eq!(runs[4..], [("revoke", 1), ("revoke", 3)]);
    for rec in &lines {
        has_no_baseline(rec);
        assert_eq!(rec["endpoint"].as_str(), Some(server.1.as_str()));
        assert_eq!(rec["bytes_per_lease"], Value::Null);
        let ops = num(&rec["ops"]);
        assert!(ops > 0.0 && num(&rec["lessor"]["errors"]) == 0.0, "{rec}");
        assert_eq!(num(&rec["lessor"]["samples"]), ops, "every op is timed");
        if rec["op"] == "grant" {
            // The server lists exactly the leases the clients counted as granted.
            let listed = checks(rec);
            let gained = listed
                .iter()
                .find(|c| c.0.contains("before + grants"))
                .unwrap();
            assert_eq!(gained.1, gained.2);
        }
    }
}

#[test]
fn grpc_names_an_endpoint_that_does_not_answer_and_exits_1() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = lessor(&["bench", "grpc", "--quick", "--endpoint", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {url}")),
        "{stderr}"
    );
}
