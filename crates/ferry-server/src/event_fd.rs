//! A tiny `eventfd` wrapper: one thread makes it readable, pollers on any
//! thread notice. The pool uses it twice: as the shutdown flag every poller
//! watches, and as the "a queue slot was freed" wake-up of the accept loop.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};

/// A non-blocking, close-on-exec eventfd. `Send + Sync`: both operations are
/// single syscalls the kernel serialises.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A counter at zero (not readable).
    pub(crate) fn new() -> io::Result<EventFd> {
        Ok(EventFd { fd: eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)? })
    }

    /// Makes the fd readable until the next [`EventFd::reset`].
    pub(crate) fn notify(&self) -> io::Result<()> {
        loop {
            match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                // The counter is saturated: it is readable already.
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Resets the counter so the fd stops being readable.
    pub(crate) fn reset(&self) -> io::Result<()> {
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

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
