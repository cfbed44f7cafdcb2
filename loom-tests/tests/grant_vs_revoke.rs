//! Grant racing revoke of the same id.
//!
//! Protects: the lease map ends in the state of whichever call took the shard lock last, the
//! key map agrees with it, and the expiry worker acts only on the grant it was handed (a
//! revoked or re-granted id's old filing is dropped, never delivered).

use lessor::Error;
use lessor_loom_tests::{
    assert_consistent, drain_expired, expire, id, lessor, model, ms, owner_of, thread,
};

/// A grant of a new id racing its revoke: either the revoke found nothing (the lease is
/// there) or it removed the lease (it is gone and never delivered).
#[test]
fn grant_racing_revoke_of_a_new_id() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(i64::MIN);
        let granter = {
            let l = l.clone();
            thread::spawn(move || l.grant(lease, ms(3)))
        };
        let revoked = l.revoke(lease);
        let granted = granter.join().unwrap();

        assert_eq!(granted.expect("the id was free").ttl(), ms(3));
        let present = match revoked {
            Ok(()) => false,
            Err(Error::LeaseNotFound { id }) => {
                assert_eq!(id, lease);
                true
            }
            Err(e) => panic!("revoke: {e:?}"),
        };
        assert_eq!(l.lookup(lease).is_some(), present);
        assert_eq!(l.len(), usize::from(present));
        assert_consistent(&l);

        expire(&l);
        clock.advance(ms(3));
        assert_eq!(expire(&l), usize::from(present));
        let want = if present { vec![lease] } else { vec![] };
        assert_eq!(drain_expired(&l), want);
        assert_eq!(l.expiry_tracked(), usize::from(present));
    });
}

/// A lease with a key is revoked while the same id is granted again: the grant either fails
/// with LeaseExists (the revoke came last: nothing left) or makes a fresh lease with no keys,
/// and the old grant's filing never delivers the new lease early.
#[test]
fn regrant_racing_revoke() {
    model(|| {
        let (clock, l) = lessor(1);
        let lease = id(i64::MAX);
        l.grant(lease, ms(2)).unwrap();
        l.attach(lease, ["k"]).unwrap();
        expire(&l); // the first grant is filed, due at 2

        let revoker = {
            let l = l.clone();
            thread::spawn(move || l.revoke(lease))
        };
        let granted = l.grant(lease, ms(5));
        revoker.join().unwrap().expect("the lease existed");

        let present = match granted {
            Ok(g) => {
                assert_eq!(g.ttl(), ms(5));
                true
            }
            Err(Error::LeaseExists { id }) => {
                assert_eq!(id, lease);
                false
            }
            Err(e) => panic!("grant: {e:?}"),
        };
        assert_eq!(owner_of(&l, b"k"), lessor::LeaseId::NONE);
        match l.lookup(lease) {
            Some(found) => {
                assert!(present);
                assert_eq!(found.ttl(), ms(5));
                assert!(found.keys().is_empty());
            }
            None => assert!(!present),
        }
        assert_consistent(&l);

        clock.advance(ms(2));
        assert_eq!(expire(&l), 0, "the old grant's filing delivered something");
        clock.advance(ms(3));
        assert_eq!(expire(&l), usize::from(present));
        assert_eq!(drain_expired(&l).len(), usize::from(present));
    });
}
