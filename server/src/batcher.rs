//! [`Batcher`]: calls of one kind gathered into batches that one task handles together, so
//! that many concurrent calls share one log append and one fsync ([`crate::grants`],
//! [`crate::revokes`]).
//!
//! # Ground rules
//!
//! - One task per batcher owns the receiving end of a bounded channel; every call sends its
//!   question in an [`Ask`] with a oneshot for the answer and awaits it. The task takes
//!   whatever has queued (up to [`MAX_BATCH`]) and hands it to its handler, which answers each
//!   ask (usually after one engine call on the blocking pool). While a batch is being made
//!   durable the next one queues: group commit at the API.
//! - The handler may hand asks back: they go round again at once, before anything that
//!   queued meanwhile (a grant whose server-chosen id clashed, say).
//! - The task ends when every sender is gone (the service is dropped at shutdown) and then
//!   drops its handler; a call whose batcher is gone gets `Unavailable`.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// At most this many calls in one batch.
pub(crate) const MAX_BATCH: usize = 1024;

/// One call waiting for its batch: what it asks, and where its answer goes.
#[derive(Debug)]
pub(crate) struct Ask<Q, T> {
    pub(crate) question: Q,
    reply: oneshot::Sender<Result<T, Status>>,
}

impl<Q, T> Ask<Q, T> {
    /// Answers the call. Its caller may have gone (the call cancelled): nothing to tell then.
    pub(crate) fn answer(self, answer: Result<T, Status>) {
        let _ = self.reply.send(answer);
    }
}

/// Answers every ask of `asks` with `status` (the batch's engine call failed as a whole).
pub(crate) fn fail_all<Q, T>(asks: impl IntoIterator<Item = Ask<Q, T>>, status: &Status) {
    for ask in asks {
        ask.answer(Err(status.clone()));
    }
}

/// The sending side of a batcher task.
#[derive(Debug)]
pub(crate) struct Batcher<Q, T> {
    tx: mpsc::Sender<Ask<Q, T>>,
}

impl<Q, T> Clone for Batcher<Q, T> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
        }
    }
}

impl<Q: Send + 'static, T: Send + 'static> Batcher<Q, T> {
    /// Starts the task on the current tokio runtime: `handle` gets each batch, answers its
    /// asks, and returns those to go round again.
    pub(crate) fn start<F, Fut>(mut handle: F) -> Self
    where
        F: FnMut(Vec<Ask<Q, T>>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Ask<Q, T>>> + Send,
    {
        let (tx, mut rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut asks = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut asks, MAX_BATCH).await > 0 {
                while !asks.is_empty() {
                    asks = handle(std::mem::take(&mut asks)).await;
                }
            }
        });
        Batcher { tx }
    }

    /// Asks `question` in the next batch and waits for the answer.
    pub(crate) async fn call(&self, question: Q) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        let gone = || Status::unavailable("etcdserver: server stopped");
        self.tx
            .send(Ask { question, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic::Code;

    use super::*;

    #[tokio::test]
    async fn asks_handed_back_go_round_again_and_are_answered() {
        let seen: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let log = Arc::clone(&seen);
        let batcher = Batcher::start(move |asks: Vec<Ask<u32, u32>>| {
            let first_time = log.lock().unwrap().is_empty();
            log.lock()
                .unwrap()
                .push(asks.iter().map(|a| a.question).collect());
            async move {
                if first_time {
                    return asks; // all of them again
                }
                for ask in asks {
                    let doubled = ask.question * 2;
                    ask.answer(Ok(doubled));
                }
                Vec::new()
            }
        });
        assert_eq!(batcher.call(21).await.unwrap(), 42);
        assert_eq!(*seen.lock().unwrap(), [vec![21], vec![21]]);
    }

    #[tokio::test]
    async fn an_ask_left_unanswered_is_unavailable() {
        let batcher = Batcher::start(|asks: Vec<Ask<u32, u32>>| async move {
            drop(asks);
            Vec::new()
        });
        let err = batcher.call(1).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.message(), "etcdserver: server stopped");
    }
}
