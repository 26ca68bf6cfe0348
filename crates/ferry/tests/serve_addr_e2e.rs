//! `ferry serve`'s addresses as a user writes them: a bare port, a host
//! name, and `--public` (all interfaces), the last one inside a network
//! namespace of its own (`unshare -n`, only a loopback that is down), so
//! the test never listens on a real interface.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use util::{PATIENCE, ferry_bin, run_fed, scratch, wait_child};

/// Starts `cmd` (a `ferry serve`), returns its first stdout line, kills it.
fn first_line(cmd: &mut Command) -> String {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn ferry serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the first line");
    let _ = child.kill();
    wait_child(&mut child, PATIENCE).expect("ferry serve exits when killed");
    line.trim_end().to_string()
}

#[test]
fn bare_ports_host_names_and_public() {
    let dir = scratch();
    let serve = |args: &[&str]| {
        let mut cmd = Command::new(ferry_bin());
        cmd.arg("serve").arg(dir.path()).args(["--files", "off", "-q"]).args(args);
        cmd
    };
    let line = first_line(&mut serve(&["--http", "0"]));
    assert!(line.starts_with("ferry: http listening on 127.0.0.1:"), "a bare port is on loopback: {line}");
    let line = first_line(&mut serve(&["--http", "localhost:0"]));
    assert!(line.starts_with("ferry: http listening on 127.0.0.1:"), "a host name: {line}");

    // --public, in a network namespace of the test's own.
    let mut public = Command::new("unshare");
    public.args(["-n", ferry_bin(), "serve"]).arg(dir.path()).args(["--files", "off", "-q", "--public", "--http", "0"]);
    let line = first_line(&mut public);
    assert!(line.starts_with("ferry: http listening on 0.0.0.0:"), "--public: {line}");
    // Writes on every interface without accounts or TLS: refused, saying why.
    let mut writes = Command::new("unshare");
    writes.args(["-n", ferry_bin(), "serve"]).arg(dir.path()).args(["--http", "off", "--public", "--files", "0"]);
    let out = run_fed(writes.arg("--allow-write"), b"", PATIENCE);
    assert!(!out.status.success(), "--public --allow-write without accounts or TLS must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure"), "{err}");
}
