//! `epoll(7)` backend, level-triggered.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll;

use super::{Interest, PollEvent, Poller, PollerKind, Ready, timeout_to_timespec};

/// Initial number of events fetched per `epoll_wait`; doubles (up to a cap)
/// whenever a wait fills the buffer.
const INITIAL_EVENTS: usize = 256;
const MAX_EVENTS: usize = 8192;

/// `epoll` backend. Owned by one loop; not shared between threads.
pub struct EpollPoller {
    epfd: OwnedFd,
    buf: Vec<epoll::Event>,
    cap: usize,
}

impl EpollPoller {
    /// Creates a close-on-exec epoll instance.
    pub fn new() -> io::Result<EpollPoller> {
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(EpollPoller { epfd, buf: Vec::with_capacity(INITIAL_EVENTS), cap: INITIAL_EVENTS })
    }
}

fn flags(interest: Interest) -> epoll::EventFlags {
    let mut f = epoll::EventFlags::empty();
    if interest.is_readable() {
        // RDHUP only with read interest: level-triggered, it would keep
        // firing after the peer's FIN once the reader stopped reading.
        f |= epoll::EventFlags::IN | epoll::EventFlags::PRI | epoll::EventFlags::RDHUP;
    }
    if interest.is_writable() {
        f |= epoll::EventFlags::OUT;
    }
    f
}

fn ready(f: epoll::EventFlags) -> Ready {
    let mut r = Ready::empty();
    if f.intersects(epoll::EventFlags::IN | epoll::EventFlags::PRI) {
        r |= Ready::READABLE;
    }
    if f.contains(epoll::EventFlags::OUT) {
        r |= Ready::WRITABLE;
    }
    if f.contains(epoll::EventFlags::RDHUP) {
        r |= Ready::READ_CLOSED;
    }
    if f.contains(epoll::EventFlags::HUP) {
        r |= Ready::HUP;
    }
    if f.contains(epoll::EventFlags::ERR) {
        r |= Ready::ERROR;
    }
    r
}

impl Poller for EpollPoller {
    fn kind(&self) -> PollerKind {
        PollerKind::Epoll
    }

    fn register(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        epoll::add(&self.epfd, fd, epoll::EventData::new_u64(key), flags(interest))?;
        Ok(())
    }

    fn reregister(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()> {
        epoll::modify(&self.epfd, fd, epoll::EventData::new_u64(key), flags(interest))?;
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(&self.epfd, fd)?;
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<PollEvent>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.buf.clear();
        let ts = timeout_to_timespec(timeout);
        match epoll::wait(&self.epfd, rustix::buffer::spare_capacity(&mut self.buf), ts.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for ev in &self.buf {
            // `epoll::Event` is packed on x86_64: copy fields out.
            let f = ev.flags;
            let data = ev.data;
            events.push(PollEvent { key: data.u64(), ready: ready(f) });
        }
        if self.buf.len() == self.cap && self.cap < MAX_EVENTS {
            self.cap *= 2;
            self.buf.reserve(self.cap);
        }
        Ok(())
    }
}
