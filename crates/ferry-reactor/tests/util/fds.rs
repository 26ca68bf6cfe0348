//! Running out of file descriptors on purpose, for the EMFILE tests of
//! this crate and of ferry-server (which includes this file by path).

#![allow(dead_code)] // each test binary uses a different subset

use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Number of open fds in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count() - 1
}

/// A TCP socket to connect later, made while descriptors are available.
pub fn client_socket() -> OwnedFd {
    rustix::net::socket_with(AddressFamily::INET, SocketType::STREAM, SocketFlags::CLOEXEC, None).expect("socket")
}

/// Lowers the fd limit close to what is open, then fills the rest; returns
/// the saved limit and the fillers (drop them, then [`restore`] the limit).
pub fn exhaust_fds() -> (Rlimit, Vec<OwnedFd>) {
    let saved = getrlimit(Resource::Nofile);
    let mut low = saved;
    low.current = Some(open_fds() as u64 + 16);
    setrlimit(Resource::Nofile, low).expect("lower RLIMIT_NOFILE");
    let mut fillers: Vec<OwnedFd> = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f.into()),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(rustix::io::Errno::MFILE.raw_os_error()));
                break;
            }
        }
    }
    (saved, fillers)
}

/// Puts back the limit [`exhaust_fds`] saved.
pub fn restore(saved: Rlimit) {
    setrlimit(Resource::Nofile, saved).expect("restore RLIMIT_NOFILE");
}
