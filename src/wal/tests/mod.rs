//! The log's tests, by topic, on `MemFs`/`FailingFs` (crashes and injected faults) and on
//! real temporary directories. Nothing sleeps: a wait is on a channel or a counter.
//!
//! They live here rather than inside the files they test because `benches/wal.rs` compiles
//! those files on their own.

pub(crate) mod support;

mod compaction;
mod fake;
mod faults;
mod format;
mod fs;
mod group_commit;
mod kill;
mod open;
mod options;
mod record;
mod recovery;
mod writer;
