//! [`ConnHandle`]: a connection's address, usable from any thread.

use std::fmt;
use std::os::fd::AsFd;

use super::TcpConnection;
use crate::event_loop::{LoopHandle, Token};

/// A connection's address usable from any thread: `Clone + Send + Sync`,
/// `Eq + Hash` (for sets of clients). Every operation is posted to the
/// connection's loop and applied there in posting order; if the connection
/// has closed meanwhile it is a no-op. Holding a handle keeps nothing alive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    pub(super) lp: LoopHandle,
    pub(super) token: Token,
}

impl fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnHandle(loop {}, {:?})", self.lp.id(), self.token)
    }
}

impl ConnHandle {
    /// Sends `data` (see [`TcpConnection::send`]). Returns `false` only if
    /// the loop has exited; a closed connection silently drops it.
    pub fn send(&self, data: impl Into<Vec<u8>>) -> bool {
        let data = data.into();
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.send(&data));
        })
    }

    /// Queues a file range (see [`TcpConnection::send_file`]).
    pub fn send_file(&self, file: impl AsFd + Send + 'static, offset: u64, len: u64) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.send_file(file, offset, len));
        })
    }

    /// Half-closes after output drains (see [`TcpConnection::shutdown`]).
    pub fn shutdown(&self) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.shutdown());
        })
    }

    /// Closes now (see [`TcpConnection::force_close`]).
    pub fn force_close(&self) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, |c| c.force_close());
        })
    }

    /// Runs `f` with the connection on its loop (if still open): how a worker
    /// thread posts a result back to the connection it belongs to.
    pub fn run_in_loop(&self, f: impl FnOnce(&mut TcpConnection<'_>) + Send + 'static) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_connection(token, f);
        })
    }

    /// The connection's loop.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.lp
    }

    /// The connection's token on its loop.
    pub fn token(&self) -> Token {
        self.token
    }
}
