//! The socket operations of the blocking pump, each retrying `EINTR`.
//!
//! The socket is non-blocking and every wait is a `poll` bounded by the
//! connection core's next deadline, so no call can hang on a peer:
//! `sendfile` and `splice` ignore `SO_SNDTIMEO`/`SO_RCVTIMEO`, and a
//! blocking `sendfile` to a peer that stopped reading would wait forever.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::Shutdown;

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// The socket is ready (or has an error or end of stream to report).
    Ready,
    /// Shutdown was signalled.
    Shutdown,
    /// The deadline passed.
    TimedOut,
}

/// Which readiness to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Read,
    Write,
}

/// Waits until `socket` is ready for `want`, `shutdown` (if given) is
/// signalled, or `deadline` passes (`None`: no deadline). Shutdown wins
/// when both happen.
pub(super) fn wait(
    socket: BorrowedFd<'_>,
    want: Want,
    shutdown: Option<&Shutdown>,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    let flags = match want {
        Want::Read => PollFlags::IN,
        Want::Write => PollFlags::OUT,
    };
    loop {
        let ts = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        // The second slot is only polled when there is a shutdown flag.
        let mut fds = [PollFd::new(&socket, flags), PollFd::new(&socket, PollFlags::empty())];
        let polled = match shutdown {
            Some(s) => {
                fds[1] = PollFd::new(s, PollFlags::IN);
                2
            }
            None => 1,
        };
        let n = match poll(&mut fds[..polled], ts.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if shutdown.is_some() && !fds[1].revents().is_empty() {
            return Ok(Wait::Shutdown);
        }
        if !fds[0].revents().is_empty() {
            return Ok(Wait::Ready);
        }
        if n == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Wait::TimedOut);
        }
    }
}

/// A poll timeout, rounded up to the next millisecond so a wait for half
/// a millisecond does not spin.
fn timespec(left: Duration) -> Timespec {
    let rest = left.subsec_nanos() % 1_000_000;
    let left = if rest == 0 { left } else { left.saturating_add(Duration::from_nanos(u64::from(1_000_000 - rest))) };
    Timespec { tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX), tv_nsec: i64::from(left.subsec_nanos()) }
}

/// Runs `op` until it does not fail with `EINTR`.
pub(super) fn retry<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
