//! The in-process blocking models (iterative, thread per connection) on
//! loopback: the connection cap, and the drain timeout cutting a transfer
//! that will not finish. (The process models fork, which a multi-threaded
//! test harness should not do; `crates/ferry/tests/models_e2e.rs` runs
//! them through the real binary.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ferry_proto::files::FilesConfig;
use ferry_proto::root::Root;
use ferry_server::{
    BlockingConfig, BlockingModel, BlockingServer, ListenerConfig, Report, ServerError, Service, Shutdown,
};

/// Upper bound on any single blocking step of a test.
const STEP: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    done: mpsc::Receiver<Result<Report, ServerError>>,
    _root: tempfile::TempDir,
}

impl Running {
    fn start(model: BlockingModel, drain_timeout: Duration, files: &[(&str, &[u8])]) -> Running {
        let root = tempfile::tempdir().expect("tempdir");
        for (name, data) in files {
            std::fs::write(root.path().join(name), data).expect("write test file");
        }
        let config = FilesConfig { root: Arc::new(Root::open(root.path()).expect("root")), allow_write: false };
        let listeners = vec![ListenerConfig::new("127.0.0.1:0".parse().unwrap(), Service::Files(config))];
        let server = BlockingServer::bind(BlockingConfig { listeners, model, drain_timeout, handle_signals: false })
            .expect("bind");
        let addr = server.listeners()[0].addr;
        let shutdown = server.shutdown_handle();
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(server.run());
        });
        Running { addr, shutdown, done, _root: root }
    }

    fn connect(&self) -> BufReader<TcpStream> {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(STEP)).unwrap();
        BufReader::new(stream)
    }

    fn stop(&self) -> Report {
        self.shutdown.signal();
        self.done.recv_timeout(STEP).expect("run() returned in time").expect("run() succeeded")
    }
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
    let server = Running::start(BlockingModel::Thread { max_conns: 2 }, STEP, &[]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut c = server.connect();
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
        let server = Running::start(model, drain, &[("big.bin", &big)]);
        let mut conn = server.connect();
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
        let server = Running::start(model, STEP, &[]);
        let mut conn = server.connect();
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
    let root = tempfile::tempdir().expect("tempdir");
    let config = FilesConfig { root: Arc::new(Root::open(root.path()).expect("root")), allow_write: false };
    let listeners = vec![ListenerConfig::new("127.0.0.1:0".parse().unwrap(), Service::Files(config))];
    let model = BlockingModel::Prefork { workers: 2, queue_capacity: 4 };
    let server = BlockingServer::bind(BlockingConfig { listeners, model, drain_timeout: STEP, handle_signals: false })
        .expect("bind");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(server.run());
    });
    let error = rx.recv_timeout(STEP).expect("run() returned").expect_err("prefork forked a threaded process");
    assert!(error.to_string().contains("refusing to fork"), "{error}");

    // ...and fork drops each connection rather than forking for it.
    let server = Running::start(BlockingModel::Fork { max_conns: 8 }, STEP, &[]);
    let mut conn = server.connect();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty(), "a forked child answered");
    assert_eq!(server.stop().served(), 0);
}
