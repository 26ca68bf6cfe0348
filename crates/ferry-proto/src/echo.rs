//! The echo service: every byte received is sent back. The smallest
//! session, used to measure drivers without protocol work.

use crate::Outbox;
use crate::session::{Flow, Now, Progress, Session};

/// Most bytes echoed per pass, so a fast sender cannot make the server
/// queue without bound while the peer does not read.
const MAX_PER_PASS: usize = 64 * 1024;

/// One echo connection. It has no state.
#[derive(Debug, Default)]
pub struct EchoSession;

impl Session for EchoSession {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, _now: Now) -> Progress {
        let room = MAX_PER_PASS.saturating_sub(out.queued_bytes());
        let n = input.len().min(room);
        out.push_bytes(&input[..n]);
        Progress { consumed: n, flow: Flow::Continue }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Chunk;

    #[test]
    fn echoes_and_bounds_what_it_queues() {
        let mut s = EchoSession;
        let mut out = Outbox::new();
        let p = s.on_input(b"hello", &mut out, Now::read());
        assert_eq!(p, Progress { consumed: 5, flow: Flow::Continue });
        assert!(matches!(out.front(), Some(Chunk::Bytes(b"hello"))));
        let big = vec![7u8; MAX_PER_PASS * 2];
        let p = s.on_input(&big, &mut out, Now::read());
        assert_eq!(p.consumed, MAX_PER_PASS - 5);
        assert_eq!(out.queued_bytes(), MAX_PER_PASS);
    }
}
