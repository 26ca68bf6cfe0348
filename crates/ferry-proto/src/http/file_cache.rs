//! A small cache of open-file answers, so a hot file costs no syscall per
//! request.
//!
//! Answering a file without it costs `openat2`, `fstat`, `pread` and
//! `close`: four syscalls against the driver's two per pipelined batch of
//! 16. The cache keeps, for small regular files (at most
//! [`HttpConfig::copy_threshold`] bytes), what every answer about the file
//! needs: its metadata, `ETag`, `Last-Modified`, `Content-Type` and its
//! bytes. Larger files are not kept (they go by `sendfile` from a freshly
//! opened descriptor, and holding descriptors open would pin deleted files
//! and eat into the fd limit).
//!
//! ## Owned by the driver, one per thread
//! A [`FileCache`] is a handle the driver creates, one per event loop or
//! worker thread, and hands to each session it starts there: every session
//! of one reactor loop shares it, sessions of other loops have their own,
//! so its lock is never contended. Keys are the
//! [`Root`](crate::root::Root)'s process-unique id and the normalised
//! [`VirtualPath`], so several roots served through one cache never mix.
//! Time comes from the caller ([`Now`](crate::Now)), so expiry runs on a
//! test's fake clock.
//!
//! ## Staleness: at most [`HttpConfig::file_cache_valid`] (1 s)
//! An entry is trusted for `file_cache_valid` after it was last checked;
//! after that the next request for it opens the file again (`openat2` +
//! `fstat`) and compares device, inode, size, mtime and ctime (with their
//! nanoseconds). Same: the entry is trusted for another period without
//! re-reading. Different, gone or unreadable: the entry is dropped and the
//! request answered from the disk as if nothing had been cached. So a file
//! changed, replaced or deleted on disk may still be served as it was for
//! up to 1 s (nginx's `open_file_cache_valid` defaults to 60 s); 0 checks
//! on every request (and still saves the `pread`).
//!
//! A file whose ctime is not older than the moment it was opened (the
//! kernel's coarse clock, which file timestamps come from) is not cached:
//! a later write in the same clock tick could change it without moving
//! any timestamp, and the check above would never notice.
//!
//! ## Confinement is unchanged
//! Every request still goes through [`Root::resolve`](crate::root::Root::resolve)
//! first, and a miss through `openat2(RESOLVE_BENEATH)`. Only regular
//! files the root opened go in; escapes, 404s, directories and errors are
//! never cached. A cached body was read from inside the root, so the
//! window above can serve an old version of a file, never anything from
//! outside.
//!
//! ## Bounded
//! At most [`HttpConfig::file_cache_entries`] entries (1024) and
//! [`HttpConfig::file_cache_bytes`] body bytes (16 MiB) per cache. When an
//! insertion would pass either bound the whole cache is cleared first:
//! O(1) bookkeeping, no recency list, and a working set larger than the
//! cache degrades to the uncached cost, not worse.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustix::fs::Stat;
use rustix::time::{ClockId, Timespec};

use super::HttpConfig;
use super::conditional::Etag;
use super::date::{self, HttpDate};
use super::respond::ContentType;
use crate::root::{FsError, Meta, VirtualPath};

/// What every answer about one file needs besides its bytes.
#[derive(Clone, Copy)]
pub(crate) struct FileInfo {
    pub meta: Meta,
    pub etag: Etag,
    pub last_modified: HttpDate,
    pub content_type: ContentType,
}

impl FileInfo {
    fn new(meta: Meta, name: &std::ffi::OsStr) -> FileInfo {
        FileInfo {
            meta,
            etag: Etag::of(&meta),
            last_modified: date::format(meta.mtime),
            content_type: ContentType::of(name),
        }
    }
}

/// Where an answer's body comes from.
pub(crate) enum Body {
    /// The whole file, from the cache.
    Cached(Arc<[u8]>),
    /// The open file, not cached; `O_NONBLOCK` is still set (see
    /// [`Root::open_regular_nonblocking`](crate::root::Root)).
    File(File),
}

/// A regular file ready to answer about.
pub(crate) struct Opened {
    pub info: FileInfo,
    pub body: Body,
}

/// Counters of a cache, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCacheStats {
    /// Entries held now.
    pub entries: usize,
    /// Body bytes held now.
    pub bytes: usize,
    /// Requests answered from an entry without any syscall.
    pub hits: u64,
    /// Lookups that went to the disk: misses, revalidations, and paths
    /// that turn out not to be regular files.
    pub opens: u64,
}

/// A handle on one open-file cache; clones share it. A driver makes one per
/// thread (event loop or worker) and gives it to the HTTP sessions it runs
/// there.
#[derive(Clone, Default)]
pub struct FileCache {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FileCache").field(&self.stats()).finish()
    }
}

impl FileCache {
    /// An empty cache.
    pub fn new() -> FileCache {
        FileCache::default()
    }

    /// The cache's counters.
    pub fn stats(&self) -> FileCacheStats {
        let cache = self.lock();
        FileCacheStats { entries: cache.map.len(), bytes: cache.bytes, ..cache.stats }
    }

    /// Opens the regular file at `path` under `config.root`, from the cache
    /// when an entry checked less than `config.file_cache_valid` before
    /// `now` exists. Errors are the root's.
    pub(crate) fn open(&self, config: &HttpConfig, path: &VirtualPath, now: Instant) -> Result<Opened, FsError> {
        self.lock().open(config, path, now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics under the lock but a disk read error path that
        // leaves the map consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What, on disk, a cached body is a copy of. Any write changes ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validators {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Validators {
    fn of(stat: &Stat) -> Validators {
        Validators {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime, stat.st_ctime_nsec as i64),
        }
    }
}

struct Entry {
    info: FileInfo,
    body: Arc<[u8]>,
    validators: Validators,
    /// When the file was last opened and found unchanged.
    checked: Instant,
}

#[derive(Default)]
struct Inner {
    /// Keyed by root id (8 bytes) and the path's bytes.
    map: HashMap<Box<[u8]>, Entry>,
    /// Sum of the bodies' lengths.
    bytes: usize,
    /// Scratch for building the key of a lookup without allocating.
    key: Vec<u8>,
    stats: FileCacheStats,
}

impl Inner {
    fn open(&mut self, config: &HttpConfig, path: &VirtualPath, now: Instant) -> Result<Opened, FsError> {
        let root = &config.root;
        if config.file_cache_entries == 0 {
            // Off for this server: not even entries other servers on this
            // thread made are used.
            let (file, stat) = root.open_regular_nonblocking(path)?;
            let meta = Meta::of(&stat);
            return Ok(Opened {
                info: FileInfo::new(meta, path.file_name().unwrap_or_default()),
                body: Body::File(file),
            });
        }
        self.key.clear();
        self.key.extend_from_slice(&root.id().to_le_bytes());
        for name in path.names() {
            self.key.push(b'/');
            self.key.extend_from_slice(name.as_bytes());
        }
        if let Some(entry) = self.map.get(self.key.as_slice())
            && entry.info.meta.size <= config.copy_threshold
            && now.saturating_duration_since(entry.checked) < config.file_cache_valid
        {
            self.stats.hits += 1;
            return Ok(Opened { info: entry.info, body: Body::Cached(Arc::clone(&entry.body)) });
        }

        self.stats.opens += 1;
        let opened_at = coarse_now();
        let (file, stat) = match root.open_regular_nonblocking(path) {
            Ok(opened) => opened,
            Err(e) => {
                self.remove();
                return Err(e);
            }
        };
        let validators = Validators::of(&stat);
        if let Some(entry) = self.map.get_mut(self.key.as_slice()) {
            if entry.validators == validators && entry.info.meta.size <= config.copy_threshold {
                entry.checked = now;
                return Ok(Opened { info: entry.info, body: Body::Cached(Arc::clone(&entry.body)) });
            }
            self.remove();
        }

        let meta = Meta::of(&stat);
        let info = FileInfo::new(meta, path.file_name().unwrap_or_default());
        let size = meta.size;
        let settled = (stat.st_ctime, stat.st_ctime_nsec as i64) < (opened_at.tv_sec, opened_at.tv_nsec);
        let fits =
            size <= config.copy_threshold && size as usize <= config.file_cache_bytes && config.file_cache_entries > 0;
        if !settled || !fits {
            return Ok(Opened { info, body: Body::File(file) });
        }
        let mut body = vec![0; size as usize];
        if let Err(e) = file.read_exact_at(&mut body, 0) {
            return Err(FsError::Io(io::Error::new(e.kind(), format!("reading {path} failed: {e}"))));
        }
        let body: Arc<[u8]> = body.into();
        if self.map.len() >= config.file_cache_entries || self.bytes + body.len() > config.file_cache_bytes {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += body.len();
        let entry = Entry { info, body: Arc::clone(&body), validators, checked: now };
        self.map.insert(self.key.as_slice().into(), entry);
        Ok(Opened { info, body: Body::Cached(body) })
    }

    /// Drops the entry of the key in `self.key`, if any.
    fn remove(&mut self) {
        if let Some(entry) = self.map.remove(self.key.as_slice()) {
            self.bytes -= entry.body.len();
        }
    }
}

/// The coarse real-time clock that file timestamps are taken from (vDSO,
/// no syscall).
fn coarse_now() -> Timespec {
    rustix::time::clock_gettime(ClockId::RealtimeCoarse)
}
