//! Promote and demote racing grant, renew and the worker.
//!
//! Protects: a grant reads `primary` under its shard's exclusive lock and a promote or demote
//! sets the flag before visiting each shard, so every lease either saw the new flag or is
//! visited by the pass; the worker rebuilds its wheel when the epoch moves. No lease is left
//! "forever" on a primary, or with a deadline on a lessor that is not primary.

use lessor::{Error, Remaining};
use lessor_loom_tests::{builder, drain_expired, expire, id, lessor, model, ms, thread, Arc};

/// A grant on a lessor that is becoming primary, with the worker running too: the lease
/// gets a deadline either way, is tracked once, and expires once.
#[test]
fn grant_racing_promote_and_the_worker() {
    model(|| {
        let (clock, b) = builder(1);
        let l = Arc::new(b.primary(false).build().unwrap());
        let lease = id(5);
        let granter = {
            let l = l.clone();
            thread::spawn(move || l.grant(lease, ms(2)))
        };
        let worker = {
            let l = l.clone();
            thread::spawn(move || l.run_expiry_once())
        };
        l.promote(ms(1));
        granter.join().unwrap().unwrap();
        assert_eq!(worker.join().unwrap().unwrap(), 0);

        // Granted after the flag: 0 + 2; visited by the pass: 0 + 1 + 2.
        let left = l.lookup(lease).unwrap().remaining();
        assert!(
            left == Remaining::Left(ms(2)) || left == Remaining::Left(ms(3)),
            "promoted lease has {left:?}"
        );
        expire(&l);
        assert_eq!(l.expiry_tracked(), 1, "filed exactly once");
        clock.advance(ms(3));
        assert_eq!(expire(&l), 1);
        assert_eq!(drain_expired(&l), [lease]);
        clock.advance(ms(50));
        assert_eq!(expire(&l), 0);
    });
}

/// A grant on a lessor that is stepping down: the lease ends "forever" and is never
/// delivered while not primary.
#[test]
fn grant_racing_demote() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(6);
        let granter = {
            let l = l.clone();
            thread::spawn(move || l.grant(lease, ms(2)))
        };
        l.demote();
        granter.join().unwrap().unwrap();

        assert_eq!(l.lookup(lease).unwrap().remaining(), Remaining::Forever);
        clock.advance(ms(50));
        assert_eq!(expire(&l), 0);
        assert!(drain_expired(&l).is_empty());
    });
}

/// A renew racing a demote: the renew succeeds (before) or is refused with NotPrimary, and
/// the lease is "forever" afterwards either way, never given a deadline by a late renew.
#[test]
fn renew_racing_demote() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(7);
        l.grant(lease, ms(5)).unwrap();
        expire(&l);
        clock.advance(ms(1));
        let renewer = {
            let l = l.clone();
            thread::spawn(move || l.renew(lease))
        };
        l.demote();
        match renewer.join().unwrap() {
            Ok(ttl) => assert_eq!(ttl, ms(5)),
            Err(Error::NotPrimary) => {}
            Err(e) => panic!("renew: expected Ok or NotPrimary, got {e:?}"),
        }
        assert_eq!(l.lookup(lease).unwrap().remaining(), Remaining::Forever);
        clock.advance(ms(50));
        assert_eq!(expire(&l), 0);
        assert!(drain_expired(&l).is_empty());
    });
}
