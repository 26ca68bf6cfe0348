//! The thread-pool server on loopback, driven by raw sockets.

mod util;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use ferry_server::PumpConfig;
use sha2::{Digest, Sha256};
use util::{Client, STEP, TestServer, pseudo_random};

/// Big enough that it cannot sit in loopback socket buffers whole, so a
/// shutdown triggered after the first bytes really lands mid-transfer.
const BIG: usize = 24 * 1024 * 1024;

/// Reads a `get` answer: the header, then exactly LEN bytes.
fn download(client: &mut Client, name: &str) -> Vec<u8> {
    let header = client.request(&format!("get {name}"));
    let len: usize = header.split(' ').nth(3).and_then(|n| n.parse().ok()).expect("OK SIZE OFFSET LEN VERSION");
    client.read_exact(len)
}

#[test]
fn full_queue_holds_new_connections_until_a_worker_is_free() {
    let server = TestServer::start(|c| {
        c.workers = 1;
        c.queue_capacity = 1;
    });
    let mut first = server.connect();
    assert_eq!(first.request("ping"), "OK pong", "the only worker serves the first connection");

    // The second waits in the queue, the third in the kernel's backlog.
    let mut second = server.connect();
    let mut third = server.connect();
    second.send(b"ping\n");
    third.send(b"ping\n");
    assert!(second.silent_for(Duration::from_millis(300)), "second served while the worker was busy");
    assert!(third.silent_for(Duration::from_millis(300)), "third served while the worker was busy");

    assert_eq!(first.request("quit"), "OK bye");
    assert_eq!(second.line(), "OK pong", "second is served once the first finishes");
    assert!(third.silent_for(Duration::from_millis(300)), "third served while the worker was busy");

    assert_eq!(second.request("quit"), "OK bye");
    assert_eq!(third.line(), "OK pong", "third is served once the queue moves");
    assert_eq!(third.request("quit"), "OK bye");

    let report = server.stop();
    assert_eq!(report.served(), 3);
    assert_eq!((report.cut, report.left_behind), (0, 0));
}

#[test]
fn idle_connection_gets_408_and_is_closed() {
    let idle = Duration::from_millis(300);
    let server = TestServer::start(|c| {
        for listener in &mut c.listeners {
            listener.pump = PumpConfig::with_idle(idle);
        }
    });
    let mut client = server.connect();
    // The server's idle timer starts after it answers, so after this.
    let started = Instant::now();
    assert_eq!(client.request("ping"), "OK pong");
    assert_eq!(client.line(), "ERR 408 idle timeout; closing");
    assert!(started.elapsed() >= idle, "closed after {:?}, before the idle timeout", started.elapsed());
    assert!(client.closed_by_server());

    // An upload that stalls is dropped by the same timer.
    let mut uploader = server.connect();
    assert_eq!(uploader.request("put stalled.bin 1000"), "OK 0");
    uploader.send(&[1u8; 10]);
    assert_eq!(uploader.line(), "ERR 500 upload failed: upload stalled with 990 bytes missing");
    assert!(uploader.closed_by_server());
    assert!(!server.path("stalled.bin").exists(), "a stalled upload must not appear under its name");
    server.stop();
}

#[test]
fn shutdown_mid_download_lets_the_transfer_finish() {
    let server = TestServer::start(|_| {});
    let data = pseudo_random(BIG, 1);
    server.write_file("big.bin", &data);
    let mut client = server.connect();
    let mut idle = server.connect();
    assert_eq!(idle.request("ping"), "OK pong");

    assert!(
        client.request("get big.bin").starts_with(&format!("OK {BIG} 0 {BIG} ")),
        "the head names the file\'s version"
    );
    let head = client.read_exact(64 * 1024);
    server.trigger_shutdown();

    // The connection between requests is closed promptly...
    assert!(idle.closed_by_server(), "an idle connection must close at shutdown");
    // ...the download in flight completes intact, then its connection closes.
    let mut rest = Vec::with_capacity(BIG);
    client.reader.read_to_end(&mut rest).expect("read the rest");
    assert_eq!(head.len() + rest.len(), BIG, "download cut short");
    let mut got = head;
    got.extend_from_slice(&rest);
    assert!(got == data, "download corrupted");

    let report = server.wait_stopped(STEP);
    assert_eq!((report.cut, report.left_behind), (0, 0));
    assert_eq!(report.served(), 2);
    assert!(TcpStream::connect(server.files).is_err(), "listener still open after run() returned");
}

#[test]
fn shutdown_mid_upload_lets_the_upload_finish() {
    let server = TestServer::start(|_| {});
    let data = pseudo_random(4 * 1024 * 1024, 6);
    let mut client = server.connect();
    // Once OK 0 is here the server is waiting for payload, not a request.
    assert_eq!(client.request(&format!("put up.bin {}", data.len())), "OK 0");
    client.send(&data[..data.len() / 2]);
    server.trigger_shutdown();
    client.send(&data[data.len() / 2..]);
    assert_eq!(client.line(), format!("OK {}", data.len()));
    assert!(client.closed_by_server(), "the connection closes after the upload at shutdown");
    assert!(std::fs::read(server.path("up.bin")).expect("read upload") == data, "upload corrupted");
    let report = server.wait_stopped(STEP);
    assert_eq!((report.cut, report.left_behind), (0, 0));
}

#[test]
fn drain_timeout_cuts_a_stuck_transfer_and_still_returns_ok() {
    let server = TestServer::start(|c| c.drain_timeout = Duration::from_millis(200));
    server.write_file("big.bin", &pseudo_random(BIG, 2));
    let mut client = server.connect();
    assert!(
        client.request("get big.bin").starts_with(&format!("OK {BIG} 0 {BIG} ")),
        "the head names the file\'s version"
    );
    client.read_exact(1024);
    // The client stops reading: the worker blocks in sendfile.
    let started = Instant::now();
    let report = server.stop();
    assert_eq!(report.cut, 1);
    assert_eq!(report.left_behind, 0);
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}

#[test]
fn a_client_vanishing_mid_download_does_not_disturb_another() {
    let server = TestServer::start(|_| {});
    let data = pseudo_random(BIG, 3);
    server.write_file("big.bin", &data);

    let mut quitter = server.connect();
    assert!(
        quitter.request("get big.bin").starts_with(&format!("OK {BIG} 0 {BIG} ")),
        "the head names the file\'s version"
    );
    let steady = thread::spawn({
        let mut client = server.connect();
        move || download(&mut client, "big.bin")
    });
    quitter.read_exact(100 * 1024);
    // Unread data in the receive queue: closing sends a RST.
    drop(quitter);

    let got = steady.join().expect("steady client");
    assert!(got == data, "the other download was disturbed");
    let mut after = server.connect();
    assert_eq!(after.request("ping"), "OK pong", "server still serves after a peer vanished");
    drop(after);
    let report = server.stop();
    assert_eq!(report.left_behind, 0);
}

#[test]
fn uploads_land_intact_through_splice_and_through_the_buffer() {
    let server = TestServer::start(|_| {});
    let data = pseudo_random(5 * 1024 * 1024 + 17, 4);
    let mut client = server.connect();

    // By the book: wait for OK HAVE, then send; the payload never passes
    // through the input buffer, it is spliced from the socket to the file.
    assert_eq!(client.request(&format!("put spliced.bin {}", data.len())), "OK 0");
    client.send(&data);
    assert_eq!(client.line(), format!("OK {}", data.len()));
    assert!(std::fs::read(server.path("spliced.bin")).expect("read upload") == data, "spliced.bin corrupted");

    // Pipelined: the first bytes arrive with the request line and are
    // written from the buffer; the rest is spliced.
    let mut request = format!("put mixed.bin {}\n", data.len()).into_bytes();
    request.extend_from_slice(&data[..1000]);
    client.send(&request);
    assert_eq!(client.line(), "OK 0");
    client.send(&data[1000..]);
    assert_eq!(client.line(), format!("OK {}", data.len()));
    assert!(std::fs::read(server.path("mixed.bin")).expect("read upload") == data, "mixed.bin corrupted");

    // A peer that goes away mid-upload: the pump reports the early end to
    // the session, which keeps the partial for the next put of the same
    // file (size and SHA-256) to resume.
    let digest = format!("{:x}", Sha256::digest(&data));
    let mut broken = server.connect();
    assert_eq!(broken.request(&format!("put resumed.bin {} {digest}", data.len())), "OK 0");
    broken.send(&data[..300_000]);
    broken.stream().shutdown(std::net::Shutdown::Write).expect("half-close");
    assert!(broken.closed_by_server());
    assert!(!server.path("resumed.bin").exists(), "partial upload visible under its final name");
    assert_eq!(client.request(&format!("put resumed.bin {} {digest}", data.len())), "OK 300000");
    client.send(&data[300_000..]);
    assert_eq!(client.line(), format!("OK {}", data.len()));
    assert!(std::fs::read(server.path("resumed.bin")).expect("read upload") == data, "resumed.bin corrupted");
    server.stop();
}

#[test]
fn oversize_line_closes_only_that_connection() {
    let server = TestServer::start(|_| {});
    let mut bystander = server.connect();
    assert_eq!(bystander.request("ping"), "OK pong");

    let mut offender = server.connect();
    // More than the 4 KiB line limit, and more than one read's worth, so
    // the server closes with unread bytes pending (lingering close).
    offender.send(&vec![b'a'; 200 * 1024]);
    let answer = offender.line();
    assert!(answer.starts_with("ERR 413 "), "got {answer:?}");
    assert!(offender.closed_by_server());
    drop(offender);

    assert_eq!(bystander.request("pwd"), "OK /", "the other connection is unaffected");
    server.stop();
}

#[test]
fn echo_service_returns_a_large_stream_intact() {
    let server = TestServer::start(|_| {});
    let data = pseudo_random(3 * 1024 * 1024, 5);
    let mut client = Client::connect(server.echo);
    let writer = {
        let mut stream = client.stream().try_clone().expect("clone");
        let data = data.clone();
        thread::spawn(move || {
            std::io::Write::write_all(&mut stream, &data).expect("send");
            stream.shutdown(std::net::Shutdown::Write).expect("half-close");
        })
    };
    let mut back = Vec::new();
    client.reader.read_to_end(&mut back).expect("read echo");
    writer.join().expect("writer");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo corrupted the stream");
    server.stop();
}
