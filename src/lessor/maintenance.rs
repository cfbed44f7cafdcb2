//! The maintenance thread of a lessor with a log: once a second, due checkpoints and, when the
//! log has outgrown the live state, compaction. A thin loop around `Inner::maintain`, which
//! `Lessor::run_maintenance_once` also calls.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use super::Inner;
use crate::error::Result;
use crate::sync::Arc;

/// How often the thread looks.
const PERIOD: Duration = Duration::from_secs(1);

/// A running maintenance thread.
#[derive(Debug)]
pub(crate) struct Maintainer {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Maintainer {
    pub(crate) fn spawn(inner: Arc<Inner>) -> std::io::Result<Self> {
        let (stop, stopped) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("lessor-maintenance".into())
            .spawn(move || loop {
                match stopped.recv_timeout(PERIOD) {
                    Err(RecvTimeoutError::Timeout) => {
                        // A failed pass is retried on the next one; the log reports its own
                        // errors to the callers whose changes it refused.
                        let _ = inner.maintain();
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(Maintainer { stop, handle })
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.try_send(());
        if self.handle.thread().id() != std::thread::current().id() {
            let _ = self.handle.join();
        }
    }
}

impl Inner {
    /// One upkeep pass: checkpoints, then compaction if due. Returns checkpoints logged.
    pub(crate) fn maintain(&self) -> Result<usize> {
        let done = self.checkpoint_pass(self.time.now_ms())?;
        self.maybe_compact()?;
        Ok(done)
    }
}
