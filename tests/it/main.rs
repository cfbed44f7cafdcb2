//! lessor's integration tests: one module per topic, every one driven by a `ManualClock`
//! (nothing sleeps). Run with `cargo test --test it --features test-util` so that the
//! engine's own invariant check runs too.

mod batch;
mod builder;
mod concurrency;
mod durability;
mod expiry;
mod fake;
mod fuzz_regressions;
mod grant;
mod keys;
mod lookup;
mod model;
mod promote;
mod renew;
mod revoke;
mod stop;
mod store;
mod support;
