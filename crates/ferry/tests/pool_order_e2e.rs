//! The prefork parent hands requests to its workers in the order they
//! came, also when a connection whose request came with it is accepted in
//! the same wake-up as an earlier client's request in the gate.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rustix::process::Signal;
use util::serve::*;
use util::*;

/// The inode of the server's end of `client`'s connection to `server`
/// (/proc/net/tcp), once it has one: once it was accepted.
fn accepted_inode(server: SocketAddr, client: &TcpStream) -> Option<String> {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(a) => format!("{:08X}:{:04X}", u32::from_le_bytes(a.ip().octets()), a.port()),
        SocketAddr::V6(_) => unreachable!("loopback IPv4 only"),
    };
    let (local, remote) = (hex(server), hex(client.local_addr().expect("addr")));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields.get(9).map(|inode| inode.to_string()))
            .flatten()
            .filter(|inode| inode != "0")
    })
}

/// True when process `pid` holds the socket with `inode`.
fn holds(pid: i32, inode: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    let target = format!("socket:[{inode}]");
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to.to_string_lossy() == target))
}

/// One worker, a queue of one. `second` waits in the parent's gate; while
/// the parent is stopped, `third` connects (the listener reports first),
/// then `second` sends its request (the gate reports next), then `third`
/// sends its own. Resumed, the parent sees both in one wake-up: the
/// listener's first. It must still give the worker `second` first, or
/// `third` holds the worker while `second` waits.
#[test]
fn prefork_serves_requests_in_the_order_they_came() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("prefork", Svc::Files, &root, &["--workers", "1", "--queue", "1"]);
    let mut first = connect(server.addr);
    assert_eq!(ask(&mut first, "ping"), "OK pong", "the only worker serves the first connection");
    let mut second = connect(server.addr);
    // Accepted, looked at and held (the parent sleeps again in its wait).
    eventually("the parent holds the second connection", || {
        accepted_inode(server.addr, &second).is_some_and(|inode| holds(server.pid(), &inode))
            && state(server.pid()) == Some('S')
    });
    server.signal(Signal::STOP);
    eventually("the parent stopped", || state(server.pid()) == Some('T'));
    let mut third = connect(server.addr);
    second.write_all(b"ping\n").expect("send");
    third.write_all(b"ping\n").expect("send");
    server.signal(Signal::CONT);
    assert!(silent_for(&mut second, Duration::from_millis(300)), "second served while the worker was busy");

    assert_eq!(ask(&mut first, "quit"), "OK bye");
    second.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(read_line(&mut second), "OK pong", "second, whose request came first, is served first");
    assert!(silent_for(&mut third, Duration::from_millis(300)), "third served while the worker was busy");
    assert_eq!(ask(&mut second, "quit"), "OK bye");
    assert_eq!(read_line(&mut third), "OK pong", "third is served once the worker is free");
    assert_eq!(ask(&mut third, "quit"), "OK bye");
    server.stop();
}
