//! [`StoreState`]: the keys and values of the etcd-compatible store and its revision counter.
//!
//! A plain ordered map plus a counter; it holds no lock and knows nothing of leases or the log.
//! The lessor (`src/lessor/store.rs`) owns it behind one `RwLock` and applies changes to it in
//! the order it logs them, so replaying the log rebuilds the same map and the same revisions.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::KeyValue;
use crate::lease::LeaseId;

/// The revision of an empty store (etcd starts at 1; the first change is revision 2).
pub(crate) const FIRST_REVISION: i64 = 1;

/// One stored key's value and history counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Vec<u8>,
    pub(crate) lease: LeaseId,
    pub(crate) create_revision: i64,
    pub(crate) mod_revision: i64,
    pub(crate) version: i64,
}

/// The store: keys in byte order, and the revision of the last change.
#[derive(Debug)]
pub(crate) struct StoreState {
    map: BTreeMap<Vec<u8>, Entry>,
    revision: i64,
}

impl Default for StoreState {
    fn default() -> Self {
        StoreState {
            map: BTreeMap::new(),
            revision: FIRST_REVISION,
        }
    }
}

/// The bounds of etcd's range: `range_end` empty is the single key `key`; `"\0"` is every key
/// from `key` on; otherwise `[key, range_end)`. (A `key` of `"\0"` with `range_end` `"\0"` is
/// the whole keyspace.)
pub(crate) fn bounds<'a>(key: &'a [u8], range_end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    if range_end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if range_end == [0] {
        (Bound::Included(key), Bound::Unbounded)
    } else {
        (Bound::Included(key), Bound::Excluded(range_end))
    }
}

/// True when the bounds select nothing (an end at or before the start).
fn is_empty_range(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Excluded(b)) => b <= a,
        (Bound::Included(a), Bound::Included(b)) => b < a,
        _ => false,
    }
}

impl StoreState {
    /// The revision of the last change.
    pub(crate) fn revision(&self) -> i64 {
        self.revision
    }

    /// Moves the revision counter forward to `revision` (never back): a snapshot's counter
    /// after its last change, which may have been a delete.
    pub(crate) fn raise_revision(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// One key's entry.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Every key in etcd's range, ascending, with its entry.
    pub(crate) fn range<'a>(
        &'a self,
        key: &'a [u8],
        range_end: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Entry)> + 'a {
        let (lo, hi) = bounds(key, range_end);
        // `BTreeMap::range` panics on an end before its start; `[key, key)` is empty and legal.
        let hi = if is_empty_range(lo, hi) {
            Bound::Excluded(key)
        } else {
            hi
        };
        self.map.range::<[u8], _>((lo, hi))
    }

    /// Sets `key` at revision `revision` (which must be newer than the store's): a new key
    /// starts at version 1 and is created at `revision`; an existing one keeps its creation
    /// revision and counts one more version. Returns the previous entry.
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        lease: LeaseId,
        revision: i64,
    ) -> Option<Entry> {
        debug_assert!(revision > self.revision);
        self.revision = revision;
        let prev = self.map.get(key).cloned();
        let (create_revision, version) = match &prev {
            Some(e) => (e.create_revision, e.version + 1),
            None => (revision, 1),
        };
        self.map.insert(
            key.to_vec(),
            Entry {
                value,
                lease,
                create_revision,
                mod_revision: revision,
                version,
            },
        );
        prev
    }

    /// Sets a key exactly as a snapshot recorded it (replay of a compacted log).
    pub(crate) fn restore(&mut self, key: Vec<u8>, entry: Entry) {
        self.revision = self.revision.max(entry.mod_revision);
        self.map.insert(key, entry);
    }

    /// Removes `keys` at revision `revision` (when at least one of them was present; the
    /// revision does not move otherwise). Returns the removed entries, in the order given.
    pub(crate) fn remove_keys<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
        revision: i64,
    ) -> Vec<(Vec<u8>, Entry)> {
        let mut removed = Vec::new();
        for key in keys {
            if let Some((k, e)) = self.map.remove_entry(key.as_ref()) {
                removed.push((k, e));
            }
        }
        if !removed.is_empty() {
            debug_assert!(revision > self.revision);
            self.revision = revision;
        }
        removed
    }
}

impl Entry {
    /// The entry as a public [`KeyValue`] of `key`.
    pub(crate) fn to_kv(&self, key: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: self.value.clone(),
            lease: self.lease,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &StoreState, key: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        s.range(key, end).map(|(k, _)| k.clone()).collect()
    }

    fn filled() -> StoreState {
        let mut s = StoreState::default();
        for (i, k) in [&b"a"[..], b"ab", b"b", b"c", b"\xff"].iter().enumerate() {
            s.put(k, b"v".to_vec(), LeaseId::NONE, 2 + i as i64);
        }
        s
    }

    #[test]
    fn range_end_follows_etcd() {
        let s = filled();
        assert_eq!(keys(&s, b"a", b""), vec![b"a".to_vec()]);
        assert_eq!(keys(&s, b"a", b"b"), vec![b"a".to_vec(), b"ab".to_vec()]);
        assert_eq!(keys(&s, b"b", b"\0").len(), 3);
        assert_eq!(keys(&s, b"\0", b"\0").len(), 5);
        assert!(keys(&s, b"zz", b"").is_empty());
    }

    #[test]
    fn backwards_and_empty_ranges_select_nothing() {
        let s = filled();
        assert!(keys(&s, b"c", b"a").is_empty());
        assert!(keys(&s, b"b", b"b").is_empty());
    }

    #[test]
    fn put_counts_versions_and_keeps_creation() {
        let mut s = StoreState::default();
        assert_eq!(s.revision(), FIRST_REVISION);
        assert!(s.put(b"k", b"1".to_vec(), LeaseId::NONE, 2).is_none());
        let prev = s.put(b"k", b"2".to_vec(), LeaseId::new(7), 3).unwrap();
        assert_eq!(prev.value, b"1");
        let e = s.get(b"k").unwrap();
        assert_eq!((e.create_revision, e.mod_revision, e.version), (2, 3, 2));
        assert_eq!(e.lease, LeaseId::new(7));
        assert_eq!(s.revision(), 3);
    }

    #[test]
    fn removing_nothing_keeps_the_revision() {
        let mut s = filled();
        let rev = s.revision();
        assert!(s.remove_keys(&[b"nope"], rev + 1).is_empty());
        assert_eq!(s.revision(), rev);
        let removed = s.remove_keys(&[&b"a"[..], b"nope", b"c"], rev + 1);
        assert_eq!(removed.len(), 2);
        assert_eq!(s.revision(), rev + 1);
        assert_eq!(s.len(), 3);
    }
}
