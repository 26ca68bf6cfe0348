//! [`DatagramHandle`]: a datagram endpoint's address, usable from any thread.

use std::fmt;

use super::{DatagramEndpoint, DatagramPeer};
use crate::event_loop::{LoopHandle, Token};

/// A datagram endpoint's address usable from any thread: `Clone + Send +
/// Sync`. Every operation is posted to the endpoint's loop and applied
/// there in posting order; if the endpoint has closed meanwhile it is a
/// no-op. Holding a handle keeps nothing alive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DatagramHandle {
    pub(super) lp: LoopHandle,
    pub(super) token: Token,
}

impl fmt::Debug for DatagramHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatagramHandle(loop {}, {:?})", self.lp.id(), self.token)
    }
}

impl DatagramHandle {
    /// Sends `data` to `peer` (see [`DatagramEndpoint::send_to`]). Returns
    /// `false` only if the loop has exited.
    pub fn send_to(&self, data: impl Into<Vec<u8>>, peer: DatagramPeer) -> bool {
        let data = data.into();
        self.run_in_loop(move |ep| {
            ep.send_to(&data, &peer);
        })
    }

    /// Sends `data` to the connected peer (see [`DatagramEndpoint::send`]).
    pub fn send(&self, data: impl Into<Vec<u8>>) -> bool {
        let data = data.into();
        self.run_in_loop(move |ep| {
            ep.send(&data);
        })
    }

    /// Closes the endpoint (see [`DatagramEndpoint::close`]).
    pub fn close(&self) -> bool {
        self.run_in_loop(|ep| ep.close())
    }

    /// Runs `f` with the endpoint on its loop (if still open), then sends
    /// what it queued.
    pub fn run_in_loop(&self, f: impl FnOnce(&mut DatagramEndpoint<'_>) + Send + 'static) -> bool {
        let token = self.token;
        self.lp.run_in_loop(move |lp| {
            lp.with_datagram(token, f);
        })
    }

    /// The endpoint's loop.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.lp
    }

    /// The endpoint's token on its loop.
    pub fn token(&self) -> Token {
        self.token
    }
}
