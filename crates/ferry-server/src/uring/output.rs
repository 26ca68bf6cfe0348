//! A connection's output as the uring driver holds it: bytes copied out of
//! the core's outbox (adjacent answers coalesce into one buffer, so the
//! answers to pipelined requests leave in one send) and file ranges, sent
//! without a user-space copy as two linked splices, file -> pipe -> socket.
//!
//! At most one operation chain is in flight per connection, always for
//! the front item, and nothing the kernel may still read is touched: the
//! front buffer is never appended to while a send of it is in flight, and
//! an item is dropped only after its last completion.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use io_uring::{opcode, squeue, types};
use rustix::pipe::{PipeFlags, pipe_with};

use super::ring::{Op, cqe_error};

/// Capacity asked for each connection's splice pipe (it moves at most
/// this much per splice pair).
const PIPE_SIZE: usize = 1 << 20;

/// The default pipe capacity, when a bigger one is refused.
const DEFAULT_PIPE: usize = 64 * 1024;

enum Item {
    Bytes {
        buf: Vec<u8>,
        sent: usize,
    },
    /// `offset`/`unread`: the part not yet spliced into the pipe.
    File {
        file: Arc<File>,
        offset: u64,
        unread: u64,
    },
}

/// A pipe that splices pass through (file ranges out, uploads in), and
/// what sits in it.
pub(super) struct Pipe {
    pub(super) read: OwnedFd,
    pub(super) write: OwnedFd,
    pub(super) capacity: usize,
    /// Bytes spliced in, not yet out.
    pub(super) fill: usize,
}

/// What one completion changed.
#[derive(Debug, Default)]
pub(super) struct Moved {
    /// Bytes that reached the socket.
    pub(super) sent: u64,
    /// The output cannot go on (the peer reset, a file shrank).
    pub(super) error: Option<io::Error>,
}

/// One connection's queued output.
#[derive(Default)]
pub(super) struct Output {
    items: VecDeque<Item>,
    /// Operations in flight for the front item.
    busy: u8,
    /// Created for the first file range; kept for the next ones (boxed:
    /// most connections never send a file).
    pipe: Option<Box<Pipe>>,
}

impl Output {
    /// Nothing left to send (and nothing in flight).
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty() && self.busy == 0
    }

    /// Operations in flight.
    pub(super) fn busy(&self) -> bool {
        self.busy > 0
    }

    /// Queues a copy of `bytes`, behind the last buffer if it is not being
    /// sent.
    pub(super) fn push_bytes(&mut self, bytes: &[u8]) {
        let in_flight_front = self.busy > 0 && self.items.len() == 1;
        match self.items.back_mut() {
            Some(Item::Bytes { buf, .. }) if !in_flight_front => buf.extend_from_slice(bytes),
            _ => self.items.push_back(Item::Bytes { buf: bytes.to_vec(), sent: 0 }),
        }
    }

    /// Queues `len` bytes of `file` from `offset`.
    pub(super) fn push_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len > 0 {
            self.items.push_back(Item::File { file, offset, unread: len });
        }
    }

    /// The entries that send the front item on `socket` (tagged `Send`,
    /// or `FileIn` linked to `FileOut`), if nothing is in flight. Counts
    /// them as in flight: the caller must push every one.
    pub(super) fn next_ops(&mut self, socket: &OwnedFd) -> io::Result<[Option<(Op, squeue::Entry)>; 2]> {
        if self.busy > 0 {
            return Ok([None, None]);
        }
        let sock = types::Fd(socket.as_raw_fd());
        let ops = match self.items.front() {
            None => [None, None],
            Some(Item::Bytes { buf, sent }) => {
                let rest = &buf[*sent..];
                let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
                let send = opcode::Send::new(sock, rest.as_ptr(), len).flags(libc_nosignal()).build();
                [Some((Op::Send, send)), None]
            }
            Some(Item::File { file, offset, unread }) => {
                let pipe = match &mut self.pipe {
                    Some(pipe) => pipe,
                    None => self.pipe.insert(Box::new(Pipe::new()?)),
                };
                let out = |len: usize| {
                    let len = u32::try_from(len).unwrap_or(u32::MAX);
                    opcode::Splice::new(types::Fd(pipe.read.as_raw_fd()), -1, sock, -1, len).build()
                };
                if pipe.fill > 0 {
                    [Some((Op::FileOut, out(pipe.fill))), None]
                } else {
                    let chunk = usize::try_from(*unread).unwrap_or(usize::MAX).min(pipe.capacity);
                    let offset = i64::try_from(*offset).map_err(|_| io::Error::other("file offset too large"))?;
                    let file_in = opcode::Splice::new(
                        types::Fd(file.as_raw_fd()),
                        offset,
                        types::Fd(pipe.write.as_raw_fd()),
                        -1,
                        chunk as u32,
                    )
                    .build()
                    .flags(squeue::Flags::IO_LINK);
                    [Some((Op::FileIn, file_in)), Some((Op::FileOut, out(chunk)))]
                }
            }
        };
        self.busy = ops.iter().flatten().count() as u8;
        Ok(ops)
    }

    /// A completion of one of this output's operations.
    pub(super) fn complete(&mut self, op: Op, result: i32) -> Moved {
        self.busy = self.busy.saturating_sub(1);
        let mut moved = Moved::default();
        let canceled = -rustix::io::Errno::CANCELED.raw_os_error();
        match (op, self.items.front_mut()) {
            (Op::Send, Some(Item::Bytes { buf, sent })) if result > 0 => {
                *sent += result as usize;
                moved.sent = result as u64;
                if *sent >= buf.len() {
                    self.items.pop_front();
                }
            }
            (Op::FileIn, Some(Item::File { offset, unread, .. })) if result > 0 => {
                let n = result as u64;
                *offset += n;
                *unread = unread.saturating_sub(n);
                if let Some(pipe) = &mut self.pipe {
                    pipe.fill += result as usize;
                }
            }
            (Op::FileIn, Some(Item::File { offset, unread, .. })) if result == 0 => {
                moved.error = Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "file ended at offset {offset} with {unread} bytes still announced (it shrank while being sent)"
                    ),
                ));
            }
            (Op::FileOut, Some(Item::File { unread, .. })) if result > 0 => {
                moved.sent = result as u64;
                let unread = *unread;
                if let Some(pipe) = &mut self.pipe {
                    pipe.fill = pipe.fill.saturating_sub(result as usize);
                    if pipe.fill == 0 && unread == 0 {
                        self.items.pop_front();
                    }
                }
            }
            // The file splice moved less than asked and broke the link:
            // what it moved is in the pipe, sent next.
            (Op::FileOut, _) if result == canceled => {}
            (_, _) if result < 0 => moved.error = Some(cqe_error(result)),
            (_, _) => moved.error = Some(io::Error::new(io::ErrorKind::WriteZero, "the socket took no bytes")),
        }
        if self.is_empty() {
            // An idle keep-alive connection keeps no queue memory.
            self.items = VecDeque::new();
        }
        moved
    }
}

impl Pipe {
    /// A pipe as large as the system allows up to [`PIPE_SIZE`].
    pub(super) fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        let capacity = match rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE) {
            Ok(n) => n,
            Err(_) => rustix::pipe::fcntl_getpipe_size(&write).unwrap_or(DEFAULT_PIPE),
        };
        Ok(Pipe { read, write, capacity, fill: 0 })
    }
}

/// `MSG_NOSIGNAL`: a vanished peer is an `EPIPE`, not a signal.
fn libc_nosignal() -> i32 {
    rustix::net::SendFlags::NOSIGNAL.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_bytes_coalesce_but_never_into_a_buffer_in_flight() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let socket = OwnedFd::from(a);
        let mut out = Output::default();
        out.push_bytes(b"HTTP/1.1 200 OK\r\n\r\n");
        out.push_bytes(b"HTTP/1.1 404 Not Found\r\n\r\n");
        assert_eq!(out.items.len(), 1, "two answers, one send");
        let ops = out.next_ops(&socket).expect("ops");
        assert_eq!(ops.iter().flatten().count(), 1);
        out.push_bytes(b"third");
        assert_eq!(out.items.len(), 2, "the buffer in flight is not touched");
        out.push_bytes(b"fourth");
        assert_eq!(out.items.len(), 2, "but what follows it coalesces");
        let moved = out.complete(Op::Send, 46);
        assert_eq!((moved.sent, out.items.len()), (46, 1));
        assert_eq!(out.next_ops(&socket).expect("ops").iter().flatten().count(), 1);
        let moved = out.complete(Op::Send, -rustix::io::Errno::PIPE.raw_os_error());
        assert!(moved.error.is_some());
        assert_eq!(out.next_ops(&socket).expect("ops").iter().flatten().count(), 1);
        let moved = out.complete(Op::Send, 11);
        assert_eq!(moved.sent, 11, "third and fourth left in one send");
        assert!(out.is_empty());
        assert_eq!(out.items.capacity(), 0, "an emptied queue gives its memory back");
    }
}
