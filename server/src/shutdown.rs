//! The server's stop signal, and a stream adapter that ends a response stream when it fires.
//!
//! # Ground rules
//!
//! - One [`Stopper`] per server, owned by the supervisor task in [`crate::Server`]; it fires at
//!   most once (a `watch` channel flipping `false` to `true`).
//! - Any number of [`StopSignal`]s: tonic's graceful shutdown waits on one per listener, and
//!   every open keep-alive stream holds one through [`UntilStopped`], so that long-lived
//!   streams end (cleanly, with no error) instead of holding a graceful shutdown open forever.
//! - Dropping the [`Stopper`] counts as firing: nothing outlives the server by waiting on it.
//! - Firing also sets a shared flag (an `AtomicBool`, release store; readers acquire) before
//!   the channel wakes anyone. [`UntilStopped`] reads the flag on every poll, and polls the
//!   channel's future only to leave a waker behind before the task sleeps: when its inner
//!   stream is pending and the waker is not one the future already holds. Polling that future
//!   takes the channel's waiter lock; on every keep-alive answer it cost the server about 5%
//!   of its samples.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;
use tokio_stream::Stream;

/// Fires the stop signal.
#[derive(Debug)]
pub(crate) struct Stopper {
    tx: watch::Sender<bool>,
    fired: Arc<AtomicBool>,
}

/// Waits for the stop signal; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StopSignal {
    rx: watch::Receiver<bool>,
    fired: Arc<AtomicBool>,
}

impl Stopper {
    /// A stopper and its first signal.
    pub(crate) fn new() -> (Stopper, StopSignal) {
        let (tx, rx) = watch::channel(false);
        let fired = Arc::new(AtomicBool::new(false));
        let signal = StopSignal {
            rx,
            fired: Arc::clone(&fired),
        };
        (Stopper { tx, fired }, signal)
    }

    /// Fires the signal (idempotent).
    pub(crate) fn stop(&self) {
        self.fired.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        // Before `tx` goes (after this), which wakes the waiters.
        self.fired.store(true, Ordering::Release);
    }
}

impl StopSignal {
    /// True once the signal has fired or its stopper is gone.
    pub(crate) fn has_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Resolves once the signal has fired or its stopper is gone.
    pub(crate) async fn stopped(mut self) {
        // An error means the stopper was dropped, which counts as stopping.
        let _ = self.rx.wait_for(|stopped| *stopped).await;
    }
}

/// A stream that ends when the stop signal fires (or when `inner` ends).
pub(crate) struct UntilStopped<S> {
    inner: S,
    signal: StopSignal,
    /// Resolves when the signal fires; polled only before the stream returns `Pending`.
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The waker `stopped` was last polled with: it wakes that task when the signal fires.
    registered: Option<Waker>,
    done: bool,
}

impl<S> UntilStopped<S> {
    pub(crate) fn new(inner: S, signal: StopSignal) -> Self {
        UntilStopped {
            inner,
            stopped: Box::pin(signal.clone().stopped()),
            signal,
            registered: None,
            done: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for UntilStopped<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.done || self.signal.has_fired() {
            self.done = true;
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => {
                // About to sleep: leave a waker with the signal too (see the ground rules).
                let held = self
                    .registered
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()));
                if !held {
                    if self.stopped.as_mut().poll(cx).is_ready() {
                        self.done = true;
                        return Poll::Ready(None);
                    }
                    self.registered = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_stream_ends_when_the_signal_fires() {
        let (stopper, signal) = Stopper::new();
        let mut s = UntilStopped::new(tokio_stream::iter(0..), signal);
        assert_eq!(s.next().await, Some(0));
        stopper.stop();
        assert_eq!(s.next().await, None);
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn dropping_the_stopper_counts_as_stopping() {
        let (stopper, signal) = Stopper::new();
        let other = signal.clone();
        drop(stopper);
        assert!(other.has_fired());
        signal.stopped().await;
    }

    #[tokio::test]
    async fn a_stream_that_is_always_ready_still_ends_at_the_signal() {
        // A client that keeps sending: the inner stream never returns Pending.
        let (stopper, signal) = Stopper::new();
        let mut s = UntilStopped::new(tokio_stream::iter(0..), signal);
        for n in 0..100 {
            assert_eq!(s.next().await, Some(n));
        }
        stopper.stop();
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn a_waiting_stream_is_woken_by_the_signal() {
        // A client that went quiet: the stream's task sleeps until the signal wakes it.
        let (stopper, signal) = Stopper::new();
        let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
        let mut s = UntilStopped::new(tokio_stream::wrappers::ReceiverStream::new(rx), signal);
        tx.send(7).await.unwrap();
        let reader = tokio::spawn(async move {
            let first = s.next().await;
            let second = s.next().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        stopper.stop();
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
            .await
            .expect("the signal woke the waiting stream")
            .unwrap();
        assert_eq!((first, second), (Some(7), None));
        drop(tx);
    }

    #[tokio::test]
    async fn a_stream_that_moves_to_another_task_is_woken_there() {
        // First polled (and left pending) by one task, then read by another: the signal must
        // wake the second, not the first.
        let (stopper, signal) = Stopper::new();
        let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
        let mut s = UntilStopped::new(tokio_stream::wrappers::ReceiverStream::new(rx), signal);
        let first = tokio::spawn(async move {
            let pending =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll_next(cx).is_pending()))
                    .await;
            (s, pending)
        });
        let (mut s, pending) = first.await.unwrap();
        assert!(pending, "nothing sent yet");
        let second = tokio::spawn(async move { s.next().await });
        tokio::task::yield_now().await;
        stopper.stop();
        let got = tokio::time::timeout(std::time::Duration::from_secs(60), second)
            .await
            .expect("the signal woke the second task")
            .unwrap();
        assert_eq!(got, None);
        drop(tx);
    }
}
