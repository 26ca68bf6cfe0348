//! The blocking pump on its own, with small purpose-built sessions, over a
//! loopback connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ferry_proto::{FileRange, Flow, Now, Outbox, Progress, Session};
use ferry_server::{CloseReason, ConnStats, PumpConfig, Shutdown, serve_connection};

const STEP: Duration = Duration::from_secs(20);

/// Serves one loopback connection with `session` on a thread; returns the
/// client side and a receiver for the pump's stats.
fn pump<S: Session + Send + 'static>(session: S, shutdown: &Shutdown) -> (TcpStream, mpsc::Receiver<ConnStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    client.set_read_timeout(Some(STEP)).expect("timeout");
    let (server, _) = listener.accept().expect("accept");
    let (tx, rx) = mpsc::channel();
    let shutdown = shutdown.clone();
    thread::spawn(move || {
        let mut session = session;
        let config = PumpConfig::with_idle(STEP);
        let _ = tx.send(serve_connection(server, &mut session, &config, &shutdown));
    });
    (client, rx)
}

/// Answers any input with a range longer than the file holds.
struct ShrunkFile(Arc<std::fs::File>);

impl Session for ShrunkFile {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, _now: Now) -> Progress {
        out.push_bytes(b"here:");
        out.push_file(FileRange { file: Arc::clone(&self.0), offset: 0, len: 1000 });
        Progress { consumed: input.len(), flow: Flow::Continue }
    }
}

#[test]
fn a_file_shorter_than_announced_closes_the_connection() {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(&[7u8; 500]).expect("write");
    let shutdown = Shutdown::new().expect("shutdown");
    let (mut client, stats) = pump(ShrunkFile(Arc::new(file)), &shutdown);
    client.write_all(b"go").expect("send");
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("read");
    assert_eq!(got.len(), 5 + 500, "the stream must end where the file did");
    let stats = stats.recv_timeout(STEP).expect("pump ended");
    assert!(matches!(&stats.reason, CloseReason::Error(e) if e.kind() == std::io::ErrorKind::UnexpectedEof));
    assert_eq!((stats.bytes_in, stats.bytes_out), (2, 505));
}

/// Streams `parts` chunks, one per `on_drained`, then closes.
struct Streamer {
    parts: u32,
}

impl Session for Streamer {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, _now: Now) -> Progress {
        out.push_bytes(b"start\n");
        Progress { consumed: input.len(), flow: Flow::Continue }
    }

    fn on_drained(&mut self, out: &mut Outbox, _now: Now) -> Flow {
        if self.parts == 0 {
            return Flow::CloseAfterFlush;
        }
        self.parts -= 1;
        out.push_bytes(format!("part {}\n", self.parts).as_bytes());
        Flow::Continue
    }
}

#[test]
fn on_drained_can_stream_more_output() {
    let shutdown = Shutdown::new().expect("shutdown");
    let (mut client, stats) = pump(Streamer { parts: 3 }, &shutdown);
    client.write_all(b"x").expect("send");
    let mut got = String::new();
    client.read_to_string(&mut got).expect("read");
    assert_eq!(got, "start\npart 2\npart 1\npart 0\n");
    let stats = stats.recv_timeout(STEP).expect("pump ended");
    assert!(matches!(stats.reason, CloseReason::SessionClosed), "{}", stats.reason);
}

/// Never consumes anything (a broken session).
struct Hoarder;

impl Session for Hoarder {
    fn on_input(&mut self, _input: &[u8], _out: &mut Outbox, _now: Now) -> Progress {
        Progress { consumed: 0, flow: Flow::Continue }
    }
}

#[test]
fn input_buffer_is_bounded_even_for_a_session_that_never_consumes() {
    let shutdown = Shutdown::new().expect("shutdown");
    let (client, stats) = pump(Hoarder, &shutdown);
    let writer = {
        let mut client = client.try_clone().expect("clone");
        // Stops with an error once the server closes.
        thread::spawn(move || while client.write_all(&[0u8; 64 * 1024]).is_ok() {})
    };
    let stats = stats.recv_timeout(STEP).expect("pump ended");
    assert!(matches!(&stats.reason, CloseReason::Error(e) if e.kind() == std::io::ErrorKind::InvalidData));
    assert_eq!(stats.bytes_in, ferry_server::blocking::MAX_INPUT_BUFFER as u64);
    drop(client);
    writer.join().expect("writer");
}

#[test]
fn shutdown_closes_a_connection_waiting_for_its_next_request() {
    let shutdown = Shutdown::new().expect("shutdown");
    let (mut client, stats) = pump(ferry_proto::echo::EchoSession, &shutdown);
    client.write_all(b"abc").expect("send");
    let mut echoed = [0u8; 3];
    client.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"abc");
    let started = Instant::now();
    shutdown.signal();
    let stats = stats.recv_timeout(STEP).expect("pump ended");
    assert!(matches!(stats.reason, CloseReason::Shutdown), "{}", stats.reason);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(client.read(&mut echoed).expect("eof"), 0);
}
