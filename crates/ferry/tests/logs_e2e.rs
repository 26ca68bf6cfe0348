//! What operators read: every model writes the same line per connection
//! (peer, why it ended, bytes each way, duration), and logs carry no
//! colour codes when stderr is not a terminal.

mod util;

use std::io::{BufRead, BufReader, Write};

use util::serve::*;
use util::*;

/// One `ping` and `quit` on the file service: the server's closing line for
/// that connection names the client's address and the bytes it moved.
#[test]
fn every_model_logs_one_line_per_connection_with_peer_and_bytes() {
    let dir = scratch();
    for &model in MODELS {
        let mut server = start_logged(model, Svc::Files, dir.path(), &[]);
        let stream = connect(server.addr);
        let me = stream.local_addr().expect("local address");
        let mut conn = BufReader::new(stream);
        for (ask, want) in [("ping", "OK pong"), ("quit", "OK bye")] {
            conn.get_mut().write_all(format!("{ask}\n").as_bytes()).expect("send");
            let mut line = String::new();
            conn.read_line(&mut line).expect("reply");
            assert_eq!(line.trim_end(), want, "{model}");
        }
        let line = server.log_line(&format!("{me}: connection closed"));
        // 10 bytes in ("ping\nquit\n"), 15 out ("OK pong\nOK bye\n").
        assert!(line.contains("closed by the session): 10 bytes in, 15 bytes out, "), "{model}: {line}");
        server.stop();
    }
}

/// `RUST_LOG=info` and stderr a pipe (as under systemd or `--log-file`):
/// no ANSI escape in any line.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = scratch();
    let opts = Opts { logged: true, colour_allowed: true, ..Opts::default() };
    let mut server = spawn_server("multi-reactor", Svc::Files, dir.path(), &[], opts);
    let mut conn = BufReader::new(connect(server.addr));
    conn.get_mut().write_all(b"quit\n").expect("send");
    let mut line = String::new();
    conn.read_line(&mut line).expect("reply");
    let logged = server.log_line("connection closed");
    assert!(!logged.contains('\u{1b}'), "colour codes in a piped log: {logged:?}");
    server.stop();
}
