//! Listening sockets: TCP over IPv4/IPv6 and Unix-domain stream sockets,
//! non-blocking and close-on-exec, plus a blocking `connect` helper for
//! clients and tests.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use crate::keepalive::{TcpKeepalive, set_tcp_keepalive};
use rustix::net::{self, AddressFamily, SocketAddrAny, SocketAddrUnix, SocketFlags, SocketType, sockopt};

/// Where to listen or connect: `host:port` (`127.0.0.1:8080`, `[::1]:8080`)
/// or `unix:/path/to.sock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// TCP over IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix-domain stream socket at a filesystem path.
    Unix(PathBuf),
}

/// Error for an address that is neither `host:port` nor `unix:/path`.
#[derive(Debug, thiserror::Error)]
#[error("bad address {0:?}: expected IP:PORT, [IPv6]:PORT or unix:/path")]
pub struct ParseListenAddrError(String);

impl FromStr for ListenAddr {
    type Err = ParseListenAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ParseListenAddrError(s.to_owned()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| ParseListenAddrError(s.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(a: SocketAddr) -> Self {
        ListenAddr::Tcp(a)
    }
}

/// The peer of an accepted connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain peer (usually unnamed).
    Unix,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "{a}"),
            PeerAddr::Unix => f.write_str("unix"),
        }
    }
}

fn peer_from(addr: Option<SocketAddrAny>) -> PeerAddr {
    addr.and_then(|a| SocketAddr::try_from(a).ok()).map_or(PeerAddr::Unix, PeerAddr::Tcp)
}

/// Socket options for [`Listener::bind`].
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// `SO_REUSEPORT`: let several listeners (threads, processes) share the
    /// port, the kernel balancing connections between them. Off by default.
    pub reuse_port: bool,
    /// `listen(2)` backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: i32,
    /// For `unix:` addresses: remove an existing socket file first.
    pub unlink_existing: bool,
    /// TCP keep-alive for every connection accepted (set on the listener,
    /// which they inherit). Off by default.
    pub tcp_keepalive: Option<TcpKeepalive>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { reuse_port: false, backlog: 4096, unlink_existing: true, tcp_keepalive: None }
    }
}

/// A bound, listening, non-blocking, close-on-exec stream socket.
/// Owns its fd; `Send`. Accepting is done by the
/// [`Acceptor`](crate::Acceptor) or directly with [`accept`](Self::accept).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    addr: ListenAddr,
}

impl Listener {
    /// Binds and listens. TCP sockets get `SO_REUSEADDR` (and `SO_REUSEPORT`
    /// if asked); IPv6 sockets are v6-only so `[::]` and `0.0.0.0` can be
    /// bound side by side.
    pub fn bind(addr: &ListenAddr, opts: &ListenOptions) -> io::Result<Listener> {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let fd = match addr {
            ListenAddr::Tcp(sa) => {
                let family = if sa.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
                let fd = net::socket_with(family, SocketType::STREAM, flags, None)?;
                sockopt::set_socket_reuseaddr(&fd, true)?;
                if opts.reuse_port {
                    sockopt::set_socket_reuseport(&fd, true)?;
                }
                if sa.is_ipv6() {
                    sockopt::set_ipv6_v6only(&fd, true)?;
                }
                if let Some(keepalive) = &opts.tcp_keepalive {
                    set_tcp_keepalive(&fd, keepalive)?;
                }
                net::bind(&fd, sa)?;
                fd
            }
            ListenAddr::Unix(path) => {
                if opts.unlink_existing {
                    use std::os::unix::fs::FileTypeExt;
                    if let Ok(meta) = std::fs::symlink_metadata(path)
                        && meta.file_type().is_socket()
                    {
                        std::fs::remove_file(path)?;
                    }
                }
                let fd = net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)?;
                net::bind(&fd, &SocketAddrUnix::new(path.as_path())?)?;
                fd
            }
        };
        net::listen(&fd, opts.backlog)?;
        let addr = match addr {
            ListenAddr::Tcp(_) => {
                let local = net::getsockname(&fd)?;
                ListenAddr::Tcp(
                    SocketAddr::try_from(local)
                        .map_err(|_| io::Error::other("getsockname returned a non-IP address"))?,
                )
            }
            unix => unix.clone(),
        };
        Ok(Listener { fd, addr })
    }

    /// The bound address (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket.
    /// `Ok(None)` means none is pending. Errors (`EMFILE`, ...) are returned
    /// as they are; `EINTR` and `ECONNABORTED` are retried.
    pub fn accept(&self) -> io::Result<Option<(OwnedFd, PeerAddr)>> {
        loop {
            match net::acceptfrom_with(&self.fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
                Ok((fd, peer)) => {
                    if let ListenAddr::Tcp(_) = self.addr {
                        // Latency over batching: replies go out at once.
                        let _ = sockopt::set_tcp_nodelay(&fd, true);
                    }
                    return Ok(Some((fd, peer_from(peer))));
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenAddr::Unix(path) = &self.addr {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Connects (blocking) to `addr` and returns the socket switched to
/// non-blocking mode, close-on-exec, with `TCP_NODELAY` for TCP; ready to be
/// adopted by a loop with [`TcpConnection::adopt`](crate::connection::adopt).
pub fn connect(addr: &ListenAddr) -> io::Result<(OwnedFd, PeerAddr)> {
    let fd = match addr {
        ListenAddr::Tcp(sa) => {
            let family = if sa.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
            let fd = net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
            retry_connect(&fd, &SocketAddrAny::from(*sa))?;
            let _ = sockopt::set_tcp_nodelay(&fd, true);
            fd
        }
        ListenAddr::Unix(path) => {
            let fd = net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
            retry_connect(&fd, &SocketAddrAny::from(SocketAddrUnix::new(path.as_path())?))?;
            fd
        }
    };
    set_nonblocking(&fd)?;
    let peer = match addr {
        ListenAddr::Tcp(sa) => PeerAddr::Tcp(*sa),
        ListenAddr::Unix(_) => PeerAddr::Unix,
    };
    Ok((fd, peer))
}

fn retry_connect(fd: &OwnedFd, addr: &SocketAddrAny) -> io::Result<()> {
    loop {
        match net::connect(fd, addr) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Puts `fd` in non-blocking mode.
pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let fl = fcntl_getfl(&fd)?;
    fcntl_setfl(&fd, fl | OFlags::NONBLOCK)?;
    Ok(())
}
