//! The operation-sequence model as an ordinary property test: random byte strings decode to
//! op sequences (grant, renew, revoke, attach, detach, checkpoint, clock steps, expiry steps,
//! promote, demote, stop, crash and reopen, clean restart, compaction) that run against a real
//! lessor (half of them with a log on an in-memory file system) and a `BTreeMap` model in step.
//!
//! The interpreter and the model live in `model_ops.rs`, shared by path with the `model_ops`
//! cargo-fuzz target, so an input means the same thing here, in the fuzzer, and in the crash
//! replays of `fuzz_regressions.rs`.

#[path = "model_ops.rs"]
pub(crate) mod ops;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        // Failures print the decoded ops; nothing is written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Up to about 150 ops per sequence, every answer compared with the model.
    #[test]
    fn random_op_sequences_match_the_model(data in prop::collection::vec(any::<u8>(), 0..400)) {
        ops::run(&data);
    }
}
