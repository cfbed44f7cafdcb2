//! The log reader on fuzzed bytes: see `lessor::fuzz::wal_segment` (src/fuzz.rs) for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lessor::fuzz::wal_segment(data);
});
