//! Attach, detach and get_lease: a key belongs to at most one lease.

use lessor::{Error, LeaseId, DEFAULT_MAX_KEY_SIZE};

use crate::support::{assert_consistent, builder, bytes, id, keys_of, lessor, secs};

fn two_leases() -> (lessor::ManualClock, lessor::Lessor) {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(10)).unwrap();
    (clock, l)
}

#[test]
fn attach_then_get_lease_and_keys_in_ascending_byte_order() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["c", "a", "b", "B", "aa"]).unwrap();
    l.attach(id(1), [&b"\xff\x00"[..], b"\x01"]).unwrap();
    let mut expect = vec![b"\x01".to_vec()];
    expect.extend(bytes(&["B", "a", "aa", "b", "c"]));
    expect.push(b"\xff\x00".to_vec());
    assert_eq!(keys_of(&l, id(1)), expect);
    for key in &expect {
        assert_eq!(l.get_lease(key), id(1));
    }
    assert!(l.get_lease("d").is_none());
    assert!(keys_of(&l, id(2)).is_empty());
    assert_consistent(&l, &expect);
}

#[test]
fn keys_may_be_given_as_strings_byte_slices_or_vectors() {
    let (_clock, l) = two_leases();
    l.attach(id(1), [String::from("s")]).unwrap();
    l.attach(id(1), [b"v".to_vec()]).unwrap();
    l.attach(id(1), vec![&b"b"[..]]).unwrap();
    assert_eq!(keys_of(&l, id(1)), bytes(&["b", "s", "v"]));
    assert_eq!(l.get_lease(b"s"), id(1));
    assert_eq!(l.get_lease(String::from("v")), id(1));
}

#[test]
fn attach_to_an_unknown_lease_is_lease_not_found_and_changes_nothing() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["owned"]).unwrap();
    for n in [3, 0, -1] {
        let err = l.attach(id(n), ["owned", "free"]).unwrap_err();
        assert!(
            matches!(err, Error::LeaseNotFound { id } if id.get() == n),
            "{err:?}"
        );
    }
    assert_eq!(l.get_lease("owned"), id(1));
    assert!(l.get_lease("free").is_none());
    assert_eq!(keys_of(&l, id(1)), bytes(&["owned"]));
    assert!(keys_of(&l, id(2)).is_empty());
    assert_eq!(l.len(), 2);
    assert_consistent(&l, &bytes(&["owned", "free"]));
}

#[test]
fn detach_from_an_unknown_lease_is_lease_not_found_and_changes_nothing() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["k"]).unwrap();
    let err = l.detach(id(3), ["k"]).unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { id } if id == LeaseId::new(3)),
        "{err:?}"
    );
    assert_eq!(l.get_lease("k"), id(1));
    assert_eq!(keys_of(&l, id(1)), bytes(&["k"]));
}

#[test]
fn an_empty_list_of_keys_is_fine_for_a_live_lease_only() {
    let (_clock, l) = two_leases();
    l.attach(id(1), Vec::<&str>::new()).unwrap();
    l.detach(id(1), Vec::<&str>::new()).unwrap();
    assert!(keys_of(&l, id(1)).is_empty());
    let err = l.attach(id(9), Vec::<&str>::new()).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
    let err = l.detach(id(9), Vec::<&str>::new()).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
}

#[test]
fn an_empty_key_is_refused_and_nothing_changes() {
    let (_clock, l) = two_leases();
    l.attach(id(2), ["taken"]).unwrap();
    let err = l.attach(id(1), ["ok", "taken", ""]).unwrap_err();
    assert!(matches!(err, Error::EmptyKey), "{err:?}");
    assert!(l.get_lease("ok").is_none());
    assert_eq!(l.get_lease("taken"), id(2));
    assert!(keys_of(&l, id(1)).is_empty());

    l.attach(id(1), ["ok"]).unwrap();
    let err = l.detach(id(1), ["ok", ""]).unwrap_err();
    assert!(matches!(err, Error::EmptyKey), "{err:?}");
    assert_eq!(l.get_lease("ok"), id(1));
    assert!(l.get_lease("").is_none());
    assert_consistent(&l, &bytes(&["ok", "taken", ""]));
}

#[test]
fn a_key_over_the_limit_is_refused_with_sizes_and_nothing_changes() {
    let (_clock, b) = builder();
    let l = b.max_key_size(4).build().unwrap();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(10)).unwrap();
    l.attach(id(2), ["mine"]).unwrap();
    let err = l.attach(id(1), ["abcd", "mine", "abcde"]).unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLarge { given: 5, limit: 4 }),
        "{err:?}"
    );
    assert!(l.get_lease("abcd").is_none());
    assert_eq!(l.get_lease("mine"), id(2));
    assert!(keys_of(&l, id(1)).is_empty());

    l.attach(id(1), ["abcd"]).unwrap();
    let err = l.detach(id(1), ["abcd", "toolong"]).unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLarge { given: 7, limit: 4 }),
        "{err:?}"
    );
    assert_eq!(l.get_lease("abcd"), id(1));
    assert_consistent(&l, &bytes(&["abcd", "mine", "abcde"]));
}

#[test]
fn the_default_key_limit_is_one_and_a_half_mib() {
    assert_eq!(DEFAULT_MAX_KEY_SIZE, 1536 * 1024);
    let (_clock, l) = two_leases();
    let largest = vec![b'k'; 1536 * 1024];
    l.attach(id(1), [&largest]).unwrap();
    assert_eq!(l.get_lease(&largest), id(1));
    let over = vec![b'k'; 1536 * 1024 + 1];
    let err = l.attach(id(1), [&over]).unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLarge { given, limit }
            if given == 1536 * 1024 + 1 && limit == 1536 * 1024),
        "{err:?}"
    );
    assert!(l.get_lease(&over).is_none());
    assert_eq!(keys_of(&l, id(1)), [largest]);
}

#[test]
fn attaching_a_key_of_another_lease_moves_it() {
    let (_clock, l) = two_leases();
    let (a, b) = (id(1), id(2));
    l.attach(a, ["x", "y"]).unwrap();
    l.attach(b, ["y", "z"]).unwrap();
    assert_eq!(keys_of(&l, a), bytes(&["x"]));
    assert_eq!(keys_of(&l, b), bytes(&["y", "z"]));
    assert_eq!(l.get_lease("y"), b);
    // Moving the last key leaves the old lease alive with no keys.
    l.attach(b, ["x"]).unwrap();
    assert!(keys_of(&l, a).is_empty());
    assert_eq!(keys_of(&l, b), bytes(&["x", "y", "z"]));
    // And back again.
    l.attach(a, ["z", "x"]).unwrap();
    assert_eq!(keys_of(&l, a), bytes(&["x", "z"]));
    assert_eq!(keys_of(&l, b), bytes(&["y"]));
    // Detaching from the old owner now does not touch the new owner's key.
    l.detach(b, ["x", "z"]).unwrap();
    assert_eq!(keys_of(&l, a), bytes(&["x", "z"]));
    assert_eq!(l.get_lease("x"), a);
    assert_consistent(&l, &bytes(&["x", "y", "z"]));
}

#[test]
fn moves_between_many_leases_keep_one_owner_per_key() {
    let (_clock, l) = lessor();
    let ids: Vec<LeaseId> = (1..=5).map(id).collect();
    for &i in &ids {
        l.grant(i, secs(10)).unwrap();
    }
    let keys = bytes(&["k0", "k1", "k2", "k3", "k4", "k5"]);
    for round in 0..20 {
        let owner = ids[round % ids.len()];
        let subset: Vec<&Vec<u8>> = keys.iter().skip(round % 3).step_by(2).collect();
        l.attach(owner, subset.iter().copied()).unwrap();
        for k in subset {
            assert_eq!(l.get_lease(k), owner);
        }
        assert_consistent(&l, &keys);
    }
}

#[test]
fn attaching_twice_is_a_no_op() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["k", "k"]).unwrap();
    l.attach(id(1), ["k"]).unwrap();
    assert_eq!(keys_of(&l, id(1)), bytes(&["k"]));
    assert_eq!(l.get_lease("k"), id(1));
    assert_consistent(&l, &bytes(&["k"]));
}

#[test]
fn detaching_a_key_that_is_not_attached_is_a_no_op() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["a"]).unwrap();
    l.detach(id(1), ["never", "a", "a"]).unwrap();
    assert!(keys_of(&l, id(1)).is_empty());
    assert!(l.get_lease("a").is_none());
    l.detach(id(1), ["a"]).unwrap();
    assert!(keys_of(&l, id(1)).is_empty());
    // Attach again after a detach.
    l.attach(id(1), ["a"]).unwrap();
    assert_eq!(l.get_lease("a"), id(1));
    assert_consistent(&l, &bytes(&["a", "never"]));
}

#[test]
fn detaching_a_key_of_another_lease_leaves_it_there() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["shared", "own1"]).unwrap();
    l.attach(id(2), ["own2"]).unwrap();
    l.detach(id(2), ["shared", "own1"]).unwrap();
    assert_eq!(l.get_lease("shared"), id(1));
    assert_eq!(keys_of(&l, id(1)), bytes(&["own1", "shared"]));
    assert_eq!(keys_of(&l, id(2)), bytes(&["own2"]));
    assert_consistent(&l, &bytes(&["shared", "own1", "own2"]));
}

#[test]
fn keys_stay_attached_to_an_overdue_lease_until_it_is_revoked() {
    let (clock, l) = two_leases();
    l.attach(id(1), ["k"]).unwrap();
    clock.advance(secs(30));
    assert_eq!(l.get_lease("k"), id(1));
    assert_eq!(keys_of(&l, id(1)), bytes(&["k"]));
    // Attach and detach still work on an overdue lease (it exists until revoked).
    l.attach(id(1), ["j"]).unwrap();
    l.detach(id(1), ["k"]).unwrap();
    assert_eq!(keys_of(&l, id(1)), bytes(&["j"]));
    l.revoke(id(1)).unwrap();
    assert!(l.get_lease("j").is_none());
}

#[test]
fn a_lookup_is_a_snapshot() {
    let (_clock, l) = two_leases();
    l.attach(id(1), ["a"]).unwrap();
    let before = l.lookup(id(1)).unwrap();
    l.attach(id(1), ["b"]).unwrap();
    assert_eq!(before.keys(), bytes(&["a"]));
    assert_eq!(keys_of(&l, id(1)), bytes(&["a", "b"]));
}
