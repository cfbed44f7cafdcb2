//! Operation-sequence model of the lessor: bytes -> ops, run against a real [`Lessor`] and a
//! plain `BTreeMap` model side by side, comparing every answer.
//!
//! # Ground rules
//!
//! - Shared, by path, between the `model_ops` cargo-fuzz target
//!   (`fuzz/fuzz_targets/model_ops.rs`: `#[path = "../../tests/it/model_ops.rs"]`) and the
//!   integration tests (`tests/it/model.rs` declares it as `model::ops`; the property test and
//!   the named crash replays in `fuzz_regressions.rs` call [`run`]). The same bytes therefore
//!   decode to the same ops everywhere: a crash file under `tests/it/fuzz_data/` replays
//!   exactly.
//! - It depends on `lessor` (with `test-util`) and std only: no `arbitrary`, no proptest.
//!   Inputs are decoded by the small [`Reader`] below, so no extra dev-dependency is needed.
//! - A mismatch, a broken invariant or an engine panic panics with the decoded ops so far.
//! - The model follows the contract (`shared/reference/lessor-api.md`) and the public docs; it
//!   also pins two engine choices the docs state: lookups measure from "now" rounded *up* to
//!   the millisecond, expiry from "now" rounded *down*.
//!
//! The lessor runs on a [`ManualClock`], with no expiry thread, a 1 ms minimum TTL and tick,
//! `revoke_rate(u32::MAX)` (so promote never spreads expiries: spreading is covered by
//! `tests/it/promote.rs`), and a recording range deleter. When the configuration byte's top
//! bit is set it is durable: its log (fsync `Always`, 256-byte segments so that they rotate
//! often) lives on a [`MemFs`], the crash and restart ops reopen it on what survived, and a
//! compaction op replaces its segments by a snapshot (which must keep grant order).
//!
//! # Crash and restart
//!
//! - **Crash** takes the file system's crashed view ([`MemFs::crashed`]: only synced bytes and
//!   directory entries) at the moment of the "power loss", then drops the old lessor. Its
//!   `Drop` still closes its log, but on the old file system, which is then thrown away: the
//!   new lessor opens a copy that no thread of the old one can reach.
//! - **Restart** stops the lessor, drops it (which releases the log's lock) and reopens the
//!   same, live file system.
//! - Either way the new lessor has the same clock (its engine time starts again at 0) and
//!   starts primary exactly when the old one was primary at that moment; a durable one
//!   replays its log and, if primary, promotes with no extension. Without a log it starts
//!   empty. The reference model's `reopen` says what survives; the state is compared (every
//!   lookup, key, `leases()`, `len()`, `is_primary()`, plus the counts of
//!   [`Lessor::recovery`]) right after.

#[path = "model_ref.rs"]
mod reference;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lessor::test_util::MemFs;
use lessor::{
    Error, ExpiryMode, Lease, LeaseId, Lessor, ManualClock, RangeDeleter, TxnDelete, MAX_TTL,
};

use self::reference::{Key, MErr, Model, View, FOREVER, MAX_KEY};

/// Lease ids the ops pick from: 0 (never valid), small ones of both signs, the extremes.
const IDS: [i64; 8] = [1, 2, 3, -1, -2, i64::MAX, i64::MIN, 0];

/// Keys the ops pick from; the last two are invalid (empty, one byte too long).
const KEYS: [Key; 7] = [
    Key(b"a"),
    Key(b"b"),
    Key(b"c"),
    Key(b"ab"),
    Key(b"zz"),
    Key(b""),
    Key(b"012345678"),
];

/// Keys that can ever be attached.
const VALID_KEYS: usize = 5;

/// TTLs a grant picks from: zero, sub-millisecond, small, the maximum and just over it.
const TTLS: [Duration; 12] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_micros(1500),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(3),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(40),
    Duration::from_secs(1),
    MAX_TTL,
    Duration::from_nanos(9_000_000_000_000_000_001),
];

/// Whole-second TTLs for `grant_secs`: negative and zero are raised to the minimum.
const TTL_SECS: [i64; 6] = [-5, 0, 1, 2, 9_000_000_000, 9_000_000_001];

/// Clock steps, including sub-millisecond ones (deadlines round up, "now" rounds down).
const STEPS: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_micros(1),
    Duration::from_micros(400),
    Duration::from_micros(999),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(3),
    Duration::from_millis(7),
    Duration::from_millis(40),
    Duration::from_secs(2),
];

/// Promote's `extend` and checkpoint's `remaining` values.
const EXTRAS: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_micros(300),
    Duration::from_millis(1),
    Duration::from_millis(4),
    Duration::from_millis(30),
    Duration::from_secs(1),
];

// ===== decoding =====

/// Reads bytes one at a time; `None` once the input is used up.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn pick<T: Copy>(&mut self, table: &[T]) -> Option<T> {
        Some(table[usize::from(self.byte()?) % table.len()])
    }

    /// One to three keys (mostly valid ones).
    fn keys(&mut self) -> Option<Vec<Key>> {
        let b = self.byte()?;
        let n = 1 + usize::from(b % 3);
        (0..n)
            .map(|_| {
                let k = self.byte()?;
                // 7 in 8 picks come from the valid keys.
                Some(if k % 8 == 7 {
                    KEYS[VALID_KEYS + usize::from(k / 8) % (KEYS.len() - VALID_KEYS)]
                } else {
                    KEYS[usize::from(k) % VALID_KEYS]
                })
            })
            .collect()
    }
}

/// The lessor's configuration, from the input's first byte.
#[derive(Debug, Clone, Copy)]
struct Config {
    shards: usize,
    mode: ExpiryMode,
    retry_ms: u64,
    primary: bool,
    batch_max: usize,
    /// A log on a [`MemFs`] (the top bit; inputs saved before it existed leave it clear).
    durable: bool,
}

impl Config {
    fn decode(b: u8) -> Self {
        Config {
            shards: 1 << (b & 3),
            mode: if b & 4 == 0 {
                ExpiryMode::Notify
            } else {
                ExpiryMode::Revoke
            },
            retry_ms: if b & 8 == 0 { 3_600_000 } else { 3 },
            primary: b & 16 == 0,
            batch_max: [1024, 1, 2, 1024][usize::from(b >> 5) & 3],
            durable: b & 128 != 0,
        }
    }
}

/// One operation of a sequence.
#[derive(Debug, Clone)]
enum Op {
    Grant(i64, Duration),
    GrantSecs(i64, i64),
    Renew(i64),
    /// `renew_many` of one to four ids (perhaps one twice).
    RenewMany(Vec<i64>),
    Revoke(i64),
    Attach(i64, Vec<Key>),
    Detach(i64, Vec<Key>),
    Checkpoint(i64, Duration),
    Advance(Duration),
    RunExpiry,
    Promote(Duration),
    Demote,
    Stop,
    /// Power loss, then a new lessor on what was durable.
    Crash,
    /// A clean stop, then a new lessor on the same files.
    Restart,
    /// Compacts the log (durable configurations only).
    Compact,
}

fn decode_op(r: &mut Reader<'_>, durable: bool) -> Option<Op> {
    Some(match r.byte()? % 16 {
        0 | 1 => Op::Grant(r.pick(&IDS)?, r.pick(&TTLS)?),
        2 => Op::GrantSecs(r.pick(&IDS)?, r.pick(&TTL_SECS)?),
        3 | 4 => Op::Renew(r.pick(&IDS)?),
        5 => Op::Revoke(r.pick(&IDS)?),
        6 => Op::Attach(r.pick(&IDS)?, r.keys()?),
        7 => Op::Detach(r.pick(&IDS)?, r.keys()?),
        8 => Op::Checkpoint(r.pick(&IDS)?, r.pick(&EXTRAS)?),
        9 | 10 => Op::Advance(r.pick(&STEPS)?),
        11 | 12 => Op::RunExpiry,
        13 => Op::Promote(r.pick(&EXTRAS)?),
        14 => Op::Demote,
        // Stop ends most of what follows, so keep it rare: 1 in 64 of these bytes; crash (6
        // in 64) and restart (3 in 64) came later and took values that meant an expiry step.
        // Compaction (4 in 64) came last and takes such values only with a log, so every
        // input without one (all those saved before logs came) decodes as before.
        _ => match r.byte()? % 64 {
            0 => Op::Stop,
            1..=6 => Op::Crash,
            7..=9 => Op::Restart,
            10..=13 if durable => Op::Compact,
            // Batch renews (4 in 64) came after compaction, from values that meant an expiry
            // step.
            14..=17 => {
                let n = 1 + usize::from(r.byte()? % 4);
                Op::RenewMany((0..n).map(|_| r.pick(&IDS)).collect::<Option<_>>()?)
            }
            _ => Op::RunExpiry,
        },
    })
}

/// Decodes a whole input: the configuration, then ops until the bytes run out.
fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut r = Reader(data);
    let cfg = Config::decode(r.byte().unwrap_or(0));
    let mut ops = Vec::new();
    while let Some(op) = decode_op(&mut r, cfg.durable) {
        ops.push(op);
    }
    (cfg, ops)
}

// ===== answers =====

/// A lease as the public API shows it.
fn view(l: &Lease) -> View {
    (l.id().get(), l.ttl(), l.remaining(), l.keys().to_vec())
}

/// The model's name for an engine error.
fn merr(e: &Error) -> MErr {
    match e {
        Error::LeaseNotFound { id } => MErr::NotFound(id.get()),
        Error::LeaseExpired { id } => MErr::Expired(id.get()),
        Error::LeaseExists { id } => MErr::Exists(id.get()),
        Error::TtlTooLarge { given, max } if *max == MAX_TTL => MErr::TtlTooLarge(*given),
        Error::NotPrimary => MErr::NotPrimary,
        Error::EmptyKey => MErr::EmptyKey,
        Error::KeyTooLarge { given, limit } if *limit == MAX_KEY => MErr::KeyTooLarge(*given),
        Error::Stopped => MErr::Stopped,
        other => MErr::Other(format!("{other:?}")),
    }
}

// ===== the range deleter =====

/// Records every revoke transaction: the keys it deleted, in call order, once it ended.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Vec<Vec<u8>>>>>);

struct RecTxn {
    keys: Vec<Vec<u8>>,
    sink: Recorder,
}

impl RangeDeleter for Recorder {
    fn begin(&self) -> Box<dyn TxnDelete> {
        Box::new(RecTxn {
            keys: Vec::new(),
            sink: self.clone(),
        })
    }
}

impl TxnDelete for RecTxn {
    fn delete_range(&mut self, key: &[u8], end: Option<&[u8]>) -> (i64, i64) {
        assert!(end.is_none(), "revoke deletes single keys");
        self.keys.push(key.to_vec());
        (1, 0)
    }

    fn end(self: Box<Self>) {
        let RecTxn { keys, sink } = *self;
        sink.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(keys);
    }
}

impl Recorder {
    fn take(&self) -> Vec<Vec<Vec<u8>>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

// ===== the harness =====

/// The ops run so far, for failure messages.
struct Trace<'a>(Config, &'a [Op]);

impl fmt::Display for Trace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "config: {:?}", self.0)?;
        for (i, op) in self.1.iter().enumerate() {
            writeln!(f, "  #{i}: {op:?}")?;
        }
        Ok(())
    }
}

/// Panics with the trace unless the engine's answer is the model's.
fn same<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T, trace: &Trace<'_>) {
    assert!(
        got == want,
        "{what}: engine {got:?}, model {want:?}\n{trace}"
    );
}

/// An engine answer in the model's terms.
fn answer<T, U>(r: lessor::Result<T>, f: impl FnOnce(T) -> U) -> Result<U, MErr> {
    r.map(f).map_err(|e| merr(&e))
}

/// Runs one input: decodes it and drives the lessor and the model in step, panicking at the
/// first disagreement.
pub(crate) fn run(data: &[u8]) {
    let (cfg, ops) = decode(data);
    let mut h = Harness::new(cfg);
    for (i, op) in ops.iter().enumerate() {
        let trace = Trace(cfg, &ops[..=i]);
        let what = format!("#{i} {op:?}");
        h.apply(op, &what, &trace);
        h.compare_state(&what, &trace);
    }
}

/// Where a durable lessor keeps its log, on the [`MemFs`].
const DATA_DIR: &str = "/data";

/// The log's segment size: small, so that segments rotate every dozen records or so.
const SEGMENT_BYTES: u64 = 256;

/// The lessor under test, its clock, range deleter and file system, and the model.
struct Harness {
    cfg: Config,
    clock: ManualClock,
    recorder: Recorder,
    /// The durable lessor's file system; `None` without a log.
    fs: Option<MemFs>,
    /// Always `Some` between ops (`None` only while reopening).
    lessor: Option<Lessor>,
    model: Model,
}

impl Harness {
    fn new(cfg: Config) -> Self {
        let mut h = Harness {
            cfg,
            clock: ManualClock::new(),
            recorder: Recorder::default(),
            fs: cfg.durable.then(MemFs::new),
            lessor: None,
            model: Model::new(cfg.primary, cfg.mode, cfg.retry_ms),
        };
        h.lessor = Some(h.open(cfg.primary));
        h
    }

    /// A lessor on the harness's clock and file system (if any).
    fn open(&self, primary: bool) -> Lessor {
        let cfg = self.cfg;
        let mut b = Lessor::builder()
            .clock(self.clock.clone())
            .expiry_thread(false)
            .shards(cfg.shards)
            .min_ttl(Duration::from_millis(1))
            .tick(Duration::from_millis(1))
            .max_key_size(MAX_KEY)
            .revoke_rate(u32::MAX)
            .primary(primary)
            .expiry_mode(cfg.mode)
            .retry_interval(Duration::from_millis(cfg.retry_ms))
            .expiry_channel(4096, cfg.batch_max)
            .range_deleter(self.recorder.clone());
        if let Some(fs) = &self.fs {
            b = b
                .data_dir(DATA_DIR)
                .log_sizes(SEGMENT_BYTES, u64::MAX)
                .file_system(fs.clone());
        }
        b.build()
            .expect("the model's options are valid and its log opens")
    }

    fn lessor(&self) -> &Lessor {
        self.lessor.as_ref().expect("open between ops")
    }

    /// Ends the lessor, by a crash (`clean == false`: only what was durable survives) or by a
    /// clean stop, and opens a new one on what is left, primary as the old one was; then
    /// checks what the new one says it recovered.
    fn reopen(&mut self, clean: bool, what: &str, trace: &Trace<'_>) {
        let old = self.lessor.take().expect("open between ops");
        if clean {
            old.stop();
        } else if let Some(fs) = &mut self.fs {
            // The power goes out now. `old`'s log writer keeps the old file system (its drop
            // below closes the log there); the new lessor gets a copy nothing else can reach.
            *fs = fs.crashed();
        }
        drop(old);
        let primary = self.model.primary;
        let lessor = self.open(primary);
        self.model.reopen(self.fs.is_some(), primary);
        let got = lessor
            .recovery()
            .map(|r| (r.leases, r.keys, r.truncated_tail));
        let want = self.fs.as_ref().map(|_| {
            let m = &self.model;
            (m.leases.len(), m.keys.len(), None)
        });
        same(&format!("{what}: recovery()"), got, want, trace);
        self.lessor = Some(lessor);
    }

    /// Runs one op on both sides and compares the answers.
    fn apply(&mut self, op: &Op, what: &str, trace: &Trace<'_>) {
        if let Op::Crash | Op::Restart = op {
            return self.reopen(matches!(op, Op::Restart), what, trace);
        }
        let l = self.lessor.as_ref().expect("open between ops");
        let m = &mut self.model;
        match op {
            Op::Grant(id, ttl) => same(
                what,
                answer(l.grant(LeaseId::new(*id), *ttl), |g| view(&g)),
                m.grant(*id, *ttl),
                trace,
            ),
            Op::GrantSecs(id, secs) => {
                let ttl = Duration::from_secs(u64::try_from(*secs).unwrap_or(0));
                let got = answer(l.grant_secs(LeaseId::new(*id), *secs), |g| view(&g));
                same(what, got, m.grant(*id, ttl), trace);
            }
            Op::Renew(id) => same(
                what,
                answer(l.renew(LeaseId::new(*id)), |d| d),
                m.renew(*id),
                trace,
            ),
            Op::RenewMany(ids) => {
                let asked: Vec<LeaseId> = ids.iter().map(|&id| LeaseId::new(id)).collect();
                let got = answer(l.renew_many(&asked), |done| {
                    done.into_iter()
                        .map(|r| answer(r, |d| d))
                        .collect::<Vec<_>>()
                });
                same(what, got, m.renew_many(ids), trace);
            }
            Op::Revoke(id) => same(
                what,
                answer(l.revoke(LeaseId::new(*id)), drop),
                m.revoke(*id),
                trace,
            ),
            Op::Attach(id, keys) => same(
                what,
                answer(l.attach(LeaseId::new(*id), keys.iter().copied()), drop),
                m.attach(*id, keys),
                trace,
            ),
            Op::Detach(id, keys) => same(
                what,
                answer(l.detach(LeaseId::new(*id), keys.iter().copied()), drop),
                m.detach(*id, keys),
                trace,
            ),
            Op::Checkpoint(id, left) => same(
                what,
                answer(l.checkpoint(LeaseId::new(*id), *left), drop),
                m.checkpoint(*id, *left),
                trace,
            ),
            Op::Advance(d) => {
                self.clock.advance(*d);
                m.now_ns += u64::try_from(d.as_nanos()).expect("steps are small");
            }
            Op::RunExpiry => self.run_expiry(what, trace),
            Op::Promote(extend) => {
                l.promote(*extend);
                m.promote(*extend);
            }
            Op::Demote => {
                l.demote();
                m.demote();
            }
            Op::Stop => {
                l.stop();
                m.stopped = true;
            }
            Op::Compact => same(what, answer(l.compact(), drop), m.compact(), trace),
            Op::Crash | Op::Restart => unreachable!("handled above"),
        }
    }

    /// One expiry step on both sides: the count, then the delivered leases as a multiset, and
    /// in deadline order when no batch could have gone out before the end of the step.
    fn run_expiry(&mut self, what: &str, trace: &Trace<'_>) {
        let got = answer(self.lessor().run_expiry_once(), |n| n);
        let want = self.model.run_expiry();
        let count = want.as_ref().map(Vec::len).map_err(Clone::clone);
        same(what, got, count, trace);
        if want.is_ok() {
            // Every lease with a deadline is in the wheel (or awaits redelivery); while not
            // primary the worker tracks nothing.
            let tracked = self.lessor().expiry_tracked();
            let live = self.model.leases.values().filter(|l| l.deadline != FOREVER);
            let live = live.count();
            let ok = if self.model.primary {
                tracked >= live
            } else {
                tracked == 0
            };
            assert!(
                ok,
                "{what}: the worker tracks {tracked} of {live} leases\n{trace}"
            );
        }
        let batch_max = self.cfg.batch_max;
        let batches: Vec<Vec<Lease>> = self.lessor().expired_leases().try_iter().collect();
        for b in &batches {
            let ok = !b.is_empty() && b.len() <= batch_max;
            assert!(
                ok,
                "{what}: a batch of {} (max {batch_max})\n{trace}",
                b.len()
            );
        }
        let mut delivered: Vec<View> = batches.iter().flatten().map(view).collect();
        let mut want = want.unwrap_or_default();
        if want.len() <= batch_max {
            let deadline_of = |v: &View| want.iter().find(|(_, w)| w.0 == v.0).map(|(d, _)| *d);
            let deadlines: Vec<Option<u64>> = delivered.iter().map(deadline_of).collect();
            let sorted = deadlines.windows(2).all(|w| w[0] <= w[1]);
            assert!(
                sorted,
                "{what}: out of deadline order: {delivered:?}\n{trace}"
            );
        }
        delivered.sort_by_key(|v| v.0);
        want.sort_by_key(|(_, v)| v.0);
        let want: Vec<View> = want.into_iter().map(|(_, v)| v).collect();
        same(&format!("{what}: delivered"), delivered, want, trace);
    }

    /// Everything observable, after every op: invariants, every lookup, every key's lease,
    /// `leases()` in order, `len()`, `is_primary()` and the revoke transactions.
    fn compare_state(&mut self, what: &str, trace: &Trace<'_>) {
        let l = self.lessor.as_ref().expect("open between ops");
        let m = &mut self.model;
        if let Err(e) = l.check_invariants() {
            panic!("{what}: invariant broken: {e}\n{trace}");
        }
        for id in IDS {
            let got = l.lookup(LeaseId::new(id)).map(|g| view(&g));
            same(&format!("{what}: lookup({id})"), got, m.lookup(id), trace);
        }
        for key in &KEYS[..VALID_KEYS] {
            let want = m.keys.get(key.0).copied().unwrap_or(0);
            let got = l.get_lease(key).get();
            same(&format!("{what}: get_lease({key:?})"), got, want, trace);
        }
        let got: Vec<View> = l.leases().iter().map(view).collect();
        same(&format!("{what}: leases()"), got, m.leases(), trace);
        same(&format!("{what}: len()"), l.len(), m.leases.len(), trace);
        same(
            &format!("{what}: is_primary()"),
            l.is_primary(),
            m.primary,
            trace,
        );
        let mut got = self.recorder.take();
        let mut want = std::mem::take(&mut m.txns);
        got.sort();
        want.sort();
        same(&format!("{what}: revoke transactions"), got, want, trace);
    }
}
