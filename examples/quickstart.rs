//! The quick start: grant session leases, attach keys, keep some alive, let the rest expire,
//! and print what happens. Runs on the real clock in about two seconds.
//!
//! `cargo run --release --example quickstart`

use std::time::Duration;

use lessor::{ExpiryMode, LeaseId, Lessor, TxnDelete};

/// Stands in for a key-value store: prints each key a revoke deletes.
struct PrintingTxn;

impl TxnDelete for PrintingTxn {
    fn delete_range(&mut self, key: &[u8], _end: Option<&[u8]>) -> (i64, i64) {
        println!("    delete {}", String::from_utf8_lossy(key));
        (1, 0)
    }
    fn end(self: Box<Self>) {}
}

fn main() -> lessor::Result<()> {
    let lessor = Lessor::builder()
        .min_ttl(Duration::from_millis(100))
        .tick(Duration::from_millis(10))
        .expiry_mode(ExpiryMode::Revoke)
        .range_deleter(|| Box::new(PrintingTxn) as Box<dyn TxnDelete>)
        .build()?;

    println!("granting 5 session leases with a TTL of 500 ms");
    for n in 1..=5 {
        let id = LeaseId::new(n);
        lessor.grant(id, Duration::from_millis(500))?;
        lessor.attach(
            id,
            [format!("session/{n}/user"), format!("session/{n}/cart")],
        )?;
    }
    let expired = lessor.expired_leases();

    println!("keeping sessions 1 and 2 alive for 1.5 s; 3, 4 and 5 go quiet");
    for _ in 0..10 {
        for n in [1, 2] {
            lessor.renew(LeaseId::new(n))?;
        }
        // Waiting on the expired channel doubles as the 150 ms pause between renewals.
        if let Ok(batch) = expired.recv_timeout(Duration::from_millis(150)) {
            for lease in batch {
                println!(
                    "  lease {} expired ({:?} past its deadline) and was revoked with keys {:?}",
                    lease.id(),
                    lease.remaining(),
                    lease
                        .keys()
                        .iter()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    println!("still alive:");
    for lease in lessor.leases() {
        println!(
            "  lease {} (ttl {:?}, {:?} left)",
            lease.id(),
            lease.ttl(),
            lease.remaining()
        );
    }
    println!(
        "session/1/user is held by lease {}",
        lessor.get_lease("session/1/user")
    );
    lessor.revoke(LeaseId::new(1))?;
    println!(
        "after revoking lease 1, session/1/user is held by lease {}",
        lessor.get_lease("session/1/user")
    );
    lessor.stop();
    Ok(())
}
