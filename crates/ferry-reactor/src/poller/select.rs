//! `select(2)` backend: the first multiplexer of the canon, kept faithful
//! to its limits.
//!
//! Like the C library's `fd_set`, it holds descriptors below
//! [`FD_SETSIZE`] (1024) only: registering a larger one fails with a clear
//! error instead of writing past a fixed-size bit array (the classic
//! `FD_SET` memory corruption), and a server on this backend closes such
//! connections with a log line. Each wait rebuilds the read and write sets
//! from the registrations (select overwrites them) and scans them: O(highest
//! fd) per wait, which is why epoll exists.
//!
//! select has no error or hang-up sets: a peer's close shows as readable
//! (the read returns 0), a failed connect as writable (`SO_ERROR` tells),
//! and a descriptor registered with [`Interest::NONE`] reports nothing at
//! all, unlike epoll and poll, which report hang-ups regardless.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use rustix::event::{FdSetElement, FdSetIter, fd_set_insert, fd_set_num_elements};

use super::{Interest, PollEvent, Poller, PollerKind, Ready, timeout_to_timespec};

/// The most descriptors a `select` set holds (glibc's `FD_SETSIZE`):
/// descriptors must be below it.
pub const FD_SETSIZE: usize = 1024;

/// `select(2)` backend. Owned by one loop; not shared between threads.
pub struct SelectPoller {
    /// Key and interest per descriptor, indexed by the descriptor itself.
    slots: Vec<Option<(u64, Interest)>>,
    /// One more than the highest registered descriptor (`nfds`).
    nfds: usize,
    read: Vec<FdSetElement>,
    write: Vec<FdSetElement>,
}

impl SelectPoller {
    /// Creates an empty set.
    pub fn new() -> SelectPoller {
        let words = fd_set_num_elements(FD_SETSIZE, FD_SETSIZE as i32);
        SelectPoller {
            slots: vec![None; FD_SETSIZE],
            nfds: 0,
            read: vec![FdSetElement::default(); words],
            write: vec![FdSetElement::default(); words],
        }
    }

    fn slot(&mut self, fd: BorrowedFd<'_>) -> io::Result<&mut Option<(u64, Interest)>> {
        let raw = fd.as_raw_fd();
        let index = usize::try_from(raw).ok().filter(|&i| i < FD_SETSIZE).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("descriptor {raw} does not fit select(2)'s FD_SETSIZE ({FD_SETSIZE}); use epoll or poll"),
            )
        })?;
        Ok(&mut self.slots[index])
    }
}

impl Default for SelectPoller {
    fn default() -> Self {
        Self::new()
    }
}

impl Poller for SelectPoller {
    fn kind(&self) -> PollerKind {
        PollerKind::Select
    }

    fn register(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        let slot = self.slot(fd)?;
        if slot.is_some() {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::EXIST.raw_os_error()));
        }
        *slot = Some((key, interest));
        self.nfds = self.nfds.max(fd.as_raw_fd() as usize + 1);
        Ok(())
    }

    fn reregister(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        let slot = self.slot(fd)?;
        match slot {
            Some(entry) => {
                *entry = (key, interest);
                Ok(())
            }
            None => Err(not_found()),
        }
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.slot(fd)?.take().ok_or_else(not_found)?;
        while self.nfds > 0 && self.slots[self.nfds - 1].is_none() {
            self.nfds -= 1;
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<PollEvent>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.read.fill(FdSetElement::default());
        self.write.fill(FdSetElement::default());
        for (fd, slot) in self.slots[..self.nfds].iter().enumerate() {
            if let Some((_, interest)) = slot {
                if interest.is_readable() {
                    fd_set_insert(&mut self.read, fd as i32);
                }
                if interest.is_writable() {
                    fd_set_insert(&mut self.write, fd as i32);
                }
            }
        }
        let ts = timeout_to_timespec(timeout);
        // SAFETY: the sets hold only registered descriptors, and the
        // `Poller` contract has every descriptor deregistered before it is
        // closed, so all are open; both sets are FD_SETSIZE bits long and
        // `nfds` <= FD_SETSIZE.
        let result = unsafe {
            rustix::event::select(self.nfds as i32, Some(&mut self.read), Some(&mut self.write), None, ts.as_ref())
        };
        match result {
            Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        // Both sets come out in ascending order: merge them into one event
        // per descriptor.
        let mut reads = FdSetIter::new(&self.read).peekable();
        let mut writes = FdSetIter::new(&self.write).peekable();
        loop {
            let fd = match (reads.peek(), writes.peek()) {
                (None, None) => break,
                (Some(&r), Some(&w)) => r.min(w),
                (Some(&r), None) => r,
                (None, Some(&w)) => w,
            };
            let mut ready = Ready::empty();
            if reads.next_if_eq(&fd).is_some() {
                ready |= Ready::READABLE;
            }
            if writes.next_if_eq(&fd).is_some() {
                ready |= Ready::WRITABLE;
            }
            if let Some(Some((key, _))) = self.slots.get(fd as usize) {
                events.push(PollEvent { key: *key, ready });
            }
        }
        Ok(())
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error())
}
