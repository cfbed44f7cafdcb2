//! Criterion benches for lessor, one module per subsystem: `map/` (the lease maps), `wheel/`
//! (the timing wheel), `expiry/` (the expiry worker), `wal/` (the log) and `e2e/` (the public
//! API with the engine's threads running). `common.rs` holds what they share, including the
//! run's scale: `cargo bench -- --test` runs each bench once at its smallest size, and
//! `LESSOR_BENCH_FULL=1` adds the sizes that take long or need gigabytes.
use criterion::{criterion_group, criterion_main};

mod common;
mod e2e;
mod expiry;
mod map;
mod wal;
mod wheel;

criterion_group!(
    benches,
    map::register_benches,
    wheel::register_benches,
    expiry::register_benches,
    wal::register_benches,
    e2e::register_benches
);
criterion_main!(benches);
