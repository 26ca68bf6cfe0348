//! Quitting a multi-reactor server joins every thread and frees every
//! connection and fd. A separate binary so the fd count is ours alone.

mod util;

use std::sync::atomic::Ordering;

use ferry_reactor::PollerKind;
use util::*;

/// Sequential on purpose: fd and thread counts are process-wide.
#[test]
fn quit_joins_all_threads_without_leaks_with_0_and_4_sub_loops() {
    quit_joins_all_threads_without_leaks(0);
    quit_joins_all_threads_without_leaks(4);
}

fn quit_joins_all_threads_without_leaks(threads: usize) {
    let baseline = open_fds();
    let threads_before = std::fs::read_dir("/proc/self/task").unwrap().count();
    let mut server = start_server("127.0.0.1:0", threads, PollerKind::Epoll, echo_callbacks());
    let mut clients: Vec<_> = (0..40).map(|_| client(server.tcp_addr())).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("hello {i}");
        assert_eq!(roundtrip(c, msg.as_bytes()), msg.as_bytes());
    }
    assert_eq!(server.live.load(Ordering::Acquire), 40);
    // Quit with every connection still open on the server side.
    let live = server.live.clone();
    server.stop();
    assert_eq!(live.load(Ordering::Acquire), 0, "connections leaked");
    // The server side closed: clients see EOF.
    for c in clients.iter_mut() {
        let mut buf = [0u8; 1];
        use std::io::Read;
        assert_eq!(c.read(&mut buf).unwrap(), 0);
    }
    drop(clients);
    drop(server);
    assert_eq!(open_fds(), baseline, "fds leaked");
    // A joined thread can stay listed in /proc for a moment after its
    // join returns (the kernel clears its tid before it is reaped).
    wait_until("joined threads to leave /proc/self/task", || {
        std::fs::read_dir("/proc/self/task").unwrap().count() == threads_before
    });
}
