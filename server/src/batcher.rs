//! [`Batcher`]: calls of one kind gathered into batches that one task handles together, so
//! that many concurrent calls share one log append and one fsync ([`crate::grants`],
//! [`crate::revokes`]).
//!
//! # Ground rules
//!
//! - One task per batcher owns the receiving end of a bounded channel; every call sends its
//!   question in an [`Ask`] with a oneshot for the answer and awaits it.
//! - The task takes a batch from the queue and hands it to the handler on a task of its own,
//!   which answers each ask (usually after one engine call on the blocking pool). At most
//!   [`IN_FLIGHT`] batches are handled at once: while one is being made durable the next is
//!   already on its way to the log, and the rest queue (group commit at the API).
//! - A batch takes its share of what has queued: `ceil(queued / IN_FLIGHT)` asks, at most
//!   [`MAX_BATCH`]. Taking everything would leave the other batch nearly empty under a steady
//!   load of clients, each of which asks again as soon as it is answered.
//! - The handler may hand asks back: they go round again at once in the same batch's task,
//!   before anything that queued meanwhile (a grant whose server-chosen id clashed, say).
//! - The task ends when every sender is gone (the service is dropped at shutdown); batches
//!   already taken are still handled, and the handler is dropped with the last of them. A call
//!   whose batcher is gone gets `Unavailable`.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tonic::Status;

/// At most this many calls in one batch.
pub(crate) const MAX_BATCH: usize = 1024;

/// At most this many batches handled at once. Two, measured with `lessor bench grpc` against
/// `lessor serve --fsync always` on two cores, server and load pinned one core each, in
/// alternating runs: grants from 64 clients went from 40.5-43.5k/s (one batch at a time) to
/// 45.4-48.4k/s, and from 256 clients from 47.4-53.4k/s to 57.5-62.1k/s; at 1 and 16 clients
/// within noise. Three and four at once, with smaller batches, were no better than one.
pub(crate) const IN_FLIGHT: usize = 2;

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
    /// asks, and returns those to go round again. Up to [`IN_FLIGHT`] batches run at once.
    pub(crate) fn start<F, Fut>(handle: F) -> Self
    where
        F: Fn(Vec<Ask<Q, T>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Ask<Q, T>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel(4 * MAX_BATCH);
        let handle = Arc::new(handle);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            // The semaphore is never closed: acquiring fails only if it were.
            while let Ok(slot) = Arc::clone(&slots).acquire_owned().await {
                let Some(first) = rx.recv().await else {
                    break; // every sender is gone
                };
                // This batch's share of what has queued (`first` included); the rest is there
                // to take at once, so the second receive does not wait.
                let share = (rx.len() + 1).div_ceil(IN_FLIGHT).min(MAX_BATCH);
                let mut asks = Vec::with_capacity(share);
                asks.push(first);
                if share > 1 {
                    rx.recv_many(&mut asks, share - 1).await;
                }
                let handle = Arc::clone(&handle);
                tokio::spawn(async move {
                    while !asks.is_empty() {
                        asks = handle(std::mem::take(&mut asks)).await;
                    }
                    drop(slot);
                });
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::sync::Notify;
    use tonic::Code;

    use super::*;

    /// Answers every ask with its own question.
    fn echo(asks: Vec<Ask<u32, u32>>) {
        for ask in asks {
            let q = ask.question;
            ask.answer(Ok(q));
        }
    }

    #[tokio::test]
    async fn a_second_batch_is_handled_while_the_first_waits() {
        // The first batch waits until the second has been handed out: one batch at a time
        // would never get there (the timeout turns that hang into a failure).
        let first_started = Arc::new(Notify::new());
        let second_started = Arc::new(Notify::new());
        let batches = AtomicUsize::new(0);
        let batcher = Batcher::start({
            let (first_started, second_started) =
                (Arc::clone(&first_started), Arc::clone(&second_started));
            move |asks: Vec<Ask<u32, u32>>| {
                let nth = batches.fetch_add(1, Ordering::SeqCst);
                let (first_started, second_started) =
                    (Arc::clone(&first_started), Arc::clone(&second_started));
                async move {
                    if nth == 0 {
                        first_started.notify_one();
                        second_started.notified().await;
                    } else {
                        second_started.notify_one();
                    }
                    echo(asks);
                    Vec::new()
                }
            }
        });
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.call(1).await }
        });
        first_started.notified().await;
        let both = async { (batcher.call(2).await, first.await) };
        let (second, first) = tokio::time::timeout(Duration::from_secs(60), both)
            .await
            .expect("the second batch is handled while the first is in flight");
        assert_eq!(second.unwrap(), 2);
        assert_eq!(first.unwrap().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_batch_takes_its_share_of_the_queue() {
        let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
        let batcher = Batcher::start({
            let sizes = Arc::clone(&sizes);
            move |asks: Vec<Ask<u32, u32>>| {
                sizes.lock().unwrap().push(asks.len());
                echo(asks);
                async { Vec::new() }
            }
        });
        // Ten asks queue before the batcher's task first runs (no await until the answers).
        let answers: Vec<_> = (0..10u32)
            .map(|q| {
                let (reply, answer) = oneshot::channel();
                batcher
                    .tx
                    .try_send(Ask { question: q, reply })
                    .expect("room in the queue");
                answer
            })
            .collect();
        for (q, answer) in (0..10u32).zip(answers) {
            assert_eq!(answer.await.unwrap().unwrap(), q);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes[0], 5, "half of the ten queued, batch sizes {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10, "batch sizes {sizes:?}");
    }

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
