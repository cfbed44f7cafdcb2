//! `stop` racing every operation.
//!
//! Protects: after `stop`, calls fail with `Error::Stopped` and nothing half-done is left:
//! each call either took full effect or none, nothing panics, and the invariants hold.

use lessor::{Error, LeaseId};
use lessor_loom_tests::{
    assert_consistent, id, lessor, model, ms, ok_or_stopped, owner_of, thread,
};

#[test]
fn stop_racing_grant_renew_attach_revoke() {
    model(|| {
        let (_clock, l) = lessor(1);
        let (old, new) = (id(1), id(2));
        l.grant(old, ms(1000)).unwrap();

        let worker = {
            let l = l.clone();
            thread::spawn(move || {
                let granted = ok_or_stopped("grant", &l.grant(new, ms(1000)));
                let renewed = ok_or_stopped("renew", &l.renew(old));
                let attached = ok_or_stopped("attach", &l.attach(old, ["k"]));
                let revoked = ok_or_stopped("revoke", &l.revoke(old));
                let expired = ok_or_stopped("run_expiry_once", &l.run_expiry_once());
                [granted, renewed, attached, revoked, expired]
            })
        };
        l.stop();
        let done = worker.join().unwrap();

        // Stopping is monotonic within a thread: once a call saw it, every later call does.
        if let Some(first_stopped) = done.iter().position(|ok| !ok) {
            assert!(done[first_stopped..].iter().all(|ok| !ok), "{done:?}");
        }
        let [granted, _renewed, attached, revoked, _expired] = done;
        assert_eq!(l.lookup(new).is_some(), granted);
        assert_eq!(l.lookup(old).is_none(), revoked);
        let want = if attached && !revoked {
            old
        } else {
            LeaseId::NONE
        };
        assert_eq!(owner_of(&l, b"k"), want);
        assert_consistent(&l);

        // After stop, everything that changes state is refused; lookups still answer.
        assert!(matches!(l.grant(id(9), ms(5)), Err(Error::Stopped)));
        assert!(matches!(l.renew(new), Err(Error::Stopped)));
        assert!(matches!(l.revoke(new), Err(Error::Stopped)));
        assert!(matches!(l.attach(new, ["x"]), Err(Error::Stopped)));
        assert!(matches!(l.detach(new, ["x"]), Err(Error::Stopped)));
        assert!(matches!(l.run_expiry_once(), Err(Error::Stopped)));
    });
}

/// `stop` from two threads at once, racing the worker: idempotent, no panic.
#[test]
fn stop_racing_stop_and_the_worker() {
    model(|| {
        let (_clock, l) = lessor(1);
        l.grant(id(1), ms(1)).unwrap();
        let stopper = {
            let l = l.clone();
            thread::spawn(move || l.stop())
        };
        let ran = l.run_expiry_once();
        l.stop();
        stopper.join().unwrap();
        ok_or_stopped("run_expiry_once", &ran);
        assert!(matches!(l.run_expiry_once(), Err(Error::Stopped)));
        assert_consistent(&l);
    });
}
