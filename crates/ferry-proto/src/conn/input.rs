//! Received bytes the session has not consumed yet, capped at
//! [`MAX_INPUT`], holding no memory once empty (an idle keep-alive
//! connection keeps at most a small allocation).

use super::MAX_INPUT;

/// Capacity an empty buffer may keep for the next request; a larger one
/// (left by a burst of pipelined requests) is released.
const KEEP: usize = 4096;

/// `buf[start..]` are the unconsumed bytes.
#[derive(Debug, Default)]
pub(super) struct Input {
    buf: Vec<u8>,
    start: usize,
}

impl Input {
    /// The unconsumed bytes.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most bytes that may be appended now.
    pub(super) fn room(&self) -> usize {
        MAX_INPUT.saturating_sub(self.len())
    }

    /// Appends `bytes` (the caller keeps within [`Input::room`]; more is
    /// kept too, the cap only stops further reads).
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.buf.len() + bytes.len() > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drops `n` bytes from the front (clamped to what is there).
    pub(super) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.buf.len() {
            self.clear();
        }
    }

    /// Drops everything; releases a large allocation.
    pub(super) fn clear(&mut self) {
        self.start = 0;
        if self.buf.capacity() > KEEP {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_consumes_and_compacts() {
        let mut input = Input::default();
        input.extend(b"hello world");
        input.consume(6);
        assert_eq!(input.data(), b"world");
        input.extend(b"!");
        assert_eq!(input.data(), b"world!");
        input.consume(100);
        assert!(input.is_empty());
        assert_eq!(input.room(), MAX_INPUT);
    }

    #[test]
    fn a_large_buffer_is_released_once_empty() {
        let mut input = Input::default();
        input.extend(&vec![7; 3 * KEEP]);
        assert_eq!(input.room(), MAX_INPUT - 3 * KEEP);
        input.consume(3 * KEEP);
        assert_eq!(input.buf.capacity(), 0, "an idle connection holds no large buffer");
        input.extend(b"abc");
        input.consume(3);
        assert!(input.buf.capacity() > 0, "a small one is kept for the next request");
    }
}
