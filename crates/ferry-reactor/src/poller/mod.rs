//! Readiness backends: one small trait, three Linux implementations
//! (epoll, poll, and select with its FD_SETSIZE limit).
//!
//! The backend is picked once, at [`EventLoop`](crate::EventLoop)
//! construction, from a [`PollerKind`]; nothing else in the crate switches
//! on it.
//!
//! # Level-triggered only
//! Every registration is **level-triggered**: whatever a handler leaves
//! unread is reported again on the next wait, so a handler needs no "still
//! readable" bookkeeping and `poll(2)`, which has no edge mode, behaves the
//! same as epoll. (An opt-in edge-triggered mode for connections measured a
//! wash against level and was removed: docs/REACTOR.md, docs/BENCHMARKS.md.)

mod epoll;
mod poll;
mod select;

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::Duration;

pub use epoll::EpollPoller;
pub use poll::PollPoller;
pub use select::{FD_SETSIZE, SelectPoller};

/// What a registration wants to hear about. Plain `Copy` value; `Interest::NONE`
/// still reports errors and hang-ups (the kernel always does).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// Neither readable nor writable (errors and hang-ups are still reported).
    pub const NONE: Interest = Interest(0);
    /// Wake when the fd is readable (or the peer closed).
    pub const READABLE: Interest = Interest(1);
    /// Wake when the fd is writable.
    pub const WRITABLE: Interest = Interest(2);
    /// Both.
    pub const BOTH: Interest = Interest(3);

    /// True if read readiness is wanted.
    pub fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    /// True if write readiness is wanted.
    pub fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// This interest with read readiness set to `on`.
    pub fn with_readable(self, on: bool) -> Interest {
        if on { Interest(self.0 | 1) } else { Interest(self.0 & !1) }
    }
    /// This interest with write readiness set to `on`.
    pub fn with_writable(self, on: bool) -> Interest {
        if on { Interest(self.0 | 2) } else { Interest(self.0 & !2) }
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.is_readable(), self.is_writable()) {
            (false, false) => "NONE",
            (true, false) => "READABLE",
            (false, true) => "WRITABLE",
            (true, true) => "READABLE|WRITABLE",
        })
    }
}

/// What a backend reported for one fd. Plain `Copy` value.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready(u8);

impl Ready {
    /// Data (or EOF) can be read.
    pub const READABLE: Ready = Ready(1);
    /// The send buffer has room.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer shut down its write side (`EPOLLRDHUP`/`POLLRDHUP`).
    pub const READ_CLOSED: Ready = Ready(4);
    /// Both directions are closed (`EPOLLHUP`/`POLLHUP`).
    pub const HUP: Ready = Ready(8);
    /// An error is pending (`EPOLLERR`/`POLLERR`, or `POLLNVAL`).
    pub const ERROR: Ready = Ready(16);

    /// The empty set.
    pub const fn empty() -> Ready {
        Ready(0)
    }
    /// True if every bit of `other` is set.
    pub fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Readable.
    pub fn is_readable(self) -> bool {
        self.contains(Ready::READABLE)
    }
    /// Writable.
    pub fn is_writable(self) -> bool {
        self.contains(Ready::WRITABLE)
    }
    /// Peer closed its write side.
    pub fn is_read_closed(self) -> bool {
        self.contains(Ready::READ_CLOSED)
    }
    /// Hang-up.
    pub fn is_hup(self) -> bool {
        self.contains(Ready::HUP)
    }
    /// Error pending.
    pub fn is_error(self) -> bool {
        self.contains(Ready::ERROR)
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Ready {
    fn bitor_assign(&mut self, rhs: Ready) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Ready::READABLE, "READABLE"),
            (Ready::WRITABLE, "WRITABLE"),
            (Ready::READ_CLOSED, "READ_CLOSED"),
            (Ready::HUP, "HUP"),
            (Ready::ERROR, "ERROR"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("(empty)")?;
        }
        Ok(())
    }
}

/// One readiness report: the caller's key and what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollEvent {
    /// The `key` given at registration.
    pub key: u64,
    /// What is ready.
    pub ready: Ready,
}

/// A readiness backend. Owned by one [`EventLoop`](crate::EventLoop) and used
/// only from its thread (`&mut self` everywhere; not required to be `Sync`).
///
/// Contract shared by every implementation (and tested by one suite):
/// level-triggered; a fd is registered at most once; `deregister` must be
/// called before the fd is closed; `poll` clears `events` and appends at most
/// one event per ready fd; `EINTR` is reported as "no events". `register`
/// may refuse a descriptor the backend cannot watch (select: >= 1024).
pub trait Poller {
    /// Which backend this is.
    fn kind(&self) -> PollerKind;
    /// Starts watching `fd`, reporting events under `key`.
    fn register(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()>;
    /// Changes the interest (and key) of a registered `fd`.
    fn reregister(&mut self, fd: BorrowedFd<'_>, key: u64, interest: Interest) -> io::Result<()>;
    /// Stops watching `fd`.
    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Waits up to `timeout` (`None` = forever; rounded *up* to whole
    /// milliseconds so a timer never fires early) and fills `events`.
    fn poll(&mut self, events: &mut Vec<PollEvent>, timeout: Option<Duration>) -> io::Result<()>;
}

/// Which backend to use; parsed from `"epoll"`, `"poll"` or `"select"` so a
/// CLI can take `--poller epoll|poll|select`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PollerKind {
    /// `epoll(7)`: O(ready) per wait. The default.
    #[default]
    Epoll,
    /// `poll(2)`: O(registered) per wait; portable baseline and cross-check.
    Poll,
    /// `select(2)`: O(highest fd) per wait, and only descriptors below
    /// [`FD_SETSIZE`]; the canon's first multiplexer.
    Select,
}

impl PollerKind {
    /// Creates a backend of this kind.
    pub fn create(self) -> io::Result<Box<dyn Poller>> {
        Ok(match self {
            PollerKind::Epoll => Box::new(EpollPoller::new()?),
            PollerKind::Poll => Box::new(PollPoller::new()),
            PollerKind::Select => Box::new(SelectPoller::new()),
        })
    }

    /// Every kind, for tests and benchmarks that cover each.
    pub const ALL: [PollerKind; 3] = [PollerKind::Epoll, PollerKind::Poll, PollerKind::Select];
}

impl fmt::Display for PollerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PollerKind::Epoll => "epoll",
            PollerKind::Poll => "poll",
            PollerKind::Select => "select",
        })
    }
}

/// Error for an unknown poller name.
#[derive(Debug, thiserror::Error)]
#[error("unknown poller {0:?} (expected \"epoll\", \"poll\" or \"select\")")]
pub struct ParsePollerKindError(String);

impl FromStr for PollerKind {
    type Err = ParsePollerKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "epoll" => Ok(PollerKind::Epoll),
            "poll" => Ok(PollerKind::Poll),
            "select" => Ok(PollerKind::Select),
            _ => Err(ParsePollerKindError(s.to_owned())),
        }
    }
}

/// Converts a timeout to a rustix `Timespec`, rounded up to whole
/// milliseconds (mio does the same) so sleeping never ends before a timer's
/// deadline and forces a busy re-poll. Public for other epoll loops built on
/// rustix (the prefork parent's).
pub fn timeout_to_timespec(timeout: Option<Duration>) -> Option<rustix::event::Timespec> {
    timeout.map(|d| {
        let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i64;
        rustix::event::Timespec { tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000 }
    })
}
