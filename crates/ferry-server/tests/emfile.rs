//! The blocking models' accept loops survive fd exhaustion (EMFILE): a
//! connection that cannot be given a descriptor is shed (accepted with the
//! reserve descriptor and closed, so the client sees it closed instead of
//! hanging in the backlog), open connections keep working, and new ones are
//! served once descriptors are free. A separate test binary (its own
//! process), because it lowers RLIMIT_NOFILE.

#[path = "../../ferry-reactor/tests/util/fds.rs"]
mod fds;
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use fds::{client_socket, exhaust_fds, restore};
use ferry_server::BlockingModel;
use util::{STEP, TestServer};

/// Both models in one test: RLIMIT_NOFILE is process-wide, so they must not
/// run in parallel.
#[test]
fn blocking_accept_loops_shed_connections_when_out_of_fds() {
    sheds_when_out_of_fds(BlockingModel::Thread { max_conns: 8 }, true);
    sheds_when_out_of_fds(BlockingModel::Iterative, false);
}

/// `hold_one`: keep a connection open through the exhaustion and check it
/// still works (not for the iterative model, which serves one at a time).
fn sheds_when_out_of_fds(model: BlockingModel, hold_one: bool) {
    let server = TestServer::blocking(model, STEP, &[]);
    let addr = server.files;

    // A round trip first, so `run` has set itself up (its eventfds) before
    // descriptors run out; then wait until the server has closed its side
    // of it (every socket of it gone), or one would come free during
    // the exhaustion below.
    let before = open_sockets();
    let mut first = connect(addr);
    assert_eq!(ask(&mut first, "ping"), "OK pong", "{model:?}: serving");
    drop(first);
    let deadline = std::time::Instant::now() + STEP;
    while open_sockets() > before {
        assert!(std::time::Instant::now() < deadline, "{model:?}: the first connection was never closed");
        thread::yield_now();
    }
    let mut held = hold_one.then(|| {
        let mut c = connect(addr);
        assert_eq!(ask(&mut c, "ping"), "OK pong");
        c
    });
    // Client sockets for later, created while fds are available.
    let (shed_me, later) = (client_socket(), client_socket());
    let (saved, fillers) = exhaust_fds();

    // The server cannot give this one a descriptor: it must shed it (we see
    // EOF or a reset), not leave it waiting in the backlog.
    rustix::net::connect(&shed_me, &addr).expect("connect");
    let mut shed = TcpStream::from(shed_me);
    shed.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 8];
    match shed.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{model:?}: unexpected {n} bytes from a shed connection"),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "{model:?}: connection left hanging while out of fds"
        ),
    }
    if let Some(c) = held.as_mut() {
        assert_eq!(ask(c, "ping"), "OK pong", "{model:?}: open connection broken");
    }

    // Free fds: new connections are served again.
    drop(fillers);
    restore(saved);
    drop(held);
    rustix::net::connect(&later, &addr).expect("connect");
    let later = TcpStream::from(later);
    later.set_read_timeout(Some(STEP)).unwrap();
    let mut later = BufReader::new(later);
    assert_eq!(ask(&mut later, "ping"), "OK pong", "{model:?}: not serving after fds were freed");
    drop(later);

    server.stop();
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STEP)).unwrap();
    BufReader::new(stream)
}

fn ask(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut().write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    conn.read_line(&mut reply).expect("reply");
    reply.trim_end().to_string()
}

/// Sockets among the open descriptors (the server's other descriptors,
/// eventfds and its reserve, come and stay as it sets up).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}
