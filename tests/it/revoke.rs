//! Revoke: attached keys deleted through the range deleter in one transaction, then the lease
//! is gone.

use lessor::{Error, LeaseId, Remaining};

use crate::support::{
    builder, bytes, id, keys_of, lease_ids, lessor, remaining, revoke_calls, secs, Call,
    RecordingDeleter,
};

fn recording_lessor() -> (lessor::ManualClock, lessor::Lessor, RecordingDeleter) {
    let deleter = RecordingDeleter::default();
    let (clock, b) = builder();
    let l = b.range_deleter(deleter.clone()).build().unwrap();
    (clock, l, deleter)
}

#[test]
fn revoke_of_an_unknown_lease_is_lease_not_found() {
    let (_clock, l, deleter) = recording_lessor();
    for n in [1, 0, -1] {
        let err = l.revoke(id(n)).unwrap_err();
        assert!(
            matches!(err, Error::LeaseNotFound { id } if id.get() == n),
            "{err:?}"
        );
    }
    assert_eq!(deleter.calls(), [], "no transaction for an unknown lease");
}

#[test]
fn revoke_deletes_each_key_in_ascending_byte_order_in_one_transaction() {
    let (_clock, l, deleter) = recording_lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), [&b"b"[..], b"a", b"\xff", b"B", b"a/1", b"\x00"])
        .unwrap();
    l.revoke(id(1)).unwrap();
    let expect: [&[u8]; 6] = [b"\x00", b"B", b"a", b"a/1", b"b", b"\xff"];
    assert_eq!(deleter.calls(), revoke_calls(0, &expect));
}

#[test]
fn revoke_without_keys_still_opens_and_ends_one_transaction() {
    let (_clock, l, deleter) = recording_lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.revoke(id(1)).unwrap();
    assert_eq!(deleter.calls(), [Call::Begin(0), Call::End(0)]);
}

#[test]
fn each_revoke_is_its_own_transaction() {
    let (_clock, l, deleter) = recording_lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(10)).unwrap();
    l.attach(id(1), ["x", "a"]).unwrap();
    l.attach(id(2), ["m"]).unwrap();
    l.revoke(id(2)).unwrap();
    l.revoke(id(1)).unwrap();
    let mut expect = revoke_calls(0, &[b"m"]);
    expect.extend(revoke_calls(1, &[b"a", b"x"]));
    assert_eq!(deleter.calls(), expect);
}

#[test]
fn revoke_deletes_only_the_keys_the_lease_holds_now() {
    let (_clock, l, deleter) = recording_lessor();
    let (a, b) = (id(1), id(2));
    l.grant(a, secs(10)).unwrap();
    l.grant(b, secs(10)).unwrap();
    l.attach(a, ["x", "y", "z"]).unwrap();
    l.attach(b, ["y"]).unwrap(); // moves y to b
    l.detach(a, ["z"]).unwrap();
    l.revoke(a).unwrap();
    assert_eq!(deleter.take(), revoke_calls(0, &[b"x"]));
    assert_eq!(l.get_lease("y"), b);
    assert_eq!(keys_of(&l, b), bytes(&["y"]));
    assert!(l.get_lease("x").is_none());
    assert!(l.get_lease("z").is_none());
    l.revoke(b).unwrap();
    assert_eq!(deleter.take(), revoke_calls(1, &[b"y"]));
}

#[test]
fn attaching_a_key_twice_deletes_it_once() {
    let (_clock, l, deleter) = recording_lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["k", "k"]).unwrap();
    l.attach(id(1), ["k"]).unwrap();
    l.revoke(id(1)).unwrap();
    assert_eq!(deleter.calls(), revoke_calls(0, &[b"k"]));
}

#[test]
fn revoke_works_when_not_primary() {
    let (_clock, b) = builder();
    let deleter = RecordingDeleter::default();
    let l = b
        .primary(false)
        .range_deleter(deleter.clone())
        .build()
        .unwrap();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["k"]).unwrap();
    assert_eq!(remaining(&l, id(1)), Some(Remaining::Forever));
    l.revoke(id(1)).unwrap();
    assert_eq!(deleter.calls(), revoke_calls(0, &[b"k"]));
    assert!(l.lookup(id(1)).is_none());
    assert!(l.get_lease("k").is_none());
}

#[test]
fn revoke_works_on_an_expired_lease() {
    let (clock, l, deleter) = recording_lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["k1", "k2"]).unwrap();
    clock.advance(secs(15));
    assert!(matches!(l.renew(id(1)), Err(Error::LeaseExpired { .. })));
    l.revoke(id(1)).unwrap();
    assert_eq!(deleter.calls(), revoke_calls(0, &[b"k1", b"k2"]));
    assert!(l.lookup(id(1)).is_none());
    assert!(l.get_lease("k1").is_none());
}

#[test]
fn without_a_range_deleter_the_lease_is_still_removed() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["k1", "k2"]).unwrap();
    l.revoke(id(1)).unwrap();
    assert!(l.lookup(id(1)).is_none());
    assert!(l.get_lease("k1").is_none());
    assert!(l.get_lease("k2").is_none());
    assert!(l.is_empty());
    assert!(l.leases().is_empty());
}

#[test]
fn after_revoke_the_lease_and_its_keys_are_gone_and_the_id_is_free() {
    let (_clock, l, deleter) = recording_lessor();
    let gone = LeaseId::new(-9);
    l.grant(gone, secs(10)).unwrap();
    l.grant(id(2), secs(20)).unwrap();
    l.attach(gone, ["a", "b"]).unwrap();
    l.attach(id(2), ["c"]).unwrap();
    l.revoke(gone).unwrap();

    assert!(l.lookup(gone).is_none());
    assert!(l.get_lease("a").is_none());
    assert!(l.get_lease("b").is_none());
    assert_eq!(l.get_lease("c"), id(2));
    assert_eq!(lease_ids(&l), [2]);
    assert_eq!(l.len(), 1);
    let err = l.revoke(gone).unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { id } if id == gone),
        "{err:?}"
    );
    assert!(matches!(
        l.attach(gone, ["a"]),
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        l.detach(gone, ["a"]),
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        l.checkpoint(gone, secs(1)),
        Err(Error::LeaseNotFound { .. })
    ));
    assert_eq!(deleter.calls(), revoke_calls(0, &[b"a", b"b"]));

    let again = l.grant(gone, secs(30)).unwrap();
    assert_eq!(again.ttl(), secs(30));
    assert!(again.keys().is_empty());
    assert!(l.get_lease("a").is_none());
    l.attach(gone, ["b"]).unwrap();
    assert_eq!(l.get_lease("b"), gone);
    assert_eq!(l.renew(gone).unwrap(), secs(30));
    crate::support::assert_consistent(&l, &bytes(&["a", "b", "c"]));
}
