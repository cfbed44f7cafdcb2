//! `expiry`: N leases reaching their deadlines together (a fixed `--ttl`) or spread over a
//! window (a uniform one); measures how late each is delivered, on the real clock.
//!
//! # How deadlines are set and lateness is measured
//!
//! The TTL distribution gives each lease an *offset*: its deadline is `t0 + offset`, where `t0`
//! lies after the grant phase (200 ms + 1.5 us per lease from its start), so that all leases
//! are in place before the first one is due. Each lease is granted with TTL = its deadline -
//! the time read just before the grant call; the engine's own deadline cannot be earlier than
//! that (it reads the clock later and rounds up), so `lateness = delivery - deadline` is never
//! negative unless the engine delivers early, which the harness counts and fails on.
//!
//! The main thread consumes the expired channel and stamps each batch as it arrives; a second
//! thread revokes every lease received (as etcd's server does, off the channel's reader). It waits until every lease has arrived or
//! `--duration` has passed since the last deadline. A lease never delivered counts with the
//! time waited as its lateness (a lower bound) and is reported as not delivered: at 1000
//! leases/s, etcd's design needs N/1000 seconds to hand out N leases.
//!
//! Throughput is leases delivered per second, from the first deadline to the last delivery.
//! No floor. Checks: every lease was granted, and the target holds N - the revokes.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::common::Ctx;
use super::driver::{run_threads, Body, Deadline};
use crate::bench::alloc;
use crate::bench::outcome::Outcome;
use crate::bench::rng::{count_of, id_of};
use crate::bench::stats::{nanos, now, Hist, Sampler};
use crate::bench::target::{Engine, Ops};

/// The longest the consumer waits for one batch before checking the time.
const POLL: Duration = Duration::from_millis(100);

/// Grant-phase budget: fixed part.
const SETUP_BASE: Duration = Duration::from_millis(200);
/// Grant-phase budget: per lease.
const SETUP_PER_LEASE: Duration = Duration::from_nanos(1500);

/// Grants every thread's leases to fall due at `t0 + offset`, noting each lease's deadline.
struct Grants<'c, 'p> {
    ctx: &'c Ctx<'p>,
    t0: Instant,
    /// Per thread: the k-th lease's deadline as ns after `t0`.
    deadlines: &'c [Mutex<Vec<u64>>],
}

impl Body for Grants<'_, '_> {
    type Out = u64;

    fn run<W: Ops>(&self, t: usize, w: &mut W, _: &mut Sampler, _: Deadline) -> u64 {
        let c = self.ctx;
        let mut mine = self.deadlines[t]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut granted = 0;
        for k in 0..count_of(t, c.threads, 0, c.n) {
            let id = id_of(t, c.threads, 0, k);
            let due = self.t0 + c.ttl_of(id);
            let before = now();
            let ttl = due
                .saturating_duration_since(before)
                .max(Duration::from_millis(1));
            granted += u64::from(w.grant(id, ttl));
            mine.push(nanos((before + ttl).saturating_duration_since(self.t0)));
        }
        granted
    }
}

/// What the consumer saw.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: u64,
    early: u64,
    /// How much before its deadline the earliest early delivery came.
    early_by: Duration,
    revoked: u64,
    lateness: Hist,
    last: Option<Instant>,
}

/// Receives until every lease has arrived or `until`, and hands each batch to a second thread
/// that revokes it, so that delivery is not held up by revocation (etcd's server, too, revokes
/// in other goroutines than the one that reads the channel).
fn consume<E: Engine>(target: &E, t0: Instant, deadlines: &[u64], until: Instant) -> Deliveries {
    let n = deadlines.len();
    let mut seen = vec![false; n];
    let mut d = Deliveries::default();
    let (tx, rx) = crossbeam_channel::unbounded::<Vec<i64>>();
    let revoked = std::thread::scope(|s| {
        let revoker = s.spawn(move || {
            let mut revoked = 0u64;
            for batch in rx {
                for id in batch {
                    revoked += u64::from(target.revoke_now(id));
                }
            }
            revoked
        });
        while (d.delivered as usize) < n {
            let left = until.saturating_duration_since(now());
            if left.is_zero() {
                break;
            }
            let Some(batch) = target.recv_expired(left.min(POLL)) else {
                continue;
            };
            let at = now();
            for &id in &batch {
                let Some(i) = usize::try_from(id - 1).ok().filter(|i| *i < n) else {
                    continue;
                };
                if std::mem::replace(&mut seen[i], true) {
                    continue; // delivered again (not revoked yet when retried)
                }
                d.delivered += 1;
                let due = t0 + Duration::from_nanos(deadlines[i]);
                match at.checked_duration_since(due) {
                    Some(late) => d.lateness.record_duration(late),
                    None => {
                        d.early += 1;
                        d.early_by = d.early_by.max(due - at);
                    }
                }
                d.last = Some(at);
            }
            let _ = tx.send(batch);
        }
        drop(tx);
        revoker.join().expect("the revoker thread panicked")
    });
    d.revoked = revoked;
    let end = now();
    for (i, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
        let due = t0 + Duration::from_nanos(deadlines[i]);
        d.lateness
            .record_duration(end.saturating_duration_since(due));
    }
    d
}

/// Runs `expiry` on one engine.
pub(crate) fn run<E: Engine>(ctx: &Ctx<'_>) -> Outcome {
    let per_thread: Vec<Mutex<Vec<u64>>> = (0..ctx.threads)
        .map(|t| {
            Mutex::new(Vec::with_capacity(
                count_of(t, ctx.threads, 0, ctx.n) as usize
            ))
        })
        .collect();
    ctx.say(E::LABEL, "granting");
    let before = alloc::live();
    let target = E::build(&ctx.config(true));
    let setup = SETUP_BASE + SETUP_PER_LEASE * u32::try_from(ctx.n).unwrap_or(u32::MAX);
    let t0 = now() + setup;
    let body = Grants {
        ctx,
        t0,
        deadlines: &per_thread,
    };
    let granted: u64 = run_threads(&target, ctx.threads, None, &body)
        .outs
        .iter()
        .sum();
    target.settle();
    let bytes = (alloc::live() - before) as f64 / ctx.n as f64;

    // Every lease's deadline, by lease index.
    let mut deadlines = vec![0u64; ctx.n as usize];
    for (t, mine) in per_thread.into_iter().enumerate() {
        let mine = mine.into_inner().unwrap_or_else(PoisonError::into_inner);
        for (k, due) in mine.into_iter().enumerate() {
            deadlines[(id_of(t, ctx.threads, 0, k as u64) - 1) as usize] = due;
        }
    }
    let first = deadlines.iter().copied().min().unwrap_or(0);
    let last = deadlines.iter().copied().max().unwrap_or(0);
    let until = t0 + Duration::from_nanos(last) + ctx.duration;
    ctx.say(E::LABEL, "waiting for expiries");
    let d = consume(&target, t0, &deadlines, until);

    let first_due = t0 + Duration::from_nanos(first);
    let elapsed = d
        .last
        .map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(first_due)
        })
        .max(Duration::from_millis(1));
    let mut out = Outcome {
        ops: d.delivered,
        elapsed,
        latency: d.lateness.clone(),
        bytes_per_lease: bytes,
        rounds: 1,
        lateness: Some(d.lateness),
        delivered: Some(d.delivered),
        early: d.early,
        early_by: d.early_by,
        ..Outcome::default()
    };
    out.check("leases granted = N", ctx.n, granted);
    out.check(
        "leases after = N - revokes",
        ctx.n - d.revoked,
        target.len() as u64,
    );
    out.queue_entries = target.queue_len().map(|n| n as u64);
    out
}
