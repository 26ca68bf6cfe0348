//! `poll(2)` backend, level-triggered by nature.
//!
//! Registrations live in a dense `Vec<PollFd>` (what the syscall takes) plus
//! a parallel key vector and a fd -> index map, so register, modify and
//! deregister are O(1) and a wait is one syscall over the array. Only the
//! owning loop's thread touches it: changes requested by other threads go
//! through the loop's task queue, so no lock or wake-and-retry scheme (as in
//! mio's poll selector) is needed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use super::{Interest, PollEvent, Poller, PollerKind, Ready, timeout_to_timespec};

/// `poll(2)` backend. Owned by one loop; not shared between threads.
pub struct PollPoller {
    /// What `poll(2)` is given. The `'static` borrow is a promise kept by the
    /// [`Poller`] contract: every fd is deregistered before it is closed.
    fds: Vec<PollFd<'static>>,
    keys: Vec<u64>,
    index: HashMap<RawFd, usize>,
}

impl PollPoller {
    /// Creates an empty set.
    pub fn new() -> PollPoller {
        PollPoller { fds: Vec::new(), keys: Vec::new(), index: HashMap::new() }
    }
}

impl Default for PollPoller {
    fn default() -> Self {
        Self::new()
    }
}

fn flags(interest: Interest) -> PollFlags {
    let mut f = PollFlags::empty();
    if interest.is_readable() {
        // RDHUP only with read interest (see the epoll backend).
        f |= PollFlags::IN | PollFlags::PRI | PollFlags::RDHUP;
    }
    if interest.is_writable() {
        f |= PollFlags::OUT;
    }
    f
}

fn ready(f: PollFlags) -> Ready {
    let mut r = Ready::empty();
    if f.intersects(PollFlags::IN | PollFlags::PRI) {
        r |= Ready::READABLE;
    }
    if f.contains(PollFlags::OUT) {
        r |= Ready::WRITABLE;
    }
    if f.contains(PollFlags::RDHUP) {
        r |= Ready::READ_CLOSED;
    }
    if f.contains(PollFlags::HUP) {
        r |= Ready::HUP;
    }
    if f.intersects(PollFlags::ERR | PollFlags::NVAL) {
        r |= Ready::ERROR;
    }
    r
}

impl Poller for PollPoller {
    fn kind(&self) -> PollerKind {
        PollerKind::Poll
    }

    fn register(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.index.contains_key(&raw) {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::EXIST.raw_os_error()));
        }
        // SAFETY: the `Poller` contract requires callers to deregister `fd`
        // before closing it, so the number stays a valid open fd for as long
        // as it is in `fds`. Even if a caller broke that promise the kernel
        // would only report POLLNVAL (mapped to ERROR) for this slot: poll
        // never dereferences user memory through the fd.
        let borrowed: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(raw) };
        self.index.insert(raw, self.fds.len());
        self.fds.push(PollFd::from_borrowed_fd(borrowed, flags(interest)));
        self.keys.push(key);
        Ok(())
    }

    fn reregister(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        let i = *self.index.get(&fd.as_raw_fd()).ok_or_else(not_found)?;
        let raw = fd.as_raw_fd();
        // SAFETY: same promise as in `register`: deregistered before close.
        let borrowed: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(raw) };
        self.fds[i] = PollFd::from_borrowed_fd(borrowed, flags(interest));
        self.keys[i] = key;
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let i = self.index.remove(&raw).ok_or_else(not_found)?;
        self.fds.swap_remove(i);
        self.keys.swap_remove(i);
        if i < self.fds.len() {
            let moved = self.fds[i].as_fd_raw();
            self.index.insert(moved, i);
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<PollEvent>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let ts = timeout_to_timespec(timeout);
        let n = match rustix::event::poll(&mut self.fds, ts.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        for (pfd, &key) in self.fds.iter().zip(&self.keys) {
            let r = pfd.revents();
            if !r.is_empty() {
                events.push(PollEvent { key, ready: ready(r) });
                if events.len() == n {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error())
}

/// Reads the raw fd back out of a `PollFd`.
trait PollFdRaw {
    fn as_fd_raw(&self) -> RawFd;
}

impl PollFdRaw for PollFd<'_> {
    fn as_fd_raw(&self) -> RawFd {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}
