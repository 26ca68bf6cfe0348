//! `--tcp-keepalive SECS` (issue 12): every connection a model accepts
//! carries the kernel's keep-alive timer (seen with `ss -o`, as an operator
//! would check it), and none does without the flag.

mod util;

use std::process::Command;

use util::serve::*;
use util::*;

/// The timers `ss` shows on the server's side of established connections
/// to `port`.
fn server_side_timers(port: u16) -> String {
    let filter = format!("( sport = :{port} )");
    let out = run_fed(Command::new("ss").args(["-tnoH", "state", "established", &filter]), b"", PATIENCE);
    assert!(out.status.success(), "ss failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_model_turns_tcp_keepalive_on_for_accepted_connections_when_asked() {
    let dir = scratch();
    for &model in MODELS {
        for keepalive in [true, false] {
            let extra: &[&str] = if keepalive { &["--tcp-keepalive", "7"] } else { &[] };
            let mut server = start(model, Svc::Files, dir.path(), extra);
            let mut stream = connect(server.addr);
            // Answered: the connection is accepted and served.
            assert_eq!(ask(&mut stream, "ping"), "OK pong", "{model}");
            let timers = server_side_timers(server.addr.port());
            assert_eq!(timers.lines().count(), 1, "{model}: one established connection: {timers}");
            assert_eq!(timers.contains("timer:(keepalive,"), keepalive, "{model} keepalive={keepalive}: {timers}");
            drop(stream);
            server.stop();
        }
    }
}
