//! Datagram sockets on the event loop: UDP (IPv4/IPv6) and Unix datagram
//! sockets registered like any handler, with a message callback per
//! datagram that carries its sender.
//!
//! # Shape
//! A [`DatagramSocket`] is bound (and, for connected mode, connected) off
//! the loop, then [`register`](DatagramSocket::register)ed with
//! [`DatagramCallbacks`]; the loop owns its state from then on, named by a
//! [`Token`] like a connection. Callbacks get a [`DatagramEndpoint`] (a
//! borrow of the state and the loop, for the call); other threads hold a
//! [`DatagramHandle`] (`LoopHandle` + `Token`, owning nothing). There is no
//! connection, so nothing is "in flight": closing is deregistering.
//!
//! # Batching
//! Each readable event receives up to `batch` datagrams with one
//! `recvmmsg(2)` (level-triggered: whatever is left is reported again on
//! the next wait), delivers them one by one to the message callback, and
//! sends every reply queued meanwhile with one `sendmmsg(2)` per batch.
//! `batch: 1` turns batching off: one `recvmsg(2)` per event and one
//! `sendto(2)` per reply. [`DatagramStats`] counts datagrams and calls, so
//! a test (or a benchmark) can see how many datagrams each call carried.
//!
//! # Truncation
//! Each datagram is received into a slot of `max_datagram` bytes with
//! `MSG_TRUNC`, so the kernel reports its real length: a longer datagram is
//! delivered cut and marked ([`Datagram::is_truncated`],
//! [`Datagram::len`]), never passed off as a short one.
//!
//! # Sending
//! Replies are queued and sent when the callback (the whole batch) returns.
//! When the kernel has no room (`EAGAIN`), what it means differs: for UDP
//! and connected sockets our own send buffer is full and drains by itself,
//! so the queue waits for writability and reading pauses meanwhile (the
//! kernel's receive buffer, then its drops, are the backpressure); for an
//! unconnected Unix socket it means that one receiver's queue is full, and
//! waiting for it would let one peer that stops reading stall every other,
//! so that datagram is dropped and reported instead. Any other send error
//! (`EMSGSIZE`, a vanished Unix peer) drops that one datagram and is
//! reported to the error callback; the socket carries on.
//!
//! # Connected mode
//! [`DatagramSocket::connect`] fixes the peer: [`DatagramEndpoint::send`]
//! needs no address and the kernel filters out anyone else. Errors the
//! network reports about that peer (ICMP port unreachable) come back as
//! `ECONNREFUSED`: from `SO_ERROR` when the poller reports the error, or
//! from the next receive or send, and go to the error callback.

mod addr;
mod callbacks;
mod handle;
mod recv;
mod send;
mod socket;
mod state;

use std::os::fd::{AsFd, BorrowedFd};

pub use self::addr::{DatagramAddr, DatagramPeer, ParseDatagramAddrError};
pub use self::callbacks::{Datagram, DatagramCallbacks, DatagramError, DatagramOp};
pub use self::handle::DatagramHandle;
pub use self::socket::{DatagramOptions, DatagramSocket, MAX_BATCH};
use self::state::DatagramState;
use crate::event_loop::{EventLoop, Token};

/// What a datagram handler has done so far; only grows. Lets tests and
/// benchmarks see batching at work (datagrams per call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Datagrams received and handed to the message callback.
    pub received: u64,
    /// Of those, datagrams that were longer than their slot.
    pub truncated: u64,
    /// Receive system calls that brought at least one datagram.
    pub receive_calls: u64,
    /// The most datagrams one receive call brought.
    pub largest_batch: usize,
    /// Datagrams sent.
    pub sent: u64,
    /// Send system calls that sent at least one datagram.
    pub send_calls: u64,
    /// Datagrams dropped because sending them failed (each reported).
    pub dropped: u64,
    /// Times a send found the socket buffer full and waited for room.
    pub waited: u64,
}

/// A datagram socket as seen from a callback (or
/// [`EventLoop::with_datagram`]): its state and its loop, borrowed for the
/// call. Loop-thread only by construction.
pub struct DatagramEndpoint<'a> {
    st: &'a mut DatagramState,
    lp: &'a mut EventLoop,
    token: Token,
}

impl std::fmt::Debug for DatagramEndpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramEndpoint")
            .field("token", &self.token)
            .field("local", &self.st.socket.local)
            .field("queued", &self.st.out.len())
            .finish()
    }
}

impl DatagramEndpoint<'_> {
    /// Queues `data` as one datagram to `peer`; it goes out when the
    /// current callback (or batch) returns. Returns `false` if the
    /// endpoint is closing. A datagram that cannot be sent is dropped and
    /// reported to the error callback.
    pub fn send_to(&mut self, data: &[u8], peer: &DatagramPeer) -> bool {
        if self.st.closing {
            return false;
        }
        self.st.out.push(data, Some(peer.clone()));
        true
    }

    /// Queues `data` as one datagram to the connected peer (connected mode
    /// only). Returns `false` if the socket is not connected or closing.
    pub fn send(&mut self, data: &[u8]) -> bool {
        if self.st.closing || self.st.socket.peer.is_none() {
            return false;
        }
        self.st.out.push(data, None);
        true
    }

    /// Stops and frees the endpoint once the current callback returns:
    /// the socket is deregistered and closed (a Unix socket's file
    /// removed), queued datagrams are dropped.
    pub fn close(&mut self) {
        self.st.closing = true;
    }

    /// The bound address.
    pub fn local_addr(&self) -> &DatagramAddr {
        &self.st.socket.local
    }

    /// The connected peer, in connected mode.
    pub fn peer_addr(&self) -> Option<&DatagramPeer> {
        self.st.socket.peer.as_ref()
    }

    /// Datagrams queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.st.out.len()
    }

    /// Counters of what the endpoint did so far.
    pub fn stats(&self) -> DatagramStats {
        self.st.stats
    }

    /// The registry token of this endpoint on its loop.
    pub fn token(&self) -> Token {
        self.token
    }

    /// A `Send` handle to reach this endpoint from anywhere.
    pub fn handle(&self) -> DatagramHandle {
        DatagramHandle { lp: self.lp.handle(), token: self.token }
    }

    /// The loop the endpoint lives on (timers, tasks, other handlers).
    pub fn event_loop(&mut self) -> &mut EventLoop {
        self.lp
    }

    /// The socket, for options. Do not read or write it directly, and never
    /// close it.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.st.socket.as_fd()
    }
}

impl DatagramSocket {
    /// Serves the socket on `lp`: datagrams go to `callbacks` from now on.
    /// Deregistering the token (or [`DatagramEndpoint::close`]) closes it.
    pub fn register(self, lp: &mut EventLoop, callbacks: DatagramCallbacks) -> std::io::Result<Token> {
        lp.register_owned(crate::poller::Interest::READABLE, DatagramState::new(self, callbacks))
    }
}

impl EventLoop {
    /// Runs `f` on the datagram endpoint named by `token`, then sends what
    /// it queued. `None` if the token is stale, not a datagram endpoint, or
    /// the endpoint whose callback is running right now.
    pub fn with_datagram<R>(&mut self, token: Token, f: impl FnOnce(&mut DatagramEndpoint<'_>) -> R) -> Option<R> {
        self.with_handler::<DatagramState, Option<R>>(token, |st, lp| {
            if st.closing {
                return None;
            }
            let mut ep = DatagramEndpoint { st, lp, token };
            let r = f(&mut ep);
            ep.settle();
            Some(r)
        })
        .flatten()
    }

    /// Tokens of every datagram endpoint on this loop (the one whose
    /// callback is running now, if any, not included).
    pub fn datagram_tokens(&self) -> Vec<Token> {
        self.tokens_of::<DatagramState>()
    }
}
