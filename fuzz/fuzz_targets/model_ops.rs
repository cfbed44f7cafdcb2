//! Random op sequences (grant, renew alone and in batches, revoke, attach, detach, checkpoint,
//! clock steps, expiry steps, promote, demote, stop, crash and reopen, clean restart,
//! compaction) against a `BTreeMap` model, every answer compared.
//!
//! The interpreter and the model are the integration tests' own (`tests/it/model_ops.rs`,
//! included by path), so a crash input replays unchanged as a named test in
//! `tests/it/fuzz_regressions.rs`: copy `fuzz/artifacts/model_ops/crash-*` to
//! `tests/it/fuzz_data/model_ops/<name>`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/model_ops.rs"]
mod model_ops;

fuzz_target!(|data: &[u8]| model_ops::run(data));
