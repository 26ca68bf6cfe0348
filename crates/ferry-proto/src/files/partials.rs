//! Where uploads in progress live, out of every client's reach, and how
//! much room they may take.
//!
//! An upload is written to `ROOT/.ferry-partials/KEY.part`, KEY a digest of
//! the upload's virtual path. [`Root::resolve`] refuses that directory's
//! name at any depth and listings hide it, so no command of either service
//! can read, list, replace or remove a partial. The connection writing a
//! partial holds an exclusive `flock` on it: a second upload of the same
//! path is refused (409) and the sweeper leaves it alone.
//!
//! A partial carries its identity, `SIZE SHA256`, in the extended attribute
//! `user.ferry.upload`; an upload resumes only a partial of the same
//! identity. HTTP uploads, whose client names the offset it resumes from
//! (`Content-Range`), are identified by their size alone (`SIZE`) when they
//! announce no digest. The announced size is reserved with `fallocate`
//! before a byte is accepted; partials may take at most
//! [`PartialLimits::max_bytes`] together; when room runs short the oldest
//! idle partials are evicted first, and partials idle longer than
//! [`PartialLimits::ttl`] are swept.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Dir, FallocateFlags, FlockOperation, Mode, OFlags, Stat, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::answer::{Failure, fs_failure};
use super::escape::escape_text;
use crate::root::{RESERVED_NAME, Root, VirtualPath, open_in_dir};

/// The extended attribute holding a partial's identity.
const IDENTITY_XATTR: &str = "user.ferry.upload";
/// Suffix of partial files inside the partials directory.
const PART_SUFFIX: &str = ".part";
/// How often, at most, uploads trigger a sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How long partials are kept and how much room they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialLimits {
    /// A partial nobody has written to for this long is removed.
    pub ttl: Duration,
    /// The most bytes all partials may take on disk together (their
    /// announced sizes are reserved); `None` bounds them by the disk only.
    pub max_bytes: Option<u64>,
}

impl Default for PartialLimits {
    fn default() -> PartialLimits {
        PartialLimits { ttl: Duration::from_secs(24 * 3600), max_bytes: None }
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Partials removed.
    pub removed: usize,
    /// Disk bytes they held.
    pub bytes: u64,
}

/// The partials directory of one served root, shared by every file
/// session of a server.
#[derive(Debug)]
pub struct Partials {
    dir: OwnedFd,
    dev: u64,
    limits: PartialLimits,
    /// Unix seconds before which no upload triggers another sweep.
    next_sweep: AtomicI64,
}

/// A partial on disk, locked by the upload writing it.
#[derive(Debug)]
pub(crate) struct Partial {
    file: Arc<File>,
    owner: Arc<Partials>,
    key: OsString,
    /// The partial has an identity a later upload can match: it is kept
    /// when the transfer breaks off, and removed otherwise.
    resumable: bool,
    /// Committed or discarded: nothing left for `Drop` to do.
    settled: bool,
}

/// The announced identity of an upload: its size and, when the client gave
/// it, the SHA-256 of the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    pub(crate) size: u64,
    pub(crate) sha256: Option<String>,
}

impl Announced {
    /// The identity stored with the partial; `None` makes it
    /// unresumable. `by_size`: the size alone identifies it (HTTP, whose
    /// client names the offset it resumes from and keeps what precedes it).
    fn xattr(&self, by_size: bool) -> Option<String> {
        match &self.sha256 {
            Some(d) => Some(format!("{} {d}", self.size)),
            None if by_size => Some(self.size.to_string()),
            None => None,
        }
    }
}

impl Partials {
    /// Opens (creating if needed) the partials directory of `root`.
    pub fn open(root: &Root, limits: PartialLimits) -> io::Result<Partials> {
        let failed = |what: &str, e: Errno| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("cannot {what} {}: {e}", root.path().join(RESERVED_NAME).display()),
            )
        };
        match rustix::fs::mkdirat(root.dir(), RESERVED_NAME, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(failed("create", e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = rustix::fs::openat(root.dir(), RESERVED_NAME, flags, Mode::empty()).map_err(|e| failed("open", e))?;
        let dev = rustix::fs::fstat(&dir).map_err(|e| failed("inspect", e))?.st_dev;
        Ok(Partials { dir, dev, limits, next_sweep: AtomicI64::new(0) })
    }

    /// How many partials are kept now (for metrics).
    pub fn count(&self) -> usize {
        self.entries().len()
    }

    /// The limits this directory keeps.
    pub fn limits(&self) -> PartialLimits {
        self.limits
    }

    /// Removes every idle partial not written to for longer than the TTL.
    pub fn sweep(&self, now: SystemTime) -> Swept {
        let now_secs = unix_secs(now);
        self.next_sweep.store(now_secs.saturating_add(SWEEP_EVERY.as_secs() as i64), Ordering::Relaxed);
        let ttl = i64::try_from(self.limits.ttl.as_secs()).unwrap_or(i64::MAX);
        let mut swept = Swept::default();
        for (name, stat) in self.entries() {
            if now_secs.saturating_sub(stat.st_mtime) > ttl
                && let Some(bytes) = self.remove_idle(&name)
            {
                swept.removed += 1;
                swept.bytes += bytes;
            }
        }
        if swept.removed > 0 {
            tracing::info!(removed = swept.removed, bytes = swept.bytes, "swept stale partial uploads");
        }
        swept
    }

    /// Sweeps if the last sweep is more than a minute old.
    fn sweep_if_due(&self, now: SystemTime) {
        if unix_secs(now) >= self.next_sweep.load(Ordering::Relaxed) {
            self.sweep(now);
        }
    }

    /// What is held for an upload of `target`: the bytes received and the
    /// announced size, when a resumable partial exists (whether or not an
    /// upload is writing it now). Creates nothing.
    pub(crate) fn held(&self, target: &VirtualPath) -> Option<(u64, u64)> {
        let file = open_in_dir(&self.dir, &key_of(target), false).ok()?;
        let identity = read_identity(&file)?;
        let size = identity.split(' ').next()?.parse().ok()?;
        let have = rustix::fs::fstat(&file).ok()?.st_size as u64;
        Some((have.min(size), size))
    }

    /// Opens, locks and sizes the partial for an upload of `target` (whose
    /// directory is `target_dir`) and returns it with how many of its bytes
    /// the upload may keep (0 unless the identity matches). `by_size`: see
    /// [`Announced::xattr`].
    pub(crate) fn begin(
        self: &Arc<Self>,
        target: &VirtualPath,
        target_dir: &OwnedFd,
        identity: &Announced,
        by_size: bool,
        now: SystemTime,
    ) -> Result<(Partial, u64), Failure> {
        let shown = escape_text(&target.to_bytes());
        let fail = |e: Errno| fs_failure(e.into(), Some(target));
        if rustix::fs::fstat(target_dir).map_err(fail)?.st_dev != self.dev {
            return Err(Failure::new(
                500,
                format!(
                    "cannot upload into the directory of {shown}: it is on another filesystem than {RESERVED_NAME}"
                ),
            ));
        }
        self.sweep_if_due(now);
        let key = key_of(target);
        let file = self.open_locked(&key).map_err(|e| match e {
            Errno::WOULDBLOCK => Failure::new(409, format!("an upload of {shown} is already in progress")),
            e => fail(e),
        })?;
        let mut partial =
            Partial { file: Arc::new(file), owner: Arc::clone(self), key, resumable: false, settled: false };
        let len = rustix::fs::fstat(&*partial.file).map_err(fail)?.st_size as u64;
        let wanted = identity.xattr(by_size);
        let have = if wanted.is_some() && read_identity(&partial.file) == wanted && len <= identity.size {
            len
        } else {
            rustix::fs::ftruncate(&*partial.file, 0).map_err(fail)?;
            0
        };
        partial.resumable = match &wanted {
            Some(id) => write_identity(&partial.file, id),
            None => {
                let _ = rustix::fs::fremovexattr(&*partial.file, IDENTITY_XATTR);
                false
            }
        };
        self.reserve(&partial, identity.size, have).map_err(|f| {
            partial.discard();
            Failure::new(f.code, format!("{} for {shown}", f.message))
        })?;
        Ok((partial, have))
    }

    /// Makes room for a partial of `size` bytes, `have` of them present:
    /// within `max_bytes`, then on disk with `fallocate`, evicting the
    /// oldest idle partials when room runs short.
    fn reserve(&self, partial: &Partial, size: u64, have: u64) -> Result<(), Failure> {
        if let Some(max) = self.limits.max_bytes {
            let mut used = self.used_by_others(&partial.key);
            if used.saturating_add(size) > max {
                used = used.saturating_sub(self.evict(&partial.key, used.saturating_add(size) - max));
            }
            if used.saturating_add(size) > max {
                return Err(Failure::new(
                    507,
                    format!(
                        "insufficient storage: uploads in progress may take {max} bytes together \
                         (--max-partial-bytes), {used} are taken and this one needs {size}"
                    ),
                ));
            }
        }
        let need = size - have;
        if need == 0 {
            return Ok(());
        }
        let allocate = || rustix::fs::fallocate(&*partial.file, FallocateFlags::KEEP_SIZE, have, need);
        let mut result = allocate();
        if result == Err(Errno::NOSPC) && self.evict(&partial.key, need) > 0 {
            result = allocate();
        }
        match result {
            Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
            Err(Errno::NOSPC) => {
                Err(Failure::new(507, format!("insufficient storage: {need} bytes do not fit on the disk")))
            }
            Err(Errno::FBIG) => Err(Failure::new(413, "file too large for this server (file size limit)")),
            Err(e) => Err(Failure::new(500, format!("cannot reserve {need} bytes: {e}"))),
        }
    }

    /// Removes idle partials other than `keep`, oldest first, until `want`
    /// bytes are freed or none is left; returns the bytes freed.
    fn evict(&self, keep: &OsStr, want: u64) -> u64 {
        let mut idle: Vec<_> = self.entries().into_iter().filter(|(name, _)| name != keep).collect();
        idle.sort_by_key(|(_, stat)| (stat.st_mtime, stat.st_mtime_nsec));
        let mut freed = 0;
        for (name, _) in idle {
            if freed >= want {
                break;
            }
            if let Some(bytes) = self.remove_idle(&name) {
                tracing::info!(bytes, "evicted an idle partial upload to make room");
                freed += bytes;
            }
        }
        freed
    }

    /// Disk bytes taken by every partial but `keep`.
    fn used_by_others(&self, keep: &OsStr) -> u64 {
        self.entries().iter().filter(|(name, _)| name != keep).map(|(_, stat)| disk_bytes(stat)).sum()
    }

    /// The partial files in the directory, with their metadata.
    fn entries(&self) -> Vec<(OsString, Stat)> {
        let Ok(dir) = Dir::read_from(&self.dir) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_bytes().ends_with(PART_SUFFIX.as_bytes()))
            .filter_map(|e| {
                let stat = rustix::fs::statat(&self.dir, e.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
                let name = OsStr::from_bytes(e.file_name().to_bytes()).to_os_string();
                Some((name, stat))
            })
            .collect()
    }

    /// Removes the partial `name` unless an upload holds it; returns the
    /// disk bytes it took.
    fn remove_idle(&self, name: &OsStr) -> Option<u64> {
        let file = self.open_locked(name).ok()?;
        let bytes = rustix::fs::fstat(&file).map(|s| disk_bytes(&s)).unwrap_or(0);
        rustix::fs::unlinkat(&self.dir, name, AtFlags::empty()).ok()?;
        Some(bytes)
    }

    /// Opens `name` (creating it) and takes its lock without waiting; makes
    /// sure the name still leads to the locked file, since a sweeper may
    /// have removed it between the open and the lock.
    fn open_locked(&self, name: &OsStr) -> Result<File, Errno> {
        for _ in 0..8 {
            let file = open_in_dir(&self.dir, name, true).map_err(|_| Errno::IO)?;
            rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
            let held = rustix::fs::fstat(&file)?.st_ino;
            match rustix::fs::statat(&self.dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_ino == held => return Ok(file),
                _ => continue,
            }
        }
        Err(Errno::AGAIN)
    }
}

impl Partial {
    /// The file the payload goes into.
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Keeps only the first `len` bytes (an HTTP client resuming from
    /// there, or starting over).
    pub(crate) fn truncate(&self, len: u64) -> io::Result<()> {
        rustix::fs::ftruncate(&*self.file, len)?;
        Ok(())
    }

    /// Removes the partial now.
    pub(crate) fn discard(&mut self) {
        if !self.settled {
            self.settled = true;
            let _ = rustix::fs::unlinkat(&self.owner.dir, &self.key, AtFlags::empty());
        }
    }

    /// Checks the bytes against the announced digest, makes them durable
    /// and gives them their final `name` in `dir`. A partial that does not
    /// match its identity is removed, never renamed.
    pub(crate) fn commit(&mut self, identity: &Announced, dir: &OwnedFd, name: &OsStr) -> Result<(), Failure> {
        if let Some(wanted) = &identity.sha256 {
            let got =
                sha256_hex(&self.file).map_err(|e| Failure::new(500, format!("cannot read the upload back: {e}")))?;
            if &got != wanted {
                self.discard();
                return Err(Failure::new(
                    422,
                    format!("does not match its announced SHA-256 (received bytes hash to {got}); not saved"),
                ));
            }
        }
        let io_failure = |e: io::Error| Failure::new(500, format!("upload failed: {e}"));
        self.file.sync_all().map_err(io_failure)?;
        rustix::fs::renameat(&self.owner.dir, &self.key, dir, name).map_err(|e| io_failure(e.into()))?;
        self.settled = true;
        rustix::fs::fsync(dir).map_err(|e| io_failure(e.into()))?;
        Ok(())
    }
}

impl Drop for Partial {
    /// A partial that could not be resumed is of no use once its upload is
    /// gone: it is removed instead of waiting for the sweeper.
    fn drop(&mut self) {
        if !self.resumable {
            self.discard();
        }
    }
}

/// The SHA-256 of a whole file, lowercase hex (`sum`, upload checks).
pub(crate) fn sha256_hex(file: &File) -> io::Result<String> {
    crate::digest::sha256_of(file, &mut |_| {})
}

fn key_of(target: &VirtualPath) -> OsString {
    let digest = Sha256::digest(target.to_bytes());
    let mut key: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    key.push_str(PART_SUFFIX);
    OsString::from(key)
}

fn read_identity(file: &File) -> Option<String> {
    let mut buf = [0u8; 128];
    let n = rustix::fs::fgetxattr(file, IDENTITY_XATTR, &mut buf).ok()?;
    String::from_utf8(buf.get(..n)?.to_vec()).ok()
}

/// Stores the identity; false if the filesystem refuses extended
/// attributes (the partial then cannot be resumed).
fn write_identity(file: &File, identity: &str) -> bool {
    match rustix::fs::fsetxattr(file, IDENTITY_XATTR, identity.as_bytes(), XattrFlags::empty()) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "cannot store an upload's identity; it will not be resumable");
            false
        }
    }
}

fn disk_bytes(stat: &Stat) -> u64 {
    (stat.st_blocks as u64).saturating_mul(512)
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
