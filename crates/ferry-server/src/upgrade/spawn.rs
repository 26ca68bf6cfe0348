//! Starting the new binary with the listeners as systemd would pass them:
//! descriptors 3.. in the child, `LISTEN_FDS`, `LISTEN_FDNAMES`, and
//! `LISTEN_PID` set to the child's own pid, which only exists after the
//! fork. So this is fork + execve written out (std's `Command` fixes the
//! environment before it forks): everything is allocated before the fork,
//! and the child only makes async-signal-safe system calls (the parent may
//! have threads) until execve, writing its pid into a buffer made for it.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use nix::unistd::Pid;
use rustix::pipe::{PipeFlags, pipe_with};

use crate::listen_fds::FIRST_FD;

/// The variables the child's environment gets fresh (any inherited value
/// of them is dropped).
pub(super) const OWN_VARS: [&str; 4] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", super::NOTIFY_VAR];

/// `LISTEN_PID=` and room for any pid and the terminating NUL.
const PID_PREFIX: &[u8] = b"LISTEN_PID=";

/// What to start and what to give it.
pub(super) struct Launch<'a> {
    pub(super) exe: &'a Path,
    pub(super) args: &'a [OsString],
    pub(super) cwd: &'a Path,
    /// Extra variables (`KEY=VALUE`), besides the inherited ones.
    pub(super) env: Vec<String>,
    /// The listeners, in order, and their names.
    pub(super) fds: &'a [(String, OwnedFd)],
}

/// Starts `launch.exe`; returns its pid once execve succeeded, or why the
/// child could not execute it.
pub(super) fn spawn(launch: &Launch<'_>) -> io::Result<Pid> {
    let cstr = |bytes: &[u8]| CString::new(bytes).map_err(|_| io::Error::other("a NUL byte in an argument"));
    let exe = cstr(launch.exe.as_os_str().as_bytes())?;
    let cwd = cstr(launch.cwd.as_os_str().as_bytes())?;
    let args: Vec<CString> = launch.args.iter().map(|a| cstr(a.as_bytes())).collect::<io::Result<_>>()?;
    let n = launch.fds.len();
    let names: Vec<&str> = launch.fds.iter().map(|(name, _)| name.as_str()).collect();
    let mut env: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        if OWN_VARS.iter().any(|own| key.as_bytes() == own.as_bytes()) {
            continue;
        }
        let mut entry = key.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        env.push(cstr(&entry)?);
    }
    env.push(cstr(format!("LISTEN_FDS={n}").as_bytes())?);
    env.push(cstr(format!("LISTEN_FDNAMES={}", names.join(":")).as_bytes())?);
    for extra in &launch.env {
        env.push(cstr(extra.as_bytes())?);
    }
    // The child writes its pid after the prefix: 20 digits and a NUL fit.
    let mut listen_pid = PID_PREFIX.to_vec();
    listen_pid.resize(PID_PREFIX.len() + 21, 0);
    // Above every target descriptor, so no dup2 overwrites a source.
    let first_free = FIRST_FD + n as RawFd;
    let sources: Vec<OwnedFd> =
        launch.fds.iter().map(|(_, fd)| rustix::io::fcntl_dupfd_cloexec(fd, first_free)).collect::<Result<_, _>>()?;
    let source_fds: Vec<RawFd> = sources.iter().map(AsRawFd::as_raw_fd).collect();
    let argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(listen_pid.as_ptr().cast());
    envp.push(std::ptr::null());
    // execve failing in the child is reported through this pipe (its
    // errno); a successful execve closes the write end (close-on-exec).
    let (report_read, report_write) = pipe_with(PipeFlags::CLOEXEC)?;

    // SAFETY: the child only makes async-signal-safe calls (dup2, chdir,
    // sigprocmask, signal, getpid, execve, write, _exit) on memory
    // allocated before the fork, which it has its own copy of.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: see above; `listen_pid` is the child's copy.
            unsafe {
                in_child(&exe, &cwd, &argv, &envp, &source_fds, listen_pid.as_mut_ptr(), report_write.as_raw_fd())
            }
        }
        pid => {
            drop(report_write);
            drop(sources);
            let pid = Pid::from_raw(pid);
            let mut errno = [0u8; 4];
            match rustix::io::read(&report_read, &mut errno) {
                Ok(4) => {
                    let _ = nix::sys::wait::waitpid(pid, None);
                    let error = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
                    Err(io::Error::new(error.kind(), format!("cannot execute {}: {error}", launch.exe.display())))
                }
                _ => Ok(pid),
            }
        }
    }
}

/// The child's side, up to execve.
///
/// # Safety
///
/// Only in the child just forked; every pointer points into memory
/// allocated before the fork; `listen_pid` has room for 21 bytes after
/// the prefix.
unsafe fn in_child(
    exe: &CString,
    cwd: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    sources: &[RawFd],
    listen_pid: *mut u8,
    report: RawFd,
) -> ! {
    // SAFETY: async-signal-safe calls only, on the child's own copies.
    unsafe {
        for (i, &fd) in sources.iter().enumerate() {
            // dup2 clears close-on-exec on the copy, as the child needs.
            if libc::dup2(fd, FIRST_FD + i as RawFd) < 0 {
                fail(report);
            }
        }
        if libc::chdir(cwd.as_ptr()) < 0 {
            fail(report);
        }
        // The new binary starts with the signal state of a fresh process.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
        write_pid(listen_pid.add(PID_PREFIX.len()), libc::getpid() as u64);
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(report)
    }
}

/// Writes `pid` in decimal and a NUL at `at` (room for 21 bytes).
///
/// # Safety
///
/// `at` must point to 21 writable bytes.
unsafe fn write_pid(at: *mut u8, mut pid: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (pid % 10) as u8;
        len += 1;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: len <= 20 and the caller gives 21 bytes.
        unsafe { *at.add(i) = digits[len - 1 - i] };
    }
    // SAFETY: as above.
    unsafe { *at.add(len) = 0 };
}

/// Reports errno to the parent and exits 127.
///
/// # Safety
///
/// Only in the forked child.
unsafe fn fail(report: RawFd) -> ! {
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}
