//! SIGUSR2: replace the running binary without refusing a connection
//! (nginx's USR2), the same way under every model.
//!
//! The binary [enables](enable) it with what to start (the path it was
//! started from, so a replaced file is the new binary; its arguments; its
//! working directory). Every model [offers](offer) its listening sockets
//! as it binds them (a duplicate descriptor is kept until the drain
//! begins). SIGUSR2 reaches [`begin`] through the one place signals are
//! dispatched ([`crate::reload::handle`]); it then:
//!
//! 1. starts the binary as a child with the same arguments, handing it
//!    every listening socket as systemd's socket activation does
//!    (`LISTEN_FDS`, `LISTEN_FDNAMES` = the services, `LISTEN_PID` = the
//!    child's pid: [`crate::listen_fds`] on the other side), and a
//!    notification socket of its own in `FERRY_UPGRADE_NOTIFY`;
//! 2. waits until the child says `READY=1` there (its first
//!    [`crate::notify::ready`] goes to the parent, later ones to systemd),
//!    for at most [`READY_TIMEOUT`];
//! 3. tells systemd the child is the main process now (`MAINPID=`), stops
//!    talking to it, leaves its Unix socket files in place, and sends
//!    itself SIGTERM: the ordinary drain, while the child accepts from the
//!    very same sockets, so nothing queued is lost.
//!
//! If the child cannot be started, exits, or stays silent, the old process
//! logs why, kills what it started, and goes on serving.
//!
//! The wait runs on a thread of its own, except in a process with one
//! thread (the fork and prefork parents must stay single-threaded to fork
//! safely): there it runs inline, which only delays that parent's accepts
//! by the child's start-up; connections wait in the shared backlog, where
//! the child takes them.

mod spawn;

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// The variable naming the parent's notification socket in the child.
pub(crate) const NOTIFY_VAR: &str = "FERRY_UPGRADE_NOTIFY";

/// How long the new binary may take to report ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// After a hand-over, the longest a stop waits for the connections this
/// process accepted already (waiting for their first request or for a
/// worker) to reach a worker, instead of closing them unserved: the
/// listeners are the new process's now, so nobody else will serve them.
pub(crate) const HANDOVER_GRACE: Duration = Duration::from_secs(30);

/// How often a stop waiting out [`HANDOVER_GRACE`] looks again.
pub(crate) const HANDOVER_STEP: Duration = Duration::from_millis(10);

/// What SIGUSR2 starts: the binary's path, its arguments (the first is
/// `argv[0]`) and the directory it was started in.
#[derive(Debug, Clone)]
pub struct UpgradeSpec {
    /// The path the binary was started from.
    pub exe: PathBuf,
    /// Every argument, `argv[0]` first.
    pub args: Vec<OsString>,
    /// The working directory to start it in (relative paths in the
    /// arguments mean the same to it).
    pub cwd: PathBuf,
}

static SPEC: OnceLock<UpgradeSpec> = OnceLock::new();

/// The listening sockets offered so far (duplicates), by service name.
static LISTENERS: Mutex<Vec<(String, OwnedFd)>> = Mutex::new(Vec::new());

const IDLE: u8 = 0;
const UPGRADING: u8 = 1;
const DRAINING: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(IDLE);

/// Set once a new process took the listeners over.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Turns SIGUSR2 into an upgrade to `spec` (without it, SIGUSR2 is only
/// logged). Call it before binding: only listeners bound afterwards are
/// handed over.
pub fn enable(spec: UpgradeSpec) {
    let _ = SPEC.set(spec);
}

/// Keeps a duplicate of a listening socket of `service` (a service's
/// name, or `metrics`) to hand over, under that name.
pub fn offer(service: &str, socket: impl AsFd) {
    if SPEC.get().is_none() {
        return;
    }
    match rustix::io::fcntl_dupfd_cloexec(socket, 3) {
        Ok(fd) => LISTENERS.lock().unwrap_or_else(PoisonError::into_inner).push((service.to_owned(), fd)),
        Err(e) => tracing::warn!("cannot keep a listener of {service} for an upgrade: {e}"),
    }
}

/// Closes the duplicates: the drain began (the listeners must close for
/// real, and no upgrade starts any more), or this is a forked child.
pub(crate) fn forget_listeners() {
    STATE.store(DRAINING, Ordering::SeqCst);
    LISTENERS.lock().unwrap_or_else(PoisonError::into_inner).clear();
}

/// Whether a new process serves this one's listeners now: they must not
/// be shut down (only closed) when this one drains.
pub(crate) fn handed_over() -> bool {
    HANDED_OVER.load(Ordering::SeqCst)
}

/// Tells a connection the server drains: after a hand-over, one that has
/// received nothing yet is still answered its first request (the client
/// connected to a listener whose new owner will not see it).
pub(crate) fn shut_down_conn<S: ferry_proto::Session>(conn: &mut ferry_proto::conn::Conn<S>) {
    if handed_over() {
        conn.handle_shutdown_serving_fresh();
    } else {
        conn.handle_shutdown();
    }
}

/// The parent's notification socket, the first time it is asked for, when
/// this process is a new binary started by an upgrade (the variable is
/// set and the passed sockets were meant for this process).
pub(crate) fn take_parent_notify() -> Option<String> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if !is_upgrade_child() || TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    std::env::var(NOTIFY_VAR).ok()
}

/// Whether this process was started by an upgrade: it then finds its pid
/// file naming its parent, and is detached already.
pub fn is_upgrade_child() -> bool {
    std::env::var_os(NOTIFY_VAR).is_some()
        && std::env::var("LISTEN_PID").is_ok_and(|pid| pid.trim() == std::process::id().to_string())
}

/// SIGUSR2: starts the upgrade (see the module's doc).
pub(crate) fn begin() {
    let Some(spec) = SPEC.get() else {
        tracing::warn!("received SIGUSR2: upgrades are not enabled here; ignored");
        return;
    };
    if let Err(state) = STATE.compare_exchange(IDLE, UPGRADING, Ordering::SeqCst, Ordering::SeqCst) {
        let why = if state == UPGRADING { "an upgrade is under way" } else { "the server is draining" };
        tracing::warn!("received SIGUSR2: {why}; ignored");
        return;
    }
    let fds: Result<Vec<(String, OwnedFd)>, _> = LISTENERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(name, fd)| fd.try_clone().map(|fd| (name.clone(), fd)))
        .collect();
    let fds = match fds {
        Ok(fds) => fds,
        Err(e) => return failed(&format!("cannot duplicate the listeners: {e}")),
    };
    tracing::info!("received SIGUSR2: starting {} to take over {} listener(s)", spec.exe.display(), fds.len());
    let run = move || match start_and_wait(spec, &fds) {
        Ok(pid) => hand_over(pid),
        Err(why) => failed(&why),
    };
    if crate::children::thread_count().is_ok_and(|n| n == 1) {
        run();
    } else if let Err(e) = std::thread::Builder::new().name("upgrade".into()).spawn(run) {
        failed(&format!("cannot start the upgrade thread: {e}"));
    }
}

/// The upgrade failed: this process goes on serving.
fn failed(why: &str) {
    // Idle again before saying so: a SIGUSR2 sent on reading this line
    // must start a new attempt, not find this one still under way.
    let _ = STATE.compare_exchange(UPGRADING, IDLE, Ordering::SeqCst, Ordering::SeqCst);
    tracing::error!("upgrade failed: {why}; the running server goes on serving");
}

/// The new binary is ready: it is the server now; this one drains.
fn hand_over(pid: Pid) {
    HANDED_OVER.store(true, Ordering::SeqCst);
    ferry_reactor::keep_socket_files();
    crate::observe::handed_over();
    crate::notify::hand_over(pid.as_raw() as u32);
    tracing::info!("upgrade: the new binary (pid {pid}) is serving; this process drains and exits");
    if let Err(e) = kill(Pid::this(), Signal::SIGTERM) {
        tracing::error!("upgrade: cannot start the drain (SIGTERM to myself): {e}; both processes serve");
    }
}

/// Starts the new binary and waits for its `READY=1`; returns its pid.
fn start_and_wait(spec: &UpgradeSpec, fds: &[(String, OwnedFd)]) -> Result<Pid, String> {
    let name = format!("ferry-upgrade-{}-{}", std::process::id(), nanos());
    let socket = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| UnixDatagram::bind_addr(&addr))
        .map_err(|e| format!("cannot open a notification socket: {e}"))?;
    let launch = spawn::Launch {
        exe: &spec.exe,
        args: &spec.args,
        cwd: &spec.cwd,
        env: vec![format!("{NOTIFY_VAR}=@{name}")],
        fds,
    };
    let pid = spawn::spawn(&launch).map_err(|e| e.to_string())?;
    tracing::info!("upgrade: started pid {pid}; waiting up to {}s for it to be ready", READY_TIMEOUT.as_secs());
    match wait_ready(&socket, pid) {
        Ok(()) => Ok(pid),
        Err(why) => Err(format!("the new binary (pid {pid}) {why}")),
    }
}

/// Waits for `READY=1` from `pid` on `socket`, its exit, or the timeout
/// (then kills it). The child is reaped when it does not become ready.
fn wait_ready(socket: &UnixDatagram, pid: Pid) -> Result<(), String> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid.as_raw()).ok_or("has no valid pid")?,
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| format!("cannot be watched (pidfd_open: {e})"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(format!("did not report ready within {}s; killed it", READY_TIMEOUT.as_secs()));
        }
        let mut fds = [PollFd::new(socket, PollFlags::IN), PollFd::new(&pidfd, PollFlags::IN)];
        let timeout = Timespec::try_from(left).ok();
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("cannot be watched (poll: {e})")),
        }
        let (message, exited) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if message && let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let ready = text.lines().any(|l| l == "READY=1");
            let from = text.lines().find_map(|l| l.strip_prefix("MAINPID=")).and_then(|p| p.parse::<i32>().ok());
            if ready && from == Some(pid.as_raw()) {
                return Ok(());
            }
        }
        if exited {
            return Err(format!("exited before it was ready: {}", reap(pid)));
        }
    }
}

/// Reaps `pid` and says how it ended.
fn reap(pid: Pid) -> String {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => format!("status {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
        Ok(_) => "ended".to_owned(),
        Err(e) => format!("ended ({e})"),
    }
}

/// A unique-enough suffix for the notification socket's name.
fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
