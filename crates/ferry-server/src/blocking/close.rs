//! Closing without losing the last answer.
//!
//! Closing a socket whose receive queue still holds unread bytes makes the
//! kernel send a RST, and a RST can destroy the answer we just sent (say,
//! `ERR 413`) before the peer reads it. So when the peer may still be
//! sending, we half-close, then read and discard for a short while until
//! the peer closes too (the "lingering close" of Apache and nginx).

use std::net::{Shutdown as How, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::net::{RecvFlags, recv};

use super::io::{Wait, wait_readable};

/// Longest we wait for the peer to close after we did.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes we discard while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Half-closes `stream` and, if the peer may still be sending (`unread`, or
/// bytes already waiting in the socket), discards input until the peer's
/// end of stream, [`LINGER`] or [`LINGER_BYTES`]. The caller drops the
/// stream afterwards.
pub(super) fn lingering_close(stream: &TcpStream, unread: bool) {
    if stream.shutdown(How::Write).is_err() {
        return;
    }
    let waiting = matches!(wait_readable(stream.as_fd(), None, Duration::ZERO), Ok(Wait::Readable));
    if !unread && !waiting {
        return;
    }
    let deadline = Instant::now() + LINGER; // LINGER is small: no overflow
    let mut scratch = [0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_readable(stream.as_fd(), None, left) {
            Ok(Wait::Readable) => {}
            _ => return,
        }
        match recv(stream, &mut scratch, RecvFlags::DONTWAIT) {
            Ok((0, _)) => return,
            Ok((n, _)) => discarded += n,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return,
        }
    }
}
