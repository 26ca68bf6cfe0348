//! Daemon mode and pid files.
//!
//! [`detach`] is the classic recipe: fork (the parent can then exit, and
//! the child is not a process-group leader), `setsid` (a new session with
//! no controlling terminal), fork again (the session leader exits, so the
//! daemon can never reacquire a terminal), `chdir /` (do not pin a mounted
//! filesystem), `umask`, stdio to `/dev/null` or a log file. Call it after
//! binding the listeners and printing their addresses, and before any
//! thread exists: only the forking thread survives a fork.
//!
//! The process that ran `ferry serve --daemon` waits on a pipe until the
//! daemon has written its pid file, so when it exits 0 the daemon is
//! serving and the pid file is there; if the daemon fails first, it prints
//! the daemon's error and exits 1.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;
use rustix::fs::{Mode, OFlags};
use rustix::pipe::{PipeFlags, pipe_with};

use crate::children::{exit_child, fork_process};

/// Why daemon mode or the pid file could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The pid file names a ferry process that is still running.
    #[error("{path} says ferry is already running as pid {pid}")]
    AlreadyRunning {
        /// The pid file.
        path: PathBuf,
        /// The live process it names.
        pid: i32,
    },
    /// A file or process operation failed.
    #[error("cannot {what} {}: {error}", path.display())]
    Io {
        /// What was being done ("write the pid file").
        what: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// Forking or starting a new session failed.
    #[error("cannot detach: {0}")]
    Detach(io::Error),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |error| DaemonError::Io { what, path, error }
}

/// A pid file this process wrote; removed when dropped by this process
/// (not by a forked child that inherited a copy).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Fails if `path` names a live ferry process; a stale file (dead pid,
    /// another program, garbage) is fine to replace.
    pub fn check(path: &Path) -> Result<(), DaemonError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DaemonError::Io { what: "read the pid file", path: path.to_path_buf(), error: e }),
        };
        let Ok(pid) = text.trim().parse::<i32>() else { return Ok(()) };
        if pid <= 0 || pid as u32 == std::process::id() {
            return Ok(());
        }
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // A zombie waiting to be reaped is not running.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
        if comm.trim_end() == "ferry" && !zombie {
            return Err(DaemonError::AlreadyRunning { path: path.to_path_buf(), pid });
        }
        Ok(())
    }

    /// Writes this process's pid to `path` atomically (a temporary file in
    /// the same directory, renamed over it).
    pub fn create(path: &Path) -> Result<PidFile, DaemonError> {
        let pid = std::process::id();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.{pid}.tmp"));
        let write = || -> io::Result<()> {
            // A leftover of a crashed process that had the same pid.
            let _ = fs::remove_file(&temp);
            let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temp)?;
            writeln!(file, "{pid}")?;
            file.sync_all()?;
            fs::rename(&temp, path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(DaemonError::Io { what: "write the pid file", path: path.to_path_buf(), error: e });
        }
        Ok(PidFile { path: path.to_path_buf(), pid })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            return;
        }
        // Only remove it if it still names us (nobody replaced it).
        let ours = fs::read_to_string(&self.path).is_ok_and(|t| t.trim() == self.pid.to_string());
        if ours && let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!("cannot remove the pid file {}: {e}", self.path.display());
        }
    }
}

/// Closes every descriptor above stderr that the process inherited from
/// whoever started it (a shell's or a test harness's pipes, say), so the
/// daemon does not keep them open for its whole life. Returns how many it
/// closed.
///
/// # Safety
///
/// Nothing in the process may own a descriptor above 2 yet but those in
/// `keep` (sockets passed by a service manager), which stay open: call it first
/// thing, before the process opens any file, socket or pipe of its own.
pub unsafe fn close_inherited_descriptors(keep: &[std::os::fd::RawFd]) -> io::Result<usize> {
    let mut inherited = Vec::new();
    {
        // The listing needs a descriptor of its own: note its number.
        let dir =
            rustix::fs::open("/proc/self/fd", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let own = dir.as_raw_fd();
        let mut entries = rustix::fs::Dir::new(dir)?;
        while let Some(entry) = entries.read() {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Ok(fd) = name.parse::<i32>()
                && fd > 2
                && fd != own
                && !keep.contains(&fd)
            {
                inherited.push(fd);
            }
        }
    }
    for &fd in &inherited {
        // SAFETY: the caller guarantees nothing in this process owns a
        // descriptor above 2, so closing these cannot pull one out from
        // under an owner; each was open when listed and nothing opened or
        // closed a descriptor since.
        unsafe { rustix::io::close(fd) };
    }
    let closed = inherited.len();
    Ok(closed)
}

/// Detaches from the terminal and the caller (see the module docs) and
/// returns in the daemon, with the pid file (if asked for) written. The
/// original process never returns from this call: it exits 0 once the
/// daemon reports ready, 1 if it failed. Paths must be absolute (the
/// daemon changes to `/`).
pub fn detach(pid_file: Option<&Path>, log_file: Option<&Path>) -> Result<Option<PidFile>, DaemonError> {
    let (ready_read, ready_write) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| DaemonError::Detach(e.into()))?;
    match fork_process().map_err(|e| DaemonError::Detach(io::Error::other(e)))? {
        ForkResult::Parent { child } => {
            drop(ready_write);
            let mut answer = String::new();
            let _ = fs::File::from(ready_read).read_to_string(&mut answer);
            let _ = waitpid(child, None);
            if answer == "ok" {
                std::process::exit(0);
            }
            let reason = if answer.is_empty() { "the daemon exited before it was ready" } else { &answer };
            eprintln!("ferry: error: {reason}");
            std::process::exit(1);
        }
        ForkResult::Child => {}
    }
    drop(ready_read);
    // In the first child: a new session, then leave it to a grandchild.
    if let Err(e) = rustix::process::setsid() {
        report_and_exit(ready_write, &format!("cannot start a new session: {e}"));
    }
    match fork_process() {
        Ok(ForkResult::Parent { .. }) => exit_child(0),
        Ok(ForkResult::Child) => {}
        Err(e) => report_and_exit(ready_write, &e.to_string()),
    }
    // The daemon, not the process that bound them, removes the Unix socket
    // files of its listeners at exit.
    ferry_reactor::inherit_unix_listeners();
    match become_daemon(pid_file, log_file) {
        Ok(pid_file) => {
            let _ = rustix::io::write(&ready_write, b"ok");
            Ok(pid_file)
        }
        Err(e) => report_and_exit(ready_write, &e.to_string()),
    }
}

/// The grandchild's set-up: working directory, umask, stdio, pid file.
fn become_daemon(pid_file: Option<&Path>, log_file: Option<&Path>) -> Result<Option<PidFile>, DaemonError> {
    rustix::process::chdir("/").map_err(|e| io_err("change directory to", Path::new("/"))(e.into()))?;
    rustix::process::umask(Mode::from_raw_mode(0o022));
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io_err("open", Path::new("/dev/null")))?;
    let log: OwnedFd = match log_file {
        Some(path) => fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
            .map_err(io_err("open the log file", path))?
            .into(),
        None => null.try_clone().map_err(io_err("duplicate", Path::new("/dev/null")))?.into(),
    };
    let redirect = |r: rustix::io::Result<()>| r.map_err(|e| DaemonError::Detach(e.into()));
    redirect(rustix::stdio::dup2_stdin(&null))?;
    redirect(rustix::stdio::dup2_stdout(&log))?;
    redirect(rustix::stdio::dup2_stderr(&log))?;
    pid_file.map(PidFile::create).transpose()
}

/// Tells the waiting original process why the daemon failed, and exits.
fn report_and_exit(ready_write: OwnedFd, reason: &str) -> ! {
    let _ = rustix::io::write(&ready_write, reason.as_bytes());
    drop(ready_write);
    exit_child(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_written_whole_and_removed_by_its_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.pid");
        PidFile::check(&path).expect("no pid file is fine");
        let pid_file = PidFile::create(&path).expect("create");
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left behind");
        PidFile::check(&path).expect("our own pid is not another ferry");
        drop(pid_file);
        assert!(!path.exists(), "removed on drop");

        // Replaced by someone else: left alone.
        let pid_file = PidFile::create(&path).expect("create");
        fs::write(&path, "1\n").unwrap();
        drop(pid_file);
        assert!(path.exists(), "a pid file naming another process is not ours to remove");
    }

    #[test]
    fn stale_or_garbage_pid_files_do_not_block_a_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.pid");
        for text in ["", "garbage", "-4", "1\n"] {
            // pid 1 is init (or the container's first process), not ferry.
            fs::write(&path, text).unwrap();
            PidFile::check(&path).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
    }
}
