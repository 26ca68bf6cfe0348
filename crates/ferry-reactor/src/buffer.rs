//! A byte buffer with cheap prepend space, built for non-blocking sockets.
//!
//! ```text
//! +-------------------+------------------+------------------+
//! | prependable bytes |  readable bytes  |  writable bytes  |
//! |                   |     (CONTENT)    |                  |
//! +-------------------+------------------+------------------+
//! 0      <=      read_pos     <=     write_pos    <=     len
//! ```
//! (the layout of muduo's `Buffer`). Reading from a socket uses one `readv`
//! into the writable tail plus a 64 KiB per-thread spill buffer, so a single syscall
//! drains whatever the kernel has without keeping every buffer large; the
//! heap part grows only when the stack part was used, and compacts (moves
//! content to the front) before it grows.

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::net::RecvFlags;

/// Space kept free in front of the content so a length header can be
/// prepended without moving the payload.
pub(crate) const CHEAP_PREPEND: usize = 8;
/// Initial heap capacity after the prepend area (allocated lazily).
pub(crate) const INITIAL_SIZE: usize = 1024;
/// Size of the spill area used by [`Buffer::read_from`].
pub(crate) const STACK_SPILL: usize = 64 * 1024;

thread_local! {
    static SPILL: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; STACK_SPILL].into_boxed_slice());
}

/// Growable byte buffer with readable/writable regions. Owned by whoever
/// uses it (a connection, a test); `Send`, no interior mutability.
#[derive(Clone, Default)]
pub struct Buffer {
    buf: Vec<u8>,
    read_pos: usize,
    write_pos: usize,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("readable", &self.readable_bytes()).field("capacity", &self.buf.len()).finish()
    }
}

impl Buffer {
    /// An empty buffer. Allocates nothing until first written.
    pub const fn new() -> Buffer {
        Buffer { buf: Vec::new(), read_pos: 0, write_pos: 0 }
    }

    /// An empty buffer with room for `cap` bytes after the prepend area.
    pub fn with_capacity(cap: usize) -> Buffer {
        Buffer { buf: vec![0; CHEAP_PREPEND + cap], read_pos: CHEAP_PREPEND, write_pos: CHEAP_PREPEND }
    }

    /// Bytes waiting to be read.
    pub fn readable_bytes(&self) -> usize {
        self.write_pos - self.read_pos
    }

    /// Alias of [`readable_bytes`](Self::readable_bytes).
    pub fn len(&self) -> usize {
        self.readable_bytes()
    }

    /// True if nothing is readable.
    pub fn is_empty(&self) -> bool {
        self.read_pos == self.write_pos
    }

    /// Free bytes after the content (without growing).
    pub fn writable_bytes(&self) -> usize {
        self.buf.len() - self.write_pos
    }

    /// Free bytes before the content.
    pub fn prependable_bytes(&self) -> usize {
        self.read_pos
    }

    /// Total heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The readable content.
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.read_pos..self.write_pos]
    }

    /// The readable content, mutably (e.g. to transform in place).
    pub fn peek_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.read_pos..self.write_pos]
    }

    /// Offset of the first `\r\n` in the content.
    pub fn find_crlf(&self) -> Option<usize> {
        self.find(b"\r\n")
    }

    /// Offset of the first `\n` in the content.
    pub fn find_eol(&self) -> Option<usize> {
        self.peek().iter().position(|&b| b == b'\n')
    }

    /// Offset of the first occurrence of `needle` in the content.
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        let hay = self.peek();
        if needle.is_empty() {
            return Some(0);
        }
        if needle.len() > hay.len() {
            return None;
        }
        let first = needle[0];
        let mut start = 0;
        while let Some(p) = hay[start..=hay.len() - needle.len()].iter().position(|&b| b == first) {
            let at = start + p;
            if &hay[at..at + needle.len()] == needle {
                return Some(at);
            }
            start = at + 1;
            if start > hay.len() - needle.len() {
                break;
            }
        }
        None
    }

    /// Discards up to `n` readable bytes (all of them if `n` is larger).
    pub fn consume(&mut self, n: usize) {
        if n >= self.readable_bytes() {
            self.consume_all();
        } else {
            self.read_pos += n;
        }
    }

    /// Takes the buffer's storage, leaving it empty and unallocated:
    /// returns the bytes as a `Vec` and where the readable ones start in it
    /// (`vec[start..]`). Hands received bytes to an owner without copying
    /// them, and an idle connection keeps no buffer.
    pub fn take_storage(&mut self) -> (Vec<u8>, usize) {
        let Buffer { mut buf, read_pos, write_pos } = std::mem::take(self);
        buf.truncate(write_pos);
        (buf, read_pos)
    }

    /// Discards all content and resets the indices (keeps the allocation).
    pub fn consume_all(&mut self) {
        let base = CHEAP_PREPEND.min(self.buf.len());
        self.read_pos = base;
        self.write_pos = base;
    }

    /// Removes and returns up to `n` bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.readable_bytes());
        let v = self.buf[self.read_pos..self.read_pos + n].to_vec();
        self.consume(n);
        v
    }

    /// Removes and returns all content.
    pub fn take_all(&mut self) -> Vec<u8> {
        self.take(self.readable_bytes())
    }

    /// Removes and returns the content as a string (lossy UTF-8).
    pub fn take_string(&mut self) -> String {
        String::from_utf8_lossy(&self.take_all()).into_owned()
    }

    /// Appends `data`, growing if needed.
    pub fn append(&mut self, data: &[u8]) {
        self.ensure_writable(data.len());
        self.buf[self.write_pos..self.write_pos + data.len()].copy_from_slice(data);
        self.write_pos += data.len();
    }

    /// Inserts `data` in front of the content. Cheap (no move) while
    /// `data.len() <= prependable_bytes()`; otherwise the content is moved.
    pub fn prepend(&mut self, data: &[u8]) {
        if data.len() > self.read_pos {
            // Make room: move the content right by the shortfall.
            let need = data.len() - self.read_pos;
            let len = self.readable_bytes();
            self.buf.resize(self.buf.len().max(self.write_pos + need), 0);
            self.buf.copy_within(self.read_pos..self.write_pos, self.read_pos + need);
            self.read_pos += need;
            self.write_pos = self.read_pos + len;
        }
        self.read_pos -= data.len();
        self.buf[self.read_pos..self.read_pos + data.len()].copy_from_slice(data);
    }

    /// Makes at least `n` bytes writable: first by moving the content to the
    /// front (compacting), and only if that is not enough by growing.
    pub fn ensure_writable(&mut self, n: usize) {
        if self.writable_bytes() >= n {
            return;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; CHEAP_PREPEND + n.max(INITIAL_SIZE)];
            self.read_pos = CHEAP_PREPEND;
            self.write_pos = CHEAP_PREPEND;
            return;
        }
        let len = self.readable_bytes();
        if self.writable_bytes() + self.read_pos >= n + CHEAP_PREPEND {
            self.buf.copy_within(self.read_pos..self.write_pos, CHEAP_PREPEND);
            self.read_pos = CHEAP_PREPEND;
            self.write_pos = CHEAP_PREPEND + len;
        } else {
            // Not enough room even when compacted: grow geometrically, then
            // move the content to the front of the new space.
            let want = (CHEAP_PREPEND + len + n).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
            if self.read_pos != CHEAP_PREPEND {
                self.buf.copy_within(self.read_pos..self.write_pos, CHEAP_PREPEND);
                self.read_pos = CHEAP_PREPEND;
                self.write_pos = CHEAP_PREPEND + len;
            }
        }
    }

    /// The writable tail, to fill directly; follow with [`commit`](Self::commit).
    pub fn writable_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.write_pos..]
    }

    /// Marks `n` bytes of the writable tail as written.
    ///
    /// # Panics
    /// If `n > writable_bytes()` (a caller bug, never peer-controlled).
    pub fn commit(&mut self, n: usize) {
        assert!(n <= self.writable_bytes(), "commit past the writable region");
        self.write_pos += n;
    }

    /// Releases memory beyond the content plus `reserve` bytes; useful after a
    /// burst left a connection with a huge idle buffer.
    pub fn shrink(&mut self, reserve: usize) {
        let content = self.take_all();
        let mut fresh = Buffer::with_capacity(content.len() + reserve);
        fresh.append(&content);
        *self = fresh;
    }

    /// Reads once from `fd` with `readv` into the writable tail and a 64 KiB
    /// spill area; returns the bytes read (`Ok(0)` = end of file). Retries
    /// `EINTR`; `WouldBlock` is returned to the caller.
    ///
    /// The spill area is per thread rather than a fresh stack array: same
    /// idea as muduo's `extrabuf` (one syscall drains the socket, buffers
    /// stay small), without zeroing 64 KiB on every read.
    pub fn read_from(&mut self, fd: impl AsFd) -> io::Result<usize> {
        SPILL.with(|spill| match spill.try_borrow_mut() {
            Ok(mut extra) => self.read_with_spill(fd.as_fd(), &mut extra[..]),
            // Re-entered on this thread (cannot happen through this crate):
            // fall back to a stack buffer.
            Err(_) => self.read_with_spill(fd.as_fd(), &mut [0u8; STACK_SPILL]),
        })
    }

    /// [`read_from`](Self::read_from) for a socket, one syscall cheaper in
    /// the common case: while the writable tail has room for a normal read
    /// (at least `INITIAL_SIZE`, 1 KiB) it is filled with a plain `recv`, which
    /// skips the generic file layer `readv` goes through (~5% of a small
    /// echo's server CPU; docs/BENCHMARKS.md, Reactor). A short read means
    /// the socket is drained. Only when the tail fills up does a second,
    /// spilling read follow, so the socket is still drained, and the buffer
    /// grows to twice what was read, so later reads are single again.
    ///
    /// An error in that second read is not reported (the bytes already read
    /// are): end of file is sticky and shows on the next call; a reset
    /// shows there as end of file.
    pub fn recv_from(&mut self, socket: impl AsFd) -> io::Result<usize> {
        let fd = socket.as_fd();
        if self.buf.is_empty() {
            self.ensure_writable(INITIAL_SIZE);
        }
        let writable = self.writable_bytes();
        if writable < INITIAL_SIZE {
            return self.read_from(fd);
        }
        let n = loop {
            let wp = self.write_pos;
            match rustix::net::recv(fd, &mut self.buf[wp..], RecvFlags::empty()) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.write_pos += n;
        if n < writable {
            return Ok(n);
        }
        let total = n + self.read_from(fd).unwrap_or(0);
        // Room for as much again, so traffic of this size fits one `recv`
        // next time instead of filling the tail exactly every time.
        self.ensure_writable(total);
        Ok(total)
    }

    fn read_with_spill(&mut self, fd: BorrowedFd<'_>, extra: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.ensure_writable(INITIAL_SIZE);
        }
        let writable = self.writable_bytes();
        let n = loop {
            let wp = self.write_pos;
            let mut iov = [IoSliceMut::new(&mut self.buf[wp..]), IoSliceMut::new(extra)];
            // When the heap tail is already >= 64 KiB the spill adds little.
            let iovs = if writable < STACK_SPILL { &mut iov[..] } else { &mut iov[..1] };
            match rustix::io::readv(fd, iovs) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if n <= writable {
            self.write_pos += n;
        } else {
            self.write_pos = self.buf.len();
            self.append(&extra[..n - writable]);
        }
        Ok(n)
    }

    /// Writes as much content as one `send`/`write` takes to `fd` and
    /// consumes it; returns the bytes written. Retries `EINTR`.
    pub fn write_to(&mut self, fd: impl AsFd) -> io::Result<usize> {
        let n = loop {
            match rustix::io::writev(fd.as_fd(), &[IoSlice::new(self.peek())]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.consume(n);
        Ok(n)
    }
}

impl From<&[u8]> for Buffer {
    fn from(data: &[u8]) -> Buffer {
        let mut b = Buffer::with_capacity(data.len());
        b.append(data);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_is_cheap_then_moves() {
        let mut b = Buffer::new();
        b.append(b"payload");
        b.prepend(&7u32.to_be_bytes());
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND - 4);
        b.prepend(b"0123456789");
        assert_eq!(&b.peek()[..10], b"0123456789");
        assert_eq!(&b.peek()[14..], b"payload");
    }

    #[test]
    fn find_crlf_and_find() {
        let mut b = Buffer::new();
        b.append(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(b.find_crlf(), Some(14));
        assert_eq!(b.find(b"\r\n\r\n"), Some(23));
        assert_eq!(b.find(b"zz"), None);
        b.consume(16);
        assert_eq!(b.find_crlf(), Some(7));
    }

    #[test]
    fn compacts_before_growing() {
        let mut b = Buffer::with_capacity(64);
        b.append(&[1; 60]);
        b.consume(50);
        let cap = b.capacity();
        b.append(&[2; 40]);
        assert_eq!(b.capacity(), cap, "should compact, not grow");
        assert_eq!(b.readable_bytes(), 50);
    }
}
