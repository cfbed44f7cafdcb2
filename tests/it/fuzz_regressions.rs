//! Inputs of the `model_ops` fuzz target kept as named regression tests. Each file under
//! `tests/it/fuzz_data/model_ops/` replays through the same interpreter and model as the
//! fuzzer (`model_ops.rs`), comparing every answer; `every_saved_input_replays` also picks up
//! files not named below. `scripts/fuzz` seeds the fuzzer's corpus with them.
//!
//! The fuzzer has found no crash so far; the files are hand-written edge cases (their ops
//! are listed on each test). To keep a crash: copy `fuzz/artifacts/model_ops/crash-*` to
//! `tests/it/fuzz_data/model_ops/<what-goes-wrong>` and add a `#[test]` below with that name
//! and the decoded ops the failure message printed.

use std::path::Path;

use crate::model::ops::run;

fn replay(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fuzz_data/model_ops")
        .join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run(&data);
}

#[test]
fn every_saved_input_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fuzz_data/model_ops");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("readable dir")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no inputs under {}", dir.display());
    for name in names {
        replay(&name);
    }
}

// ===== hand-written edge cases =====

/// Grant(1, 10ms), RunExpiry, Advance to 10ms, Renew(1) (refused: the deadline has come),
/// RunExpiry (delivered), Renew(1) (refused), RunExpiry, Advance 2s, RunExpiry (not again).
#[test]
fn renew_at_the_deadline() {
    replay("renew-at-the-deadline");
}

/// At 0.4 ms: Grant(1, 1.5ms) (ttl 2 ms, deadline 3 ms), Grant(2, 1ns) (ttl 1 ms, deadline
/// 2 ms), then steps of 999 µs / 1 ms / 999 µs / 1 µs with a renew and expiry steps between:
/// "now" rounds down for expiry, up for deadlines and lookups.
#[test]
fn sub_ms_clock_rounds_deadlines_up() {
    replay("sub-ms-clock-rounds-deadlines-up");
}

/// Retry 3 ms: two leases expire and are delivered again every 3 ms until one is revoked.
#[test]
fn notify_redelivers_until_revoked() {
    replay("notify-redelivers-until-revoked");
}

/// Revoke mode, 2 shards: an expiring lease's keys are deleted (one transaction, ascending)
/// before it is delivered with them; its id can then be granted again.
#[test]
fn revoke_mode_deletes_keys_then_delivers() {
    replay("revoke-mode-deletes-keys-then-delivers");
}

/// Not primary: Checkpoint(1, 4ms), Renew (NotPrimary), Promote(1ms) (1 gets 1 + 4 ms, 2 its
/// TTL), Renew clears the checkpoint, Demote, Checkpoint(2, 300µs) (rounds up to 1 ms),
/// Promote(0), expiry steps.
#[test]
fn checkpoint_then_promote_resumes_from_it() {
    replay("checkpoint-then-promote-resumes-from-it");
}

/// Grant(1, 2ms), RunExpiry, Revoke(1), Grant(1, 40ms): the first grant's filing fires at 2 ms
/// and must not expire the second.
#[test]
fn regrant_is_not_expired_by_the_old_filing() {
    replay("regrant-is-not-expired-by-the-old-filing");
}

/// Ids 0, i64::MAX, i64::MIN; TTLs MAX_TTL (accepted), MAX_TTL + 1 ns (refused even for a
/// taken id), grant_secs 9e9 / 9e9 + 1 / -5; keys moved between the extreme ids; empty and
/// too-long keys refused before anything changes; 8 shards.
#[test]
fn ids_and_ttls_at_the_extremes() {
    replay("ids-and-ttls-at-the-extremes");
}

/// After Stop: renew, revoke, attach, detach, checkpoint, grant and expiry steps are refused
/// with Stopped; demote and promote still act; lookups answer.
#[test]
fn stop_refuses_changes_but_answers_lookups() {
    replay("stop-refuses-changes-but-answers-lookups");
}

/// A delivered lease stays expired (renew refused) until a demote and promote give it a
/// fresh deadline, as in etcd.
#[test]
fn expired_lease_restarts_after_demote_and_promote() {
    replay("expired-lease-restarts-after-demote-and-promote");
}

/// batch_max 1, retry 3 ms: four leases expire in one step, one per batch, then again.
#[test]
fn batches_of_one() {
    replay("batches-of-one");
}

/// Durable (log on a `MemFs`): grants, attaches (one moving a key), a detach, Checkpoint(2,
/// 4ms), then at 7 ms Renew(1) and Renew(2) (which clears 2's checkpoint, in the log too), a
/// grant and revoke of 3, Crash: 1 comes back with its full 40 ms, 2 with its full 1 s (until
/// renewals logged the clearing, it came back with the stale 4 ms), 3 not at all, the keys as
/// they were. Expiry steps at 3 and 5 ms, a Restart, one more step.
#[test]
fn crash_keeps_logged_changes_and_forgets_renewals() {
    replay("crash-keeps-logged-changes-and-forgets-renewals");
}

/// Durable: Grant(1, 1s), Grant(2, 1s), Checkpoint(1, 4ms), Checkpoint(2, 4ms), at 2 ms
/// Renew(1), Crash: 1 comes back with its full 1 s (the renew logged the clearing before it
/// returned; it used to come back with 4 ms), 2 with 4 ms. At 7 ms 2 is delivered; a Restart
/// brings it back live (delivered but not revoked) from its checkpoint again.
#[test]
fn renew_clears_a_checkpoint_in_the_log() {
    replay("renew-clears-a-checkpoint-in-the-log");
}

/// Durable, 8 shards: seven grants of 1 s at time 0 (ties, listed in grant order), a key on
/// one, Compact, Restart: still in grant order (a snapshot written shard by shard listed them
/// in hash order). Then a re-grant of -1 (it goes last), Compact, Crash: the same order again.
#[test]
fn compaction_keeps_grant_order() {
    replay("compaction-keeps-grant-order");
}

/// Durable, revoke mode: 1 expires and is revoked by the engine (logged), then Demote, Crash
/// (reopens not primary: 2 "forever"), Promote(1ms), Crash (reopens primary: 2 gets its TTL
/// from time 0), Stop, Restart (running again).
#[test]
fn reopen_keeps_revoke_mode_expiries_and_primary_state() {
    replay("reopen-keeps-revoke-mode-expiries-and-primary-state");
}
