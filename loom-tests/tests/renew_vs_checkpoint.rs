//! Renew racing a checkpoint of the same lease: the clearing of a checkpoint by a renew.
//!
//! Protects: a checkpoint is in force (the state word's bit) exactly when one is recorded
//! (the value the log holds), whatever the interleaving. The renew's swap clears the bit
//! without the stripe; the renew that cleared it then takes the stripe and clears the value
//! (and, with a log, logs the clearing), unless a checkpoint set the bit again in between: that
//! one came after the renew and stays. So the outcome is one of the two orders, never a
//! checkpoint in force with nothing recorded or the reverse (`check_invariants`).
//!
//! These models run without a log (the log's writer is a real thread, which loom cannot
//! model); the steps, the stripe and the re-check are the same with one, and
//! `tests/it/durability.rs` races renewals with checkpoint passes on a real log.

use lessor::{Lessor, Remaining};
use lessor_loom_tests::{assert_consistent, id, lessor, model, ms, thread};

/// What a promote gives the lease now: its checkpoint in force, else its TTL.
fn in_force(l: &Lessor) -> Remaining {
    l.demote();
    l.promote(ms(0));
    l.lookup(id(1)).expect("the lease is live").remaining()
}

/// A lease checkpointed at 5 ms is renewed while another thread checkpoints it at 7 ms:
/// either the renew came last (no checkpoint, the full 100 ms) or the checkpoint did (7 ms).
#[test]
fn renew_racing_a_checkpoint_is_one_order_or_the_other() {
    model(|| {
        let (_clock, l) = lessor(1);
        let lease = id(1);
        l.grant(lease, ms(100)).unwrap();
        l.checkpoint(lease, ms(5)).unwrap();

        let checkpointer = {
            let l = l.clone();
            thread::spawn(move || l.checkpoint(lease, ms(7)))
        };
        assert_eq!(l.renew(lease).unwrap(), ms(100));
        checkpointer.join().unwrap().unwrap();

        assert_consistent(&l);
        let left = in_force(&l);
        assert!(
            left == Remaining::Left(ms(100)) || left == Remaining::Left(ms(7)),
            "after a renew and a checkpoint: {left:?} in force"
        );
    });
}

/// A checkpoint taken once the renew's new deadline shows (the renew may still be clearing
/// the old checkpoint) is newer than the renew, so it stays in force: the renew's clearing
/// re-checks the bit under the stripe and leaves a checkpoint set after its swap alone.
#[test]
fn a_checkpoint_after_a_renew_shows_stays() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(1);
        l.grant(lease, ms(100)).unwrap();
        l.checkpoint(lease, ms(5)).unwrap();
        clock.advance(ms(10)); // 90 ms left; a renew makes it 100 again

        let checkpointer = {
            let l = l.clone();
            thread::spawn(move || {
                while l.lookup(lease).unwrap().remaining() != Remaining::Left(ms(100)) {
                    thread::yield_now();
                }
                l.checkpoint(lease, ms(7))
            })
        };
        assert_eq!(l.renew(lease).unwrap(), ms(100));
        checkpointer.join().unwrap().unwrap();

        assert_consistent(&l);
        assert_eq!(in_force(&l), Remaining::Left(ms(7)));
    });
}

/// Two renewals of a checkpointed lease: only one of them finds the bit, and between them
/// they clear the checkpoint once and for all.
#[test]
fn two_renewals_clear_a_checkpoint_once() {
    model(|| {
        let (_clock, l) = lessor(1);
        let lease = id(1);
        l.grant(lease, ms(100)).unwrap();
        l.checkpoint(lease, ms(5)).unwrap();

        let other = {
            let l = l.clone();
            thread::spawn(move || l.renew(lease))
        };
        assert_eq!(l.renew(lease).unwrap(), ms(100));
        assert_eq!(other.join().unwrap().unwrap(), ms(100));

        assert_consistent(&l);
        assert_eq!(in_force(&l), Remaining::Left(ms(100)));
    });
}
