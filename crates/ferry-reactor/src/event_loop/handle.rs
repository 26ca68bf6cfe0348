//! [`LoopHandle`]: the `Send` side of a loop, and the task queue behind it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use super::EventLoop;
use crate::timer::{TimerCallback, TimerId};
use crate::waker::Waker;

/// A closure posted from any thread to run on the loop.
pub(super) type Task = Box<dyn FnOnce(&mut EventLoop) + Send>;

pub(super) struct Queue {
    pub(super) tasks: Vec<Task>,
    /// Posted by [`LoopHandle::run_in_loop`] on the loop's own thread: run
    /// as soon as the handler, timer or task now running returns.
    pub(super) soon: Vec<Task>,
    /// Set when the loop has stopped for good: later tasks are dropped at
    /// once (closing any fds they carry) instead of waiting forever.
    pub(super) closed: bool,
}

pub(super) struct Shared {
    pub(super) queue: Mutex<Queue>,
    /// Mirrors "queue non-empty" so an idle iteration skips the lock.
    pub(super) pending: AtomicBool,
    /// Mirrors "`soon` non-empty"; written and read on the loop's thread
    /// only, checked after every handler, timer and task.
    pub(super) soon_pending: AtomicBool,
    pub(super) waker: Waker,
    pub(super) quit: AtomicBool,
    pub(super) thread: ThreadId,
    pub(super) next_timer: AtomicU64,
    pub(super) id: u64,
}

impl Shared {
    /// Takes the tasks of one queue (`which`) if its `flag` says any were
    /// posted, clearing the flag under the lock. A post sets the flag under
    /// the lock after adding its task, so a task posted after the flag was
    /// read is seen by the next call.
    pub(super) fn take_posted(&self, flag: &AtomicBool, which: impl FnOnce(&mut Queue) -> &mut Vec<Task>) -> Vec<Task> {
        if !flag.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut q = self.lock();
        flag.store(false, Ordering::Relaxed);
        std::mem::take(which(&mut q))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        // Tasks never run under this lock, so a poisoned lock only means a
        // panic while pushing; the queue itself is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn push(&self, task: Task) -> bool {
        let was_empty = {
            let mut q = self.lock();
            if q.closed {
                return false;
            }
            let was_empty = q.tasks.is_empty();
            q.tasks.push(task);
            self.pending.store(true, Ordering::Release);
            was_empty
        };
        // Only the empty -> non-empty transition needs a wake: a non-empty
        // queue already has one in flight that the loop has not consumed
        // (the loop drains the waker before it takes the queue). A push from
        // the loop's own thread needs none either: the loop is not asleep
        // (it is running this code), and it never blocks while `pending`.
        if was_empty
            && thread::current().id() != self.thread
            && let Err(e) = self.waker.wake()
        {
            tracing::error!(error = %e, "waking event loop failed");
        }
        true
    }

    /// Queues `task` to run as soon as the loop regains control (only
    /// called on the loop's thread, so no wake-up is needed).
    fn push_soon(&self, task: Task) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        q.soon.push(task);
        self.soon_pending.store(true, Ordering::Relaxed);
        true
    }

    pub(super) fn alloc_timer(&self) -> TimerId {
        TimerId(self.next_timer.fetch_add(1, Ordering::Relaxed))
    }
}

pub(super) static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A cloneable, `Send + Sync` reference to an [`EventLoop`] usable from any
/// thread: post closures, arm or cancel timers, ask it to quit.
///
/// Every operation only enqueues work and wakes the loop; the work runs on
/// the loop's thread, in the order it was posted by a given thread. Posting
/// to a loop that has exited drops the closure (and reports `false`).
#[derive(Clone)]
pub struct LoopHandle {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoopHandle({})", self.shared.id)
    }
}

impl PartialEq for LoopHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl Eq for LoopHandle {}

/// Consistent with `PartialEq`: the id names the same shared state.
impl Hash for LoopHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl LoopHandle {
    /// Runs `f` on the loop as soon as it can (muduo's `runInLoop`).
    ///
    /// From another thread: queues `f` and wakes the loop, like
    /// [`queue_in_loop`](Self::queue_in_loop). On the loop's own thread `f`
    /// runs as soon as the loop regains control: right after the handler,
    /// timer or task now running returns, before the next event of the
    /// batch. It cannot run inside this call, as muduo's does: whoever runs
    /// on the loop's thread already holds the loop's `&mut`, and handing `f`
    /// another one would alias it (code that holds the `&mut EventLoop` runs
    /// `f` at once with [`EventLoop::run_in_loop`]). Called on the loop's
    /// thread while the loop is not running (e.g. before `run`), `f` runs
    /// first thing in the next iteration.
    /// Returns `false` if the loop has exited (then `f` is dropped).
    pub fn run_in_loop(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        if self.is_in_loop_thread() { self.shared.push_soon(Box::new(f)) } else { self.shared.push(Box::new(f)) }
    }

    /// Queues `f` to run on the loop at the end of an iteration, after its
    /// events and timers (muduo's `queueInLoop`): from another thread it
    /// wakes the loop; on the loop's own thread it waits for the end of the
    /// current iteration. Returns `false` if the loop has exited.
    pub fn queue_in_loop(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        self.shared.push(Box::new(f))
    }

    /// Arms a one-shot timer on the loop; the id can be cancelled from any
    /// thread with [`cancel_timer`](Self::cancel_timer).
    pub fn run_after(&self, delay: Duration, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        let deadline = Instant::now() + delay;
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.timers.insert(id, deadline, TimerCallback::Once(Box::new(f)));
        }));
        id
    }

    /// Arms a repeating timer on the loop (first run after `interval`).
    pub fn run_every(&self, interval: Duration, f: impl FnMut(&mut EventLoop) + Send + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        let deadline = Instant::now() + interval;
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.timers.insert(id, deadline, TimerCallback::Every(Box::new(f), interval));
        }));
        id
    }

    /// Cancels a timer (queued like any task, so it takes effect after any
    /// earlier `run_after` from this thread).
    pub fn cancel_timer(&self, id: TimerId) {
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.cancel_timer(id);
        }));
    }

    /// Asks the loop to return from [`EventLoop::run`] after the current
    /// iteration. Idempotent, callable from any thread.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        if let Err(e) = self.shared.waker.wake() {
            tracing::error!(error = %e, "waking event loop failed");
        }
    }

    /// True if called on the thread that owns the loop.
    pub fn is_in_loop_thread(&self) -> bool {
        thread::current().id() == self.shared.thread
    }

    /// A process-unique number naming the loop (for logs and maps).
    pub fn id(&self) -> u64 {
        self.shared.id
    }
}
