//! A one-shot answer from the writer thread to one waiting caller.
//!
//! # Ground rules
//!
//! - [`oneshot`] makes a pair sharing one slot (`Mutex<Option<Result<T>>>` plus a `Condvar`).
//!   The writer fills the slot once through [`Reply::send`]; the caller blocks in
//!   [`Answer::wait`] until it is filled.
//! - A [`Reply`] dropped without sending (the writer stopped with the request still queued)
//!   fills the slot with `Error::Stopped`, so no caller waits for ever.
//! - The caller parks on the condvar at once, with no spinning or yielding: with many callers
//!   and few cores, spinning callers would take the CPU from the writer.

use super::sync::{self, Arc, Condvar, Mutex, MutexGuard};
use super::{Error, Result};

#[derive(Debug)]
struct Slot<T> {
    value: Mutex<Option<Result<T>>>,
    filled: Condvar,
}

/// The writer's end: answers once.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The caller's end: waits for the answer.
#[derive(Debug)]
pub(crate) struct Answer<T> {
    slot: Arc<Slot<T>>,
}

/// A fresh reply/answer pair.
pub(crate) fn oneshot<T>() -> (Reply<T>, Answer<T>) {
    let slot = Arc::new(Slot {
        value: Mutex::new(None),
        filled: Condvar::new(),
    });
    (
        Reply {
            slot: Some(Arc::clone(&slot)),
        },
        Answer { slot },
    )
}

fn lock<T>(slot: &Slot<T>) -> MutexGuard<'_, Option<Result<T>>> {
    sync::lock(&slot.value)
}

impl<T> Reply<T> {
    /// Answers the caller.
    pub(crate) fn send(mut self, value: Result<T>) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, value);
        }
    }
}

fn fill<T>(slot: &Slot<T>, value: Result<T>) {
    *lock(slot) = Some(value);
    slot.filled.notify_one();
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, Err(Error::Stopped));
        }
    }
}

impl<T> Answer<T> {
    /// Blocks until the writer answers (or drops the request: `Error::Stopped`).
    pub(crate) fn wait(self) -> Result<T> {
        let mut value = lock(&self.slot);
        loop {
            if let Some(v) = value.take() {
                return v;
            }
            // Poisoning is not part of the protocol (see `crate::sync`).
            value = match self.slot.filled.wait(value) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

/// The group-commit acknowledgement under loom: every interleaving of the writer answering
/// (or dropping the request) and the caller waiting ends with the caller holding exactly the
/// writer's answer, never hanging. Run by `scripts/loom`.
#[cfg(all(test, lessor_loom))]
mod loom_models {
    use super::oneshot;
    use crate::error::Error;

    #[test]
    fn the_caller_gets_the_answer_whatever_the_interleaving() {
        loom::model(|| {
            let (reply, answer) = oneshot::<u64>();
            let writer = loom::thread::spawn(move || reply.send(Ok(7)));
            assert_eq!(answer.wait().ok(), Some(7));
            writer.join().unwrap();
        });
    }

    #[test]
    fn a_dropped_request_answers_stopped() {
        loom::model(|| {
            let (reply, answer) = oneshot::<u64>();
            let writer = loom::thread::spawn(move || drop(reply));
            assert!(matches!(answer.wait(), Err(Error::Stopped)));
            writer.join().unwrap();
        });
    }

    #[test]
    fn two_callers_of_one_group_each_get_their_own_answer() {
        loom::model(|| {
            let (r1, a1) = oneshot::<u64>();
            let (r2, a2) = oneshot::<u64>();
            let writer = loom::thread::spawn(move || {
                r2.send(Ok(2));
                r1.send(Ok(1));
            });
            let other = loom::thread::spawn(move || a2.wait().ok());
            assert_eq!(a1.wait().ok(), Some(1));
            assert_eq!(other.join().unwrap(), Some(2));
            writer.join().unwrap();
        });
    }
}
