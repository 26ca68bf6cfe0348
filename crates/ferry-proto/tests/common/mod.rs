//! Helpers shared by the in-memory drivers of the session tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod files_tree;

use ferry_proto::conn::{CloseReason, Pair};
use ferry_proto::{Flow, Session};

/// What the session asked of the connection, as a driver sees it: it is
/// still open (`Continue`), it half-closed after sending everything
/// (`CloseAfterFlush`), or it closed without that (`CloseNow`, or an
/// error).
pub fn flow_of<S: Session>(pair: &Pair<S>) -> Flow {
    if pair.server_fin() {
        Flow::CloseAfterFlush
    } else if let Some(reason) = pair.closed() {
        match reason {
            CloseReason::PeerClosed => Flow::CloseAfterFlush,
            _ => Flow::CloseNow,
        }
    } else {
        Flow::Continue
    }
}
