//! Stop: every later change fails with `Error::Stopped`; lookups still answer.

use lessor::{Error, Remaining};

use crate::support::{bytes, id, keys_of, lessor, secs, RecordingDeleter};

#[test]
fn after_stop_every_change_is_refused_and_nothing_changes() {
    let deleter = RecordingDeleter::default();
    let (clock, b) = crate::support::builder();
    let l = b.range_deleter(deleter.clone()).build().unwrap();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["a", "b"]).unwrap();
    l.stop();

    let stopped = |r: lessor::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::Stopped)), "{what}: {r:?}");
    };
    stopped(l.grant(id(2), secs(10)).map(drop), "grant new");
    stopped(l.grant(id(1), secs(10)).map(drop), "grant existing");
    stopped(l.grant_secs(id(3), 10).map(drop), "grant_secs");
    stopped(l.renew(id(1)).map(drop), "renew");
    stopped(l.revoke(id(1)), "revoke");
    stopped(l.attach(id(1), ["c"]), "attach");
    stopped(l.detach(id(1), ["a"]), "detach");
    stopped(l.checkpoint(id(1), secs(3)), "checkpoint");

    // Lookups still answer, and show nothing changed.
    assert_eq!(l.len(), 1);
    assert_eq!(keys_of(&l, id(1)), bytes(&["a", "b"]));
    assert_eq!(l.get_lease("a"), id(1));
    assert!(l.get_lease("c").is_none());
    assert!(l.lookup(id(2)).is_none());
    clock.advance(secs(4));
    assert_eq!(
        l.lookup(id(1)).unwrap().remaining(),
        Remaining::Left(secs(6))
    );
    assert_eq!(l.leases().len(), 1);
    assert_eq!(deleter.calls(), [], "a refused revoke deleted nothing");
}

#[test]
fn stop_twice_is_fine() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.stop();
    l.stop();
    assert!(matches!(l.grant(id(2), secs(1)), Err(Error::Stopped)));
    assert!(l.lookup(id(1)).is_some());
}

#[test]
fn stop_refuses_even_calls_that_would_fail_otherwise() {
    let (_clock, l) = lessor();
    l.stop();
    assert!(matches!(l.revoke(id(9)), Err(Error::Stopped)));
    assert!(matches!(l.attach(id(9), ["k"]), Err(Error::Stopped)));
    assert!(matches!(l.renew(id(9)), Err(Error::Stopped)));
    assert!(matches!(l.checkpoint(id(9), secs(1)), Err(Error::Stopped)));
}
