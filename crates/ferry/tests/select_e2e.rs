//! The select backend in `ferry serve` (issue 12): descriptors past
//! select's FD_SETSIZE (1024) are refused cleanly, with a log line, while
//! the clients it can watch are served, under both reactor models.

mod util;

use std::net::TcpStream;

use util::serve::*;
use util::*;

/// More connections than select can watch, counting the server's own
/// descriptors (listeners, epoll-free loop plumbing, log pipes).
const FLOOD: usize = 1100;

#[test]
fn select_refuses_connections_past_fd_setsize_and_serves_the_rest() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for model in ["reactor", "multi-reactor"] {
        let mut server = start_logged(model, Svc::Files, &root, &["--poller", "select", "--io-threads", "2"]);
        let mut steady = connect(server.addr);
        assert_eq!(ask(&mut steady, "ping"), "OK pong", "{model}");
        // Each flooding client proves it is served (or refused) before the
        // next connects, so the server's descriptors climb in order.
        let mut flood: Vec<TcpStream> = Vec::with_capacity(FLOOD);
        let mut refused = 0;
        for _ in 0..FLOOD {
            let mut stream = connect(server.addr);
            match try_ask(&mut stream, "ping") {
                Some(answer) => assert_eq!(answer, "OK pong", "{model}"),
                None => refused += 1,
            }
            flood.push(stream);
        }
        assert!(refused > 0, "{model}: some connections had descriptors past 1024");
        assert!(refused < FLOOD - 900, "{model}: the ones below 1024 were served ({refused} refused)");
        let line = server.log_line("connection refused and closed");
        assert!(line.contains("FD_SETSIZE (1024)"), "{model}: the log says why: {line}");
        // The client it could watch is still served, and once the flood
        // leaves, new clients are too.
        assert_eq!(ask(&mut steady, "ping"), "OK pong", "{model}");
        drop(flood);
        let mut fresh = connect(server.addr);
        assert_eq!(try_ask(&mut fresh, "ping").as_deref(), Some("OK pong"), "{model}");
        drop((steady, fresh));
        server.stop();
    }
}

/// Sends `line` and reads the answer; `None` if the server closed instead.
fn try_ask(stream: &mut TcpStream, line: &str) -> Option<String> {
    use std::io::{Read, Write};
    stream.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match stream.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&reply).into_owned()),
            Ok(1) => reply.push(b[0]),
            _ => return None,
        }
    }
}
