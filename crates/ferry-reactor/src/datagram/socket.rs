//! [`DatagramSocket`]: a bound, non-blocking, close-on-exec datagram socket
//! (UDP over IPv4/IPv6, or Unix datagram), optionally connected to one
//! peer, and the socket file of a Unix one.
//!
//! A Unix socket file outlives the process that bound it, so binding is
//! careful with what it finds at the path: a socket file nobody is bound
//! to any more (a server that died) is replaced; one a live socket is bound
//! to is refused (`connect` succeeding is the proof someone answers); any
//! other file is refused. The file is removed when the socket is dropped,
//! unless it was replaced by someone else meanwhile.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};

use super::addr::{DatagramAddr, DatagramPeer};

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
                replace_stale(addr, path)?;
                let fd = net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, flags, None)?;
                net::bind(&fd, &sun).map_err(|e| in_context(addr, e.into()))?;
                let file = SocketFile::bound(path)?;
                if let Some(mode) = options.unix_mode {
                    let mode = rustix::fs::Mode::from_raw_mode(mode);
                    // On failure `file` drops here and removes the socket file.
                    rustix::fs::chmod(path.as_path(), mode).map_err(|e| in_context(addr, e.into()))?;
                }
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
    io::Error::new(e.kind(), format!("{addr}: {e}"))
}

/// Clears `path` for a new socket: nothing there is fine; a socket file no
/// live socket is bound to is removed; anything else is refused.
fn replace_stale(addr: &DatagramAddr, path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(in_context(addr, e)),
    };
    let in_use = |why: &str| io::Error::new(io::ErrorKind::AddrInUse, format!("{addr}: {why}"));
    if !meta.file_type().is_socket() {
        return Err(in_use("the path exists and is not a socket; not replacing it"));
    }
    let probe = net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
    match net::connect(&probe, &SocketAddrUnix::new(path)?) {
        Ok(()) => {
            Err(in_use("a live server is bound to this socket file (it accepts datagrams); refusing to replace it"))
        }
        Err(Errno::PROTOTYPE) => {
            Err(in_use("a live stream socket is bound to this socket file; refusing to replace it"))
        }
        Err(Errno::CONNREFUSED) => {
            // Nobody is bound to it: left behind by a server that died.
            tracing::info!("{addr}: replacing a stale socket file");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(in_context(addr, e)),
                _ => Ok(()),
            }
        }
        Err(e) => Err(in_context(addr, e.into())),
    }
}

/// The socket file a bound Unix socket created, removed on drop if it is
/// still the same file (same device and inode).
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    keep: bool,
}

impl SocketFile {
    fn bound(path: &Path) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile { path: path.to_owned(), dev: meta.dev(), ino: meta.ino(), keep: false })
    }

    /// Leaves the file in place when this drops.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("cannot remove socket file {}: {e}", self.path.display());
        }
    }
}
