//! Timers: a min-heap of deadlines with lazy cancellation.
//!
//! Arming is O(log n), cancelling is O(1) (the entry is forgotten; its heap
//! node is skipped when it surfaces), so tens of thousands of idle-timeout
//! timers are cheap. Ties fire in the order they were armed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::event_loop::EventLoop;

/// Names an armed timer so it can be cancelled. Unique per loop for the
/// loop's lifetime; a stale id cancels nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

pub(crate) enum TimerCallback {
    Once(Box<dyn FnOnce(&mut EventLoop)>),
    Every(Box<dyn FnMut(&mut EventLoop)>, Duration),
}

/// The loop's timers. Loop-thread only.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: HashMap<u64, TimerCallback>,
}

impl TimerQueue {
    /// Arms `cb` for `deadline` under the (fresh) id `id`.
    pub(crate) fn insert(&mut self, id: TimerId, deadline: Instant, cb: TimerCallback) {
        self.heap.push(Reverse((deadline, id.0)));
        self.live.insert(id.0, cb);
    }

    /// Forgets a timer; returns whether it was still armed.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        self.live.remove(&id.0).is_some()
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Earliest deadline among live timers (drops cancelled heads).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((when, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                return Some(*when);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops the next timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, Instant, TimerCallback)> {
        loop {
            let Reverse((when, id)) = *self.heap.peek()?;
            if when > now {
                return None;
            }
            self.heap.pop();
            if let Some(cb) = self.live.remove(&id) {
                return Some((TimerId(id), when, cb));
            }
        }
    }
}
