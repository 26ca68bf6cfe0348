//! Listening sockets this process did not bind: handed to it by a service
//! manager (systemd socket activation) or by the ferry it replaces (a
//! binary upgrade). [`Listener::from_fd`] checks that a descriptor is a
//! listening stream socket and learns its address; [`adopt`] puts it where
//! [`Listener::bind`] looks first, so every model that binds an adopted
//! address gets the inherited socket instead of a new one, with no code of
//! its own.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rustix::fs::{FileType, fstat};
use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketType, getsockname, sockopt};

use crate::listener::{ListenAddr, Listener, set_nonblocking};

/// Adopted listeners not yet taken by a bind.
static ADOPTED: Mutex<Vec<Listener>> = Mutex::new(Vec::new());

/// Makes `listener` the socket the next [`Listener::bind`] of its address
/// returns (instead of binding a new one).
pub fn adopt(listener: Listener) {
    ADOPTED.lock().unwrap_or_else(PoisonError::into_inner).push(listener);
}

/// Whether an adopted listener waits for a bind of `addr`.
pub fn is_adopted(addr: &ListenAddr) -> bool {
    ADOPTED.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|l| l.local_addr() == addr)
}

/// Takes the adopted listener of `addr`, if there is one.
pub(crate) fn take(addr: &ListenAddr) -> Option<Listener> {
    let mut adopted = ADOPTED.lock().unwrap_or_else(PoisonError::into_inner);
    let at = adopted.iter().position(|l| l.local_addr() == addr)?;
    Some(adopted.remove(at))
}

impl Listener {
    /// Takes over an inherited descriptor `fd`, which must be a listening
    /// stream socket (TCP over IPv4/IPv6, or Unix): made non-blocking and
    /// close-on-exec, its address read back. The errors say what the
    /// descriptor is instead (not a socket, a datagram socket, a socket
    /// that does not listen, another family). A Unix socket file is never
    /// removed by this process: whoever made it owns it.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Listener> {
        let n = fd.as_raw_fd();
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("descriptor {n} {why}"));
        if FileType::from_raw_mode(fstat(&fd)?.st_mode) != FileType::Socket {
            return Err(bad("is not a socket"));
        }
        if sockopt::socket_type(&fd)? != SocketType::STREAM {
            return Err(bad("is not a stream socket (ferry's services need ListenStream=, not a datagram socket)"));
        }
        if !sockopt::socket_acceptconn(&fd)? {
            return Err(bad("is a socket that is not listening (a connection? the socket unit needs Accept=no)"));
        }
        let addr = match sockopt::socket_domain(&fd)? {
            AddressFamily::INET | AddressFamily::INET6 => {
                let local = getsockname(&fd)?;
                ListenAddr::Tcp(SocketAddr::try_from(local).map_err(|_| bad("has no IP address"))?)
            }
            AddressFamily::UNIX => {
                let local = SocketAddrUnix::try_from(getsockname(&fd)?).map_err(|_| bad("has no Unix address"))?;
                if let Some(name) = local.abstract_name() {
                    ListenAddr::Abstract(String::from_utf8_lossy(name).into_owned())
                } else if let Some(path) = local.path_bytes() {
                    use std::os::unix::ffi::OsStrExt as _;
                    ListenAddr::Unix(PathBuf::from(std::ffi::OsStr::from_bytes(path)))
                } else {
                    return Err(bad("is an unnamed Unix socket"));
                }
            }
            other => return Err(bad(&format!("is a socket of an unsupported family ({other:?})"))),
        };
        set_nonblocking(&fd)?;
        fcntl_setfd(&fd, fcntl_getfd(&fd)? | FdFlags::CLOEXEC)?;
        Ok(Listener::adopted(fd, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListenOptions;

    #[test]
    fn a_listening_socket_is_adopted_and_bind_returns_it() {
        let bound = Listener::bind(&"127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
        let addr = bound.local_addr().clone();
        let fd = std::os::fd::AsFd::as_fd(&bound).try_clone_to_owned().unwrap();
        drop(bound);
        let listener = Listener::from_fd(fd).unwrap();
        assert_eq!(listener.local_addr(), &addr);
        adopt(listener);
        assert!(is_adopted(&addr));
        // Binding the same address again would fail (EADDRINUSE) if bind
        // did not return the adopted socket.
        let again = Listener::bind(&addr, &ListenOptions::default()).unwrap();
        assert_eq!(again.local_addr(), &addr);
        assert!(!is_adopted(&addr));
    }

    #[test]
    fn descriptors_that_are_no_listeners_are_refused_with_the_reason() {
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let e = Listener::from_fd(file).unwrap_err().to_string();
        assert!(e.contains("is not a socket"), "{e}");
        let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
        let e = Listener::from_fd(udp).unwrap_err().to_string();
        assert!(e.contains("not a stream socket"), "{e}");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client: OwnedFd = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap().into();
        let e = Listener::from_fd(client).unwrap_err().to_string();
        assert!(e.contains("not listening"), "{e}");
    }
}
