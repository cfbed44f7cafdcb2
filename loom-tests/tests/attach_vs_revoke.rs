//! Attach racing revoke.
//!
//! Protects: a key is never left on a revoked lease. Attach checks that the lease exists and
//! adds its keys under the lease's stripe; revoke takes the keys and removes the lease under
//! the same stripe, so an attach either lands before the revoke (and the revoke deletes the
//! key) or fails with LeaseNotFound.

use std::sync::atomic::{AtomicUsize, Ordering};

use lessor::{Error, LeaseId, TxnDelete};
use lessor_loom_tests::{assert_consistent, builder, id, model, ms, owner_of, thread, Arc};

/// Counts the keys revoke deletes (std atomics: only read after every thread has joined).
#[derive(Clone, Default)]
struct Deletes(std::sync::Arc<AtomicUsize>);

impl TxnDelete for Deletes {
    fn delete_range(&mut self, _key: &[u8], end: Option<&[u8]>) -> (i64, i64) {
        assert!(end.is_none());
        self.0.fetch_add(1, Ordering::SeqCst);
        (1, 0)
    }
    fn end(self: Box<Self>) {}
}

/// Attach to a lease while it is revoked: the key is never left mapping to the dead lease, and
/// a successful attach's key is deleted by the revoke.
#[test]
fn attach_racing_revoke_leaves_no_key_behind() {
    model(|| {
        let deletes = Deletes::default();
        let sink = deletes.clone();
        let (_clock, b) = builder(1);
        let l = b
            .range_deleter(move || Box::new(sink.clone()) as Box<dyn TxnDelete>)
            .build()
            .unwrap();
        let l = Arc::new(l);
        let lease = id(1);
        l.grant(lease, ms(1000)).unwrap();

        let attacher = {
            let l = l.clone();
            thread::spawn(move || l.attach(lease, ["k"]))
        };
        l.revoke(lease).expect("the lease existed");
        let attached = match attacher.join().unwrap() {
            Ok(()) => true,
            Err(Error::LeaseNotFound { id }) => {
                assert_eq!(id, lease);
                false
            }
            Err(e) => panic!("attach: {e:?}"),
        };

        assert_eq!(
            owner_of(&l, b"k"),
            LeaseId::NONE,
            "key left on a revoked lease"
        );
        assert!(l.lookup(lease).is_none());
        assert_eq!(
            deletes.0.load(Ordering::SeqCst),
            usize::from(attached),
            "an attached key must be deleted by the revoke, and only then"
        );
        assert_consistent(&l);
    });
}

/// Attach moves a key from lease 2 to lease 1 while lease 2 is revoked: the key ends on lease
/// 1 whichever goes first, never on the revoked lease and never lost from lease 1's set.
#[test]
fn attach_moving_a_key_racing_revoke_of_its_old_lease() {
    model(|| {
        let (_clock, b) = builder(1);
        let l = Arc::new(b.build().unwrap());
        let (to, from) = (id(1), id(2));
        l.grant(to, ms(1000)).unwrap();
        l.grant(from, ms(1000)).unwrap();
        l.attach(from, ["k"]).unwrap();

        let attacher = {
            let l = l.clone();
            thread::spawn(move || l.attach(to, ["k"]))
        };
        l.revoke(from).expect("the lease existed");
        attacher.join().unwrap().expect("the target lease exists");

        assert_eq!(owner_of(&l, b"k"), to);
        assert!(l.lookup(from).is_none());
        assert_consistent(&l);
    });
}
