//! `ferry serve 8000`: a bare port as the positional argument serves the
//! current directory over HTTP on that port (as `python3 -m http.server`
//! does); a directory of that name is served instead; a bare port beside
//! `--http` is refused, saying why.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use util::{PATIENCE, ferry_bin, run_fed, scratch};

/// The body of `GET /name` from the server at `addr`.
fn get(addr: std::net::SocketAddr, name: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET /{name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the answer");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// `ferry serve ARGS...` started in `cwd`; returns the child and the
/// address of its first "listening" line (HTTP: the file service is off).
fn serve_in(cwd: &Path, args: &[&str]) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = Command::new(ferry_bin())
        .current_dir(cwd)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a listening line");
    let addr = line.trim_end().strip_prefix("ferry: http listening on ").unwrap_or_else(|| panic!("{line}"));
    (child, addr.parse().expect("an address"))
}

#[test]
fn a_bare_port_serves_the_current_directory_over_http() {
    let dir = scratch();
    std::fs::write(dir.path().join("hello.txt"), b"from the current directory").unwrap();
    let (mut child, addr) = serve_in(dir.path(), &["0", "--files", "off", "-q"]);
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_eq!(get(addr, "hello.txt"), "from the current directory");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_directory_named_like_a_port_is_served_as_the_root() {
    let dir = scratch();
    std::fs::create_dir(dir.path().join("0")).unwrap();
    std::fs::write(dir.path().join("0/inner.txt"), b"inside ./0").unwrap();
    let (mut child, addr) = serve_in(dir.path(), &["0", "--files", "off", "--http", "127.0.0.1:0", "-q"]);
    assert_eq!(get(addr, "inner.txt"), "inside ./0");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bare_port_beside_http_is_refused() {
    let dir = scratch();
    let mut cmd = Command::new(ferry_bin());
    cmd.current_dir(dir.path()).args(["serve", "0", "--files", "off", "--http", "127.0.0.1:0"]);
    let out = run_fed(cmd.stdout(Stdio::piped()), b"", PATIENCE);
    assert!(!out.status.success(), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serves HTTP on port 0") && err.contains("./0"), "{err}");
}
