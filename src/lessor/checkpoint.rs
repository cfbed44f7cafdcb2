//! Checkpoints (etcd v3.4): a lease's remaining TTL, recorded and logged so that a restart or
//! a promote resumes from it instead of the full TTL; the first renew after it clears it, in
//! memory and in the log.
//!
//! # Ground rules
//!
//! - A checkpoint lives in two places: the state word's `CHECKPOINTED` bit says it is in force
//!   (promote reads it), and `Extra::checkpoint_ms` is the value of the lease's last
//!   checkpoint record in the log (0: none, or cleared).
//! - The lease's stripe orders checkpoint records with their effect: each one is logged, and
//!   `checkpoint_ms` written, under it. The bit is set only under the stripe *and* the shard's
//!   exclusive lock, which shuts out a renew's swap (renew holds the shared lock). It is
//!   cleared under the stripe, or by a renew's swap (shared lock, no stripe).
//! - **Renew**: the swap that moves the deadline also clears the bit. The renew whose swap
//!   cleared it (at most one per checkpoint: the others find it clear, so the fast path stays
//!   one shared lock and one swap) then takes the stripe and, unless the bit is set again,
//!   logs `Checkpoint { remaining_ms: 0 }` and zeroes `checkpoint_ms` before it returns. A bit
//!   set again by then was set after the swap, from a word that held the renewed deadline: that
//!   checkpoint is newer than the renew, and stays.
//! - **Checkpoint pass**: under the stripe it reads the state word, logs the remaining TTL the
//!   word gives, and sets the bit only if the word (the bit aside) has not moved since. If it
//!   has (a renew that found no bit and so logs nothing, or a promote, demote or expiry), the
//!   record just logged may be older than the renew: the pass logs a clearing after it and
//!   leaves the lease without a checkpoint. So an older checkpoint never outlives a newer
//!   renew, and an older clearing never undoes a newer checkpoint.
//! - Between a renew's swap and its clearing record the bit is clear while `checkpoint_ms` is
//!   not: the only window in which memory and log disagree, and the renew has not returned yet.
//!   Compaction writes `checkpoint_ms` (what the log says); the clearing then lands after the
//!   snapshot's boundary and is replayed on top of it.
//! - A refused record leaves memory as the log has it: a refused checkpoint changes nothing, a
//!   refused clearing puts the bit back (the renew returns the error; its new deadline stays,
//!   and the next renew tries the clearing again).
//! - Without a log the same steps run and write nothing.

use std::time::Duration;

use super::Inner;
use crate::clock::ceil_ms;
use crate::error::{Error, Result};
use crate::lease::{deadline_of, LeaseId, LeaseRecord, CHECKPOINTED, FOREVER};
use crate::sync::Ordering;
use crate::wal::Record;

impl Inner {
    /// `Lessor::checkpoint`: logs `remaining` (at least 1 ms) for the lease, then applies it.
    pub(crate) fn checkpoint(&self, id: LeaseId, remaining: Duration) -> Result<()> {
        self.check_running()?;
        let h = self.hash_id(id);
        let _stripe = self.lock_stripe(h);
        let remaining_ms = ceil_ms(remaining).max(1);
        if !self.exists(h, id) {
            return Err(Error::LeaseNotFound { id });
        }
        self.log_checkpoint(id, remaining_ms)?;
        self.apply_checkpoint(id, remaining_ms);
        Ok(())
    }

    /// Logs a checkpoint record (0: the clearing of one); the caller holds the stripe.
    fn log_checkpoint(&self, id: LeaseId, remaining_ms: u64) -> Result<()> {
        self.log(|| {
            vec![Record::Checkpoint {
                id: id.get(),
                remaining_ms,
            }]
        })
    }

    /// Sets (or, with 0, clears) a lease's checkpoint in memory: the bit and the value
    /// together. The caller holds the stripe and logged it, or is replaying the log.
    pub(crate) fn apply_checkpoint(&self, id: LeaseId, remaining_ms: u64) -> bool {
        let h = self.hash_id(id);
        self.leases.write(self.leases.index(h), |s| {
            let Some(rec) = s.get(h, id) else {
                return false;
            };
            if remaining_ms == 0 {
                rec.state.fetch_and(!CHECKPOINTED, Ordering::AcqRel);
                if let Some(e) = s.extras.get_mut(&id) {
                    e.checkpoint_ms = 0;
                }
                s.tidy(id);
            } else {
                rec.state.fetch_or(CHECKPOINTED, Ordering::AcqRel);
                s.extra_mut(id).checkpoint_ms = remaining_ms;
            }
            true
        })
    }

    /// The rare half of a renew whose swap cleared the `CHECKPOINTED` bit of grant `seq`:
    /// logs the clearing, under the stripe (see the module docs).
    ///
    /// # Errors
    ///
    /// From the log; the checkpoint is then back in force, as the log has it.
    #[cold]
    pub(crate) fn clear_renewed_checkpoint(&self, id: LeaseId, h: u64, seq: u64) -> Result<()> {
        let _stripe = self.lock_stripe(h);
        let logged = self.leases.read(self.leases.index(h), |s| {
            let rec = s.get(h, id).filter(|rec| rec.seq == seq)?;
            if rec.load() & CHECKPOINTED != 0 {
                return None; // set again after the renew's swap: a newer checkpoint
            }
            s.extras
                .get(&id)
                .map(|e| e.checkpoint_ms)
                .filter(|ms| *ms != 0)
        });
        let Some(logged_ms) = logged else {
            return Ok(()); // already cleared, or the lease is gone (and so is its checkpoint)
        };
        let cleared = self.log_checkpoint(id, 0);
        self.apply_checkpoint(id, if cleared.is_ok() { 0 } else { logged_ms });
        cleared
    }

    /// One checkpoint pass, if one is due: logs the remaining TTL of up to `checkpoint_rate`
    /// long leases. Returns how many now have a fresh checkpoint.
    pub(crate) fn checkpoint_pass(&self, now_ms: u64) -> Result<usize> {
        let Some(d) = &self.durable else {
            return Ok(0);
        };
        let Some(interval) = d.checkpoint_interval else {
            return Ok(0);
        };
        if !self.primary.load(Ordering::Acquire)
            || now_ms < d.next_checkpoint_ms.load(Ordering::Relaxed)
        {
            return Ok(0);
        }
        let interval_ms = ceil_ms(interval);
        let budget = d.checkpoint_rate as usize;
        let mut due: Vec<LeaseId> = Vec::new();
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                let long = s
                    .leases
                    .iter()
                    .filter_map(|(id, rec)| due_word(rec, now_ms, interval_ms).map(|_| *id));
                due.extend(long);
            });
        }
        let more = due.len() > budget;
        due.truncate(budget);
        let mut done = 0;
        for id in due {
            if self.checkpoint_one(id, now_ms, interval_ms)? {
                done += 1;
            }
        }
        // A full pass every interval; a pass cut short by the rate goes on a second later.
        let next = if more { 1000 } else { interval_ms };
        d.next_checkpoint_ms
            .store(now_ms.saturating_add(next), Ordering::Relaxed);
        Ok(done)
    }

    /// Checkpoints one lease for the pass, under its stripe: returns whether the lease now has
    /// the checkpoint (see the module docs for a word that moves meanwhile).
    fn checkpoint_one(&self, id: LeaseId, now_ms: u64, interval_ms: u64) -> Result<bool> {
        let h = self.hash_id(id);
        let idx = self.leases.index(h);
        let _stripe = self.lock_stripe(h);
        let seen = self.leases.read(idx, |s| {
            s.get(h, id)
                .and_then(|rec| due_word(rec, now_ms, interval_ms))
        });
        let Some(seen) = seen else {
            return Ok(false); // revoked, expired or demoted meanwhile
        };
        let remaining_ms = deadline_of(seen) - now_ms;
        self.log_checkpoint(id, remaining_ms)?;
        let applied = self.leases.write(idx, |s| {
            // The exclusive lock keeps renew's swap out between this check and the bit.
            let Some(rec) = s.get(h, id) else {
                return false;
            };
            if rec.load() & !CHECKPOINTED != seen & !CHECKPOINTED {
                return false;
            }
            rec.state.fetch_or(CHECKPOINTED, Ordering::AcqRel);
            s.extra_mut(id).checkpoint_ms = remaining_ms;
            true
        });
        if applied {
            return Ok(true);
        }
        // The word moved after it was read: the record just logged may predate a renew that
        // logged nothing. Clear it in the log and in memory; if even that is refused, the log
        // ends with the record above, so memory takes it too.
        let cleared = self.log_checkpoint(id, 0);
        self.apply_checkpoint(id, if cleared.is_ok() { 0 } else { remaining_ms });
        cleared.map(|()| false)
    }
}

/// The state word of a lease the pass should checkpoint (live, deadline ahead, TTL at least
/// the interval), or `None`.
fn due_word(rec: &LeaseRecord, now_ms: u64, interval_ms: u64) -> Option<u64> {
    let word = rec.load();
    let deadline = deadline_of(word);
    let due = LeaseRecord::is_live(word)
        && deadline != FOREVER
        && deadline > now_ms
        && rec.ttl_ms >= interval_ms;
    due.then_some(word)
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    //! A refused record leaves memory as the log has it.

    use std::path::Path;
    use std::time::Duration;

    use crate::wal::fake::{FailingFs, MemFs, Op};
    use crate::wal::shared_fs;
    use crate::{Error, LeaseId, Lessor, ManualClock, Remaining};

    fn open(fs: &FailingFs, clock: &ManualClock) -> Lessor {
        Lessor::builder()
            .clock(clock.clone())
            .min_ttl(Duration::from_millis(1))
            .expiry_thread(false)
            .checkpoints(Some(Duration::from_secs(60)), 1000)
            .data_dir(Path::new("/data"))
            .file_system(shared_fs(fs.clone()))
            .build()
            .expect("opens")
    }

    /// A lessor on a fresh in-memory disk (`mem`, seen through the failing `fs`) and clock.
    fn fresh() -> (MemFs, FailingFs, ManualClock, Lessor) {
        let mem = MemFs::new();
        let fs = FailingFs::new(mem.clone());
        let clock = ManualClock::new();
        let l = open(&fs, &clock);
        (mem, fs, clock, l)
    }

    /// What a promote would give the lease now: its checkpoint in force, else its TTL.
    fn promoted(l: &Lessor, id: LeaseId) -> Remaining {
        l.demote();
        l.promote(Duration::ZERO);
        l.lookup(id).expect("live").remaining()
    }

    fn secs(s: u64) -> Remaining {
        Remaining::Left(Duration::from_secs(s))
    }

    #[test]
    fn a_refused_clearing_fails_the_renew_and_keeps_the_checkpoint() {
        let (mem, fs, clock, l) = fresh();
        let id = LeaseId::new(1);
        l.grant(id, Duration::from_secs(600)).unwrap();
        l.checkpoint(id, Duration::from_secs(5)).unwrap();

        fs.fail_nth(Op::Write, 1);
        assert!(matches!(l.renew(id), Err(Error::Io(_))));
        assert_eq!(l.check_invariants(), Ok(()));
        assert_eq!(promoted(&l, id), secs(5), "still in force, as in the log");
        let l2 = open(&FailingFs::new(mem.crashed()), &clock);
        assert_eq!(l2.lookup(id).unwrap().remaining(), secs(5));
        drop(l2);

        // The next renew clears it, in the log too.
        assert_eq!(l.renew(id).unwrap(), Duration::from_secs(600));
        assert_eq!(l.check_invariants(), Ok(()));
        assert_eq!(promoted(&l, id), secs(600));
        let l2 = open(&FailingFs::new(mem.crashed()), &clock);
        assert_eq!(l2.lookup(id).unwrap().remaining(), secs(600));
    }

    #[test]
    fn a_refused_pass_leaves_no_checkpoint_and_a_renew_logs_nothing() {
        let (_mem, fs, clock, l) = fresh();
        let id = LeaseId::new(1);
        l.grant(id, Duration::from_secs(600)).unwrap();
        clock.advance(Duration::from_secs(100));
        fs.fail_nth(Op::Write, 1);
        assert!(matches!(l.run_maintenance_once(), Err(Error::Io(_))));
        assert_eq!(l.check_invariants(), Ok(()));
        assert_eq!(promoted(&l, id), secs(600));

        // Without a checkpoint in force a renew writes nothing: a failing log cannot fail it.
        fs.set_disk_full(true);
        assert!(l.renew(id).is_ok());
        fs.set_disk_full(false);

        clock.advance(Duration::from_secs(60)); // the next pass is due
        assert_eq!(l.run_maintenance_once().unwrap(), 1);
        assert_eq!(promoted(&l, id), secs(540));
    }
}
