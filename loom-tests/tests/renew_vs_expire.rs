//! Renew racing expiry on one lease: the deadline compare-and-swap.
//!
//! Protects: an expired lease is never brought back, and a renewed lease is never delivered
//! at its old deadline. Renew moves the state word later by CAS only if it is not `EXPIRED`
//! and its deadline has not passed; the worker marks it `EXPIRED` by CAS only if its deadline
//! has passed. Exactly one of the two wins.

use lessor::Error;
use lessor_loom_tests::{
    drain_expired, expire, id, lessor, model, model_with_preemptions, ms, thread,
};

/// The clock passes the deadline and the worker runs, while another thread renews (having
/// possibly read the clock before it moved).
///
/// The lost-update interleaving needs three preemptions, so this model asks for at least 3:
/// renew reads the clock (before it moves) | the worker thread advances it and drains its
/// intake under the shard's write lock | renew takes the read lock and loads the state word |
/// the worker marks it expired and finishes | renew writes its new deadline.
#[test]
fn renew_racing_expiry_is_one_or_the_other() {
    model_with_preemptions(3, || {
        let (clock, l) = lessor(1);
        let lease = id(1);
        l.grant(lease, ms(10)).unwrap();
        expire(&l); // filed in the wheel
        clock.advance(ms(5));

        let worker = {
            let (l, clock) = (l.clone(), clock.clone());
            thread::spawn(move || {
                clock.advance(ms(5)); // now == the old deadline
                expire(&l)
            })
        };
        let renewed = l.renew(lease);
        let delivered_now = worker.join().unwrap();
        let delivered = drain_expired(&l);

        match renewed {
            Ok(ttl) => {
                assert_eq!(ttl, ms(10));
                assert_eq!(delivered_now, 0, "renewed, yet expired at the old deadline");
                assert!(
                    delivered.is_empty(),
                    "renewed, yet delivered: {delivered:?}"
                );
                // Renewed at t=5: the new deadline is 15, and it fires there, once.
                clock.advance(ms(4));
                assert_eq!(expire(&l), 0);
                clock.advance(ms(1));
                assert_eq!(expire(&l), 1);
                assert_eq!(drain_expired(&l), [lease]);
            }
            Err(Error::LeaseExpired { id }) => {
                assert_eq!(id, lease);
                assert_eq!(delivered_now, 1, "renew refused, yet not delivered");
                assert_eq!(delivered, [lease]);
            }
            Err(e) => panic!("renew: expected Ok or LeaseExpired, got {e:?}"),
        }
        // Never delivered again (the retry interval is an hour), never renewable again.
        clock.advance(ms(100));
        assert_eq!(expire(&l), 0);
        assert!(drain_expired(&l).is_empty());
        assert!(matches!(l.renew(lease), Err(Error::LeaseExpired { .. })));
        assert_eq!(l.expiry_tracked(), 1, "the expired lease awaits redelivery");
    });
}

/// Two renewals racing the worker at the deadline: whatever wins, the lease is delivered at
/// most once and a successful renew always leaves a later deadline behind.
#[test]
fn two_renewals_racing_expiry() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(-7);
        l.grant(lease, ms(4)).unwrap();
        expire(&l);
        clock.advance(ms(3));

        let a = {
            let l = l.clone();
            thread::spawn(move || l.renew(lease))
        };
        let b = {
            let l = l.clone();
            thread::spawn(move || l.renew(lease))
        };
        clock.advance(ms(1)); // now == the old deadline
        let delivered_now = expire(&l);
        let results = [a.join().unwrap(), b.join().unwrap()];

        let renewed = results
            .iter()
            .map(|r| match r {
                Ok(ttl) => {
                    assert_eq!(*ttl, ms(4));
                    true
                }
                Err(Error::LeaseExpired { .. }) => false,
                Err(e) => panic!("renew: expected Ok or LeaseExpired, got {e:?}"),
            })
            .filter(|ok| *ok)
            .count();
        if renewed > 0 {
            assert_eq!(delivered_now, 0, "renewed, yet expired at the old deadline");
        } else {
            assert_eq!(delivered_now, 1);
        }
        clock.advance(ms(10));
        let later = expire(&l);
        assert_eq!(delivered_now + later, 1, "delivered exactly once in all");
        assert_eq!(drain_expired(&l), [lease]);
    });
}
