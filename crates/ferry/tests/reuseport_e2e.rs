//! `--reuseport` under every model: two independent `ferry serve`
//! processes on one port, both serving; without the flag the second one
//! is refused; the first one stopped, the second keeps serving the port.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use util::serve::MODELS;
use util::{PATIENCE, ferry_bin, scratch, wait_child};

/// Starts `ferry serve` on HTTP `addr` under `model`; returns the process
/// and the address it announced, or the failed process's stderr.
fn start(root: &std::path::Path, model: &str, addr: &str, reuseport: bool) -> Result<(Child, SocketAddr), String> {
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("serve").arg(root).args(["--model", model, "--files", "off", "--http", addr, "-q"]);
    if reuseport {
        cmd.arg("--reuseport");
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read stdout");
    match line.trim_end().strip_prefix("ferry: http listening on ") {
        Some(addr) => Ok((child, addr.parse().expect("an address"))),
        None => {
            let mut err = String::new();
            let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
            wait_child(&mut child, PATIENCE);
            Err(err)
        }
    }
}

/// One GET on a new connection; true if it was answered 200 with the file.
fn get(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    if s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello")
}

#[test]
fn two_processes_share_a_port_under_every_model() {
    let dir = scratch();
    std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    for model in MODELS {
        let (mut first, addr) = start(dir.path(), model, "127.0.0.1:0", true).expect("the first server starts");
        let port = addr.to_string();
        let refused = start(dir.path(), model, &port, false).map(|(mut c, _)| {
            let _ = c.kill();
            wait_child(&mut c, PATIENCE);
        });
        let err = match refused {
            Ok(()) => panic!("{model}: without --reuseport the second server started on {port}"),
            Err(err) => err,
        };
        assert!(err.contains(&port) && err.to_lowercase().contains("in use"), "{model}: {err}");
        let (mut second, _) = start(dir.path(), model, &port, true).expect("a second server on the same port");
        assert!((0..20).all(|_| get(addr)), "{model}: both serving");
        rustix::process::kill_process(rustix::process::Pid::from_child(&first), rustix::process::Signal::TERM)
            .expect("SIGTERM the first");
        assert!(wait_child(&mut first, PATIENCE).is_some_and(|s| s.success()), "{model}: the first drains and exits 0");
        assert!((0..20).all(|_| get(addr)), "{model}: the second serves the port alone");
        let _ = second.kill();
        wait_child(&mut second, PATIENCE);
    }
}
