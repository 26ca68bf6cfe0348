//! The served root: the one place where a client-supplied path becomes a
//! filesystem access, and the one place that keeps it inside the root.
//!
//! Two layers, both here:
//! 1. [`Root::resolve`] turns a request path (absolute from the served root,
//!    or relative to the connection's working directory) into a normalised
//!    [`VirtualPath`]. `.` and `..` are folded lexically, as a shell's `cd`
//!    does; a `..` above `/` is refused. NUL bytes and overlong paths are
//!    refused.
//! 2. Every access opens relative to the root's directory descriptor with
//!    `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so the *kernel*
//!    refuses any symlink that leads out of the root (absolute targets,
//!    `../..` targets, `/proc` magic links), whatever the path says. Final
//!    components of writes (`mkdir`, `rm`, `rename`) are single names acted
//!    on with `*at` calls relative to a parent opened that way, so they never
//!    follow a symlink either.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

pub use crate::vpath::VirtualPath;

mod rename;
mod space;
mod visibility;
pub use space::DiskSpace;
pub use visibility::{RESERVED_NAME, Visibility};

/// Longest request path accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Longest single name accepted, in bytes (Linux's `NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Why a filesystem request was refused. Services map these to their own
/// status codes in one function each.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The path would leave the served root (`..` above `/`, or a symlink
    /// pointing outside).
    #[error("path escapes the served root")]
    Escapes,
    /// The path is malformed (NUL byte, too long, ...).
    #[error("{0}")]
    BadPath(&'static str),
    /// Nothing exists at the path.
    #[error("no such file or directory")]
    NotFound,
    /// The path holds a name starting with `.`, which the server does not
    /// serve (see [`Visibility`]): answered as not found.
    #[error("no such file or directory (names starting with '.' are hidden)")]
    Hidden,
    /// A directory was required.
    #[error("not a directory")]
    NotADirectory,
    /// A regular file was required.
    #[error("is a directory")]
    IsADirectory,
    /// Neither a file nor a directory (FIFO, device, socket): never served.
    #[error("not a regular file")]
    NotRegular,
    /// Something already exists at the path.
    #[error("already exists")]
    Exists,
    /// The directory still has entries.
    #[error("directory not empty")]
    NotEmpty,
    /// Symlinks nest too deep or loop.
    #[error("too many levels of symbolic links")]
    SymlinkLoop,
    /// The server process may not access it.
    #[error("permission denied")]
    PermissionDenied,
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(io::Error),
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> FsError {
        match e {
            Errno::XDEV => FsError::Escapes,
            Errno::NOENT => FsError::NotFound,
            Errno::NOTDIR => FsError::NotADirectory,
            Errno::ISDIR => FsError::IsADirectory,
            Errno::EXIST => FsError::Exists,
            Errno::NOTEMPTY => FsError::NotEmpty,
            Errno::LOOP => FsError::SymlinkLoop,
            Errno::ACCESS | Errno::PERM => FsError::PermissionDenied,
            Errno::NAMETOOLONG => FsError::BadPath("name too long"),
            other => FsError::Io(other.into()),
        }
    }
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> FsError {
        match e.raw_os_error() {
            Some(code) => Errno::from_raw_os_error(code).into(),
            None => FsError::Io(e),
        }
    }
}

/// What kind of object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only reported by listings, which do not follow).
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

impl Kind {
    fn of(stat: &Stat) -> Kind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// Size, kind and modification time of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// The nanoseconds of the modification time.
    pub mtime_nsec: u32,
    /// Inode number (for validators such as HTTP ETags).
    pub ino: u64,
}

impl Meta {
    pub(crate) fn of(stat: &Stat) -> Meta {
        Meta {
            kind: Kind::of(stat),
            size: stat.st_size as u64,
            mtime: stat.st_mtime,
            mtime_nsec: u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            ino: stat.st_ino,
        }
    }

    /// A token naming this version of a file: it changes when the file is
    /// replaced (inode), rewritten (mtime to the nanosecond) or resized, so
    /// a client resuming a download can tell it still has the same file.
    pub fn version(&self) -> String {
        format!("{:x}-{:x}.{:x}-{:x}", self.ino, self.mtime, self.mtime_nsec, self.size)
    }
}

/// One directory entry of a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's name.
    pub name: OsString,
    /// Its metadata, not following symlinks.
    pub meta: Meta,
    /// For a symlink, the metadata of what it leads to (inside the root:
    /// links out of it are not listed); `None` for other entries and for
    /// links that dangle or loop.
    pub target: Option<Meta>,
}

/// A directory tree served to clients, held open by descriptor.
///
/// Thread-safe: every method takes `&self` and only makes `*at` syscalls
/// relative to the root descriptor, so one `Root` (in an `Arc`) serves all
/// connections of all threads.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
    id: u64,
    visibility: Visibility,
}

/// Source of [`Root::id`]s.
static NEXT_ROOT_ID: AtomicU64 = AtomicU64::new(0);

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Opens `path` as the served root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(
            |e| io::Error::new(io::Error::from(e).kind(), format!("cannot open served root {}: {e}", path.display())),
        )?;
        // Fail at start-up, not on the first request, if the kernel lacks openat2.
        rustix::fs::openat2(&dir, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), RESOLVE).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("openat2 with RESOLVE_BENEATH is unavailable (Linux >= 5.6 needed): {e}"),
            )
        })?;
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let id = NEXT_ROOT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Root { dir, path, id, visibility: Visibility::default() })
    }

    /// The same root with names starting with `.` shown or hidden (hidden
    /// by default; `ferry serve --hidden`).
    pub fn with_visibility(self, visibility: Visibility) -> Root {
        Root { visibility, ..self }
    }

    /// Which names clients may see.
    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    /// The root's path on the server's filesystem (for logs only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's directory descriptor, for the server's own state kept
    /// under [`RESERVED_NAME`].
    pub(crate) fn dir(&self) -> &OwnedFd {
        &self.dir
    }

    /// A number no other `Root` of this process has, so caches can tell
    /// roots apart (an address could be reused once a root is dropped).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Resolves a request path against `cwd` into a normalised virtual
    /// path. Absolute paths start at the served root. Does not touch the
    /// filesystem. A path holding [`RESERVED_NAME`] is refused as a bad
    /// path, one holding a hidden name (see [`Visibility`]) as
    /// [`FsError::Hidden`]: the rule applies to the names a client writes,
    /// so a visible symlink inside the root that leads to a hidden name is
    /// followed, as any symlink inside the root is.
    pub fn resolve(&self, cwd: &VirtualPath, request: &[u8]) -> Result<VirtualPath, FsError> {
        if request.contains(&0) {
            return Err(FsError::BadPath("path contains a NUL byte"));
        }
        if request.len() > MAX_PATH {
            return Err(FsError::BadPath("path too long"));
        }
        let mut path = if request.first() == Some(&b'/') { VirtualPath::root() } else { cwd.clone() };
        for name in request.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => {
                    if path.names.pop().is_none() {
                        return Err(FsError::Escapes);
                    }
                }
                name if name.len() > MAX_NAME => return Err(FsError::BadPath("name too long")),
                name => path.names.push(OsStr::from_bytes(name).to_os_string()),
            }
        }
        if path.names.iter().map(|n| n.len() + 1).sum::<usize>() > MAX_PATH {
            return Err(FsError::BadPath("path too long"));
        }
        if path.names.iter().any(|n| n == RESERVED_NAME) {
            return Err(FsError::BadPath("the name .ferry-partials is reserved by the server"));
        }
        if path.names.iter().any(|n| self.visibility.hides(n)) {
            return Err(FsError::Hidden);
        }
        Ok(path)
    }

    fn open_at(&self, path: &VirtualPath, flags: OFlags) -> Result<OwnedFd, FsError> {
        let rel = path.relative();
        // openat2 rejects flags that O_PATH would ignore, so add O_NOCTTY
        // only to real opens.
        let flags = if flags.contains(OFlags::PATH) { flags } else { flags | OFlags::NOCTTY };
        loop {
            match rustix::fs::openat2(&self.dir, &rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
                Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
                other => return other.map_err(FsError::from),
            }
        }
    }

    /// Metadata of the object at `path`, following symlinks that stay
    /// inside the root.
    pub fn stat(&self, path: &VirtualPath) -> Result<Meta, FsError> {
        let fd = self.open_at(path, OFlags::PATH)?;
        Ok(Meta::of(&rustix::fs::fstat(&fd)?))
    }

    /// Opens a regular file for reading. Directories, FIFOs and devices are
    /// refused (opening is non-blocking, so a FIFO cannot stall the server).
    pub fn open_file(&self, path: &VirtualPath) -> Result<(File, Meta), FsError> {
        let (file, stat) = self.open_regular_nonblocking(path)?;
        // Regular-file reads ignore O_NONBLOCK, but clear it anyway so the
        // descriptor behaves normally wherever it ends up.
        rustix::fs::fcntl_setfl(&file, OFlags::empty())?;
        Ok((file, Meta::of(&stat)))
    }

    /// [`Root::open_file`] without its last syscall: the descriptor keeps
    /// `O_NONBLOCK` (which `pread` of a regular file ignores), and the full
    /// `stat` comes back for callers that validate caches with it. Callers
    /// that hand the file on (e.g. to `sendfile`) clear `O_NONBLOCK` first.
    pub(crate) fn open_regular_nonblocking(&self, path: &VirtualPath) -> Result<(File, Stat), FsError> {
        let fd = self.open_at(path, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let stat = rustix::fs::fstat(&fd)?;
        match Kind::of(&stat) {
            Kind::File => Ok((File::from(fd), stat)),
            Kind::Dir => Err(FsError::IsADirectory),
            _ => Err(FsError::NotRegular),
        }
    }

    /// Opens a directory.
    pub fn open_dir(&self, path: &VirtualPath) -> Result<OwnedFd, FsError> {
        self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// Lists a directory, sorted by name, without `.` and `..`, the
    /// server's [`RESERVED_NAME`] and hidden names (see [`Visibility`]),
    /// with each entry's own metadata (symlinks reported as symlinks, with
    /// their target's). Symlinks that lead out of the root are left out:
    /// no service can follow them, so none lists them.
    pub fn list(&self, path: &VirtualPath) -> Result<Vec<Entry>, FsError> {
        let dir = self.open_dir(path)?;
        let mut entries = Vec::new();
        for entry in Dir::read_from(&dir)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if !self.visibility.lists(name) {
                continue;
            }
            // An entry removed between readdir and stat is simply skipped.
            let Ok(stat) = rustix::fs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let meta = Meta::of(&stat);
            let target = match meta.kind {
                Kind::Symlink => match self.stat(&path.join_name(name)) {
                    Ok(target) => Some(target),
                    Err(FsError::Escapes) => continue,
                    Err(_) => None,
                },
                _ => None,
            };
            entries.push(Entry { name: name.to_os_string(), meta, target });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Opens the parent directory of `path` and returns it with the final
    /// name, for operations that act on a name inside a directory.
    pub fn parent_of<'p>(&self, path: &'p VirtualPath) -> Result<(OwnedFd, &'p OsStr), FsError> {
        let (parent, name) = path.split_last().ok_or(FsError::BadPath("the served root itself cannot be changed"))?;
        Ok((self.open_dir(&parent)?, name))
    }

    /// Creates a directory.
    pub fn mkdir(&self, path: &VirtualPath) -> Result<(), FsError> {
        let (parent, name) = self.parent_of(path)?;
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))?;
        Ok(())
    }

    /// Removes a file, a symlink (not its target) or an empty directory.
    pub fn remove(&self, path: &VirtualPath) -> Result<(), FsError> {
        let (parent, name) = self.parent_of(path)?;
        let stat = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let flags = if Kind::of(&stat) == Kind::Dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(&parent, name, flags)?;
        Ok(())
    }
}

/// Opens (creating if needed) `name` inside the directory `dir` for
/// read-write without following a symlink at `name`. Used for upload
/// temporaries, whose names the server makes up.
pub fn open_in_dir(dir: impl AsFd, name: &OsStr, create: bool) -> Result<File, FsError> {
    let mut flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
    if create {
        flags |= OFlags::CREATE;
    }
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))?;
    let stat = rustix::fs::fstat(&fd)?;
    if Kind::of(&stat) != Kind::File {
        return Err(FsError::NotRegular);
    }
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests;
