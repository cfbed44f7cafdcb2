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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::Stream;

/// Fires the stop signal.
#[derive(Debug)]
pub(crate) struct Stopper {
    tx: watch::Sender<bool>,
}

/// Waits for the stop signal; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StopSignal {
    rx: watch::Receiver<bool>,
}

impl Stopper {
    /// A stopper and its first signal.
    pub(crate) fn new() -> (Stopper, StopSignal) {
        let (tx, rx) = watch::channel(false);
        (Stopper { tx }, StopSignal { rx })
    }

    /// Fires the signal (idempotent).
    pub(crate) fn stop(&self) {
        self.tx.send_replace(true);
    }
}

impl StopSignal {
    /// Resolves once the signal has fired or its stopper is gone.
    pub(crate) async fn stopped(mut self) {
        // An error means the stopper was dropped, which counts as stopping.
        let _ = self.rx.wait_for(|stopped| *stopped).await;
    }
}

/// A stream that ends when the stop signal fires (or when `inner` ends).
pub(crate) struct UntilStopped<S> {
    inner: S,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

impl<S> UntilStopped<S> {
    pub(crate) fn new(inner: S, signal: StopSignal) -> Self {
        UntilStopped {
            inner,
            stopped: Box::pin(signal.stopped()),
            done: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for UntilStopped<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.stopped.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(None);
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.done = true;
        }
        next
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
        drop(stopper);
        signal.stopped().await;
    }
}
