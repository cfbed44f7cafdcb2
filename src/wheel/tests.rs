//! Tests of the wheel: fixed boundary cases and model checks against a `BTreeSet`.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// Advances to `now` the way the expiry thread does: returns the items whose true deadline
/// (`deadline_of`) has come, and re-inserts the candidates that are not yet due.
fn drain_due<T>(wheel: &mut Wheel<T>, now: u64, mut deadline_of: impl FnMut(&T) -> u64) -> Vec<T> {
    let mut out = Vec::new();
    wheel.advance(now, &mut out);
    let mut due = Vec::new();
    for item in out {
        let when = deadline_of(&item);
        if when > now {
            wheel.insert(when, item);
        } else {
            due.push(item);
        }
    }
    due
}

/// Items whose value is their own deadline.
fn own_deadline(when: &u64) -> u64 {
    *when
}

/// Advances by raw `advance` and returns what came out, candidates included.
fn raw_advance<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
    let mut out = Vec::new();
    wheel.advance(now, &mut out);
    out
}

/// Offsets that sit on every level boundary, at the horizon and past it.
fn boundary_offsets() -> Vec<u64> {
    let mut offsets = vec![1, 2, 63, 64, 65, 127, 128];
    for k in 2..=8 {
        let edge = 64u64.pow(k);
        offsets.extend([edge - 1, edge, edge + 1]);
    }
    offsets.extend([1 << 47, (1 << 47) + 1, MAX_TICKS - 1, MAX_TICKS]);
    offsets.extend([MAX_TICKS + 1, MAX_TICKS + 12_345, 1 << 50]);
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

/// Bases: aligned, unaligned, and in the middle of a top-level slot.
const BASES: [u64; 5] = [0, 1, 12_345, (1 << 42) + 777, (5 << 42) + 10];

#[test]
fn new_wheel_is_empty() {
    let mut wheel = Wheel::<u64>::new();
    assert_eq!(wheel.elapsed(), 0);
    assert_eq!(wheel.len(), 0);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_expiration(), None);
    assert!(raw_advance(&mut wheel, 1 << 40).is_empty());
    assert_eq!(wheel.elapsed(), 1 << 40);
    assert!(format!("{:?}", Wheel::<u64>::default()).contains("elapsed"));
}

#[test]
fn every_boundary_item_comes_out_at_its_tick() {
    for base in BASES {
        let mut wheel = Wheel::new();
        wheel.set_elapsed(base);
        wheel.insert(base, base);
        let whens: Vec<u64> = boundary_offsets().iter().map(|o| base + o).collect();
        for &when in &whens {
            wheel.insert(when, when);
        }
        assert_eq!(wheel.len(), whens.len() + 1);
        assert_eq!(wheel.next_expiration(), Some(base));
        assert_eq!(drain_due(&mut wheel, base, own_deadline), vec![base]);
        for (i, &when) in whens.iter().enumerate() {
            let next = wheel.next_expiration().expect("items remain");
            assert!(
                next > wheel.elapsed() && next <= when,
                "base {base}, when {when}"
            );
            assert!(drain_due(&mut wheel, when - 1, own_deadline).is_empty());
            assert_eq!(drain_due(&mut wheel, when, own_deadline), vec![when]);
            assert_eq!(wheel.elapsed(), when);
            assert_eq!(wheel.len(), whens.len() - i - 1);
        }
        assert_eq!(wheel.next_expiration(), None);
    }
}

#[test]
fn single_boundary_item_in_one_jump() {
    for base in BASES {
        for offset in boundary_offsets() {
            let when = base + offset;
            let mut wheel = Wheel::new();
            wheel.set_elapsed(base);
            wheel.insert(when, when);
            assert!(drain_due(&mut wheel, when - 1, own_deadline).is_empty());
            assert_eq!(drain_due(&mut wheel, when, own_deadline), vec![when]);
            assert!(wheel.is_empty());
            // And straight past it in one call, from the start.
            let mut wheel = Wheel::new();
            wheel.set_elapsed(base);
            wheel.insert(when, when);
            assert_eq!(
                drain_due(&mut wheel, when + 1_000, own_deadline),
                vec![when]
            );
        }
    }
}

#[test]
fn tick_by_tick_each_item_at_exactly_its_tick() {
    for base in [0, 37, 4_090, (1 << 30) - 100] {
        let mut wheel = Wheel::new();
        wheel.set_elapsed(base);
        let mut whens: Vec<u64> = (1..=300).map(|o| base + o).collect();
        whens.extend([base + 4_096, base + 4_100, base + 5_000]);
        for &when in &whens {
            wheel.insert(when, when);
        }
        for now in base + 1..=base + 5_100 {
            let due = drain_due(&mut wheel, now, own_deadline);
            let expected: Vec<u64> = whens.iter().copied().filter(|&w| w == now).collect();
            assert_eq!(due, expected, "now = {now}");
        }
        assert!(wheel.is_empty());
    }
}

#[test]
fn steps_of_ten_yield_each_item_once() {
    let mut wheel = Wheel::new();
    let whens: Vec<u64> = (1..=10_000).map(|i| (i * 7_919) % 9_973 + 1).collect();
    for (id, &when) in whens.iter().enumerate() {
        wheel.insert(when, id);
    }
    let mut seen = vec![false; whens.len()];
    let mut now = 0;
    while !wheel.is_empty() {
        let prev = now;
        now += 10;
        for id in drain_due(&mut wheel, now, |&id| whens[id]) {
            assert!(
                whens[id] > prev && whens[id] <= now,
                "id {id} early or late"
            );
            assert!(!seen[id], "id {id} twice");
            seen[id] = true;
        }
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn candidates_cascade_down_and_never_fire_before_their_slot() {
    let mut wheel = Wheel::new();
    wheel.insert(5_000, 5_000u64); // level 2, slot 1: starts at 4096.
    assert_eq!(wheel.next_expiration(), Some(4_096));
    assert!(raw_advance(&mut wheel, 4_095).is_empty());
    assert_eq!(raw_advance(&mut wheel, 4_096), vec![5_000]);
    wheel.insert(5_000, 5_000); // level 1, slot 14: starts at 4096 + 14 * 64.
    assert_eq!(wheel.next_expiration(), Some(4_992));
    assert!(raw_advance(&mut wheel, 4_991).is_empty());
    assert_eq!(raw_advance(&mut wheel, 4_992), vec![5_000]);
    wheel.insert(5_000, 5_000); // level 0: exact.
    assert_eq!(wheel.next_expiration(), Some(5_000));
    assert!(raw_advance(&mut wheel, 4_999).is_empty());
    assert_eq!(raw_advance(&mut wheel, 5_000), vec![5_000]);
    assert!(wheel.is_empty());
}

#[test]
fn level_zero_items_are_exact() {
    let mut wheel = Wheel::new();
    wheel.set_elapsed(100);
    wheel.insert(120, 'a');
    assert_eq!(wheel.next_expiration(), Some(120));
    assert!(raw_advance(&mut wheel, 119).is_empty());
    assert_eq!(raw_advance(&mut wheel, 120), vec!['a']);
    // 140 shares no 64-tick block with 100: level 1, a candidate from its slot at 128.
    wheel.insert(140, 'b');
    assert_eq!(wheel.next_expiration(), Some(128));
    assert_eq!(raw_advance(&mut wheel, 128), vec!['b']);
}

#[test]
fn far_items_park_at_the_horizon() {
    let base = (5 << 42) + 10;
    let mut wheel = Wheel::new();
    wheel.set_elapsed(base);
    let whens = [base + MAX_TICKS, base + MAX_TICKS + 1_000, base + (1 << 55)];
    for when in whens {
        wheel.insert(when, when);
    }
    // The window's last top-level slot, not the current one.
    let horizon_slot = (5 + 63) << 42;
    assert_eq!(wheel.next_expiration(), Some(horizon_slot));
    assert!(raw_advance(&mut wheel, horizon_slot - 1).is_empty());
    assert_eq!(raw_advance(&mut wheel, horizon_slot).len(), 3);
    // Re-filed by the caller, each still comes out at exactly its tick.
    let mut wheel = Wheel::new();
    wheel.set_elapsed(base);
    for when in whens {
        wheel.insert(when, when);
    }
    for when in whens {
        assert!(drain_due(&mut wheel, when - 1, own_deadline).is_empty());
        assert_eq!(drain_due(&mut wheel, when, own_deadline), vec![when]);
    }
    // From an aligned tick the horizon is exactly MAX_TICKS away.
    let mut wheel = Wheel::new();
    wheel.insert(MAX_TICKS, ());
    wheel.insert(MAX_TICKS + 1, ());
    assert_eq!(wheel.next_expiration(), Some(63 << 42));
}

#[test]
fn due_list_is_yielded_by_any_advance() {
    let mut wheel = Wheel::new();
    wheel.advance(100, &mut Vec::new());
    wheel.insert(50, 50u64);
    wheel.insert(100, 100);
    wheel.insert(0, 0);
    wheel.insert(150, 150);
    assert_eq!(wheel.len(), 4);
    assert_eq!(wheel.next_expiration(), Some(100));
    assert_eq!(raw_advance(&mut wheel, 0), vec![50, 100, 0]);
    assert_eq!(wheel.elapsed(), 100, "advancing backwards leaves elapsed");
    assert_eq!(wheel.len(), 1);
    assert_eq!(
        wheel.next_expiration(),
        Some(128),
        "150 is a level-1 candidate"
    );
}

#[test]
fn advance_appends_slot_by_slot_in_insertion_order() {
    let mut wheel = Wheel::new();
    wheel.insert(10, 'a');
    wheel.insert(10, 'b');
    wheel.insert(5, 'd');
    wheel.insert(10, 'c');
    let mut out = vec!['z'];
    wheel.advance(10, &mut out);
    assert_eq!(out, vec!['z', 'd', 'a', 'b', 'c']);
}

#[test]
fn huge_jumps_fire_only_occupied_slots() {
    let mut wheel = Wheel::new();
    let whens = [(1 << 40) + 5, (1 << 40) + (1 << 20), (1 << 41) + 3, 17];
    for when in whens {
        wheel.insert(when, when);
    }
    // Stepping tick by tick would never finish; this takes a few slot firings.
    assert_eq!(raw_advance(&mut wheel, 1 << 42).len(), 4);
    assert_eq!(wheel.elapsed(), 1 << 42);
    let far = (1 << 61) + 1;
    wheel.insert(far, far);
    assert!(drain_due(&mut wheel, far - 1, own_deadline).is_empty());
    assert_eq!(drain_due(&mut wheel, far, own_deadline), vec![far]);
}

#[test]
fn near_the_end_of_tick_space_nothing_panics() {
    let max = u64::MAX;
    let mut wheel = Wheel::new();
    wheel.set_elapsed(max - 40);
    for when in [max - 20, max, max - 100] {
        wheel.insert(when, when);
    }
    assert_eq!(
        wheel.next_expiration(),
        Some(max - 40),
        "max - 100 is in the due list"
    );
    assert_eq!(
        drain_due(&mut wheel, max - 21, own_deadline),
        vec![max - 100]
    );
    assert_eq!(wheel.next_expiration(), Some(max - 20), "level 0 is exact");
    assert_eq!(
        drain_due(&mut wheel, max, own_deadline),
        vec![max - 20, max]
    );
    wheel.insert(max, max);
    assert_eq!(wheel.next_expiration(), Some(max));
    assert_eq!(raw_advance(&mut wheel, max), vec![max]);
    // A level-1 slot and a top-level slot in the last window of the tick space.
    for elapsed in [max - 100, max - (1 << 45)] {
        let mut wheel = Wheel::new();
        wheel.set_elapsed(elapsed);
        wheel.insert(max, max);
        let next = wheel.next_expiration().expect("one item");
        assert!(next > elapsed && next <= max);
        assert!(drain_due(&mut wheel, max - 1, own_deadline).is_empty());
        assert_eq!(drain_due(&mut wheel, max, own_deadline), vec![max]);
    }
}

#[test]
fn clear_keeps_elapsed_and_set_elapsed_moves_an_empty_wheel() {
    let mut wheel = Wheel::new();
    wheel.advance(1_000, &mut Vec::new());
    for when in [500, 1_001, 1_100, 70_000, 1 << 40] {
        wheel.insert(when, when);
    }
    wheel.clear();
    assert!(wheel.is_empty());
    assert_eq!(wheel.len(), 0);
    assert_eq!(wheel.elapsed(), 1_000);
    assert_eq!(wheel.next_expiration(), None);
    assert!(raw_advance(&mut wheel, 1 << 41).is_empty());
    wheel.set_elapsed(10);
    assert_eq!(wheel.elapsed(), 10);
    wheel.insert(60, 60u64);
    assert_eq!(wheel.next_expiration(), Some(60));
    assert_eq!(drain_due(&mut wheel, 60, own_deadline), vec![60]);
    wheel.set_elapsed(1 << 50);
    wheel.insert((1 << 50) + 4_096, 1);
    assert_eq!(wheel.next_expiration(), Some((1 << 50) + 4_096));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "set_elapsed on a wheel holding 1 items")]
fn set_elapsed_on_a_non_empty_wheel_panics_in_debug() {
    let mut wheel = Wheel::new();
    wheel.insert(5, ());
    wheel.set_elapsed(100);
}

// ===== model-based tests =====

/// One step of a model run.
#[derive(Clone, Debug)]
enum Op {
    /// Insert at `elapsed + offset` (0 goes to the due list).
    Insert(u64),
    /// Insert `back` ticks before `elapsed`.
    Past(u64),
    /// Insert near the `k`-th power-of-64 boundary after `elapsed`, `delta - 2` off it.
    Boundary(u32, u64),
    /// Advance by this many ticks.
    Advance(u64),
    /// Advance to one tick before `next_expiration`: nothing may come out.
    BeforeNext,
    /// Advance to `next_expiration`: something must come out.
    ToNext,
    /// Clear, then move the empty wheel forward by this many ticks.
    ClearAndMove(u64),
}

/// The wheel next to a `BTreeSet` of `(when, id)` that it must agree with.
struct Model {
    wheel: Wheel<usize>,
    deadline: Vec<u64>,
    filed_at: Vec<u64>,
    refiles: Vec<u64>,
    pending: BTreeSet<(u64, usize)>,
}

impl Model {
    fn new() -> Self {
        Model {
            wheel: Wheel::new(),
            deadline: Vec::new(),
            filed_at: Vec::new(),
            refiles: Vec::new(),
            pending: BTreeSet::new(),
        }
    }

    fn insert(&mut self, when: u64) {
        let id = self.deadline.len();
        self.deadline.push(when);
        self.filed_at.push(self.wheel.elapsed());
        self.refiles.push(0);
        self.pending.insert((when, id));
        self.wheel.insert(when, id);
    }

    /// Advances through `drain_due`; returns how many items the wheel yielded.
    fn advance(&mut self, now: u64) -> usize {
        let (deadline, refiles) = (&self.deadline, &mut self.refiles);
        let mut yielded = 0;
        let mut due = drain_due(&mut self.wheel, now, |&id| {
            yielded += 1;
            if deadline[id] > now {
                refiles[id] += 1;
            }
            deadline[id]
        });
        due.sort_unstable();
        let later = self.pending.split_off(&(now + 1, 0));
        let mut expected: Vec<usize> = mem::replace(&mut self.pending, later)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        expected.sort_unstable();
        assert_eq!(due, expected, "due set at now = {now}");
        for id in due {
            // Each re-file moves an item down a level; parked items add one per turn.
            let distance = self.deadline[id].saturating_sub(self.filed_at[id]);
            let bound = u64::try_from(NUM_LEVELS - 1).unwrap() + distance / (63 << 42);
            assert!(
                self.refiles[id] <= bound,
                "id {id} re-filed {} times",
                self.refiles[id]
            );
        }
        self.check();
        yielded
    }

    fn check(&self) {
        let wheel = &self.wheel;
        assert_eq!(wheel.len(), self.pending.len());
        assert_eq!(wheel.is_empty(), self.pending.is_empty());
        let next = wheel.next_expiration();
        let Some(&(min_when, _)) = self.pending.first() else {
            assert_eq!(next, None);
            return;
        };
        let next = next.expect("a non-empty wheel has a next expiration");
        let elapsed = wheel.elapsed();
        assert!(
            next >= elapsed && next <= min_when.max(elapsed),
            "{next} vs {min_when}"
        );
        if min_when <= elapsed {
            assert_eq!(next, elapsed, "the due list is due now");
        } else if level_for(elapsed, min_when) == 0 {
            assert_eq!(next, min_when, "level 0 is exact");
        }
    }

    fn apply(&mut self, op: &Op) {
        let elapsed = self.wheel.elapsed();
        match *op {
            Op::Insert(offset) => self.insert(elapsed + offset),
            Op::Past(back) => self.insert(elapsed.saturating_sub(back)),
            Op::Boundary(k, delta) => {
                let step = 64u64.pow(k);
                let edge = (elapsed + 1).div_ceil(step) * step;
                self.insert((edge + delta).saturating_sub(2).max(elapsed));
            }
            Op::Advance(by) => {
                self.advance(elapsed + by);
            }
            Op::BeforeNext => {
                if let Some(next) = self.wheel.next_expiration().filter(|&n| n > elapsed) {
                    assert!(raw_advance(&mut self.wheel, next - 1).is_empty());
                    assert_eq!(self.wheel.elapsed(), next - 1);
                    self.check();
                }
            }
            Op::ToNext => {
                if let Some(next) = self.wheel.next_expiration() {
                    assert!(self.advance(next) > 0, "nothing at next_expiration {next}");
                }
            }
            Op::ClearAndMove(by) => {
                self.wheel.clear();
                self.pending.clear();
                assert_eq!(self.wheel.elapsed(), elapsed);
                self.check();
                self.wheel.set_elapsed(elapsed + by);
            }
        }
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..64).prop_map(Op::Insert),
        3 => (0u64..300_000).prop_map(Op::Insert),
        1 => (0u64..(1 << 50)).prop_map(Op::Insert),
        1 => (MAX_TICKS - 2..MAX_TICKS + 3).prop_map(Op::Insert),
        1 => (0u64..1_000).prop_map(Op::Past),
        2 => (1u32..=8, 0u64..5).prop_map(|(k, d)| Op::Boundary(k, d)),
        3 => (0u64..4).prop_map(Op::Advance),
        2 => (0u64..100_000).prop_map(Op::Advance),
        1 => (0u64..(1 << 44)).prop_map(Op::Advance),
        2 => Just(Op::BeforeNext),
        2 => Just(Op::ToNext),
        1 => (0u64..(1 << 20)).prop_map(Op::ClearAndMove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wheel_matches_btree_model(ops in prop::collection::vec(op_strategy(), 1..200)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
        let end = model.wheel.elapsed() + (1 << 51);
        model.advance(end);
        prop_assert!(model.wheel.is_empty());
    }
}

/// SplitMix64: a fixed-seed generator for the large random runs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_insert(rng: &mut SplitMix) -> Op {
    match rng.below(100) {
        0..=39 => Op::Insert(rng.below(64)),
        40..=84 => Op::Insert(rng.below(300_000)),
        85..=88 => Op::Insert(rng.below(1 << 50)),
        89 => Op::Insert(MAX_TICKS - 2 + rng.below(5)),
        90..=92 => Op::Past(rng.below(1_000)),
        _ => {
            let k = u32::try_from(rng.below(8)).expect("small") + 1;
            Op::Boundary(k, rng.below(5))
        }
    }
}

fn random_op(rng: &mut SplitMix) -> Op {
    match rng.below(100) {
        0..=29 => random_insert(rng),
        30..=69 => Op::Advance(rng.below(8)),
        70..=89 => Op::Advance(rng.below(20_000)),
        90 => Op::Advance(rng.below(1 << 44)),
        91..=95 => Op::BeforeNext,
        _ => Op::ToNext,
    }
}

#[test]
fn seeded_random_runs_match_the_model() {
    for (seed, items) in [(1, 100_000), (2, 20_000), (0xdead_beef, 20_000)] {
        let mut rng = SplitMix(seed);
        let mut model = Model::new();
        let mut peak = 0;
        while model.deadline.len() < items {
            // A burst of grants, then a stretch of mixed operations.
            for _ in 0..rng.below(5_000) {
                model.apply(&random_insert(&mut rng));
            }
            peak = peak.max(model.pending.len());
            for _ in 0..rng.below(100) {
                model.apply(&random_op(&mut rng));
            }
        }
        assert!(
            peak > 1_000,
            "seed {seed}: the wheel never held many items ({peak})"
        );
        let end = model.wheel.elapsed() + (1 << 51);
        model.advance(end);
        assert!(model.wheel.is_empty());
    }
}
