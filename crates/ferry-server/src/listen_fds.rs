//! Socket activation: listening sockets passed in by whoever started the
//! process, as systemd passes them (`sd_listen_fds(3)`), a few lines
//! instead of libsystemd.
//!
//! `LISTEN_PID` names the process the sockets are meant for (so a child
//! that inherited the environment does not take them too), `LISTEN_FDS`
//! how many there are, from descriptor 3 on, and `LISTEN_FDNAMES` their
//! names, colon-separated (`FileDescriptorName=` in a socket unit). A
//! ferry being upgraded passes its listeners to the new binary the same
//! way ([`crate::upgrade`]).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_reactor::Listener;
/// Makes a passed socket the one a bind of its address gets.
pub use ferry_reactor::inherited::adopt;

/// The first descriptor of the passed sockets (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;

/// Set once the sockets were taken: a descriptor is owned once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// One passed socket.
#[derive(Debug)]
pub struct PassedListener {
    /// Its `LISTEN_FDNAMES` entry (`unknown` when there were no names, as
    /// systemd says; a socket unit's default is the unit's name).
    pub name: String,
    /// The listening socket.
    pub listener: Listener,
}

/// Why the passed sockets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ListenFdsError {
    /// A variable is not what the protocol says.
    #[error("socket activation: {0}")]
    Environment(String),
    /// A passed descriptor is not a listening stream socket.
    #[error("socket activation: {name:?}: {error}")]
    NotAListener {
        /// Its name.
        name: String,
        /// What it is instead.
        error: io::Error,
    },
}

/// Takes the sockets passed to this process: none when `LISTEN_PID` is
/// unset or names another process (the variables were inherited). Call it
/// once, before anything opens a descriptor (a second call finds none).
pub fn take() -> Result<Vec<PassedListener>, ListenFdsError> {
    let var = |name: &str| std::env::var(name).ok();
    let Some(pid) = var("LISTEN_PID") else { return Ok(Vec::new()) };
    let pid: u32 = pid.trim().parse().map_err(|_| env_err(format!("LISTEN_PID={pid:?} is not a process id")))?;
    if pid != std::process::id() || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let count = var("LISTEN_FDS").unwrap_or_default();
    let n: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or_else(|| env_err(format!("LISTEN_FDS={count:?} is not a number of sockets (1 to 1024)")))?;
    let names: Vec<String> = match var("LISTEN_FDNAMES") {
        Some(names) => names.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); n as usize],
    };
    if names.len() != n as usize {
        return Err(env_err(format!("LISTEN_FDNAMES has {} name(s) for LISTEN_FDS={n} socket(s)", names.len())));
    }
    let mut passed = Vec::with_capacity(names.len());
    // Every descriptor is owned (and closed on error) before any is checked.
    let fds: Vec<OwnedFd> = (FIRST_FD..FIRST_FD + n)
        .map(|fd| {
            // SAFETY: the protocol hands descriptors FIRST_FD.. to this
            // process (LISTEN_PID says so), and TAKEN makes sure they are
            // owned once; nothing else in the process knows their numbers.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect();
    for (fd, name) in fds.into_iter().zip(names) {
        match Listener::from_fd(fd) {
            Ok(listener) => passed.push(PassedListener { name, listener }),
            Err(error) => return Err(ListenFdsError::NotAListener { name, error }),
        }
    }
    Ok(passed)
}

fn env_err(why: String) -> ListenFdsError {
    ListenFdsError::Environment(why)
}
