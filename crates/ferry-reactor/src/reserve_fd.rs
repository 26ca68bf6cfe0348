//! Accepting when the process is out of file descriptors, for any accept
//! loop (the reactor's [`Acceptor`](crate::Acceptor), or a blocking loop
//! over a std `TcpListener`).
//!
//! When `accept` fails with `EMFILE`/`ENFILE` the pending connection stays
//! in the backlog and the listener stays readable: a naive loop spins at
//! 100% CPU, and the client hangs until a descriptor frees up. A
//! [`ReserveFd`] keeps one descriptor (`/dev/null`) open for that moment
//! (muduo's `idleFd_`): on exhaustion it closes the reserve, accepts the
//! pending connection, closes it at once (the client sees the connection
//! closed instead of hanging) and reopens the reserve. Only if that fails
//! too does the caller get the error, and should then back off for a while
//! (a timer in a reactor, a short sleep in a blocking loop).

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::listener::{Listener, PeerAddr};

/// A listening socket a [`ReserveFd`] can accept from.
pub trait Accept {
    /// One accepted connection.
    type Conn;
    /// Accepts one pending connection; `Ok(None)` when none is pending
    /// (the listener is non-blocking).
    fn accept_conn(&self) -> io::Result<Option<Self::Conn>>;
}

impl Accept for Listener {
    type Conn = (OwnedFd, PeerAddr);
    fn accept_conn(&self) -> io::Result<Option<Self::Conn>> {
        self.accept()
    }
}

/// A std listener, set non-blocking by its owner (the accepted stream is
/// blocking, as std makes it).
impl Accept for TcpListener {
    type Conn = (TcpStream, SocketAddr);
    fn accept_conn(&self) -> io::Result<Option<Self::Conn>> {
        match self.accept() {
            Ok(conn) => Ok(Some(conn)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What one [`ReserveFd::accept`] did.
#[derive(Debug)]
pub enum AcceptOutcome<C> {
    /// A connection to serve.
    Accepted(C),
    /// Out of descriptors: one pending connection was accepted with the
    /// reserve and closed at once. Try again (more may be pending).
    Shed,
    /// Nothing is pending.
    WouldBlock,
}

/// One reserve descriptor and the accept step that uses it (module docs).
///
/// `Send + Sync`: the reserve sits behind a lock taken only when
/// descriptors run out, so one `ReserveFd` can serve every accept loop of a
/// process (the limit is per process, and one free slot is enough to shed
/// one connection at a time).
#[derive(Debug)]
pub struct ReserveFd {
    reserve: Mutex<Option<File>>,
    shed: AtomicU64,
}

impl Default for ReserveFd {
    fn default() -> Self {
        ReserveFd::new()
    }
}

fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

/// True for `EMFILE` (process limit) and `ENFILE` (system limit).
pub(crate) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    )
}

impl ReserveFd {
    /// Opens the reserve now, while descriptors are available. (If that
    /// fails, it is retried when first needed.)
    pub fn new() -> ReserveFd {
        ReserveFd { reserve: Mutex::new(open_reserve()), shed: AtomicU64::new(0) }
    }

    /// Accepts one connection from `listener`, shedding it if the process
    /// is out of descriptors. `EINTR` and `ECONNABORTED` (a peer that reset
    /// while queued) are retried. An error means even the reserve did not
    /// help (or another failure such as `ENOBUFS`): back off before trying
    /// again, or the still-readable listener makes the loop spin.
    pub fn accept<L: Accept + ?Sized>(&self, listener: &L) -> io::Result<AcceptOutcome<L::Conn>> {
        loop {
            match listener.accept_conn() {
                Ok(Some(conn)) => return Ok(AcceptOutcome::Accepted(conn)),
                Ok(None) => return Ok(AcceptOutcome::WouldBlock),
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(e) if is_fd_exhaustion(&e) => return self.shed(listener, e),
                Err(e) => return Err(e),
            }
        }
    }

    /// Total connections accepted and closed at once for lack of fds.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Out of descriptors (`exhausted`): frees the reserve's slot to
    /// accept-and-close one connection, then takes the slot back.
    fn shed<L: Accept + ?Sized>(&self, listener: &L, exhausted: io::Error) -> io::Result<AcceptOutcome<L::Conn>> {
        // Poisoned: a panic while holding the lock; the Option is still valid.
        let mut reserve = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
        if reserve.is_none() {
            // Lost earlier (or never opened): descriptors may be free again.
            *reserve = open_reserve();
        }
        let Some(fd) = reserve.take() else {
            return Err(exhausted);
        };
        drop(fd);
        let outcome = loop {
            match listener.accept_conn() {
                Ok(Some(conn)) => {
                    drop(conn);
                    let total = self.shed.fetch_add(1, Ordering::Relaxed) + 1;
                    if total.is_power_of_two() || total.is_multiple_of(1000) {
                        tracing::warn!(total, "out of file descriptors: accepted and closed a connection");
                    }
                    break Ok(AcceptOutcome::Shed);
                }
                Ok(None) => break Ok(AcceptOutcome::WouldBlock),
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed even with the reserve fd");
                    break Err(e);
                }
            }
        };
        // If this fails, the next exhaustion returns the error (and the
        // caller backs off) until a descriptor frees up.
        *reserve = open_reserve();
        outcome
    }
}
