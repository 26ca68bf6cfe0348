//! One end-to-end suite for every concurrency model of `ferry serve`: the
//! real binary, real sockets on loopback, both the HTTP and the file
//! service: correct bytes to concurrent clients, transfers finished on
//! SIGTERM, Ctrl-C reaching only the parent, a second stop signal cutting
//! the drain short. What only some models have is in
//! `models_specific_e2e.rs`.
//!
//! To cover another model, add it to [`MODELS`].

mod util;

use std::io::{Read, Write};
use std::thread;

use util::serve::*;
use util::*;

#[test]
fn every_model_serves_concurrent_clients_correct_bytes_and_reaps_everything() {
    let dir = scratch();
    let (root, small, _) = serve_tree(dir.path());
    for &model in MODELS {
        for svc in [Svc::Files, Svc::Http] {
            let mut server = start(model, svc, &root, &[]);
            let clients = if model == "iterative" { 5 } else { CLIENTS };
            let addr = server.addr;
            let handles: Vec<_> =
                (0..clients).map(|_| thread::spawn(move || download(svc, addr, "small.bin"))).collect();
            for handle in handles {
                assert_eq!(handle.join().expect("client"), small, "{model}/{svc:?}: bytes differ");
            }
            // Finished connections leave no zombie behind while serving on.
            let pid = server.pid();
            eventually(&format!("{model} reaped its finished children"), || {
                descendants(pid).iter().all(|&p| state(p) != Some('Z'))
            });
            let seen = descendants(pid);
            server.stop();
            assert_no_leftovers(pid, &seen);
        }
    }
}

#[test]
fn every_model_finishes_transfers_in_flight_on_sigterm_and_exits_0() {
    let dir = scratch();
    let (root, _, big) = serve_tree(dir.path());
    let upload = random_bytes(4 * 1024 * 1024 + 3, 21);
    for &model in MODELS {
        for svc in [Svc::Files, Svc::Http] {
            let mut server = start(model, svc, &root, &["--workers", "6", "--allow-write"]);
            let in_flight = if model == "iterative" { 1 } else { 3 };
            // Each client reads the first bytes, then stops reading, so the
            // server is blocked mid-send when the signal arrives.
            let mut transfers: Vec<_> = (0..in_flight)
                .map(|_| {
                    let (mut reader, len) = request(svc, server.addr, "big.bin");
                    let mut first = vec![0; 64 * 1024];
                    reader.read_exact(&mut first).expect("first bytes");
                    (reader, len, first)
                })
                .collect();
            // A keep-alive client between requests is closed at shutdown,
            // not waited for (the models with room for it).
            let idle = (model != "iterative").then(|| {
                let mut idle = connect(server.addr);
                match svc {
                    Svc::Files => idle.write_all(b"ping\n").unwrap(),
                    Svc::Http => idle.write_all(b"GET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap(),
                }
                let mut b = [0u8; 1];
                idle.read_exact(&mut b).expect("idle client answered");
                idle
            });
            // An upload that has begun is received whole.
            let name = format!("up-{model}.bin");
            let uploading = (svc == Svc::Files && model != "iterative").then(|| {
                let mut up = connect(server.addr);
                assert_eq!(ask(&mut up, &format!("put {name} {}", upload.len())), "OK 0");
                up.write_all(&upload[..1 << 20]).expect("first part of the upload");
                up
            });
            let pid = server.pid();
            let seen = descendants(pid);
            server.signal(rustix::process::Signal::TERM);
            for (reader, len, first) in transfers.iter_mut() {
                let mut rest = vec![0; *len - first.len()];
                reader.read_exact(&mut rest).expect("the rest of the transfer after SIGTERM");
                first.extend_from_slice(&rest);
                assert_eq!(sha256(first), big, "{model}/{svc:?}: transfer in flight lost bytes");
            }
            if let Some(mut up) = uploading {
                up.write_all(&upload[1 << 20..]).expect("the rest of the upload after SIGTERM");
                assert_eq!(read_line(&mut up), format!("OK {}", upload.len()), "{model}: upload completed");
                assert_eq!(sha256_file(&root.join(&name)), sha256(&upload), "{model}: uploaded bytes differ");
            }
            if let Some(mut idle) = idle {
                let mut sink = Vec::new();
                idle.read_to_end(&mut sink).expect("the idle connection is closed, not reset");
            }
            let status = wait_child(&mut server.child, PATIENCE).expect("exited in time");
            assert!(status.success(), "{model}/{svc:?}: exit status {status}");
            assert_no_leftovers(pid, &seen);
        }
    }
}

#[test]
fn ctrl_c_reaches_only_the_parent_which_lets_transfers_finish() {
    let dir = scratch();
    let (root, _, big) = serve_tree(dir.path());
    for &model in MODELS {
        let opts = Opts { own_group: true, ..Opts::default() };
        let mut server = spawn_server(model, Svc::Files, &root, &["--workers", "2"], opts);
        let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
        let mut body = vec![0; 64 * 1024];
        reader.read_exact(&mut body).expect("first bytes");
        let pid = server.pid();
        let seen = descendants(pid);
        // What the terminal does on Ctrl-C: SIGINT to the foreground group.
        rustix::process::kill_process_group(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::INT)
            .expect("signal the process group");
        let mut rest = vec![0; len - body.len()];
        reader.read_exact(&mut rest).unwrap_or_else(|e| panic!("{model}: transfer cut by Ctrl-C: {e}"));
        body.extend_from_slice(&rest);
        assert_eq!(sha256(&body), big, "{model}: bytes differ");
        drop(reader);
        let status = wait_child(&mut server.child, PATIENCE).expect("exited in time");
        assert!(status.success(), "{model}: exit status {status}");
        assert_no_leftovers(pid, &seen);
    }
}

/// "Press Ctrl-C again": a second SIGTERM during the drain cuts the
/// transfer still in flight and the server exits at once, well before its
/// (here ten-minute) drain timeout, with nothing left behind.
#[test]
fn a_second_stop_signal_cuts_the_drain_short() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for &model in MODELS {
        let mut server = start_logged(model, Svc::Files, &root, &["--workers", "2", "--drain-timeout", "600"]);
        // A client that read the first bytes and stopped: the server is
        // blocked mid-send and would wait for it for the whole drain.
        let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
        let mut got = vec![0; 64 * 1024];
        reader.read_exact(&mut got).expect("first bytes");
        let pid = server.pid();
        let seen = descendants(pid);
        server.signal(rustix::process::Signal::TERM);
        server.log_line("shutting down");
        server.signal(rustix::process::Signal::TERM);
        server.log_line("again");
        let status = wait_child(&mut server.child, PATIENCE).expect("exited long before the drain timeout");
        assert!(status.success(), "{model}: exit status {status}");
        // Whatever the socket buffers held still arrives; the rest does not.
        let _ = reader.read_to_end(&mut got);
        assert!(got.len() < len, "{model}: the transfer was not cut ({} of {len} bytes)", got.len());
        assert_no_leftovers(pid, &seen);
    }
}

/// `--header-timeout` is a deadline for the whole request head, counted
/// from its first byte, in every model: a client that trickles a header
/// byte every 100 ms (7 s for this head) is answered 408 and cut about 1 s
/// in, however often its bytes arrive.
#[test]
fn every_model_cuts_a_trickled_request_head_at_the_header_timeout() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    let head = b"GET /small.bin HTTP/1.1\r\nHost: trickle\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for &model in MODELS {
        let mut server = start(model, Svc::Http, &root, &["--header-timeout", "1"]);
        let mut stream = connect(server.addr);
        let (mut answer, cut_after) = trickle(&mut stream, head, std::time::Duration::from_millis(100));
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408 "), "{model}: a trickled head got {text:?} after {cut_after:?}");
        assert!(cut_after < std::time::Duration::from_secs(3), "{model}: cut only after {cut_after:?}");
        server.stop();
    }
}

#[test]
fn every_model_refuses_an_upload_past_the_file_size_limit_and_serves_on() {
    const LIMIT: u64 = 1024 * 1024;
    const SIZE: usize = 2 * 1024 * 1024;
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    let data = random_bytes(SIZE, 11);
    for &model in MODELS {
        let opts = Opts { fsize_limit: Some(LIMIT), ..Opts::default() };
        let mut server = spawn_server(model, Svc::Files, &root, &["--allow-write"], opts);
        let mut stream = connect(server.addr);
        let name = format!("big-{model}.bin");
        // With a digest, so the partial could be resumed: a disk error
        // removes it all the same.
        assert_eq!(ask(&mut stream, &format!("put {name} {SIZE} {}", sha256(&data))), "OK 0", "{model}");
        // The server may stop reading once the limit is hit: send from a
        // thread, whose write errors are expected, and read the answer here.
        let mut writer = stream.try_clone().expect("clone");
        let payload = data.clone();
        let sender = thread::spawn(move || drop(writer.write_all(&payload)));
        let reply = read_line(&mut stream);
        assert_eq!(reply, "ERR 413 file too large for this server (file size limit)", "{model}");
        sender.join().expect("sender");
        assert!(!root.join(&name).exists(), "{model}: no partial file under the final name");
        let partials = std::fs::read_dir(root.join(".ferry-partials")).expect("partials dir").count();
        assert_eq!(partials, 0, "{model}: the failed upload's partial was removed");
        let mut other = connect(server.addr);
        assert_eq!(ask(&mut other, "ping"), "OK pong", "{model}: a new connection is served");
        assert!(matches!(server.child.try_wait(), Ok(None)), "{model}: the server is alive");
        drop(other);
        server.stop();
    }
}

/// The file protocol's request line is a deadline too (the idle timeout,
/// from its first byte): a `ping` trickled a byte every 400 ms would take
/// 2 s; with `--idle-timeout 1` it is cut with `ERR 408` after about 1 s.
#[test]
fn every_model_cuts_a_trickled_request_line_at_the_idle_timeout() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for &model in MODELS {
        let mut server = start(model, Svc::Files, &root, &["--idle-timeout", "1"]);
        let mut stream = connect(server.addr);
        let (answer, cut_after) = trickle(&mut stream, b"ping\n", std::time::Duration::from_millis(400));
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("ERR 408 "), "{model}: a trickled line got {text:?} after {cut_after:?}");
        assert!(cut_after < std::time::Duration::from_millis(1900), "{model}: cut only after {cut_after:?}");
        server.stop();
    }
}

/// Sends `bytes` one at a time, waiting up to `pause` for an answer after
/// each; stops at the first answer (or a failed write: the server cut the
/// connection). Returns what arrived and when it did.
fn trickle(
    stream: &mut std::net::TcpStream,
    bytes: &[u8],
    pause: std::time::Duration,
) -> (Vec<u8>, std::time::Duration) {
    stream.set_read_timeout(Some(pause)).expect("timeout");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    for byte in bytes {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        match stream.read(&mut buf) {
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (answer, started.elapsed())
}

/// Bad names and bad words over the wire, under every model: a new name
/// with a control byte is refused (`ERR 400`), an error that echoes the
/// client's words stays one line (the next reply is the next request's),
/// and nothing is answered after `quit`.
#[test]
fn every_model_refuses_control_names_and_keeps_replies_one_line() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for &model in MODELS {
        let mut server = start(model, Svc::Files, &root, &["--allow-write"]);
        let mut stream = connect(server.addr);
        for request in [r"put a\x01b 3", r"mkdir a\rb"] {
            let reply = ask(&mut stream, request);
            assert!(reply.starts_with("ERR 400 control characters"), "{model}: {request}: {reply}");
        }
        let reply = ask(&mut stream, r#"get a "1\nOK 0""#);
        assert!(reply.starts_with("ERR 400 "), "{model}: {reply}");
        assert_eq!(ask(&mut stream, "ping"), "OK pong", "{model}: the error was one line");
        stream.write_all(b"quit\nping\n").expect("send");
        let mut rest = String::new();
        stream.read_to_string(&mut rest).expect("read to the end");
        assert_eq!(rest, "OK bye\n", "{model}: nothing after quit");
        assert!(!root.join("a\u{1}b").exists() && !root.join("a\rb").exists(), "{model}: nothing created");
        server.stop();
    }
}
