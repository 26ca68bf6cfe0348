//! The blocking socket operations of the pump, each retrying `EINTR` and
//! turning a send timeout (`EAGAIN` under `SO_SNDTIMEO`) into `TimedOut`.

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
        let ts = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
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

/// One `send` with `MSG_NOSIGNAL`; returns how many bytes the kernel took.
pub(crate) fn send_bytes(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match send(stream, bytes, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Err(stalled()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `sendfile` of up to `len` bytes of `file` from `offset`. A file that
/// ends before the range does is an error: the peer was promised `len`
/// bytes and the stream cannot be resynchronised.
pub(crate) fn send_file_range(stream: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<usize> {
    let mut cursor = offset;
    let want = usize::try_from(len).unwrap_or(MAX_SENDFILE).min(MAX_SENDFILE);
    match zero_copy::sendfile(stream.as_fd(), file.as_fd(), &mut cursor, want) {
        Ok(0) if want > 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ended at offset {offset} with {len} bytes still announced (it shrank while being sent)"),
        )),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(stalled()),
        Err(e) => Err(e),
    }
}

fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading (send timed out)")
}
