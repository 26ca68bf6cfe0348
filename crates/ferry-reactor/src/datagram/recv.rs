//! Receiving datagrams: up to `batch` per call with one `recvmmsg(2)`, or
//! one `recvmsg(2)` when batching is off. Either way each datagram lands in
//! a slot of `max_datagram` bytes, with `MSG_TRUNC` so the kernel reports
//! its real length and a cut datagram is known to be cut.
//!
//! `recvmmsg` is called directly (libc through nix) rather than through
//! `nix::sys::socket::recvmmsg`: nix 0.31's reusable headers keep each
//! `msg_namelen` the kernel wrote on the previous call, so on a Unix socket
//! a peer with a longer path than the previous sender's comes back cut
//! (the reply goes nowhere), and it cannot represent a sender with no
//! address (an unnamed Unix socket: the kernel writes none, nix reads the
//! storage anyway). Here every header is reset before every call, and an
//! address length of 0 is an unnamed peer. rustix, used everywhere else,
//! has `recvmsg` and `sendmmsg` but no `recvmmsg`.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
use rustix::net::addr::SocketAddrStorage;
use rustix::net::{RecvAncillaryBuffer, RecvFlags, SocketAddrAny, SocketAddrUnix};

use super::addr::DatagramPeer;
use super::callbacks::Datagram;

/// One received datagram's length (before truncation) and sender.
struct Meta {
    len: usize,
    peer: DatagramPeer,
}

/// The receive side of a datagram handler: slots, headers, and what the
/// last call brought. `Default` is an empty placeholder, swapped in while
/// the real one is out delivering datagrams to callbacks.
#[derive(Default)]
pub(super) struct RecvBatch {
    /// `batch` slots of `slot` bytes, back to back.
    buf: Vec<u8>,
    slot: usize,
    batch: usize,
    /// `recvmmsg` headers, addresses and iovecs (empty when `batch` is 1).
    /// Their pointers are set right before each call.
    hdrs: Vec<libc::mmsghdr>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    got: Vec<Meta>,
}

impl RecvBatch {
    pub(super) fn new(batch: usize, slot: usize) -> RecvBatch {
        let batch = batch.max(1);
        let slot = slot.max(1);
        let multi = if batch > 1 { batch } else { 0 };
        RecvBatch {
            buf: vec![0; batch * slot],
            slot,
            batch,
            // SAFETY: these are plain C structs of integers and pointers, for
            // which all zeroes (null pointers) is a valid value.
            hdrs: (0..multi).map(|_| unsafe { std::mem::zeroed() }).collect(),
            // SAFETY: as above.
            addrs: (0..multi).map(|_| unsafe { std::mem::zeroed() }).collect(),
            iovs: (0..multi).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect(),
            got: Vec::with_capacity(batch),
        }
    }

    /// Receives what is waiting, up to the batch size, in one system call.
    /// Returns how many datagrams arrived (then read them with
    /// [`datagram`](Self::datagram)); `WouldBlock` if none was waiting.
    pub(super) fn receive(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.got.clear();
        if self.batch == 1 { self.receive_one(fd) } else { self.receive_many(fd) }
    }

    /// The `i`th datagram of the last call.
    pub(super) fn datagram(&self, i: usize) -> Datagram<'_> {
        let meta = &self.got[i];
        let start = i * self.slot;
        let kept = meta.len.min(self.slot);
        Datagram { data: &self.buf[start..start + kept], peer: &meta.peer, len: meta.len }
    }

    fn receive_one(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let flags = RecvFlags::TRUNC | RecvFlags::DONTWAIT;
        loop {
            let mut iov = [IoSliceMut::new(&mut self.buf[..self.slot])];
            match rustix::net::recvmsg(fd, &mut iov, &mut RecvAncillaryBuffer::default(), flags) {
                Ok(msg) => {
                    // With TRUNC, `bytes` is the datagram's real length.
                    let peer = msg.address.map_or_else(unnamed, DatagramPeer);
                    self.got.push(Meta { len: msg.bytes, peer });
                    return Ok(1);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn receive_many(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        let n = self.batch;
        // One base pointer per array, taken once, so no later borrow of
        // the vectors invalidates the pointers the headers hold.
        let base = self.buf.as_mut_ptr();
        let addrs = self.addrs.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        for (i, hdr) in self.hdrs.iter_mut().enumerate() {
            // SAFETY: `i < n`, and `buf` holds `n * slot` bytes, `addrs` and
            // `iovs` `n` entries each, so every pointer is in bounds.
            unsafe {
                *iovs.add(i) = libc::iovec { iov_base: base.add(i * self.slot).cast(), iov_len: self.slot };
                hdr.msg_hdr.msg_name = addrs.add(i).cast();
                hdr.msg_hdr.msg_iov = iovs.add(i);
            }
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = std::ptr::null_mut();
            hdr.msg_hdr.msg_controllen = 0;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        let received = loop {
            // SAFETY: `hdrs` holds `n` headers, each naming one iovec over
            // its own `slot` bytes of `buf` and its own address storage of
            // the size it states; all of it lives in `self`, which is
            // borrowed mutably for the whole call, and nothing else points
            // into it. No control buffers, no timeout.
            let r = unsafe {
                libc::recvmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            match usize::try_from(r) {
                Ok(count) => break count.min(n),
                Err(_) => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        };
        for (hdr, addr) in self.hdrs.iter().zip(&self.addrs).take(received) {
            let peer = peer_from(addr, hdr.msg_hdr.msg_namelen);
            // With MSG_TRUNC, `msg_len` is the datagram's real length.
            self.got.push(Meta { len: hdr.msg_len as usize, peer });
        }
        Ok(received)
    }
}

/// The sender the kernel wrote into `addr` (`len` bytes of it).
fn peer_from(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> DatagramPeer {
    let len = len.min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
    // Less than the 2-byte family: no address at all, which happens only for
    // a Unix socket bound to no name.
    if len < 2 {
        return unnamed();
    }
    let ptr: *const libc::sockaddr_storage = addr;
    // SAFETY: the kernel wrote `len` bytes of a valid socket address there
    // (`len` is at least the family's 2 bytes and at most the storage,
    // which has the size and alignment of rustix's `SocketAddrStorage`:
    // both are `sockaddr_storage`).
    DatagramPeer(unsafe { SocketAddrAny::read(ptr.cast::<SocketAddrStorage>(), len) })
}

/// The peer of a datagram from a Unix socket bound to no name.
fn unnamed() -> DatagramPeer {
    DatagramPeer(SocketAddrUnix::new_unnamed().into())
}
