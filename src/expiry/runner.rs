//! The expiry thread: a thin loop around [`ExpiryWorker::run_once`].
//!
//! It wakes at every tick boundary of the lessor's clock (or when told to stop), runs one step,
//! and goes back to sleep. The wait is a `recv_timeout` on a stop channel, so `stop` wakes it
//! at once. The timed wait stays out of `run_once`, which tests drive directly.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::ExpiryWorker;
use crate::lessor::Inner;
use crate::sync::{self, Arc, Mutex};

/// A running expiry thread.
#[derive(Debug)]
pub(crate) struct Runner {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Runner {
    pub(crate) fn spawn(
        inner: Arc<Inner>,
        worker: Arc<Mutex<ExpiryWorker>>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = bounded(1);
        let handle = std::thread::Builder::new()
            .name("lessor-expiry".into())
            .spawn(move || run(&inner, &worker, &stopped))?;
        Ok(Runner { stop, handle })
    }

    /// Stops the thread and waits for it (unless called from the thread itself).
    pub(crate) fn stop(self) {
        let _ = self.stop.try_send(());
        if self.handle.thread().id() != std::thread::current().id() {
            let _ = self.handle.join();
        }
    }
}

fn run(inner: &Inner, worker: &Mutex<ExpiryWorker>, stopped: &Receiver<()>) {
    let tick_ms = sync::lock(worker).tick().as_millis().max(1) as u64;
    loop {
        let now_ms = inner.time.now_ms();
        sync::lock(worker).run_once(now_ms);
        // Sleep to the next tick boundary.
        let wait = tick_ms - now_ms % tick_ms;
        match stopped.recv_timeout(Duration::from_millis(wait)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
