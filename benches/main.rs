//! Criterion benches for lessor, one module per subsystem.
use criterion::{criterion_group, criterion_main};

mod map;
mod wal;
mod wheel;

criterion_group!(
    benches,
    map::register_benches,
    wal::register_benches,
    wheel::register_benches
);
criterion_main!(benches);
