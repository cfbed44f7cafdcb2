//! Detach racing attach.
//!
//! Protects: the key map and the leases' key sets agree (`check_invariants`) whatever order
//! attach, detach and key moves take. Both sides change a lease's key set only under its
//! stripe; a move between leases holds both stripes.

use lessor_loom_tests::{assert_consistent, id, lessor, model, ms, owner_of, thread};

/// Same lease, same key: the key ends attached iff the attach went last.
#[test]
fn detach_racing_attach_same_key() {
    model(|| {
        let (_clock, l) = lessor(1);
        let lease = id(1);
        l.grant(lease, ms(1000)).unwrap();

        let attacher = {
            let l = l.clone();
            thread::spawn(move || l.attach(lease, ["k"]))
        };
        l.detach(lease, ["k"]).unwrap();
        attacher.join().unwrap().unwrap();

        let owner = owner_of(&l, b"k");
        let keys = l.lookup(lease).unwrap().keys().to_vec();
        if owner.is_none() {
            assert!(keys.is_empty());
        } else {
            assert_eq!(owner, lease);
            assert_eq!(keys, [b"k".to_vec()]);
        }
        assert_consistent(&l);
    });
}

/// Attach moves a key from lease 2 to lease 1 while lease 2 detaches it: the key ends on
/// lease 1 either way (a detach of a key the lease no longer has is a no-op).
#[test]
fn attach_moving_a_key_racing_detach_from_its_old_lease() {
    model(|| {
        let (_clock, l) = lessor(1);
        let (to, from) = (id(1), id(2));
        l.grant(to, ms(1000)).unwrap();
        l.grant(from, ms(1000)).unwrap();
        l.attach(from, ["k"]).unwrap();

        let attacher = {
            let l = l.clone();
            thread::spawn(move || l.attach(to, ["k"]))
        };
        l.detach(from, ["k"]).unwrap();
        attacher.join().unwrap().unwrap();

        assert_eq!(owner_of(&l, b"k"), to);
        assert!(l.lookup(from).unwrap().keys().is_empty());
        assert_consistent(&l);
    });
}

/// Attach moves a key from lease 2 to lease 1 while lease 1 detaches it: the key ends free
/// (detach after the move) or on lease 1 (detach first, a no-op); never on lease 2.
#[test]
fn attach_moving_a_key_racing_detach_from_its_new_lease() {
    model(|| {
        let (_clock, l) = lessor(1);
        let (to, from) = (id(1), id(2));
        l.grant(to, ms(1000)).unwrap();
        l.grant(from, ms(1000)).unwrap();
        l.attach(from, ["k"]).unwrap();

        let attacher = {
            let l = l.clone();
            thread::spawn(move || l.attach(to, ["k"]))
        };
        l.detach(to, ["k"]).unwrap();
        attacher.join().unwrap().unwrap();

        let owner = owner_of(&l, b"k");
        assert!(owner.is_none() || owner == to, "key on {owner}");
        assert!(l.lookup(from).unwrap().keys().is_empty());
        assert_consistent(&l);
    });
}
