//! [`DatagramSocket`]: a bound, non-blocking, close-on-exec datagram socket
//! (UDP over IPv4/IPv6, or Unix datagram), optionally connected to one
//! peer, and the socket file of a Unix one.
//!
//! A Unix socket file is handled as every Unix socket's is (`unix_socket`):
//! a stale one replaced, a live one or any other file refused, removed on
//! drop by its owner while it is still ours.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};

use super::addr::{DatagramAddr, DatagramPeer};
use crate::unix_socket::{SocketFile, clear_stale};

/// Most datagrams one receive or send call handles (the stack arrays of the
/// batch calls are this long).
pub const MAX_BATCH: usize = 64;

/// How a [`DatagramSocket`] is set up and how its handler batches.
#[derive(Clone, Debug)]
pub struct DatagramOptions {
    /// Datagrams received per readable event, and most replies sent per
    /// call (1 to [`MAX_BATCH`]). 1 turns batching off: one `recvmsg` per
    /// event, one `sendto` per reply. More receives with `recvmmsg` and
    /// sends with `sendmmsg`.
    pub batch: usize,
    /// Bytes kept of each received datagram; a longer one is delivered cut
    /// to this size and marked truncated. 65536 holds any UDP datagram.
    /// The handler keeps `batch` slots of this size (2 MiB by default).
    pub max_datagram: usize,
    /// `SO_RCVBUF` to ask for (the kernel caps it at
    /// `net.core.rmem_max`); `None` keeps the system default. A bigger
    /// receive buffer absorbs bursts from many peers.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` to ask for (capped at `net.core.wmem_max`).
    pub send_buffer: Option<usize>,
    /// Permissions of a Unix socket file (who may send to it); `None`
    /// leaves what the umask gives.
    pub unix_mode: Option<u32>,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions { batch: 32, max_datagram: 65536, recv_buffer: None, send_buffer: None, unix_mode: None }
    }
}

/// A bound datagram socket; `Send`. Serve it on a loop with
/// [`register`](Self::register) (which takes ownership), or use the fd
/// directly.
#[derive(Debug)]
pub struct DatagramSocket {
    pub(super) fd: OwnedFd,
    pub(super) local: DatagramAddr,
    pub(super) peer: Option<DatagramPeer>,
    pub(super) options: DatagramOptions,
    /// The socket file we created, removed on drop.
    file: Option<SocketFile>,
}

impl DatagramSocket {
    /// Binds a non-blocking, close-on-exec datagram socket. UDP over IPv6
    /// is v6-only (so `[::]` and `0.0.0.0` can be bound side by side). A
    /// Unix path is handled as the module docs say: a stale socket file is
    /// replaced, a live one or another file is an `AddrInUse` error.
    pub fn bind(addr: &DatagramAddr, options: DatagramOptions) -> io::Result<DatagramSocket> {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (fd, local, file) = match addr {
            DatagramAddr::Udp(sa) => {
                let family = if sa.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
                let fd = net::socket_with(family, SocketType::DGRAM, flags, None)?;
                if sa.is_ipv6() {
                    sockopt::set_ipv6_v6only(&fd, true)?;
                }
                net::bind(&fd, sa)?;
                let local = SocketAddr::try_from(net::getsockname(&fd)?)
                    .map_err(|_| io::Error::other("getsockname returned a non-IP address"))?;
                (fd, DatagramAddr::Udp(local), None)
            }
            DatagramAddr::Unix(path) => {
                let sun = SocketAddrUnix::new(path.as_path()).map_err(|e| in_context(addr, e.into()))?;
                clear_stale(addr, path, SocketType::DGRAM)?;
                let fd = net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, flags, None)?;
                net::bind(&fd, &sun).map_err(|e| in_context(addr, e.into()))?;
                // On failure the file is removed again.
                let file = SocketFile::bound(path, options.unix_mode).map_err(|e| in_context(addr, e))?;
                (fd, addr.clone(), Some(file))
            }
        };
        if let Some(size) = options.recv_buffer {
            sockopt::set_socket_recv_buffer_size(&fd, size)?;
        }
        if let Some(size) = options.send_buffer {
            sockopt::set_socket_send_buffer_size(&fd, size)?;
        }
        let options = DatagramOptions { batch: options.batch.clamp(1, MAX_BATCH), ..options };
        Ok(DatagramSocket { fd, local, peer: None, options, file })
    }

    /// Connected mode: from now on the socket exchanges datagrams with
    /// `peer` only ([`send`](super::DatagramEndpoint::send) needs no
    /// address, datagrams from anyone else are dropped by the kernel), and
    /// errors the network reports about that peer (ICMP port unreachable)
    /// come back as `ECONNREFUSED` from the next receive or send.
    pub fn connect(&mut self, peer: &DatagramAddr) -> io::Result<()> {
        let target = DatagramPeer::of(peer)?;
        net::connect(&self.fd, &target.0).map_err(|e| in_context(peer, e.into()))?;
        self.peer = Some(target);
        Ok(())
    }

    /// The bound address (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> &DatagramAddr {
        &self.local
    }

    /// The connected peer, in connected mode.
    pub fn peer_addr(&self) -> Option<&DatagramPeer> {
        self.peer.as_ref()
    }

    /// The options it was bound with (the batch clamped to its range).
    pub fn options(&self) -> &DatagramOptions {
        &self.options
    }

    /// Makes this process the one that removes the socket file when the
    /// socket drops: for a child process the binder handed it to.
    pub fn take_over_file(&mut self) {
        if let Some(file) = &mut self.file {
            file.take_over();
        }
    }

    /// Gives up the socket without removing its file: for a process that
    /// hands the socket to a child (which removes the file when it is
    /// done) and closes its own copy.
    pub fn into_fd(self) -> OwnedFd {
        if let Some(file) = self.file {
            file.keep();
        }
        self.fd
    }
}

impl AsFd for DatagramSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `addr: error`, keeping the error's kind.
fn in_context(addr: &DatagramAddr, e: io::Error) -> io::Error {
    crate::unix_socket::in_context(addr, e)
}
