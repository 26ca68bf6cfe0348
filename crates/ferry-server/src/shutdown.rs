//! The orderly-shutdown flag every thread of a server shares.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_reactor::Waker;

/// "Stop taking new work; finish what is in flight." Cloning gives another
/// handle to the same flag, so tests and signal handling code can trigger
/// it from any thread.
///
/// It is both a flag ([`Shutdown::is_signalled`], for code between blocking
/// calls) and a file descriptor that becomes readable once signalled and
/// stays readable forever after, so every thread blocked in `poll` on it
/// wakes, however many there are and whenever they start waiting.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    signalled: AtomicBool,
    fd: Waker,
}

impl Shutdown {
    /// A flag that is not signalled yet.
    pub fn new() -> io::Result<Shutdown> {
        Ok(Shutdown { inner: Arc::new(Inner { signalled: AtomicBool::new(false), fd: Waker::new()? }) })
    }

    /// Signals shutdown. Idempotent.
    pub fn signal(&self) {
        self.inner.signalled.store(true, Ordering::SeqCst);
        if let Err(e) = self.inner.fd.wake() {
            // Only pollers miss the wake-up; the flag is set regardless.
            tracing::error!("cannot wake threads for shutdown: {e}");
        }
    }

    /// True once [`Shutdown::signal`] was called on any handle.
    pub fn is_signalled(&self) -> bool {
        self.inner.signalled.load(Ordering::SeqCst)
    }
}

/// The descriptor to `poll` for readability; readable once signalled.
impl AsFd for Shutdown {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    fn readable(s: &Shutdown) -> bool {
        let mut fds = [PollFd::new(s, PollFlags::IN)];
        poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).expect("poll") == 1
    }

    #[test]
    fn stays_readable_for_every_clone_once_signalled() {
        let a = Shutdown::new().expect("eventfd");
        let b = a.clone();
        assert!(!a.is_signalled());
        assert!(!readable(&b));
        a.signal();
        a.signal();
        assert!(b.is_signalled());
        assert!(readable(&b));
        assert!(readable(&a), "polling must not consume the signal");
    }
}
