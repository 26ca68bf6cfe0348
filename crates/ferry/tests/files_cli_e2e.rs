//! End-to-end tests of the file service's client subcommands against the
//! real `ferry` binary on loopback: `ls`, `put` to a read-only server,
//! errors that name the address and path, and the interactive `shell`.

mod util;

use std::process::Command;
use std::time::Duration;

use util::*;

#[test]
fn read_only_server_refuses_writes_with_a_clear_error() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let local = dir.path().join("x.txt");
    std::fs::write(&local, b"data").unwrap();
    let out = ferry(&["put", &server.addr_arg(), local.to_str().unwrap()], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only"), "{err}");
    // The refused file, and where it was to go, are named.
    assert!(err.contains(local.to_str().unwrap()) && err.contains(&server.addr_arg()), "{err}");
    assert!(!root.join("x.txt").exists());
}

/// `-q` silences the summary line (and the bar); the file still arrives.
#[test]
fn quiet_get_prints_nothing_on_success() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let to = dir.path().join("h.txt");
    let out = ferry(&["-q", "get", &server.addr_arg(), "/hello.txt", to.to_str().unwrap()], None, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "-q printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read(&to).unwrap(), std::fs::read(root.join("hello.txt")).unwrap());
    let loud = ferry(&["get", &server.addr_arg(), "/hello.txt", dir.path().join("h2").to_str().unwrap()], None, b"");
    assert!(String::from_utf8_lossy(&loud.stdout).contains("got /hello.txt"), "without -q the summary is there");
}

#[test]
fn client_errors_name_the_address_and_path_and_fail() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let out = ferry(&["get", &server.addr_arg(), "/missing.txt", dir.path().join("m").to_str().unwrap()], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/missing.txt") && err.contains("404"), "{err}");
    assert!(!dir.path().join("m").exists() && !dir.path().join("m.part").exists());

    // A port nobody listens on: connect fails and names the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = ferry(&["ls", &addr], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "{err}");
}

#[test]
fn ls_lists_a_directory() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let out = ferry_ok(&["ls", &server.addr_arg(), "/sub"], None);
    assert!(out.contains("file.txt") && out.contains("deeper"), "{out}");
    let out = ferry_ok(&["ls", &server.addr_arg()], None);
    assert!(out.contains("hello.txt") && out.contains("sub"), "{out}");
}

#[test]
fn shell_over_a_pipe_browses_and_transfers() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &["--allow-write"]);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("local.txt"), b"from the shell").unwrap();
    let script = b"pwd\ncd sub\npwd\nls\nget file.txt\nput local.txt\ncd /nope\nping\n";
    let out = ferry(&["shell", &server.addr_arg()], Some(&work), script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/sub"), "{text}");
    assert!(text.contains("file.txt") && text.contains("deeper"), "{text}");
    assert_eq!(std::fs::read(work.join("file.txt")).unwrap(), b"abc", "shell get wrote the file");
    assert_eq!(std::fs::read(root.join("sub/local.txt")).unwrap(), b"from the shell", "shell put uploaded");
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("404"), "errors are shown: {all}");
    assert!(all.contains("pong"), "{all}");
}

#[test]
fn shell_notices_the_server_going_away() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &["--idle-timeout", "1"]);
    // stdin stays open (never written) so only the server closing can end the shell.
    let mut child = Command::new(ferry_bin())
        .args(["shell", &server.addr_arg()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let status = wait_child(&mut child, Duration::from_secs(15)).expect("shell exits when the server closes");
    drop(stdin);
    assert!(!status.success(), "losing the server is a failure");
}
