//! Received bytes the session has not consumed yet, capped at
//! [`MAX_INPUT`], holding no memory once empty (an idle keep-alive
//! connection keeps no buffer).

use super::MAX_INPUT;

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

    /// Heap bytes held.
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
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

    /// Appends up to `max` bytes that `read` puts in the buffer it is given
    /// (returning how many), with no intermediate copy.
    pub(super) fn fill(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        if self.start > 0 && self.buf.len() + max > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let result = read(&mut self.buf[old..]);
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n.min(max));
        result
    }

    /// Takes over `buf[start..]` as the input when none is buffered (no
    /// copy); appends it otherwise.
    pub(super) fn adopt(&mut self, buf: Vec<u8>, start: usize) {
        if self.is_empty() && start <= buf.len() {
            self.buf = buf;
            self.start = start;
        } else {
            self.extend(buf.get(start..).unwrap_or_default());
        }
    }

    /// Drops `n` bytes from the front (clamped to what is there).
    pub(super) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.buf.len() {
            self.clear();
        }
    }

    /// Drops everything and releases the memory.
    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.buf = Vec::new();
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
    fn an_empty_buffer_holds_no_memory_and_adopts_without_copying() {
        let mut input = Input::default();
        input.extend(b"abc");
        input.consume(3);
        assert_eq!(input.buf.capacity(), 0, "an idle connection holds no buffer");
        let storage = b"..GET /".to_vec();
        let at = storage.as_ptr();
        input.adopt(storage, 2);
        assert_eq!((input.data(), input.buf.as_ptr()), (&b"GET /"[..], at), "taken over, not copied");
        input.adopt(b"xx more".to_vec(), 2);
        assert_eq!(input.data(), b"GET / more", "appended behind what is buffered");
    }
}
