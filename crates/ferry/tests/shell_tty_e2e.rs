//! `ferry shell` on a real terminal (a tmux pane), used as a person would:
//! history with the arrow keys and across restarts, Tab completion of
//! remote and local names, Ctrl-C and Ctrl-D, a server that dies while
//! the user is at the prompt, Ctrl-C during a download. The shell is a
//! client feature: one server model is enough.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use util::serve::eventually;
use util::tty::Tty;
use util::*;

/// The shell on `server`, in `work`, keeping its history under `state`.
fn shell(server: &str, work: &Path, state: &Path) -> Tty {
    let state = state.to_str().unwrap();
    let tty = Tty::start(work, &[("XDG_STATE_HOME", state)], ferry_bin(), &["shell", server]);
    tty.wait_text("ferry:/>");
    tty
}

/// Terminal flags as a sane (cooked) terminal has them.
fn assert_sane(flags: &str) {
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(flags.split(' ').any(|f| f == flag), "terminal left with {flags:?} (want {flag})");
    }
}

struct Setup {
    dir: tempfile::TempDir,
    root: std::path::PathBuf,
    work: std::path::PathBuf,
    state: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let work = dir.path().join("work");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&work).unwrap();
    Setup { root, work, state, dir }
}

#[test]
fn arrow_up_recalls_the_previous_command_and_runs_it() {
    let s = setup();
    let server = Server::start(&s.root, &[]);
    let tty = shell(&server.addr_arg(), &s.work, &s.state);
    tty.type_text("cd sub");
    tty.keys(&["Enter"]);
    tty.wait_text("ferry:/sub>");
    tty.type_text("cd /");
    tty.keys(&["Enter"]);
    tty.wait_count("ferry:/>", 2);
    // Up twice: `cd sub` again; the escape sequences never reach the server.
    tty.keys(&["Up", "Up", "Enter"]);
    tty.wait_count("ferry:/sub>", 2);
    assert_eq!(tty.last_line(), "ferry:/sub>");
    // Home, then a letter: `d /` becomes `cd /`.
    tty.type_text("d /");
    tty.keys(&["Home", "c", "Enter"]);
    tty.wait_count("ferry:/>", 3);
    // Ctrl-R searches the history.
    tty.keys(&["C-r"]);
    tty.type_text("cd s");
    tty.keys(&["Enter"]);
    tty.wait_count("ferry:/sub>", 3);
    assert!(!tty.screen().contains("ERR"), "{}", tty.screen());
}

#[test]
fn tab_completes_remote_and_local_names() {
    let s = setup();
    std::fs::write(s.work.join("local-only.txt"), b"mine").unwrap();
    let server = Server::start(&s.root, &["--allow-write"]);
    let tty = shell(&server.addr_arg(), &s.work, &s.state);
    // A remote directory, from the server's listing.
    tty.type_text("cd su");
    tty.keys(&["Tab"]);
    tty.wait_text("cd sub/");
    tty.keys(&["Enter"]);
    tty.wait_text("ferry:/sub>");
    // A remote file inside a directory, then a local name for put.
    tty.type_text("get ../hel");
    tty.keys(&["Tab"]);
    tty.wait_text("get ../hello.txt");
    tty.keys(&["Enter"]);
    tty.wait_text("got ../hello.txt");
    assert_eq!(std::fs::read(s.work.join("hello.txt")).unwrap(), b"Hello, world!");
    tty.type_text("put local-o");
    tty.keys(&["Tab"]);
    tty.wait_text("put local-only.txt");
    tty.keys(&["Enter"]);
    tty.wait_count("ferry:/sub>", 3);
    eventually("the upload", || std::fs::read(s.root.join("sub/local-only.txt")).is_ok_and(|b| b == b"mine"));
}

#[test]
fn ctrl_c_clears_the_line_and_ctrl_d_leaves_a_sane_terminal() {
    let s = setup();
    let server = Server::start(&s.root, &[]);
    let tty = shell(&server.addr_arg(), &s.work, &s.state);
    tty.type_text("cd sub");
    tty.keys(&["C-c"]);
    tty.wait_count("ferry:/>", 2);
    // The dropped line is marked, as shells mark it, even with the cursor
    // inside it.
    assert!(tty.screen().contains("ferry:/> cd sub^C\n"), "{}", tty.screen());
    tty.type_text("cd deeper");
    tty.keys(&["Left", "Left", "Left", "C-c"]);
    tty.wait_count("ferry:/>", 3);
    assert!(tty.screen().contains("ferry:/> cd deeper^C\n"), "{}", tty.screen());
    tty.type_text("pwd");
    tty.keys(&["Enter"]);
    // The dropped `cd sub` was not run: still at the root.
    tty.wait_count("ferry:/>", 4);
    assert!(!tty.screen().contains("/sub\n"), "{}", tty.screen());
    tty.keys(&["C-d"]);
    let (code, flags) = tty.wait_exit();
    assert_eq!(code, 0, "{}", tty.screen());
    assert_sane(&flags);
}

#[test]
fn history_survives_a_restart_and_an_unwritable_one_only_warns() {
    let s = setup();
    let server = Server::start(&s.root, &[]);
    let addr = server.addr_arg();
    {
        let tty = shell(&addr, &s.work, &s.state);
        tty.type_text("cd sub/deeper");
        tty.keys(&["Enter"]);
        tty.wait_text("ferry:/sub/deeper>");
        tty.keys(&["C-d"]);
        assert_eq!(tty.wait_exit().0, 0);
    }
    let file = s.state.join("ferry/history").join(addr.replace(':', "_"));
    assert!(std::fs::read_to_string(&file).unwrap().contains("cd sub/deeper"), "history in {}", file.display());
    let tty = shell(&addr, &s.work, &s.state);
    tty.keys(&["Up", "Enter"]);
    tty.wait_text("ferry:/sub/deeper>");
    drop(tty);

    // A state directory that cannot be made: a warning, and the shell works.
    let blocked = s.dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let tty = shell(&addr, &s.work, &blocked);
    assert!(tty.screen().contains("warning"), "{}", tty.screen());
    tty.type_text("cd sub");
    tty.keys(&["Enter"]);
    tty.wait_text("ferry:/sub>");
    tty.keys(&["C-d"]);
    assert_eq!(tty.wait_exit().0, 0);
}

#[test]
fn a_server_killed_at_the_prompt_is_reported_at_once() {
    let s = setup();
    let mut server = Server::start(&s.root, &[]);
    let tty = shell(&server.addr_arg(), &s.work, &s.state);
    tty.type_text("ls hel");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // Well before the first heartbeat (30 s): the closed socket is seen.
    let started = std::time::Instant::now();
    let (code, flags) = tty.wait_exit();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "noticed late");
    assert_eq!(code, 1);
    assert!(tty.screen().contains("closed the connection"), "{}", tty.screen());
    // The editor had the terminal raw; it is put back.
    assert_sane(&flags);
    // No prompt after the server went.
    assert_eq!(tty.screen().matches("ferry:/>").count(), 1, "{}", tty.screen());
}

/// A server that says goodbye (its idle timeout) while the user is at the
/// prompt: the message is shown, no new prompt after it, exit 1, and the
/// terminal is sane.
#[test]
fn an_idle_timeout_at_the_prompt_is_shown_once_without_a_new_prompt() {
    let s = setup();
    let server = Server::start(&s.root, &["--idle-timeout", "1"]);
    let state = s.state.to_str().unwrap();
    let args = ["shell", "--heartbeat", "0", &server.addr_arg()];
    let tty = Tty::start(&s.work, &[("XDG_STATE_HOME", state)], ferry_bin(), &args);
    tty.wait_text("ferry:/>");
    let (code, flags) = tty.wait_exit();
    let screen = tty.screen();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("ERR 408") && screen.contains("closed the connection"), "{screen}");
    assert_eq!(screen.matches("ferry:/>").count(), 1, "a prompt after the goodbye: {screen}");
    assert_sane(&flags);
}

/// Heartbeats run while the editor waits for the user: a stopped server
/// is given up on, and the terminal put back.
#[test]
fn heartbeats_run_at_the_prompt() {
    let s = setup();
    let server = Server::start(&s.root, &[]);
    let state = s.state.to_str().unwrap();
    let args = ["shell", "--heartbeat", "1", &server.addr_arg()];
    let tty = Tty::start(&s.work, &[("XDG_STATE_HOME", state)], ferry_bin(), &args);
    tty.wait_text("ferry:/>");
    tty.type_text("ls");
    server.signal(rustix::process::Signal::STOP);
    let (code, flags) = tty.wait_exit();
    server.signal(rustix::process::Signal::CONT);
    assert_eq!(code, 1);
    assert!(tty.screen().contains("stopped answering"), "{}", tty.screen());
    assert_sane(&flags);
}

/// Which way a relay's first connection hangs.
#[derive(Clone, Copy, PartialEq)]
enum Hang {
    /// Stops passing the server's bytes (a download hangs).
    FromServer,
    /// Stops passing the client's bytes (an upload hangs).
    ToServer,
}

/// A relay to `to` whose first connection stops passing bytes one way
/// after `limit` of them (a transfer that hangs half way); later ones pass
/// everything. Returns its address and the bytes each connection carried
/// that way.
fn stalling_relay(to: std::net::SocketAddr, hang: Hang, limit: usize) -> (String, Arc<[AtomicUsize; 4]>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let carried: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let counts = Arc::clone(&carried);
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate().take(4) {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(to).unwrap();
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (up, down) = match hang {
                Hang::FromServer => ((c2, s2, None), (server, client, Some(n))),
                Hang::ToServer => ((server, client, None), (c2, s2, Some(n))),
            };
            for (mut from, mut to, counted) in [up, down] {
                let counts = Arc::clone(&counts);
                std::thread::spawn(move || pass(&mut from, &mut to, counted, &counts, limit));
            }
        }
    });
    (addr, carried)
}

/// Copies `from` to `to`; when `counted` (the connection's number), counts
/// the bytes, and on the first connection hangs after `limit`: reads no
/// more, and only when `from`'s peer closes passes the close on (as a
/// network would, the bytes in between lost).
fn pass(from: &mut TcpStream, to: &mut TcpStream, counted: Option<usize>, counts: &[AtomicUsize; 4], limit: usize) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let cap = match counted {
            Some(0) => limit.saturating_sub(counts[0].load(Ordering::SeqCst)).min(buf.len()),
            _ => buf.len(),
        };
        if cap == 0 {
            let mut fds = [rustix::event::PollFd::new(&*from, rustix::event::PollFlags::RDHUP)];
            let _ = rustix::event::poll(&mut fds, None);
            let _ = to.shutdown(std::net::Shutdown::Write);
            return;
        }
        let Ok(got) = from.read(&mut buf[..cap]) else { return };
        if got == 0 || to.write_all(&buf[..got]).is_err() {
            let _ = to.shutdown(std::net::Shutdown::Write);
            return;
        }
        if let Some(n) = counted {
            counts[n].fetch_add(got, Ordering::SeqCst);
        }
    }
}

#[test]
fn ctrl_c_during_a_get_keeps_the_part_and_the_shell_goes_on() {
    let s = setup();
    let size = 4 * 1024 * 1024;
    let data = random_bytes(size, 7);
    std::fs::write(s.root.join("big.bin"), &data).unwrap();
    let server = Server::start(&s.root, &[]);
    let (relay, carried) = stalling_relay(server.addr, Hang::FromServer, 1024 * 1024);
    let state = s.state.to_str().unwrap();
    let tty = Tty::start(&s.work, &[("XDG_STATE_HOME", state)], ferry_bin(), &["shell", &relay]);
    tty.wait_text("ferry:/>");
    tty.type_text("cd sub");
    tty.keys(&["Enter"]);
    tty.wait_text("ferry:/sub>");
    tty.type_text("get ../big.bin");
    tty.keys(&["Enter"]);
    let part = s.work.join("big.bin.part");
    eventually("the download to hang half way", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) && carried[0].load(Ordering::SeqCst) >= 1024 * 1024
    });
    tty.keys(&["C-c"]);
    let screen = tty.wait_count("ferry:/sub>", 2);
    assert!(screen.contains("get interrupted") && screen.contains(".part"), "{screen}");
    assert!(screen.contains("reconnected"), "{screen}");
    assert!(part.exists(), "the .part is kept");
    // The new connection works, in the same directory, and resumes.
    tty.type_text("get ../big.bin");
    tty.keys(&["Enter"]);
    tty.wait_text("got ../big.bin");
    assert_eq!(sha256_file(&s.work.join("big.bin")), sha256(&data));
    assert!(carried[1].load(Ordering::SeqCst) < size, "the second get resumed instead of starting over");
    tty.keys(&["C-d"]);
    let (code, flags) = tty.wait_exit();
    assert_eq!(code, 0, "{}", tty.screen());
    assert_sane(&flags);
}

#[test]
fn ctrl_c_during_a_put_reconnects_and_the_same_put_resumes() {
    let s = setup();
    let size = 4 * 1024 * 1024;
    let data = random_bytes(size, 9);
    std::fs::write(s.work.join("up.bin"), &data).unwrap();
    let server = Server::start(&s.root, &["--allow-write"]);
    let (relay, carried) = stalling_relay(server.addr, Hang::ToServer, 1024 * 1024);
    let state = s.state.to_str().unwrap();
    let tty = Tty::start(&s.work, &[("XDG_STATE_HOME", state)], ferry_bin(), &["shell", &relay]);
    tty.wait_text("ferry:/>");
    tty.type_text("put up.bin");
    tty.keys(&["Enter"]);
    eventually("the upload to hang half way", || carried[0].load(Ordering::SeqCst) >= 1024 * 1024);
    tty.keys(&["C-c"]);
    let screen = tty.wait_count("ferry:/>", 2);
    assert!(screen.contains("put interrupted") && screen.contains("reconnected"), "{screen}");
    // The server lets go of the upload when it reads the old connection's
    // end, which may come after the new connection's `put` (then `ERR 409`,
    // and the user tries again, as here: a bounded number of times).
    for attempt in 0..50 {
        tty.type_text("put up.bin");
        tty.keys(&["Enter"]);
        let screen = tty.wait_count("ferry:/>", 3 + attempt);
        if std::fs::read(s.root.join("up.bin")).is_ok_and(|b| b == data) {
            break;
        }
        assert!(attempt < 49 && screen.contains("ERR 409"), "{screen}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(carried[1].load(Ordering::SeqCst) < size, "the second put resumed instead of starting over");
    tty.keys(&["C-d"]);
    let (code, flags) = tty.wait_exit();
    assert_eq!(code, 0, "{}", tty.screen());
    assert_sane(&flags);
}
