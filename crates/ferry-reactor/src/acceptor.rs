//! Accepts connections from a [`Listener`] on a loop, and survives running
//! out of file descriptors.
//!
//! When `accept` fails with `EMFILE`/`ENFILE` the pending connection stays
//! in the backlog and a level-triggered listener stays readable: a naive
//! acceptor spins at 100% CPU. This one keeps a reserve fd (`/dev/null`):
//! on exhaustion it closes the reserve, accepts the connection, closes it
//! at once (the client sees the connection closed instead of hanging), and
//! reopens the reserve. If even that fails it stops listening for a short
//! while (a timer) instead of spinning.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::event_loop::{EventLoop, Handler, Token};
use crate::listener::{Listener, PeerAddr};
use crate::poller::{Interest, Ready};

/// Connections accepted per readiness event before yielding to other work.
const ACCEPT_BATCH: usize = 64;
/// How long to stop accepting when no fd can be had at all.
const BACKOFF: Duration = Duration::from_millis(100);

/// What to do with each accepted socket (runs on the acceptor's loop).
pub type AcceptCallback = Box<dyn FnMut(&mut EventLoop, OwnedFd, PeerAddr)>;

/// A listener registered on a loop that hands each accepted, non-blocking
/// socket to a callback. Loop-thread only (it is a registry handler).
pub struct Acceptor {
    listener: Listener,
    reserve: Option<File>,
    on_accept: AcceptCallback,
    shed: u64,
    paused: bool,
}

impl AsFd for Acceptor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

impl Acceptor {
    /// Wraps `listener`; nothing is accepted until [`register`](Self::register).
    pub fn new(listener: Listener, on_accept: AcceptCallback) -> Acceptor {
        Acceptor { listener, reserve: open_reserve(), on_accept, shed: 0, paused: false }
    }

    /// Starts accepting on `lp`; deregistering the token stops it and closes
    /// the listener.
    pub fn register(self, lp: &mut EventLoop) -> io::Result<Token> {
        lp.register_owned(Interest::READABLE, self)
    }

    /// Total connections accepted and closed at once for lack of fds.
    pub fn shed_count(&self) -> u64 {
        self.shed
    }

    fn pause(&mut self, lp: &mut EventLoop, token: Token) {
        self.paused = true;
        if let Err(e) = lp.set_interest(token, Interest::NONE) {
            tracing::error!(error = %e, "pausing acceptor failed");
        }
        lp.run_after(BACKOFF, move |lp| {
            lp.with_handler::<Acceptor, _>(token, |acc, lp| {
                acc.paused = false;
                if acc.reserve.is_none() {
                    acc.reserve = open_reserve();
                }
                if let Err(e) = lp.set_interest(token, Interest::READABLE) {
                    tracing::error!(error = %e, "resuming acceptor failed");
                }
            });
        });
    }

    /// Out of fds: use the reserve to accept-and-close one connection.
    /// Returns false if there was no reserve to use.
    fn shed_one(&mut self) -> bool {
        let Some(reserve) = self.reserve.take() else {
            return false;
        };
        drop(reserve);
        let shed = match self.listener.accept() {
            Ok(Some((fd, peer))) => {
                drop(fd);
                self.shed += 1;
                if self.shed.is_power_of_two() || self.shed.is_multiple_of(1000) {
                    tracing::warn!(%peer, total = self.shed,
                        "out of file descriptors: accepted and closed a connection");
                }
                true
            }
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed even with the reserve fd");
                false
            }
        };
        self.reserve = open_reserve();
        shed && self.reserve.is_some()
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    )
}

impl Handler for Acceptor {
    fn ready(&mut self, lp: &mut EventLoop, token: Token, _ready: Ready) {
        if self.paused {
            return;
        }
        if self.reserve.is_none() {
            self.reserve = open_reserve();
        }
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok(Some((fd, peer))) => (self.on_accept)(lp, fd, peer),
                Ok(None) => break,
                Err(e) if is_fd_exhaustion(&e) => {
                    if !self.shed_one() {
                        self.pause(lp, token);
                        break;
                    }
                }
                Err(e) => {
                    // ENOBUFS, ENOMEM, ...: transient, but would repeat at
                    // once; back off rather than spin.
                    tracing::warn!(error = %e, "accept failed; backing off");
                    self.pause(lp, token);
                    break;
                }
            }
        }
    }
}
