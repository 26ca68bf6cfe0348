//! The messages between the prefork parent and a worker, as fixed-size
//! frames on their socketpair (a frame read whole with `MSG_WAITALL` is the
//! unit a passed descriptor travels with).
//!
//! Parent to worker, [`TO_WORKER_LEN`] bytes:
//! `b'C'`, listener index, address length, address text (the client's
//! `IP:PORT`), zero padding — with the connection's descriptor attached;
//! or `b'X'` and padding: exit once idle.
//!
//! Worker to parent, one byte: `b'D'`, "done with the connection, free".

use std::net::SocketAddr;

/// Size of every parent-to-worker frame.
pub(super) const TO_WORKER_LEN: usize = 64;

/// The worker's "I am free again" report.
pub(super) const DONE: u8 = b'D';

/// A parent-to-worker message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToWorker {
    /// Serve the attached connection, accepted on listener `listener`.
    Conn { listener: u8, peer: SocketAddr },
    /// Exit (after the connection in hand, if any).
    Exit,
}

impl ToWorker {
    pub(super) fn encode(&self) -> [u8; TO_WORKER_LEN] {
        let mut frame = [0u8; TO_WORKER_LEN];
        match self {
            ToWorker::Conn { listener, peer } => {
                let text = peer.to_string();
                // The longest IPv6 socket address with a scope id is well
                // under 61 bytes.
                let len = text.len().min(TO_WORKER_LEN - 3);
                frame[0] = b'C';
                frame[1] = *listener;
                frame[2] = len as u8;
                frame[3..3 + len].copy_from_slice(&text.as_bytes()[..len]);
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
                let len = usize::from(frame[2]).min(TO_WORKER_LEN - 3);
                let peer = std::str::from_utf8(&frame[3..3 + len]).ok()?.parse().ok()?;
                Some(ToWorker::Conn { listener: frame[1], peer })
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
            ToWorker::Conn { listener: 2, peer: "127.0.0.1:54321".parse().unwrap() },
            ToWorker::Conn { listener: 0, peer: "[fe80::1:2:3:4%4294967295]:65535".parse().unwrap() },
        ] {
            assert_eq!(ToWorker::decode(&msg.encode()), Some(msg));
        }
        assert_eq!(ToWorker::decode(&[b'?'; TO_WORKER_LEN]), None);
    }
}
