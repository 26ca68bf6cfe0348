//! The bounded task queue between the accept loop and the workers: a
//! `VecDeque` under a `Mutex`, and a `Condvar` idle workers sleep on.
//!
//! Only the consumer side blocks. The producer (the accept loop) never waits
//! on the queue: it must keep watching signals too, so [`TaskQueue::try_push`]
//! refuses when full and the accept loop stops accepting until a worker has
//! taken a task (the worker wakes it through the "room" eventfd of
//! `in_flight.rs`; the accept loop is `accept.rs`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// A FIFO of at most `capacity` tasks, shared by reference (`Send + Sync`
/// when `T: Send`) between one producer and many consumers.
#[derive(Debug)]
pub struct TaskQueue<T> {
    state: Mutex<State<T>>,
    /// Signalled when a task is pushed or the queue is closed.
    not_empty: Condvar,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    tasks: VecDeque<T>,
    closed: bool,
}

/// Why [`TaskQueue::try_push`] refused a task; the task is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError<T> {
    /// `capacity` tasks are waiting already.
    Full(T),
    /// The queue was closed; no worker will take it.
    Closed(T),
}

impl<T> TaskQueue<T> {
    /// An empty, open queue holding at most `capacity` tasks (at least 1).
    pub fn new(capacity: usize) -> TaskQueue<T> {
        let capacity = capacity.max(1);
        TaskQueue {
            state: Mutex::new(State { tasks: VecDeque::with_capacity(capacity), closed: false }),
            not_empty: Condvar::new(),
            capacity,
        }
    }

    /// The most tasks the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends a task unless the queue is full or closed. Never blocks
    /// (beyond taking the lock).
    pub fn try_push(&self, task: T) -> Result<(), PushError<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed(task));
        }
        if state.tasks.len() >= self.capacity {
            return Err(PushError::Full(task));
        }
        state.tasks.push_back(task);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest task, sleeping while the queue is empty. Returns
    /// `None` once the queue is closed (tasks left at close time are handed
    /// to the closer, not to workers).
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(task) = state.tasks.pop_front() {
                return Some(task);
            }
            // Spurious wake-ups are fine: the loop re-checks.
            state = self.not_empty.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// True when a push would be refused as full.
    pub fn is_full(&self) -> bool {
        self.lock().tasks.len() >= self.capacity
    }

    /// Tasks waiting.
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    /// True when no task is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue: later pushes are refused, every sleeping and future
    /// [`TaskQueue::pop`] returns `None`, and the tasks nobody took are
    /// returned so the caller can dispose of them.
    pub fn close(&self) -> Vec<T> {
        let mut state = self.lock();
        state.closed = true;
        let left = state.tasks.drain(..).collect();
        drop(state);
        self.not_empty.notify_all();
        left
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code panics while holding the lock, so a poisoned lock still
        // guards a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn fifo_and_bounded() {
        let q = TaskQueue::new(2);
        assert_eq!(q.try_push(1), Ok(()));
        assert_eq!(q.try_push(2), Ok(()));
        assert!(q.is_full());
        assert_eq!(q.try_push(3), Err(PushError::Full(3)));
        assert_eq!(q.pop(), Some(1));
        assert!(!q.is_full());
        assert_eq!(q.try_push(3), Ok(()));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert!(q.is_empty());
    }

    #[test]
    fn zero_capacity_means_one() {
        let q = TaskQueue::new(0);
        assert_eq!(q.capacity(), 1);
        assert_eq!(q.try_push('a'), Ok(()));
        assert_eq!(q.try_push('b'), Err(PushError::Full('b')));
    }

    #[test]
    fn pop_sleeps_until_a_push() {
        let q = Arc::new(TaskQueue::new(4));
        let (tx, rx) = mpsc::channel();
        let worker = {
            let q = Arc::clone(&q);
            thread::spawn(move || tx.send(q.pop()).expect("send"))
        };
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "pop returned with nothing queued");
        q.try_push(7).expect("push");
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("worker woke"), Some(7));
        worker.join().expect("join");
    }

    #[test]
    fn close_wakes_every_sleeper_and_returns_leftovers() {
        let q = Arc::new(TaskQueue::<u32>::new(4));
        let (tx, rx) = mpsc::channel();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (q, tx) = (Arc::clone(&q), tx.clone());
                thread::spawn(move || tx.send(q.pop()).expect("send"))
            })
            .collect();
        // Workers may or may not be asleep yet; either way they must end.
        let left = q.close();
        assert!(left.is_empty());
        for _ in 0..3 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("woke"), None);
        }
        for w in workers {
            w.join().expect("join");
        }
        assert_eq!(q.try_push(1), Err(PushError::Closed(1)));

        let q = TaskQueue::new(4);
        q.try_push(1).expect("push");
        q.try_push(2).expect("push");
        assert_eq!(q.close(), vec![1, 2]);
        assert_eq!(q.pop(), None);
    }
}
