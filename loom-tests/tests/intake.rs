//! The intake hand-off: grant pushes a filing into its shard's intake under the shard's
//! exclusive lock; the worker swaps the intake out under the same lock.
//!
//! Protects: every lease reaches the wheel exactly once, whether its grant lands before or
//! after the worker's swap, and so expires exactly once.

use lessor_loom_tests::{drain_expired, expire, id, lessor, model, ms, thread};

#[test]
fn grant_racing_the_worker_is_tracked_and_expires_exactly_once() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(3);
        let granter = {
            let l = l.clone();
            thread::spawn(move || l.grant(lease, ms(2)))
        };
        let first = expire(&l);
        granter.join().unwrap().unwrap();
        assert_eq!(first, 0);

        expire(&l);
        assert_eq!(l.expiry_tracked(), 1, "filed exactly once");
        clock.advance(ms(1));
        assert_eq!(expire(&l), 0);
        clock.advance(ms(1));
        assert_eq!(expire(&l), 1);
        assert_eq!(drain_expired(&l), [lease]);
        clock.advance(ms(50));
        assert_eq!(expire(&l), 0, "delivered twice");
        assert_eq!(l.expiry_tracked(), 1);
    });
}

/// Two grants (one per thread) racing the worker while the clock moves: each is filed once
/// and expires once, at its own deadline.
#[test]
fn two_grants_racing_the_worker_and_the_clock() {
    model(|| {
        let (clock, l) = lessor(1);
        let (a, b) = (id(1), id(2));
        let ga = {
            let l = l.clone();
            thread::spawn(move || l.grant(a, ms(2)))
        };
        let gb = {
            let l = l.clone();
            thread::spawn(move || l.grant(b, ms(2)))
        };
        clock.advance(ms(1));
        let first = expire(&l);
        ga.join().unwrap().unwrap();
        gb.join().unwrap().unwrap();
        assert_eq!(first, 0, "nothing is due before 2 ms");

        expire(&l);
        assert_eq!(l.expiry_tracked(), 2);
        clock.advance(ms(2)); // now 3: both deadlines (2 or 3) have passed
        assert_eq!(expire(&l), 2);
        let mut got = drain_expired(&l);
        got.sort();
        assert_eq!(got, [a, b]);
        clock.advance(ms(50));
        assert_eq!(expire(&l), 0);
    });
}
