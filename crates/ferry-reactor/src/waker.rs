//! Wakes a loop blocked in its poller from any thread (an `eventfd`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};

/// An `eventfd` that one loop polls and any thread can signal.
///
/// `Send + Sync`: `wake` is a single `write(2)` of a counter increment, which
/// the kernel serialises. Many wakes before the loop runs coalesce into one
/// readable event.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// Creates a non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Waker> {
        let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        Ok(Waker { fd })
    }

    /// Makes the loop's next (or current) wait return.
    pub fn wake(&self) -> io::Result<()> {
        loop {
            match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                // The counter is at its maximum: the loop has plenty of
                // wake-ups pending already. Reset it and try again (mio does
                // the same).
                Err(rustix::io::Errno::AGAIN) => self.drain()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Resets the counter so the fd stops being readable. Called by the loop.
    pub fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 8];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(_) | Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
