//! [`EtcdLessor`]: a lessor built the way etcd's `lease.lessor` is, as the reference to compare
//! lessor with.
//!
//! # Ground rules
//!
//! - **One mutex** ([`Shared::state`]) guards everything: the lease map, the key map, the
//!   expiry queue and the primary flag. Every operation takes it once (etcd's `le.mu`; etcd's
//!   renew takes it twice, a read lock then a write lock, which this version does not copy).
//! - The clock is read under the mutex, as etcd's `refresh` does.
//! - A **checker thread** wakes every 500 ms (`revokeExpiredLeases` + `time.Sleep(500ms)`),
//!   takes the mutex and pops at most 500 expired leases (etcd's 1000 leases/s `leaseRevokeRate`,
//!   halved per 500 ms), re-files each at now + 3 s (etcd's `expiredLeaseRetryInterval`), and
//!   offers the batch on a channel of 16 batches with a non-blocking send: a batch that does
//!   not fit is dropped and comes back 3 s later, as in etcd. The consumer revokes, as etcd's
//!   server does.
//! - Semantics as etcd's: grant checks id 0, then TTL > max, then "exists", and raises the TTL
//!   to the minimum; renew refuses when not primary and on unknown leases; revoke removes the
//!   lease and its keys; promote refreshes every lease and spreads pile-ups (at most 3/4 of the
//!   revoke rate per second); demote makes every lease "forever" and clears the queue. Two
//!   choices match lessor rather than etcd, so the two do the same work: renewing an expired
//!   lease fails at once (etcd blocks until it is revoked) and attaching a key that another
//!   lease holds moves it.
//! - The maps are `hashbrown` with its default hasher, as in lessor, so the comparison is of
//!   the designs, not of the hash functions.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use hashbrown::{HashMap, HashSet};

use super::queue::Queue;
use crate::bench::args::HeapKind;
use crate::bench::stats::{nanos, now};

/// etcd's `leaseRevokeRate`: leases revoked per second at most.
pub(crate) const REVOKE_RATE: usize = 1000;
/// How often the checker looks for expired leases (etcd: 500 ms).
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// When an expired lease that was not revoked is offered again (etcd >= 3.4: 3 s).
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(3);
/// Batches the expired channel holds (etcd: 16).
const EXPIRED_CHANNEL: usize = 16;
/// The deadline of a lease while not primary.
const FOREVER: u64 = u64::MAX;

/// Why an operation failed (etcd's errors, and lessor's "expired").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `ErrLeaseNotFound`.
    NotFound,
    /// `ErrLeaseExists`.
    Exists,
    /// `ErrLeaseTTLTooLarge`.
    TtlTooLarge,
    /// `ErrNotPrimary`.
    NotPrimary,
    /// The lease's deadline has passed.
    Expired,
}

/// One lease (etcd's `Lease`).
#[derive(Debug)]
struct Lease {
    ttl_ns: u64,
    /// Deadline, ns since the lessor was built; [`FOREVER`] while not primary.
    expiry: u64,
    /// A checkpointed remaining TTL, 0 for none.
    remaining_ttl_ns: u64,
    /// The time of this lease's latest queue entry: with the lazy queue, an entry at any other
    /// time is stale.
    queued: u64,
    /// etcd's `itemSet`; the key bytes are shared with the key map.
    keys: HashSet<Arc<[u8]>>,
}

/// Everything behind the one mutex.
#[derive(Debug)]
struct State {
    primary: bool,
    leases: HashMap<i64, Lease>,
    /// etcd's `itemMap`: key -> lease.
    items: HashMap<Arc<[u8]>, i64>,
    queue: Queue,
}

/// The state and the clock base, shared with the checker thread.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    base: Instant,
    min_ttl_ns: u64,
}

/// The reference lessor.
#[derive(Debug)]
pub(crate) struct EtcdLessor {
    shared: Arc<Shared>,
    expired: Receiver<Vec<i64>>,
    stop: Sender<()>,
    checker: Option<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        nanos(now() - self.base)
    }
}

impl EtcdLessor {
    /// A reference lessor with its checker thread running.
    pub(crate) fn new(primary: bool, heap: HeapKind, min_ttl: Duration) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                primary,
                leases: HashMap::new(),
                items: HashMap::new(),
                queue: Queue::new(heap),
            }),
            base: now(),
            min_ttl_ns: nanos(min_ttl),
        });
        let (tx, expired) = bounded(EXPIRED_CHANNEL);
        let (stop, stopped) = bounded(1);
        let for_checker = shared.clone();
        let checker = std::thread::Builder::new()
            .name("etcd-checker".into())
            .spawn(move || run_checker(&for_checker, &tx, &stopped))
            .expect("spawn the checker thread");
        EtcdLessor {
            shared,
            expired,
            stop,
            checker: Some(checker),
        }
    }

    /// etcd's `Grant`.
    pub(crate) fn grant(&self, id: i64, ttl: Duration) -> Result<(), Refused> {
        if id == 0 {
            return Err(Refused::NotFound);
        }
        if ttl > lessor::MAX_TTL {
            return Err(Refused::TtlTooLarge);
        }
        let ttl_ns = nanos(ttl).max(self.shared.min_ttl_ns);
        let mut s = self.shared.lock();
        if s.leases.contains_key(&id) {
            return Err(Refused::Exists);
        }
        let expiry = if s.primary {
            self.shared.now().saturating_add(ttl_ns)
        } else {
            FOREVER
        };
        s.leases.insert(
            id,
            Lease {
                ttl_ns,
                expiry,
                remaining_ttl_ns: 0,
                queued: expiry,
                keys: HashSet::new(),
            },
        );
        if s.primary {
            s.queue.register_or_update(id, expiry);
        }
        Ok(())
    }

    /// etcd's `Renew`: returns the granted TTL.
    pub(crate) fn renew(&self, id: i64) -> Result<Duration, Refused> {
        let mut guard = self.shared.lock();
        let s = &mut *guard;
        if !s.primary {
            return Err(Refused::NotPrimary);
        }
        let lease = s.leases.get_mut(&id).ok_or(Refused::NotFound)?;
        let now = self.shared.now();
        if lease.expiry <= now {
            return Err(Refused::Expired);
        }
        lease.remaining_ttl_ns = 0;
        lease.expiry = now.saturating_add(lease.ttl_ns);
        lease.queued = lease.expiry;
        let (expiry, ttl) = (lease.expiry, lease.ttl_ns);
        s.queue.register_or_update(id, expiry);
        Ok(Duration::from_nanos(ttl))
    }

    /// etcd's `Revoke`: removes the lease and its keys. Its queue entry stays and is dropped
    /// when it reaches the top, as in etcd.
    pub(crate) fn revoke(&self, id: i64) -> Result<(), Refused> {
        let mut guard = self.shared.lock();
        let s = &mut *guard;
        let lease = s.leases.remove(&id).ok_or(Refused::NotFound)?;
        for key in lease.keys {
            if s.items.get(&key) == Some(&id) {
                s.items.remove(&key);
            }
        }
        Ok(())
    }

    /// etcd's `Attach`; a key held by another lease moves (as in lessor).
    pub(crate) fn attach(&self, id: i64, keys: &[&[u8]]) -> Result<(), Refused> {
        let mut guard = self.shared.lock();
        let s = &mut *guard;
        if !s.leases.contains_key(&id) {
            return Err(Refused::NotFound);
        }
        for &k in keys {
            let key: Arc<[u8]> = Arc::from(k);
            if let Some(old) = s.items.insert(key.clone(), id) {
                if old != id {
                    if let Some(l) = s.leases.get_mut(&old) {
                        l.keys.remove(k);
                    }
                }
            }
            s.leases
                .get_mut(&id)
                .expect("checked above")
                .keys
                .insert(key);
        }
        Ok(())
    }

    /// etcd's `GetLease`.
    pub(crate) fn get_lease(&self, key: &[u8]) -> Option<i64> {
        self.shared.lock().items.get(key).copied()
    }

    /// etcd's `Promote`: every lease gets now + extend + (checkpoint or TTL), then pile-ups
    /// are spread when there are at least `REVOKE_RATE` leases.
    pub(crate) fn promote(&self, extend: Duration) {
        let mut guard = self.shared.lock();
        let s = &mut *guard;
        s.primary = true;
        let now = self.shared.now();
        let extend = nanos(extend);
        for (id, l) in s.leases.iter_mut() {
            let ttl = if l.remaining_ttl_ns > 0 {
                l.remaining_ttl_ns
            } else {
                l.ttl_ns
            };
            l.expiry = now.saturating_add(extend).saturating_add(ttl);
            l.queued = l.expiry;
            s.queue.register_or_update(*id, l.expiry);
        }
        if s.leases.len() < REVOKE_RATE {
            return;
        }
        // etcd: sort by expiry, then "adjust expiries in case of overlap".
        let mut by_expiry: Vec<(u64, i64)> =
            s.leases.iter().map(|(id, l)| (l.expiry, *id)).collect();
        by_expiry.sort_unstable();
        let remaining: Vec<u64> = by_expiry.iter().map(|(e, _)| e - now).collect();
        for (i, new_remaining) in spread(&remaining, REVOKE_RATE) {
            let id = by_expiry[i].1;
            let expiry = now.saturating_add(new_remaining);
            let l = s.leases.get_mut(&id).expect("listed above");
            l.expiry = expiry;
            l.queued = expiry;
            s.queue.register_or_update(id, expiry);
        }
    }

    /// etcd's `Demote`: every lease "forever", the queue cleared.
    pub(crate) fn demote(&self) {
        let mut guard = self.shared.lock();
        let s = &mut *guard;
        s.primary = false;
        for l in s.leases.values_mut() {
            l.expiry = FOREVER;
        }
        s.queue.clear();
    }

    /// The number of leases.
    pub(crate) fn len(&self) -> usize {
        self.shared.lock().leases.len()
    }

    /// True if lease `id` exists with a finite deadline.
    pub(crate) fn expiring(&self, id: i64) -> bool {
        self.shared
            .lock()
            .leases
            .get(&id)
            .is_some_and(|l| l.expiry != FOREVER)
    }

    /// Entries in the expiry queue (stale ones included, for the lazy queue).
    pub(crate) fn queue_len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// The channel on which the checker offers expired leases (etcd's `ExpiredLeasesC`).
    pub(crate) fn expired_leases(&self) -> &Receiver<Vec<i64>> {
        &self.expired
    }

    /// One checker pass at `now` (ns since the lessor was built), without the channel.
    #[cfg(test)]
    fn find_expired_at(&self, now: u64) -> Vec<i64> {
        find_expired(&mut self.shared.lock(), REVOKE_RATE / 2, now)
    }
}

impl Drop for EtcdLessor {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(h) = self.checker.take() {
            let _ = h.join();
        }
    }
}

/// The checker thread: every 500 ms, up to 500 expired leases onto the channel.
fn run_checker(shared: &Shared, tx: &Sender<Vec<i64>>, stopped: &Receiver<()>) {
    loop {
        match stopped.recv_timeout(CHECK_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let batch = {
            let mut s = shared.lock();
            if !s.primary {
                continue;
            }
            let now = shared.now();
            find_expired(&mut s, REVOKE_RATE / 2, now)
        };
        if !batch.is_empty() {
            // etcd: `select { case le.expiredC <- ls: default: }`; the retry entry brings a
            // dropped batch back after the retry interval.
            let _ = tx.try_send(batch);
        }
    }
}

/// etcd's `findExpiredLeases(limit)`: pops entries due at `now`, skipping revoked leases (and,
/// for the lazy queue, entries made stale by a later one), and re-files each expired lease at
/// `now` + the retry interval.
fn find_expired(s: &mut State, limit: usize, now: u64) -> Vec<i64> {
    let mut out = Vec::new();
    let retry = now.saturating_add(nanos(RETRY_INTERVAL));
    let lazy = s.queue.is_lazy();
    while out.len() < limit {
        let Some((id, time)) = s.queue.poll() else {
            break;
        };
        let Some(lease) = s.leases.get_mut(&id) else {
            s.queue.unregister(); // revoked
            continue;
        };
        if now < time {
            break;
        }
        if lazy {
            s.queue.unregister();
            if time != lease.queued {
                continue; // stale: a later entry for this lease exists
            }
        }
        if lease.expiry > now {
            // Not expired after all (cannot happen while entries follow every change of the
            // deadline); file it at its deadline.
            lease.queued = lease.expiry;
            s.queue.register_or_update(id, lease.expiry);
            continue;
        }
        out.push(id);
        lease.queued = retry;
        s.queue.register_or_update(id, retry);
    }
    out
}

/// etcd's spreading in `Promote`, on remaining times sorted ascending (ns): returns `(index,
/// new remaining)` for every lease pushed back, so that at most 3/4 of `rate` fall in any one
/// second-long window.
pub(crate) fn spread(sorted_remaining: &[u64], rate: usize) -> Vec<(usize, u64)> {
    const SECOND: f64 = 1e9;
    let target = (3 * rate / 4) as f64;
    let mut moved = Vec::new();
    let Some(&first) = sorted_remaining.first() else {
        return moved;
    };
    if target == 0.0 {
        return moved;
    }
    let mut base = first as f64;
    let mut next = base + SECOND;
    let mut expires = 0.0;
    for (i, &remaining) in sorted_remaining.iter().enumerate() {
        let remaining = remaining as f64;
        if remaining > next {
            base = remaining;
            next = base + SECOND;
            expires = 1.0;
            continue;
        }
        expires += 1.0;
        if expires <= target {
            continue;
        }
        let delay = base + SECOND * (expires / target) - remaining;
        next = base + delay;
        moved.push((i, (remaining + delay) as u64));
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lessor() -> EtcdLessor {
        EtcdLessor::new(true, HeapKind::Fix, Duration::from_secs(2))
    }

    #[test]
    fn grant_checks_in_etcds_order() {
        let l = lessor();
        assert_eq!(l.grant(0, Duration::from_secs(1)), Err(Refused::NotFound));
        let huge = lessor::MAX_TTL + Duration::from_secs(1);
        assert_eq!(l.grant(1, huge), Err(Refused::TtlTooLarge));
        assert_eq!(l.len(), 0);
        assert_eq!(l.grant(1, Duration::from_secs(1)), Ok(()));
        assert_eq!(l.grant(1, huge), Err(Refused::TtlTooLarge));
        assert_eq!(l.grant(1, Duration::from_secs(9)), Err(Refused::Exists));
        // Raised to the 2 s minimum.
        assert_eq!(l.renew(1), Ok(Duration::from_secs(2)));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn renew_revoke_attach() {
        let l = lessor();
        assert_eq!(l.renew(9), Err(Refused::NotFound));
        l.grant(1, Duration::from_secs(10)).unwrap();
        l.grant(2, Duration::from_secs(10)).unwrap();
        assert_eq!(l.attach(3, &[b"x"]), Err(Refused::NotFound));
        l.attach(1, &[b"x", b"y"]).unwrap();
        l.attach(2, &[b"y"]).unwrap(); // moves y
        assert_eq!(l.get_lease(b"y"), Some(2));
        l.revoke(1).unwrap();
        assert_eq!(l.get_lease(b"x"), None);
        assert_eq!(l.get_lease(b"y"), Some(2));
        assert_eq!(l.revoke(1), Err(Refused::NotFound));
        l.demote();
        assert_eq!(l.renew(2), Err(Refused::NotPrimary));
        assert!(!l.expiring(2));
        assert_eq!(l.queue_len(), 0);
        l.promote(Duration::ZERO);
        assert!(l.expiring(2));
        assert_eq!(l.queue_len(), 1);
    }

    #[test]
    fn checker_pass_finds_expired_leases_skips_revoked_and_retries() {
        for heap in [HeapKind::Fix, HeapKind::Lazy] {
            let l = EtcdLessor::new(true, heap, Duration::from_millis(1));
            for id in 1..=3 {
                l.grant(id, Duration::from_secs(1)).unwrap();
            }
            l.renew(2).unwrap();
            l.revoke(3).unwrap();
            let later = l.shared.now() + nanos(Duration::from_millis(500));
            assert!(l.find_expired_at(later).is_empty(), "{heap:?}");
            let after = l.shared.now() + nanos(Duration::from_secs(2));
            let mut got = l.find_expired_at(after);
            got.sort_unstable();
            assert_eq!(got, [1, 2], "{heap:?}");
            // Not revoked: offered again only after the retry interval.
            assert!(l.find_expired_at(after + 1).is_empty(), "{heap:?}");
            let retry = after + nanos(RETRY_INTERVAL);
            assert_eq!(l.find_expired_at(retry).len(), 2, "{heap:?}");
        }
    }

    #[test]
    fn checker_pass_is_capped_at_half_the_revoke_rate() {
        let l = EtcdLessor::new(true, HeapKind::Fix, Duration::from_millis(1));
        for id in 1..=2000 {
            l.grant(id, Duration::from_millis(1)).unwrap();
        }
        let later = l.shared.now() + nanos(Duration::from_secs(1));
        assert_eq!(l.find_expired_at(later).len(), REVOKE_RATE / 2);
    }

    #[test]
    fn lazy_queue_grows_with_renewals_and_the_notifier_does_not() {
        for (heap, want) in [(HeapKind::Fix, 1), (HeapKind::Lazy, 11)] {
            let l = EtcdLessor::new(true, heap, Duration::from_millis(1));
            l.grant(1, Duration::from_secs(60)).unwrap();
            for _ in 0..10 {
                l.renew(1).unwrap();
            }
            assert_eq!(l.queue_len(), want, "{heap:?}");
        }
    }

    #[test]
    fn promote_spreads_a_pile_up_to_three_quarters_of_the_rate() {
        let l = EtcdLessor::new(false, HeapKind::Fix, Duration::from_millis(1));
        for id in 1..=3000 {
            l.grant(id, Duration::from_secs(60)).unwrap();
        }
        l.promote(Duration::ZERO);
        let s = l.shared.lock();
        let first = s.leases.values().map(|l| l.expiry).min().unwrap();
        let in_first_second = s
            .leases
            .values()
            .filter(|l| l.expiry < first + nanos(Duration::from_secs(1)))
            .count();
        assert!(in_first_second <= 750 + 1, "{in_first_second}");
        assert_eq!(s.queue.len(), 3000);
    }

    #[test]
    fn spread_matches_etcds_formula() {
        assert!(spread(&[1_000_000_000; 7], 10).is_empty());
        let moved = spread(&[10_000_000_000; 10], 10); // target 7
        let want: Vec<(usize, u64)> = (7..10)
            .map(|i| (i, 10_000_000_000 + ((i as f64 + 1.0) * 1e9 / 7.0) as u64))
            .collect();
        assert_eq!(moved, want);
    }
}
