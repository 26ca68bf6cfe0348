//! The in-process blocking models (iterative, thread per connection) on
//! loopback: the connection cap, and the drain timeout cutting a transfer
//! that will not finish. (The process models fork, which a multi-threaded
//! test harness should not do; `crates/ferry/tests/models_e2e.rs` runs
//! them through the real binary.)

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ferry_server::BlockingModel;
use util::{STEP, TestServer};

/// A connection to `server`'s file service, as a buffered reader.
fn connect(server: &TestServer) -> BufReader<TcpStream> {
    server.connect().reader
}

fn ask(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut().write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    conn.read_line(&mut reply).expect("reply");
    reply.trim_end().to_string()
}

/// True if nothing arrives within `wait`.
fn silent_for(conn: &mut BufReader<TcpStream>, wait: Duration) -> bool {
    conn.get_ref().set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let silent = matches!(conn.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    conn.get_ref().set_read_timeout(Some(STEP)).unwrap();
    silent
}

#[test]
fn thread_model_stops_accepting_at_max_conns_until_one_ends() {
    let server = TestServer::blocking(BlockingModel::Thread { max_conns: 2 }, STEP, &[]);
    let mut a = connect(&server);
    let mut b = connect(&server);
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut c = connect(&server);
    c.get_mut().write_all(b"ping\n").unwrap();
    assert!(silent_for(&mut c, Duration::from_millis(300)), "a third connection was served beyond --max-conns 2");
    assert_eq!(ask(&mut a, "quit"), "OK bye");
    let mut reply = String::new();
    c.read_line(&mut reply).expect("served once a slot frees");
    assert_eq!(reply, "OK pong\n");
    assert_eq!(ask(&mut c, "quit"), "OK bye");
    assert_eq!(ask(&mut b, "quit"), "OK bye");
    let report = server.stop();
    assert_eq!((report.served(), report.cut, report.left_behind), (3, 0, 0));
}

#[test]
fn drain_timeout_cuts_a_transfer_that_stalls() {
    let big = vec![7u8; 32 * 1024 * 1024];
    for model in [BlockingModel::Iterative, BlockingModel::Thread { max_conns: 8 }] {
        let drain = Duration::from_millis(300);
        let server = TestServer::blocking(model, drain, &[("big.bin", &big)]);
        let mut conn = connect(&server);
        assert!(ask(&mut conn, "get big.bin").starts_with("OK "), "{model:?}");
        let mut first = [0u8; 4096];
        conn.read_exact(&mut first).expect("first bytes");
        // The client never reads again: only the drain timeout ends it.
        let started = Instant::now();
        let report = server.stop();
        let took = started.elapsed();
        assert_eq!(report.cut, 1, "{model:?}: the stalled transfer is cut");
        assert!(took >= drain, "{model:?}: cut before the drain timeout ({took:?})");
        assert!(took < drain + Duration::from_secs(5), "{model:?}: took {took:?} to stop");
    }
}

#[test]
fn idle_connections_close_at_shutdown_without_waiting_for_the_drain_timeout() {
    for model in [BlockingModel::Iterative, BlockingModel::Thread { max_conns: 8 }] {
        let server = TestServer::blocking(model, STEP, &[]);
        let mut conn = connect(&server);
        assert_eq!(ask(&mut conn, "ping"), "OK pong");
        let started = Instant::now();
        let report = server.stop();
        assert!(started.elapsed() < Duration::from_secs(5), "{model:?} waited for an idle connection");
        assert_eq!((report.served(), report.cut), (1, 0), "{model:?}");
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).expect("closed cleanly");
    }
}

#[test]
fn process_models_refuse_to_fork_a_threaded_process() {
    // This test binary runs several threads, as a server embedding ferry
    // might: prefork fails to start instead of forking workers...
    let server = TestServer::blocking(BlockingModel::Prefork { workers: 2, queue_capacity: 4 }, STEP, &[]);
    let error = server.outcome(STEP).expect_err("prefork forked a threaded process");
    assert!(error.to_string().contains("refusing to fork"), "{error}");

    // ...and fork drops each connection rather than forking for it.
    let server = TestServer::blocking(BlockingModel::Fork { max_conns: 8 }, STEP, &[]);
    let mut conn = connect(&server);
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty(), "a forked child answered");
    assert_eq!(server.stop().served(), 0);
}
