//! Looking at a waiting connection's first bytes without taking them
//! (`recv(MSG_PEEK)`), and the service's verdict on them.

use rustix::io::Errno;
use rustix::net::{RecvFlags, recv};

use crate::listen::{Accepted, Listener};
use crate::service::FirstRequest;

/// What a peek says about a connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// Give it to a worker.
    Ready,
    /// Keep waiting; `begun` once a request has begun.
    Wait { begun: bool },
    /// Close it, for this reason.
    Drop(&'static str),
}

/// Peeks at the front of `conn` (without consuming it) and judges it with
/// the service's rule; `closed` when epoll said the peer closed or failed.
/// Returns the verdict and how many bytes were peeked at.
pub(super) fn look(buf: &mut [u8], listener: &Listener, conn: &Accepted, closed: bool) -> (Look, usize) {
    let limit = listener.first_request_limit().min(buf.len());
    let n = loop {
        match recv(&conn.stream, &mut buf[..limit], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            Ok((n, _)) => break n,
            Err(Errno::INTR) => {}
            // Nothing there (yet): the next segment will report.
            Err(Errno::AGAIN) => return (Look::Wait { begun: false }, 0),
            Err(_) => return (Look::Drop("reset by the client before it sent a request"), 0),
        }
    };
    (judge(listener, &buf[..n], n == limit, closed), n)
}

/// The verdict on `peeked`, the front of a connection (`full`: as much as
/// the service judges; `closed`: the client sends no more).
fn judge(listener: &Listener, peeked: &[u8], full: bool, closed: bool) -> Look {
    if peeked.is_empty() {
        return Look::Drop("closed by the client before it sent a request");
    }
    match listener.first_request(peeked) {
        FirstRequest::Complete => Look::Ready,
        // Oversize: the session refuses it. Closed: the session answers
        // what it got, as it would in any model.
        FirstRequest::Partial if full || closed => Look::Ready,
        FirstRequest::Partial => Look::Wait { begun: true },
        FirstRequest::NotBegun if full => Look::Drop("sent nothing but blank lines"),
        FirstRequest::NotBegun if closed => Look::Drop("closed by the client before it sent a request"),
        FirstRequest::NotBegun => Look::Wait { begun: false },
    }
}

/// Consumes the front `buf.len()` bytes of `conn` (peeked at before, so
/// there); returns how many it got.
pub(super) fn take(conn: &Accepted, buf: &mut [u8]) -> usize {
    let mut taken = 0;
    while taken < buf.len() {
        match recv(&conn.stream, &mut buf[taken..], RecvFlags::DONTWAIT) {
            Ok((0, _)) => break,
            Ok((n, _)) => taken += n,
            Err(Errno::INTR) => {}
            Err(_) => break,
        }
    }
    taken
}
