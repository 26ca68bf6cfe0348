//! The socket operations of the pump, each retrying `EINTR`.
//!
//! The socket is non-blocking and every wait is a `poll` with a timeout, so
//! no call can hang on a peer: `sendfile` and `splice` ignore `SO_SNDTIMEO`
//! and `SO_RCVTIMEO`, and a blocking `sendfile` to a peer that stopped
//! reading would wait forever. A write that makes no progress for the idle
//! timeout fails with `TimedOut`.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use ferry_reactor::sys::zero_copy;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{SendFlags, send};

use crate::Shutdown;

/// Largest count one `sendfile` call may move (the kernel's own limit).
const MAX_SENDFILE: usize = 0x7fff_f000;

/// What ended a wait for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The socket has bytes, an end of stream or an error to report.
    Readable,
    /// Shutdown was signalled.
    Shutdown,
    /// Nothing happened for the whole timeout.
    TimedOut,
}

/// Waits until `socket` is readable, `shutdown` (if given) is signalled, or
/// `timeout` passes (a timeout too large to represent waits forever).
/// Shutdown wins when both happen.
pub(crate) fn wait_readable(
    socket: BorrowedFd<'_>,
    shutdown: Option<&Shutdown>,
    timeout: Duration,
) -> io::Result<Wait> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let ts = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        // The second slot is only polled when there is a shutdown flag.
        let mut fds = [PollFd::new(&socket, PollFlags::IN), PollFd::new(&socket, PollFlags::empty())];
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
            return Ok(Wait::Readable);
        }
        if n == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Wait::TimedOut);
        }
    }
}

/// Waits until `socket` can take more bytes; false if `timeout` passed
/// first.
fn wait_writable(socket: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let ts = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        let mut fds = [PollFd::new(&socket, PollFlags::OUT)];
        match poll(&mut fds, ts.as_ref()) {
            // Ready, or an error/hang-up the next send reports.
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(false),
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn timespec(left: Duration) -> Timespec {
    Timespec { tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX), tv_nsec: i64::from(left.subsec_nanos()) }
}

/// Runs a write until it makes progress, waiting (at most `timeout`) while
/// the socket's send buffer is full.
fn write_with_timeout(
    socket: BorrowedFd<'_>,
    timeout: Duration,
    mut write: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    loop {
        match write() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !wait_writable(socket, timeout)? {
                    return Err(stalled());
                }
            }
            other => return other,
        }
    }
}

/// One `send` with `MSG_NOSIGNAL`; returns how many bytes the kernel took.
pub(crate) fn send_bytes(stream: &TcpStream, bytes: &[u8], timeout: Duration) -> io::Result<usize> {
    write_with_timeout(stream.as_fd(), timeout, || send(stream, bytes, SendFlags::NOSIGNAL).map_err(io::Error::from))
}

/// One `sendfile` of up to `len` bytes of `file` from `offset`. A file that
/// ends before the range does is an error: the peer was promised `len`
/// bytes and the stream cannot be resynchronised.
pub(crate) fn send_file_range(
    stream: &TcpStream,
    file: &File,
    offset: u64,
    len: u64,
    timeout: Duration,
) -> io::Result<usize> {
    let want = usize::try_from(len).unwrap_or(MAX_SENDFILE).min(MAX_SENDFILE);
    let sent = write_with_timeout(stream.as_fd(), timeout, || {
        let mut cursor = offset;
        zero_copy::sendfile(stream.as_fd(), file.as_fd(), &mut cursor, want)
    })?;
    if sent == 0 && want > 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ended at offset {offset} with {len} bytes still announced (it shrank while being sent)"),
        ));
    }
    Ok(sent)
}

fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading (nothing sent for the idle timeout)")
}
