//! The loop-owned state of a datagram socket and what happens behind its
//! callbacks: receiving a batch, sending the queue, reporting errors.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::callbacks::{DatagramCallbacks, DatagramError, DatagramOp};
use super::recv::RecvBatch;
use super::send::SendQueue;
use super::socket::DatagramSocket;
use super::{DatagramAddr, DatagramEndpoint, DatagramPeer, DatagramStats};
use crate::event_loop::{EventLoop, Handler, Token};
use crate::poller::{Interest, Ready};

/// Most datagrams sent (or dropped) per flush, so an error callback that
/// keeps queueing to a failing peer cannot hold the loop; the rest goes on
/// the next writable event.
const FLUSH_BUDGET: usize = 1024;

pub(super) struct DatagramState {
    pub(super) socket: DatagramSocket,
    pub(super) callbacks: DatagramCallbacks,
    pub(super) recv: RecvBatch,
    pub(super) out: SendQueue,
    /// A send found the socket buffer full: waiting for writability, with
    /// reading paused.
    pub(super) blocked: bool,
    /// Closing once the current callback returns.
    pub(super) closing: bool,
    pub(super) stats: DatagramStats,
}

impl DatagramState {
    pub(super) fn new(socket: DatagramSocket, callbacks: DatagramCallbacks) -> DatagramState {
        let recv = RecvBatch::new(socket.options.batch, socket.options.max_datagram);
        DatagramState {
            socket,
            callbacks,
            recv,
            out: SendQueue::default(),
            blocked: false,
            closing: false,
            stats: DatagramStats::default(),
        }
    }

    /// Whether `EAGAIN` on a send means "our buffer is full, wait for room"
    /// (UDP, connected sockets) rather than "that one receiver is full"
    /// (an unconnected Unix socket; see the module docs).
    fn waits_for_room(&self) -> bool {
        !matches!(self.socket.local, DatagramAddr::Unix(_)) || self.socket.peer.is_some()
    }
}

impl AsFd for DatagramState {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Handler for DatagramState {
    fn ready(&mut self, lp: &mut EventLoop, token: Token, ready: Ready) {
        let mut ep = DatagramEndpoint { st: self, lp, token };
        if ready.is_error() {
            ep.take_pending_error();
        }
        if ready.is_writable() {
            ep.st.blocked = false;
        }
        if (ready.is_readable() || ready.is_hup()) && !ep.st.blocked && !ep.st.closing {
            ep.receive();
        }
        ep.settle();
    }
}

impl DatagramEndpoint<'_> {
    /// Reads (and so clears) the error the socket reported by itself.
    fn take_pending_error(&mut self) {
        let peer = self.st.socket.peer.clone();
        match rustix::net::sockopt::socket_error(&self.st.socket) {
            Ok(Ok(())) => {}
            Ok(Err(errno)) => self.report(errno.into(), peer, DatagramOp::Receive),
            Err(e) => self.report(e.into(), peer, DatagramOp::Receive),
        }
    }

    /// One receive call, then each datagram to the message callback.
    fn receive(&mut self) {
        let mut batch = std::mem::take(&mut self.st.recv);
        match batch.receive(self.st.socket.as_fd()) {
            Ok(n) => {
                let stats = &mut self.st.stats;
                stats.receive_calls += 1;
                stats.received += n as u64;
                stats.largest_batch = stats.largest_batch.max(n);
                let on_message = self.st.callbacks.message.clone();
                for i in 0..n {
                    let datagram = batch.datagram(i);
                    if datagram.is_truncated() {
                        self.st.stats.truncated += 1;
                    }
                    if let Some(cb) = &on_message {
                        cb(self, datagram);
                    }
                    if self.st.closing {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                let peer = self.st.socket.peer.clone();
                self.report(e, peer, DatagramOp::Receive);
            }
        }
        self.st.recv = batch;
    }

    /// Hands an error to the error callback (or the log).
    fn report(&mut self, error: io::Error, peer: Option<DatagramPeer>, op: DatagramOp) {
        let err = DatagramError { error, peer, op };
        match self.st.callbacks.error.clone() {
            Some(cb) => cb(self, err),
            None => tracing::debug!(token = ?self.token, local = %self.st.socket.local, "datagram {err}"),
        }
    }

    /// Sends what is queued until it is gone, the socket is full, or the
    /// budget is spent.
    fn flush(&mut self) {
        let batch = self.st.socket.options.batch;
        let mut budget = FLUSH_BUDGET;
        while budget > 0 && !self.st.out.is_empty() && !self.st.blocked && !self.st.closing {
            match self.st.out.send_some(self.st.socket.as_fd(), batch) {
                Ok(sent) => {
                    self.st.stats.sent += sent as u64;
                    self.st.stats.send_calls += 1;
                    budget = budget.saturating_sub(sent.max(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.st.waits_for_room() => {
                    self.st.blocked = true;
                    self.st.stats.waited += 1;
                }
                Err(e) => {
                    let to = self.st.out.drop_front().or_else(|| self.st.socket.peer.clone());
                    self.st.stats.dropped += 1;
                    budget -= 1;
                    self.report(e, to, DatagramOp::Send);
                }
            }
        }
    }

    /// Ends every callback entry point: sends what was queued, then closes
    /// or sets the interest (readable unless waiting for room; writable
    /// while anything is queued).
    pub(super) fn settle(&mut self) {
        if !self.st.closing {
            self.flush();
        }
        if self.st.closing {
            self.st.out.clear();
            // The state is running (taken out of the registry), so this
            // marks the slot; the loop drops the state, closing the socket,
            // right after.
            self.lp.deregister(self.token);
            return;
        }
        let interest = Interest::NONE.with_readable(!self.st.blocked).with_writable(!self.st.out.is_empty());
        if let Err(e) = self.lp.set_interest(self.token, interest) {
            tracing::warn!(token = ?self.token, error = %e, "changing datagram interest failed");
        }
    }
}
