//! The access log: one line per request, buffered per process, written
//! with one `write` of whole lines to an `O_APPEND` descriptor (so the
//! processes of fork and prefork, each with its own buffer, never mix
//! inside a line), at least once a second, when the buffer fills, and at
//! exit; reopened on SIGUSR1 for logrotate.
//!
//! Each process flushes from a thread of its own, started by its first
//! line (a forked child starts its own); the parents of fork and prefork
//! serve no request, so they never start one and stay single-threaded, as
//! forking requires. SIGUSR1 is read by the process that handles signals
//! (the parent), which bumps a number in the shared counters
//! ([`super::shared::Shared::reopen`]): every process reopens when it sees
//! a new one, at its next line or flush, so no signal is forwarded to a
//! worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::format::Format;
use super::shared::Shared;

/// A buffer this full is written at once.
const FLUSH_AT: usize = 64 * 1024;

/// How often the flushing thread writes what is buffered.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Where lines go, and the lines not written yet.
pub(crate) struct AccessLog {
    /// `None`: standard error.
    path: Option<PathBuf>,
    pub(crate) format: Format,
    state: Mutex<State>,
}

struct State {
    /// `None`: standard error.
    file: Option<File>,
    buf: Vec<u8>,
    /// The process the flushing thread runs in (0: none yet).
    flusher_pid: u32,
    /// The reopen number this process's file is for.
    reopened: u64,
}

impl AccessLog {
    /// Opens `path` for appending (created 0640 if missing); `-` is
    /// standard error.
    pub(crate) fn open(path: &str, format: Format) -> io::Result<AccessLog> {
        let path = (path != "-").then(|| std::path::absolute(path)).transpose()?;
        let file = path.as_deref().map(open_append).transpose()?;
        let state = State { file, buf: Vec::with_capacity(FLUSH_AT), flusher_pid: 0, reopened: 0 };
        Ok(AccessLog { path, format, state: Mutex::new(state) })
    }

    /// Appends one line (ending in `\n`).
    pub(crate) fn append(&'static self, line: &[u8], shared: &Shared) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if state.flusher_pid != pid {
            state.flusher_pid = pid;
            // A fork copied the buffer of a parent that served nothing.
            state.buf.clear();
            if let Err(e) = std::thread::Builder::new().name("access-log".into()).spawn(move || self.flush_loop()) {
                tracing::error!("cannot start the access log's flushing thread: {e}");
            }
        }
        state.buf.extend_from_slice(line);
        if state.buf.len() >= FLUSH_AT {
            self.write_out(&mut state, shared);
        }
    }

    /// Writes what is buffered (reopening first if SIGUSR1 asked).
    pub(crate) fn flush(&self, shared: &Shared) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_out(&mut state, shared);
    }

    fn flush_loop(&'static self) {
        let shared = super::shared_counters();
        loop {
            std::thread::sleep(FLUSH_EVERY);
            if let Some(shared) = shared {
                self.flush(shared);
            }
        }
    }

    fn write_out(&self, state: &mut State, shared: &Shared) {
        let wanted = shared.reopen.load(Relaxed);
        if wanted != state.reopened {
            state.reopened = wanted;
            // Lines of before the rotation go to the renamed file.
            write_all(state.file.as_ref(), &state.buf);
            state.buf.clear();
            if let Some(path) = &self.path {
                match open_append(path) {
                    Ok(file) => state.file = Some(file),
                    Err(e) => tracing::error!("cannot reopen the access log {}: {e}", path.display()),
                }
            }
        }
        if !state.buf.is_empty() {
            write_all(state.file.as_ref(), &state.buf);
            state.buf.clear();
        }
    }
}

/// Asks every process to reopen its access log (SIGUSR1).
pub(crate) fn request_reopen(shared: &Shared) {
    shared.reopen.fetch_add(1, Relaxed);
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open the access log {}: {e}", path.display())))
}

/// One `write` of whole lines where possible; a short write is finished
/// by more (only a full disk makes one on a regular file).
fn write_all(file: Option<&File>, buf: &[u8]) {
    if buf.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = match file {
        Some(mut f) => f.write_all(buf),
        None => io::stderr().lock().write_all(buf),
    };
    if let Err(e) = result {
        tracing::error!("cannot write the access log: {e} ({} bytes lost)", buf.len());
    }
    if started.elapsed() > Duration::from_secs(1) {
        tracing::warn!("writing the access log took {:?}", started.elapsed());
    }
}
