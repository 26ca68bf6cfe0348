//! The pump's input buffer: fixed capacity, so a peer can never make a
//! connection hold more than [`MAX_INPUT_BUFFER`] unconsumed bytes.

use std::io;
use std::net::TcpStream;

use rustix::net::{RecvFlags, recv};

use super::MAX_INPUT_BUFFER;

/// Received bytes not yet consumed by the session: `buf[start..end]`.
pub(crate) struct InputBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl InputBuffer {
    pub(crate) fn new() -> InputBuffer {
        InputBuffer { buf: vec![0; MAX_INPUT_BUFFER].into_boxed_slice(), start: 0, end: 0 }
    }

    /// The unconsumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True when no more bytes can be read until some are consumed.
    pub(crate) fn is_full(&self) -> bool {
        self.end - self.start == self.buf.len()
    }

    /// Drops `n` bytes from the front (clamped to what is there).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// One `recv` into the free space (after moving the unconsumed bytes to
    /// the front). Returns 0 at end of stream; blocks if nothing is there.
    pub(crate) fn read_from(&mut self, stream: &TcpStream) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match recv(stream, &mut self.buf[self.end..], RecvFlags::empty()) {
                Ok((n, _)) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn reads_consumes_and_compacts() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let mut input = InputBuffer::new();
        client.write_all(b"hello world").expect("write");
        let mut got = 0;
        while got < 11 {
            got += input.read_from(&server).expect("read");
        }
        assert_eq!(input.data(), b"hello world");
        input.consume(6);
        assert_eq!(input.data(), b"world");
        client.write_all(b"!").expect("write");
        assert_eq!(input.read_from(&server).expect("read"), 1);
        assert_eq!(input.data(), b"world!");
        input.consume(100);
        assert!(input.is_empty());
        assert!(!input.is_full());
        drop(client);
        assert_eq!(input.read_from(&server).expect("read"), 0, "end of stream");
    }
}
