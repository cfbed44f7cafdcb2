//! The real `etcdctl` (3.4) against the server, checking its output text. Skipped with a note
//! when `etcdctl` is not installed, unless `CI=true`, where that is a failure.

use std::process::Output;

use crate::common::{config, start, PATIENCE};

/// Whether `etcdctl` can be run; `false` (with a note) means skip the test.
fn etcdctl_available() -> bool {
    let found = std::process::Command::new("etcdctl")
        .arg("version")
        .env("ETCDCTL_API", "3")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcdctl is not on PATH (CI=true needs it: install etcd-client 3.4)"
        );
        eprintln!("note: etcdctl is not on PATH; skipping the etcdctl test");
    }
    found
}

/// Runs `etcdctl --endpoints=<addr> <args>` and returns its output.
async fn etcdctl(addr: std::net::SocketAddr, args: &[&str]) -> Output {
    let run = tokio::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .args(["--dial-timeout=20s", "--command-timeout=50s"])
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("etcdctl finishes within the deadline")
        .expect("etcdctl runs")
}

/// Runs a command that must succeed; returns its stdout, trimmed.
async fn ok(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = etcdctl(addr, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lease_put_get_del() {
    if !etcdctl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.addr;

    let granted = ok(addr, &["lease", "grant", "60"]).await;
    let hex = granted
        .strip_prefix("lease ")
        .and_then(|rest| rest.strip_suffix(" granted with TTL(60s)"))
        .unwrap_or_else(|| panic!("unexpected grant output: {granted}"))
        .to_owned();
    assert!(
        i64::from_str_radix(&hex, 16).is_ok_and(|id| id > 0),
        "{hex}"
    );

    let kept = ok(addr, &["lease", "keep-alive", "--once", &hex]).await;
    assert_eq!(kept, format!("lease {hex} keepalived with TTL(60)"));

    let lease_flag = format!("--lease={hex}");
    assert_eq!(ok(addr, &["put", &lease_flag, "k", "v"]).await, "OK");
    assert_eq!(ok(addr, &["put", &lease_flag, "k2", "v2"]).await, "OK");

    let ttl = ok(addr, &["lease", "timetolive", "--keys", &hex]).await;
    let prefix = format!("lease {hex} granted with TTL(60s), remaining(");
    let remaining = ttl
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("s), attached keys([k k2])"))
        .unwrap_or_else(|| panic!("unexpected timetolive output: {ttl}"));
    let remaining: i64 = remaining.parse().expect("remaining is a number");
    assert!((1..=60).contains(&remaining), "{remaining}");

    let listed = ok(addr, &["lease", "list"]).await;
    assert_eq!(listed, format!("found 1 leases\n{hex}"));

    assert_eq!(ok(addr, &["get", "k"]).await, "k\nv");
    assert_eq!(ok(addr, &["del", "k"]).await, "1");
    assert_eq!(ok(addr, &["get", "k"]).await, "");

    assert_eq!(
        ok(addr, &["lease", "revoke", &hex]).await,
        format!("lease {hex} revoked")
    );
    assert_eq!(ok(addr, &["get", "k2"]).await, "", "revoke deleted the key");
    assert_eq!(
        ok(addr, &["lease", "timetolive", &hex]).await,
        format!("lease {hex} already expired")
    );
    let again = etcdctl(addr, &["lease", "revoke", &hex]).await;
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("etcdserver: requested lease not found"),
        "{stderr}"
    );

    let status = ok(addr, &["endpoint", "status"]).await;
    assert!(status.contains(", 3.4.0, "), "{status}");
    let members = ok(addr, &["member", "list"]).await;
    assert!(members.contains(", started, default, "), "{members}");
    server.stop().await;
}
