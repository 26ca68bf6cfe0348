//! Telling a service manager how the server is doing: systemd's
//! `sd_notify` protocol (`Type=notify` units), a few lines instead of
//! libsystemd.
//!
//! When `NOTIFY_SOCKET` names a Unix datagram socket (a path, or `@name`
//! in the abstract namespace), each state change is one datagram of
//! `KEY=VALUE` lines: `READY=1` once every listener is bound and
//! announced, `STOPPING=1` when a drain begins, `RELOADING=1` (with
//! `MONOTONIC_USEC`) then `READY=1` around a SIGHUP reload (systemd's
//! `Type=notify-reload`). Without the variable
//! nothing is sent; a socket that cannot be reached is logged once per
//! message and never stops the server.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};

/// The server is serving: every listener is bound.
pub fn ready() {
    let state = format!("READY=1\nMAINPID={}\nSTATUS=serving", std::process::id());
    // A new binary started by an upgrade tells the old one first, which
    // then hands the service manager over (see [`crate::upgrade`]).
    match crate::upgrade::take_parent_notify() {
        Some(parent) => send_to(&parent, &state),
        None => send(&state),
    }
}

/// After an upgrade: `pid` is the service's main process now; this
/// process says nothing more (its drain is no news to the manager).
pub fn hand_over(pid: u32) {
    send(&format!("MAINPID={pid}\nREADY=1\nSTATUS=serving (upgraded)"));
    SILENT.store(true, Ordering::SeqCst);
}

/// Set once this process handed the service over to another.
static SILENT: AtomicBool = AtomicBool::new(false);

/// The server stopped accepting and drains what is in flight.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining");
}

/// The server begins to reload its configuration; call [`ready`] when done.
pub fn reloading() {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
    send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"));
}

/// Sends `state` to `$NOTIFY_SOCKET`, if set.
fn send(state: &str) {
    if SILENT.load(Ordering::SeqCst) {
        return;
    }
    if let Some(target) = std::env::var_os("NOTIFY_SOCKET") {
        send_to(&target.to_string_lossy(), state);
    }
}

/// Sends `state` as one datagram to `target` (a path, or `@name`).
fn send_to(target: &str, state: &str) {
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(target),
    };
    let sent = addr.and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        tracing::warn!("cannot notify the service manager at {target}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_one_datagram_to_a_path_or_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("ferry-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind");
        send_to(path.to_str().expect("utf-8 path"), "READY=1");
        let mut buf = [0; 64];
        let n = socket.recv(&mut buf).expect("ready");
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(dir).ok();

        let name = format!("ferry-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        send_to(&format!("@{name}"), "STOPPING=1");
        let n = socket.recv(&mut buf).expect("stopping");
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
