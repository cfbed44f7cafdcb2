//! `mixed`: session tracking. N sessions, each renewing every TTL/3 on its own schedule, plus a
//! churn of sessions that end (revoke) and start (grant, attach K keys).
//!
//! The target is built with leases `1..=N` while not primary, then promoted (untimed), so that
//! every session's deadline starts from the beginning of the run. Each thread owns its
//! sessions and keeps their schedule in a min-heap; session phases are spread uniformly over
//! the first period. A thread issues each event when it falls due, waiting (sleeping, or
//! yielding for the last 200 us) when it is ahead, and running flat out when it falls behind:
//! so the throughput is the offered rate while the engine keeps up, and its capacity when it
//! does not. At each event, with probability `churn / 3` (so `churn` of the sessions per TTL),
//! the session is replaced: revoke, grant a fresh id, attach K keys; otherwise it renews. A
//! renewal that finds its session expired counts as lost and the session starts afresh.
//!
//! Reported beyond the latencies: lost sessions, how late events were issued against their
//! schedule (`behind`), and the offered rate. No floor: the map operations are mixed here.
//! Check: the target holds N + grants - revokes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Duration;

use super::common::{build_prefilled, Ctx};
use super::driver::{run_threads, Body, Deadline};
use crate::bench::outcome::Outcome;
use crate::bench::rng::{count_of, hash64, id_of, Rng};
use crate::bench::stats::{nanos, now, Hist, Sampler};
use crate::bench::target::{keys_into, Engine, Ops, Renewed};

/// Below this much time ahead of schedule a thread spins instead of sleeping.
const SPIN_NS: u64 = 200_000;
/// Events between two deadline checks.
const CHECK_EVENTS: u32 = 64;

/// One session: its current lease and its renew period.
#[derive(Debug, Clone, Copy)]
struct Session {
    id: i64,
    ttl: Duration,
    period_ns: u64,
}

/// One thread's sessions and their schedule.
#[derive(Debug)]
struct Schedule {
    sessions: Vec<Session>,
    /// (due, session index), ns since the thread started.
    due: BinaryHeap<Reverse<(u64, u32)>>,
}

/// Events per second the schedule asks for, and the schedules.
fn schedules(ctx: &Ctx<'_>) -> (f64, Vec<Mutex<Option<Schedule>>>) {
    let mut events_per_sec = 0.0;
    let scheds = (0..ctx.threads)
        .map(|t| {
            let count = count_of(t, ctx.threads, 0, ctx.n);
            let mut sessions = Vec::with_capacity(count as usize);
            let mut due = BinaryHeap::with_capacity(count as usize);
            for k in 0..count {
                let id = id_of(t, ctx.threads, 0, k);
                let ttl = ctx.ttl_of(id);
                let period_ns = (nanos(ttl) / 3).max(1);
                events_per_sec += 1e9 / period_ns as f64;
                let phase = hash64(ctx.seed ^ 0x5EED, id as u64) % period_ns;
                due.push(Reverse((phase, k as u32)));
                sessions.push(Session { id, ttl, period_ns });
            }
            Mutex::new(Some(Schedule { sessions, due }))
        })
        .collect();
    (events_per_sec, scheds)
}

/// One thread's counts.
#[derive(Debug, Default)]
struct Tally {
    ops: u64,
    ok: u64,
    lost: u64,
    grants: u64,
    revokes: u64,
    behind: Hist,
}

/// One thread's sessions.
struct Sessions<'c, 'p> {
    ctx: &'c Ctx<'p>,
    schedules: &'c [Mutex<Option<Schedule>>],
}

impl Body for Sessions<'_, '_> {
    type Out = Tally;

    /// Paced: the clock is read at every event anyway, so time every operation.
    const SAMPLE_EVERY: u32 = 1;

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> Tally {
        let c = self.ctx;
        let mut sched = self.schedules[t]
            .lock()
            .map(|mut g| g.take())
            .ok()
            .flatten()
            .expect("one schedule per thread");
        let mut tally = Tally::default();
        let mut rng = Rng::new(c.seed, 3000 + t as u64);
        // Replace with probability churn/3 per event: a 32-bit threshold.
        let threshold = (c.churn / 3.0 * f64::from(u32::MAX)) as u64;
        let mut fresh = 0;
        let mut buf = Vec::with_capacity(c.keys);
        let start = now();
        let mut events = 0u32;
        while let Some(&Reverse((due, slot))) = sched.due.peek() {
            events = events.wrapping_add(1);
            if events % CHECK_EVENTS == 0 && deadline.passed() {
                break;
            }
            let at = nanos(now() - start);
            if due > at {
                if deadline.passed() {
                    break;
                }
                pace(due - at);
                continue;
            }
            sched.due.pop();
            tally.behind.record(at - due);
            let sess = &mut sched.sessions[slot as usize];
            let mut restart = false;
            if (rng.next_u64() >> 32) < threshold {
                keys_into(&mut buf, sess.id, c.keys);
                let old = sess.id;
                tally.revokes += u64::from(s.op(|| w.revoke(old, &buf)));
                tally.ops += 1;
                restart = true;
            } else {
                let id = sess.id;
                tally.ops += 1;
                match s.op(|| w.renew(id)) {
                    Renewed::Ok => tally.ok += 1,
                    _ => {
                        tally.lost += 1;
                        restart = true;
                    }
                }
            }
            if restart {
                // A new session: a fresh id, granted and given its keys.
                let id = id_of(t, c.threads, c.n, fresh);
                fresh += 1;
                let ttl = sess.ttl;
                tally.grants += u64::from(s.op(|| w.grant(id, ttl)));
                tally.ops += 1;
                if c.keys > 0 {
                    keys_into(&mut buf, id, c.keys);
                    s.op(|| w.attach(id, &buf));
                    tally.ops += 1;
                }
                sess.id = id;
            }
            sched.due.push(Reverse((due + sess.period_ns, slot)));
        }
        tally
    }
}

/// Waits `ns` (the thread is ahead of its schedule).
fn pace(ns: u64) {
    if ns > SPIN_NS {
        // Pacing is the point here: the thread has nothing to do until the next event.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_nanos(ns - SPIN_NS / 2));
    } else {
        std::thread::yield_now();
    }
}

/// Runs `mixed` on one engine.
pub(crate) fn run<E: Engine>(ctx: &Ctx<'_>) -> Outcome {
    let (target, bytes) = build_prefilled::<E>(ctx, false, ctx.keys);
    target.promote(Duration::ZERO);
    target.settle();
    let (events_per_sec, schedules) = schedules(ctx);
    ctx.say(E::LABEL, "running sessions");
    let body = Sessions {
        ctx,
        schedules: &schedules,
    };
    let timed = run_threads(&target, ctx.threads, Some(ctx.duration), &body);
    let mut sum = Tally::default();
    for t in &timed.outs {
        sum.ops += t.ops;
        sum.ok += t.ok;
        sum.lost += t.lost;
        sum.grants += t.grants;
        sum.revokes += t.revokes;
        sum.behind.merge(&t.behind);
    }
    // Per event: a renew (1 op) or, with probability p, revoke + grant (+ attach).
    let p = ctx.churn / 3.0;
    let per_event = (1.0 - p) + p * (2.0 + f64::from(u8::from(ctx.keys > 0)));
    let mut out = Outcome {
        ops: sum.ops,
        errors: sum.lost,
        elapsed: timed.elapsed,
        latency: timed.latency,
        bytes_per_lease: bytes,
        rounds: 1,
        lost: Some(sum.lost),
        behind: Some(sum.behind),
        offered_ops_per_sec: Some(events_per_sec * per_event),
        ..Outcome::default()
    };
    out.check(
        "leases after the run = N + grants - revokes",
        ctx.n + sum.grants - sum.revokes,
        target.len() as u64,
    );
    out.queue_entries = target.queue_len().map(|n| n as u64);
    out
}
