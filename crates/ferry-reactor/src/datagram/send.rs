//! The send queue of a datagram handler: datagrams waiting to go out,
//! their bytes back to back in one [`Buffer`], sent with `sendmmsg(2)` (up
//! to a batch per call) or one `sendto(2)` each when batching is off.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags};

use super::addr::DatagramPeer;
use super::socket::MAX_BATCH;
use crate::buffer::Buffer;

/// One queued datagram: its length in the byte buffer and its destination
/// (`None`: the connected peer).
struct Outgoing {
    len: usize,
    to: Option<DatagramPeer>,
}

/// Datagrams waiting to be sent, in order.
#[derive(Default)]
pub(super) struct SendQueue {
    bytes: Buffer,
    items: VecDeque<Outgoing>,
}

/// An emptied byte buffer larger than this is released rather than kept.
const MAX_IDLE_BYTES: usize = 1024 * 1024;

impl SendQueue {
    /// Queues one datagram.
    pub(super) fn push(&mut self, data: &[u8], to: Option<DatagramPeer>) {
        self.bytes.append(data);
        self.items.push_back(Outgoing { len: data.len(), to });
    }

    /// Datagrams waiting.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops everything queued.
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.bytes = Buffer::new();
    }

    /// Removes the first datagram unsent (it failed); returns where it was
    /// going (`None`: the connected peer).
    pub(super) fn drop_front(&mut self) -> Option<DatagramPeer> {
        let item = self.items.pop_front()?;
        self.bytes.consume(item.len);
        item.to
    }

    /// Sends up to `batch` datagrams from the front in one system call and
    /// removes those sent. Returns how many went (0 only if the queue is
    /// empty), or the error that stopped the first one, which stays queued.
    pub(super) fn send_some(&mut self, fd: BorrowedFd<'_>, batch: usize) -> io::Result<usize> {
        if self.items.is_empty() {
            return Ok(0);
        }
        let sent = if batch <= 1 { self.send_one(fd)? } else { self.send_many(fd, batch.min(MAX_BATCH))? };
        let mut done = 0;
        for item in self.items.drain(..sent) {
            done += item.len;
        }
        self.bytes.consume(done);
        if self.items.is_empty() && self.bytes.capacity() > MAX_IDLE_BYTES {
            self.bytes = Buffer::new();
        }
        Ok(sent)
    }

    fn send_one(&self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let Some(item) = self.items.front() else { return Ok(0) };
        let data = &self.bytes.peek()[..item.len];
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        loop {
            let r = match &item.to {
                Some(to) => rustix::net::sendto(fd, data, flags, &to.0),
                None => rustix::net::send(fd, data, flags),
            };
            match r {
                Ok(_) => return Ok(1),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn send_many(&self, fd: BorrowedFd<'_>, batch: usize) -> io::Result<usize> {
        let n = batch.min(self.items.len());
        let bytes = self.bytes.peek();
        let mut iovs = [IoSlice::new(&[]); MAX_BATCH];
        let mut at = 0;
        for (iov, item) in iovs.iter_mut().zip(self.items.iter().take(n)) {
            *iov = IoSlice::new(&bytes[at..at + item.len]);
            at += item.len;
        }
        let mut controls: [SendAncillaryBuffer<'_, '_, '_>; MAX_BATCH] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut msgs: Vec<MMsgHdr<'_>> = Vec::with_capacity(n);
        for ((iov, control), item) in iovs.iter().zip(controls.iter_mut()).zip(self.items.iter().take(n)) {
            let iov = std::slice::from_ref(iov);
            msgs.push(match &item.to {
                Some(to) => MMsgHdr::new_with_addr(&to.0, iov, control),
                None => MMsgHdr::new(iov, control),
            });
        }
        loop {
            match rustix::net::sendmmsg(fd, &mut msgs, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                // The kernel reports an error only when the first one failed;
                // a later failure shows as a short count and comes back on
                // the next call.
                Ok(sent) => return Ok(sent.min(n)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
