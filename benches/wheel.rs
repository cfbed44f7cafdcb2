//! Timing wheel benches: filing items, and filing then expiring them tick by tick.
//!
//! - `wheel/insert/N`: files N items with deadlines spread over 10^4 ticks into an empty wheel.
//! - `wheel/insert_advance/step_S/N`: the same, then advances S ticks at a time until every item
//!   has expired, re-filing the candidates of higher levels as the expiry worker does.
//! - N is 10^3 to 10^7; throughput is `Elements(N)`, so elem/s is items per second.
//! - 10 samples, flat sampling, 0.5 s warm-up, 2 s measurement. At 10^7 an `insert_advance`
//!   iteration takes about 0.9 s, so criterion warns and runs its minimum of 10 iterations.
//!
//! The wheel is `pub(crate)`, so its source is included here as a private module.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

#[path = "../src/wheel/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod timing_wheel;

use self::timing_wheel::Wheel;
use crate::common::sizes;

/// Item counts per bench, from 10^3 to 10^7 (the first only under `--test`).
const SIZES: [usize; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// Deadlines are spread over this many ticks.
const SPREAD: u64 = 10_000;

/// `n` pseudo-random deadlines in `1..=SPREAD` (SplitMix64, fixed seed).
fn deadlines(n: usize) -> Vec<u64> {
    let mut state = 0x5eed_u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % SPREAD + 1
        })
        .collect()
}

/// Files every item (its index into `whens`) at its deadline.
fn fill(whens: &[u64]) -> Wheel<u32> {
    let mut wheel = Wheel::new();
    for (id, &when) in whens.iter().enumerate() {
        let id = u32::try_from(id).expect("fewer than 2^32 items");
        wheel.insert(black_box(when), id);
    }
    wheel
}

/// Advances in `step`s until every item has expired, re-filing candidates as the expiry
/// thread does. Returns how many items expired.
fn drain(wheel: &mut Wheel<u32>, whens: &[u64], step: u64) -> usize {
    let mut out = Vec::new();
    let mut expired = 0;
    let mut now = 0;
    while !wheel.is_empty() {
        now += step;
        wheel.advance(now, &mut out);
        for id in out.drain(..) {
            let when = whens[usize::try_from(id).expect("u32 fits in usize")];
            if when > now {
                wheel.insert(when, id);
            } else {
                expired += 1;
            }
        }
    }
    expired
}

/// Registers the `wheel/insert` and `wheel/insert_advance` groups.
pub(crate) fn register_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel/insert");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes(&SIZES, &[]) {
        let whens = deadlines(n);
        group.throughput(Throughput::Elements(
            u64::try_from(n).expect("usize fits in u64"),
        ));
        group.bench_with_input(BenchmarkId::from_parameter(n), &whens, |b, whens| {
            b.iter_with_large_drop(|| fill(whens));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("wheel/insert_advance");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sampling_mode(SamplingMode::Flat);
    for step in [1, 10] {
        for n in sizes(&SIZES, &[]) {
            let whens = deadlines(n);
            group.throughput(Throughput::Elements(
                u64::try_from(n).expect("usize fits in u64"),
            ));
            let id = BenchmarkId::new(format!("step_{step}"), n);
            group.bench_with_input(id, &whens, |b, whens| {
                b.iter(|| {
                    let mut wheel = fill(whens);
                    let expired = drain(&mut wheel, whens, step);
                    assert_eq!(expired, whens.len());
                    black_box(expired)
                });
            });
        }
    }
    group.finish();
}
