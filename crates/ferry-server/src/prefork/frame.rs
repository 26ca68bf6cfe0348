//! The messages between the prefork parent and a worker, as fixed-size
//! frames on their socketpair (a frame read whole with `MSG_WAITALL` is the
//! unit a passed descriptor travels with).
//!
//! Parent to worker, [`TO_WORKER_LEN`] bytes:
//! `b'C'`, listener index, peer length, peer text (the client's
//! `IP:PORT`, or `unix uid=UID pid=PID`), zero padding, and at offset 64 the milliseconds the
//! connection waited in the parent's queue (u32, little-endian) — with the
//! connection's descriptor attached; or `b'X'` and padding: exit once idle.
//!
//! Worker to parent, one byte: `b'D'`, "done with the connection, free".

use crate::net::Peer;

/// Size of every parent-to-worker frame.
pub(super) const TO_WORKER_LEN: usize = 68;
/// Where the queued time sits; the address text ends before it.
const QUEUED_AT: usize = 64;

/// The worker's "I am free again" report.
pub(super) const DONE: u8 = b'D';

/// A parent-to-worker message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToWorker {
    /// Serve the attached connection, accepted on listener `listener`
    /// `queued_ms` milliseconds ago (its timeouts count from the accept).
    Conn { listener: u8, peer: Peer, queued_ms: u32 },
    /// Exit (after the connection in hand, if any).
    Exit,
}

impl ToWorker {
    pub(super) fn encode(&self) -> [u8; TO_WORKER_LEN] {
        let mut frame = [0u8; TO_WORKER_LEN];
        match self {
            ToWorker::Conn { listener, peer, queued_ms } => {
                let text = peer.to_string();
                // The longest IPv6 socket address with a scope id, and
                // the longest Unix credentials, are well under 61 bytes.
                let len = text.len().min(QUEUED_AT - 3);
                frame[0] = b'C';
                frame[1] = *listener;
                frame[2] = len as u8;
                frame[3..3 + len].copy_from_slice(&text.as_bytes()[..len]);
                frame[QUEUED_AT..].copy_from_slice(&queued_ms.to_le_bytes());
            }
            ToWorker::Exit => frame[0] = b'X',
        }
        frame
    }

    /// `None` for a frame no parent sends.
    pub(super) fn decode(frame: &[u8; TO_WORKER_LEN]) -> Option<ToWorker> {
        match frame[0] {
            b'X' => Some(ToWorker::Exit),
            b'C' => {
                let len = usize::from(frame[2]).min(QUEUED_AT - 3);
                let peer = std::str::from_utf8(&frame[3..3 + len]).ok()?.parse().ok()?;
                let queued_ms = u32::from_le_bytes(frame[QUEUED_AT..].try_into().ok()?);
                Some(ToWorker::Conn { listener: frame[1], peer, queued_ms })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for msg in [
            ToWorker::Exit,
            ToWorker::Conn { listener: 2, peer: "127.0.0.1:54321".parse().unwrap(), queued_ms: 0 },
            ToWorker::Conn {
                listener: 0,
                peer: "[fe80::1:2:3:4%4294967295]:65535".parse().unwrap(),
                queued_ms: u32::MAX,
            },
            ToWorker::Conn { listener: 1, peer: Peer::Unix { uid: u32::MAX, pid: i32::MAX }, queued_ms: 7 },
        ] {
            assert_eq!(ToWorker::decode(&msg.encode()), Some(msg));
        }
        assert_eq!(ToWorker::decode(&[b'?'; TO_WORKER_LEN]), None);
    }
}
