//! Heartbeats (issue 12): `ferry ping` against every model, a stopped
//! server counted as lost instead of hanging the command, and `ferry
//! shell` noticing a server that stopped answering within the promised
//! three heartbeat spans. "Stopped" is SIGSTOP of the server's whole
//! process tree, so the fork and prefork children stop too (they are not
//! in the parent's process group: Ctrl-C is for the parent only).

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use util::serve::*;
use util::*;

/// Signals the server and every process below it, the parent first (a
/// stopped parent forks no new child meanwhile).
fn tree_signal(server: &Running, sig: Signal) {
    let pids = std::iter::once(server.pid()).chain(descendants(server.pid()));
    for pid in pids {
        // A child may exit in between: nothing to signal then.
        let _ = kill_process(Pid::from_raw(pid).expect("pid"), sig);
    }
}

#[test]
fn every_model_answers_ferry_ping_and_a_stopped_one_counts_as_lost() {
    let dir = scratch();
    for &model in MODELS {
        let mut server = start(model, Svc::Files, dir.path(), &[]);
        let addr = server.addr.to_string();
        let out = ferry(&["ping", &addr, "-c", "3", "-i", "0.05"], None, b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{model}: {text}");
        assert!(text.contains("3 sent, 3 received, 0% loss"), "{model}: {text}");
        assert_eq!(text.matches("reply from").count(), 3, "{model}: {text}");
        assert!(text.contains("rtt min/avg/max = "), "{model}: {text}");

        tree_signal(&server, Signal::STOP);
        let started = Instant::now();
        let out = ferry(&["ping", &addr, "-c", "2", "-i", "0.05", "-W", "0.3"], None, b"");
        let took = started.elapsed();
        tree_signal(&server, Signal::CONT);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{model}: a stopped server must fail the ping: {text}");
        assert!(text.contains("2 sent, 0 received, 100% loss"), "{model}: {text}");
        assert!(took < Duration::from_secs(5), "{model}: bounded by -W, took {took:?}");
        server.stop();
    }
}

#[test]
fn every_model_shell_notices_a_stopped_server_by_its_heartbeat() {
    let dir = scratch();
    for &model in MODELS {
        let mut server = start(model, Svc::Files, dir.path(), &[]);
        let addr = server.addr.to_string();
        // Input that stays open and says nothing: only heartbeats talk.
        let mut shell = Command::new(ferry_bin())
            .args(["shell", "--heartbeat", "1", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry shell");
        // A couple of heartbeats pass while the server answers them.
        assert!(wait_child(&mut shell, Duration::from_millis(2500)).is_none(), "{model}: the shell stays");
        tree_signal(&server, Signal::STOP);
        let stopped = Instant::now();
        let status = wait_child(&mut shell, Duration::from_secs(10));
        let took = stopped.elapsed();
        tree_signal(&server, Signal::CONT);
        let status = status.unwrap_or_else(|| panic!("{model}: the shell did not notice the stopped server"));
        assert_eq!(status.code(), Some(1), "{model}");
        let mut err = String::new();
        std::io::Read::read_to_string(shell.stderr.as_mut().expect("stderr"), &mut err).unwrap();
        assert!(err.contains("stopped answering"), "{model}: {err}");
        assert!(took < Duration::from_millis(4500), "{model}: noticed after {took:?}, promised about 3 s");
        drop(shell.stdin.take());
        server.stop();
    }
}
