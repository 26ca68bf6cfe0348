//! Readiness backends: one small trait, two Linux implementations.
//!
//! The backend is picked once, at [`EventLoop`](crate::EventLoop)
//! construction, from a [`PollerKind`]; nothing else in the crate switches
//! on it.
//!
//! # Level-triggered by default; edge-triggered connections on request
//! Registrations are **level-triggered** unless they ask for
//! [`Interest::EDGE`]: whatever a handler leaves unread is reported again on
//! the next wait, so a handler needs no "still readable" bookkeeping and
//! `poll(2)`, which has no edge mode, behaves the same.
//!
//! `TcpConnection` asks for `EDGE` on a loop with
//! `EventLoop::set_edge_triggered(true)`, which epoll honours (`EPOLLET`) and
//! poll ignores. It then keeps its own readiness: it still reads once per
//! event (fairness as before), and when that read did not drain the socket,
//! or reading resumes after a pause, or the write budget ran out, it
//! re-dispatches itself through the loop's task queue rather than waiting
//! for an edge that will not come; the registration is never modified.
//! Measured, the two are a wash, which is why level stays the default: edge
//! saves epoll's re-check of every socket it reported on the next wait (one
//! `tcp_poll` per message, ~3% of a loop serving 1,000 busy connections),
//! while level's re-check delays a loop's sleep a little, which helps when
//! more threads are busy than there are cores (2 sub-loops x 1,000
//! connections x 16 B: edge +4% CPU per message). docs/BENCHMARKS.md has
//! the A/B; the connection tests run on all three (epoll level, epoll edge,
//! poll).

mod epoll;
mod poll;

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::Duration;

pub use epoll::EpollPoller;
pub use poll::PollPoller;

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
    /// Edge-triggered where the backend supports it ([`Poller::supports_edge`]):
    /// a hint added to the others (`Interest::BOTH.with_edge(true)`). The
    /// handler must then track readiness itself (see the module docs).
    pub const EDGE: Interest = Interest(4);

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
    /// True if edge triggering is asked for.
    pub fn is_edge(self) -> bool {
        self.0 & 4 != 0
    }
    /// This interest with the edge-triggered hint set to `on`.
    pub fn with_edge(self, on: bool) -> Interest {
        if on { Interest(self.0 | 4) } else { Interest(self.0 & !4) }
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE")?,
            (true, false) => f.write_str("READABLE")?,
            (false, true) => f.write_str("WRITABLE")?,
            (true, true) => f.write_str("READABLE|WRITABLE")?,
        }
        if self.is_edge() {
            f.write_str("|EDGE")?;
        }
        Ok(())
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
/// Contract shared by both implementations (and tested by one suite):
/// level-triggered unless [`Interest::EDGE`] is asked for and
/// [`supports_edge`](Self::supports_edge); a fd is registered at most once; `deregister` must be
/// called before the fd is closed; `poll` clears `events` and appends at most
/// one event per ready fd; `EINTR` is reported as "no events".
pub trait Poller {
    /// Which backend this is.
    fn kind(&self) -> PollerKind;
    /// True if [`Interest::EDGE`] registrations are edge-triggered here.
    fn supports_edge(&self) -> bool;
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

/// Which backend to use; parsed from `"epoll"` or `"poll"` so a CLI can take
/// `--poller epoll|poll`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PollerKind {
    /// `epoll(7)`: O(ready) per wait. The default.
    #[default]
    Epoll,
    /// `poll(2)`: O(registered) per wait; portable baseline and cross-check.
    Poll,
}

impl PollerKind {
    /// Creates a backend of this kind.
    pub fn create(self) -> io::Result<Box<dyn Poller>> {
        Ok(match self {
            PollerKind::Epoll => Box::new(EpollPoller::new()?),
            PollerKind::Poll => Box::new(PollPoller::new()),
        })
    }

    /// Both kinds, for tests and benchmarks that cover each.
    pub const ALL: [PollerKind; 2] = [PollerKind::Epoll, PollerKind::Poll];
}

impl fmt::Display for PollerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PollerKind::Epoll => "epoll",
            PollerKind::Poll => "poll",
        })
    }
}

/// Error for an unknown poller name.
#[derive(Debug, thiserror::Error)]
#[error("unknown poller {0:?} (expected \"epoll\" or \"poll\")")]
pub struct ParsePollerKindError(String);

impl FromStr for PollerKind {
    type Err = ParsePollerKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "epoll" => Ok(PollerKind::Epoll),
            "poll" => Ok(PollerKind::Poll),
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
