//! What the threads of a uring server share: counters and the drain flag
//! ([`Shared`]), and each ring thread's [`Mailbox`], through which the
//! control thread (drain, stop) and the job workers (answers) reach a
//! ring that only its own thread may submit to.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ferry_reactor::Waker;

use crate::reactor::jobs::JobPool;

/// Server-wide state (one per server, behind an `Arc`).
pub(super) struct Shared {
    /// Connections open across all rings.
    live: AtomicUsize,
    /// Connections accepted.
    pub(super) accepted: AtomicU64,
    /// Connections accepted and closed at once for lack of descriptors.
    shed: AtomicU64,
    /// The drain began: the last connection to close wakes `idle`.
    draining: AtomicBool,
    /// Readable once no connection is left during the drain.
    pub(super) idle: Waker,
    /// Where sessions' blocking jobs run.
    pub(super) jobs: JobPool,
}

impl Shared {
    pub(super) fn new() -> io::Result<Shared> {
        Ok(Shared {
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            idle: Waker::new()?,
            jobs: JobPool::new(),
        })
    }

    /// A connection was accepted and is being served.
    pub(super) fn opened(&self) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
    }

    /// A connection ended; the last one of a draining server says so.
    pub(super) fn closed(&self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 && self.draining.load(Ordering::SeqCst) {
            self.wake_idle();
        }
    }

    /// A connection was shed for lack of descriptors; returns the total.
    pub(super) fn shed(&self) -> u64 {
        self.shed.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Connections open now.
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// From now on the last connection to close wakes `idle`.
    pub(super) fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn wake_idle(&self) {
        if let Err(e) = self.idle.wake() {
            tracing::error!("cannot announce that the last connection closed: {e}");
        }
    }
}

/// A message to a ring thread.
pub(super) enum Msg {
    /// A job finished: its answer for the connection in slot `index` of
    /// generation `generation`.
    JobDone { index: u32, generation: u32, answer: Vec<u8> },
    /// Stop accepting; close idle connections, the others once done.
    Drain,
    /// Close every connection now and end the thread.
    Quit,
}

/// A ring thread's inbox: messages behind a lock plus an eventfd the ring
/// keeps a read on, so a post wakes the ring.
pub(super) struct Mailbox {
    messages: Mutex<Vec<Msg>>,
    waker: Waker,
}

impl Mailbox {
    pub(super) fn new() -> io::Result<Mailbox> {
        Ok(Mailbox { messages: Mutex::new(Vec::new()), waker: Waker::new()? })
    }

    /// Posts `msg` and wakes the ring.
    pub(super) fn post(&self, msg: Msg) {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner).push(msg);
        if let Err(e) = self.waker.wake() {
            tracing::error!("cannot wake an io_uring thread: {e}");
        }
    }

    /// Takes every message posted so far.
    pub(super) fn take(&self) -> Vec<Msg> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl AsFd for Mailbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.waker.as_fd()
    }
}
