//! Unix-domain sockets as a server binds them, stream or datagram: the
//! one place that decides what to do with what it finds at the path, sets
//! the file's mode, removes the file at exit, and names a stream peer by
//! its credentials (`SO_PEERCRED`).
//!
//! A socket file outlives the process that bound it, so binding is careful
//! with what it finds at the path: a socket file nobody listens on any more
//! (a server that died: connecting is refused) is replaced; one a live
//! socket is bound to is refused (`connect` succeeding is the proof someone
//! answers), as is any other file. The file is removed when the socket is
//! dropped, only by the process that bound it (never by forked children
//! that inherited the socket), and only while the path still names that
//! very file (a later server may have replaced it). An abstract name
//! (`unix:@name`) has no file: it vanishes with its socket.

use std::fmt::Display;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::listener::{ListenAddr, PeerAddr};

/// The socket address of a `unix:` listen address (`None` for TCP).
pub(crate) fn sockaddr(addr: &ListenAddr) -> io::Result<Option<SocketAddrUnix>> {
    Ok(match addr {
        ListenAddr::Tcp(_) => None,
        ListenAddr::Unix(path) => Some(SocketAddrUnix::new(path.as_path())?),
        ListenAddr::Abstract(name) => Some(SocketAddrUnix::new_abstract_name(name.as_bytes())?),
    })
}

/// A new Unix-domain stream socket with `flags`.
pub(crate) fn socket(flags: SocketFlags) -> io::Result<OwnedFd> {
    Ok(net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)?)
}

/// Binds the stream socket `fd` to `addr` (a `unix:` address): a stale
/// socket file is replaced if `replace_stale` (see the module docs); a live
/// one, or an abstract name in use, is an `AddrInUse` error saying so. The
/// file gets `mode` (if given) before the socket listens, so no client
/// sees a wider one. Returns the file to remove at exit (none for an
/// abstract name).
pub(crate) fn bind_stream(
    fd: &OwnedFd,
    addr: &ListenAddr,
    replace_stale: bool,
    mode: Option<u32>,
) -> io::Result<Option<SocketFile>> {
    let sa = sockaddr(addr)?.ok_or_else(|| io::Error::other("not a unix: address"))?;
    let ListenAddr::Unix(path) = addr else {
        return match net::bind(fd, &sa) {
            Err(Errno::ADDRINUSE) => Err(in_use(addr, "a live server is listening on this abstract name")),
            other => Ok(other.map(|()| None)?),
        };
    };
    if replace_stale {
        clear_stale(addr, path, SocketType::STREAM)?;
    }
    match net::bind(fd, &sa) {
        Err(Errno::ADDRINUSE) => return Err(in_use(addr, "the path exists; not replacing it")),
        other => other?,
    }
    SocketFile::bound(path, mode).map(Some)
}

/// `AddrInUse`: `addr: why`.
fn in_use(addr: &dyn Display, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::AddrInUse, format!("{addr}: {why}"))
}

/// `addr: error`, keeping the error's kind.
pub(crate) fn in_context(addr: &dyn Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{addr}: {e}"))
}

/// Clears `path` for a new socket of type `ty` (shown as `addr`):
/// nothing there is fine; a socket file no live socket is bound to is
/// removed; anything else is refused with `AddrInUse`.
pub(crate) fn clear_stale(addr: &dyn Display, path: &Path, ty: SocketType) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(in_context(addr, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use(addr, "the path exists and is not a socket; not replacing it"));
    }
    let probe = net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
    match net::connect(&probe, &SocketAddrUnix::new(path)?) {
        // A stream listener with a full backlog (EAGAIN) is live too.
        Ok(()) | Err(Errno::AGAIN) => {
            Err(in_use(addr, "a live server is bound to this socket file (it accepts); refusing to replace it"))
        }
        Err(Errno::PROTOTYPE) => {
            let other = if ty == SocketType::STREAM { "datagram" } else { "stream" };
            Err(in_use(addr, &format!("a live {other} socket is bound to this socket file; refusing to replace it")))
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

/// The process that took the sockets over from the one that bound them
/// (a daemon after its forks); 0: none did.
static INHERITED_BY: AtomicU32 = AtomicU32::new(0);

/// Makes this process the owner of the Unix socket files its sockets were
/// bound to by an ancestor (a daemon after detaching): it removes them at
/// exit, as the binder would have. Forked children that merely inherit
/// sockets never remove the files.
pub fn inherit_unix_listeners() {
    INHERITED_BY.store(std::process::id(), Ordering::SeqCst);
}

/// Set once this process handed its listeners to a process that goes on
/// serving them (a binary upgrade): its socket files stay at exit.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Leaves every Unix socket file of this process in place when its
/// sockets drop: another process (the new binary after an upgrade) serves
/// the same sockets now.
pub fn keep_socket_files() {
    HANDED_OVER.store(true, Ordering::SeqCst);
}

/// The socket file a bound Unix socket created; removed on drop by the
/// process that bound it (or [inherited](inherit_unix_listeners) it), if
/// the path still names that very file (same device and inode).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    owner: u32,
    dev: u64,
    ino: u64,
    keep: bool,
}

impl SocketFile {
    /// The file `bind` just made at `path`, given `mode` if asked (on
    /// failure the file is removed again).
    pub(crate) fn bound(path: &Path, mode: Option<u32>) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        let file = SocketFile {
            path: path.to_owned(),
            owner: std::process::id(),
            dev: meta.dev(),
            ino: meta.ino(),
            keep: false,
        };
        if let Some(mode) = mode {
            rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))?;
        }
        Ok(file)
    }

    /// This process (a child the binder handed the socket to) removes
    /// the file when this drops.
    pub(crate) fn take_over(&mut self) {
        self.owner = std::process::id();
    }

    /// Leaves the file in place when this drops (a child process took the
    /// socket over and removes it).
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let me = std::process::id();
        if self.keep
            || HANDED_OVER.load(Ordering::SeqCst)
            || (me != self.owner && me != INHERITED_BY.load(Ordering::SeqCst))
        {
            return;
        }
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("cannot remove socket file {}: {e}", self.path.display());
        }
    }
}

/// Who is at the other end of a connected stream socket: its IP address
/// and port (TCP), or its user and process ids (Unix, `SO_PEERCRED`).
pub fn peer_of(fd: impl AsFd) -> io::Result<PeerAddr> {
    if let Some(addr) = net::getpeername(&fd)?
        && let Ok(ip) = std::net::SocketAddr::try_from(addr)
    {
        return Ok(PeerAddr::Tcp(ip));
    }
    let cred = net::sockopt::socket_peercred(&fd)?;
    Ok(PeerAddr::Unix { uid: cred.uid.as_raw(), pid: rustix::process::Pid::as_raw(Some(cred.pid)) })
}
