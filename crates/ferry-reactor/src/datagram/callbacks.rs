//! What a datagram handler reports to: [`DatagramCallbacks`], the
//! [`Datagram`] each message callback gets, and [`DatagramError`].

use std::fmt;
use std::io;
use std::sync::Arc;

use super::DatagramEndpoint;
use super::addr::DatagramPeer;

/// Called once per received datagram.
pub(crate) type MessageCallback = Arc<dyn Fn(&mut DatagramEndpoint<'_>, Datagram<'_>) + Send + Sync>;
/// Called with an error the socket reported.
pub(crate) type ErrorCallback = Arc<dyn Fn(&mut DatagramEndpoint<'_>, DatagramError) + Send + Sync>;

/// One received datagram, borrowed for the callback: its bytes (at most
/// `max_datagram` of them), its sender, and its real length, so a datagram
/// that did not fit is known to be cut instead of passing for a short one.
#[derive(Clone, Copy)]
pub struct Datagram<'a> {
    pub(super) data: &'a [u8],
    pub(super) peer: &'a DatagramPeer,
    pub(super) len: usize,
}

impl<'a> Datagram<'a> {
    /// The bytes received (all of them unless [`is_truncated`](Self::is_truncated)).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Who sent it; where a reply goes.
    pub fn peer(&self) -> &'a DatagramPeer {
        self.peer
    }

    /// The datagram's length as sent, which is more than `data().len()`
    /// when it was truncated.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty datagram (which is a valid datagram).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if the datagram was longer than the receive slot
    /// (`max_datagram`) and the rest of it was discarded (`MSG_TRUNC`).
    pub fn is_truncated(&self) -> bool {
        self.len > self.data.len()
    }
}

impl fmt::Debug for Datagram<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("peer", self.peer)
            .field("len", &self.len)
            .field("kept", &self.data.len())
            .finish()
    }
}

/// Which side of the socket an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramOp {
    /// Receiving, or an error the socket reported by itself (`SO_ERROR`,
    /// e.g. `ECONNREFUSED` in connected mode after an ICMP port
    /// unreachable).
    Receive,
    /// Sending a datagram, which was dropped.
    Send,
}

/// An error of a datagram socket. A datagram socket is not closed by
/// errors: each one is reported and the socket carries on.
#[derive(Debug)]
pub struct DatagramError {
    /// What the kernel said.
    pub error: io::Error,
    /// The peer concerned: the destination of a dropped send, or the
    /// connected peer.
    pub peer: Option<DatagramPeer>,
    /// Receiving or sending.
    pub op: DatagramOp,
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            DatagramOp::Receive => "receive",
            DatagramOp::Send => "send",
        };
        match &self.peer {
            Some(peer) => write!(f, "{op} ({peer}): {}", self.error),
            None => write!(f, "{op}: {}", self.error),
        }
    }
}

/// The callbacks of a datagram handler. `Clone` is cheap (`Arc`s) and they
/// are `Send + Sync`, so a socket can be set up on one thread and served
/// on another. All of them run on the handler's loop thread.
#[derive(Clone, Default)]
pub struct DatagramCallbacks {
    pub(super) message: Option<MessageCallback>,
    pub(super) error: Option<ErrorCallback>,
}

impl fmt::Debug for DatagramCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramCallbacks")
            .field("message", &self.message.is_some())
            .field("error", &self.error.is_some())
            .finish()
    }
}

impl DatagramCallbacks {
    /// No callbacks: datagrams are received and discarded, errors logged.
    pub fn new() -> DatagramCallbacks {
        DatagramCallbacks::default()
    }

    /// A datagram arrived: once per datagram, with its sender. Reply with
    /// [`DatagramEndpoint::send_to`]; replies made during one batch go out
    /// together after it.
    pub fn on_message(mut self, f: impl Fn(&mut DatagramEndpoint<'_>, Datagram<'_>) + Send + Sync + 'static) -> Self {
        self.message = Some(Arc::new(f));
        self
    }

    /// The socket reported an error: a send that failed (that datagram is
    /// dropped), or a pending error such as `ECONNREFUSED` in connected
    /// mode. Without this callback errors are logged at debug level.
    pub fn on_error(mut self, f: impl Fn(&mut DatagramEndpoint<'_>, DatagramError) + Send + Sync + 'static) -> Self {
        self.error = Some(Arc::new(f));
        self
    }
}
