//! A connection whose first request missed its deadline, answered where
//! it waited. Its own session, run by the connection core, says what it
//! says at that timeout in every model (HTTP's 408 when a head had begun,
//! the file protocol's `ERR 408`), and the core sends it, lingers while
//! the client still sends (so the answer is not lost to a reset) and
//! closes, all non-blocking on the gate's loop. A worker given the
//! connection instead would sit through that linger, seconds for a client
//! still trickling, and a crowd of slow clients timing out together would
//! take every worker again.
//!
//! Only the answer to a timeout runs here: the core gets the bytes that
//! arrived (no complete request among them), then the timeout, so the
//! session can only queue text and close.

use std::io;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ferry_proto::conn::{Action, Conn, LINGER};
use ferry_proto::{Now, Session};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, recv, send};

use crate::listen::{Accepted, Listener};

/// What an [`Expired`] connection waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// The socket to be readable (lingering), or the deadline.
    Read(Instant),
    /// The socket to take more of the answer, or the deadline.
    Write(Instant),
    /// Nothing: it closed; drop the socket.
    Done,
}

/// A timed-out connection, its core, and its socket.
pub(super) struct Expired {
    pub(super) conn: Accepted,
    /// Its deadline in the gate's set, kept by the gate.
    pub(super) deadline: Option<Instant>,
    core: Conn<Box<dyn Session + Send>>,
    /// When the bytes given to the core arrived, until the session has
    /// read them: its first pass runs at that time, so a head begun then
    /// is timed from then. Then the core hears of the timeout.
    arrived: Option<Now>,
}

impl Expired {
    /// Runs `listener`'s session over `taken`, the bytes consumed from
    /// `conn` (the partial request, if any), as if they had arrived at
    /// `arrived`, then times it out now.
    pub(super) fn new(listener: &Listener, conn: Accepted, taken: &[u8], arrived: Instant) -> Expired {
        let config = Arc::clone(&listener.conn);
        let mut core = Conn::new(listener.service.new_session(Some(conn.peer)), config, at(conn.at));
        let arrived = at(arrived);
        if !taken.is_empty() {
            core.handle_input(arrived, taken);
        }
        Expired { conn, deadline: None, core, arrived: Some(arrived) }
    }

    /// Its deadline passed: tell the core.
    pub(super) fn timeout(&mut self) {
        self.core.handle_timeout(Now::read());
    }

    /// Performs the core's actions until it waits; `buf` takes what is
    /// read while lingering.
    pub(super) fn run(&mut self, buf: &mut [u8]) -> Next {
        let stream = &self.conn.stream;
        loop {
            let now = self.arrived.unwrap_or_else(Now::read);
            let Some(action) = self.core.poll_action(now) else {
                if self.arrived.take().is_some() {
                    self.core.handle_timeout(Now::read());
                } else if self.core.next_deadline().is_some_and(|d| d <= now.mono) {
                    self.core.handle_timeout(now);
                } else if !self.core.wants_read() {
                    return Next::Read(self.deadline(now));
                } else {
                    let limit = self.core.read_limit().min(buf.len());
                    match recv(stream, &mut buf[..limit], RecvFlags::DONTWAIT) {
                        Ok((0, _)) => self.core.handle_eof(now),
                        Ok((n, _)) => self.core.handle_input(now, &buf[..n]),
                        Err(Errno::INTR) => {}
                        Err(Errno::AGAIN) => return Next::Read(self.deadline(now)),
                        Err(e) => self.core.handle_send_error(io::Error::from(e)),
                    }
                }
                continue;
            };
            match action {
                Action::Send(bytes) => match send(stream, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                    Ok(n) => self.core.handle_sent(now, n as u64),
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => return Next::Write(self.deadline(now)),
                    Err(e) => self.core.handle_send_error(e.into()),
                },
                Action::Shutdown => {
                    // Already gone if the peer reset: the close says so.
                    let _ = stream.shutdown(rustix::net::Shutdown::Write);
                }
                Action::Close(reason) => {
                    tracing::info!(
                        "{}: {reason} {:.1}s after it connected, before a first request a worker could answer; closed",
                        self.conn.peer,
                        self.conn.at.elapsed().as_secs_f64()
                    );
                    return Next::Done;
                }
                _ => {
                    tracing::error!("{}: a timed-out session asked for more than an answer; closed", self.conn.peer);
                    return Next::Done;
                }
            }
        }
    }

    /// When to look again without an event (the core always has a
    /// deadline while it lingers or sends; a linger's length otherwise).
    fn deadline(&self, now: Now) -> Instant {
        self.core.next_deadline().unwrap_or(now.mono + LINGER)
    }
}

/// `mono` with the wall-clock time that goes with it.
fn at(mono: Instant) -> Now {
    let ago = mono.elapsed();
    Now { mono, wall: SystemTime::now().checked_sub(ago).unwrap_or_else(SystemTime::now) }
}
