//! The file session's answers to hostile input, driven directly: names
//! with control bytes are not created, an error answer is always one line,
//! and nothing is answered once the session asked to close.

mod common;

use std::fs;
use std::io;

use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::FileSession;
use ferry_proto::{Flow, Now, Outbox, Session};
use proptest::prelude::*;

use common::files_tree::Tree;

fn run(session: &mut FileSession, input: &[u8]) -> (String, Flow) {
    let mut pair = Pair::new(session, Timeouts::default());
    pair.send(input);
    (String::from_utf8_lossy(pair.received()).into_owned(), common::flow_of(&pair))
}

#[test]
fn names_with_control_bytes_are_not_created() {
    let t = Tree::new("ctl");
    let mut s = t.session(true);
    let names = || {
        let mut v: Vec<_> = fs::read_dir(&t.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    let before = names();
    for (word, shown) in [(r"a\rb", r"a\rb"), (r"a\x1bb", r"a\x1bb"), (r"a\x7fb", r"a\x7fb"), (r"a\x01b", r"a\x01b")] {
        for command in ["put", "mkdir"] {
            let request = if command == "put" { format!("put {word} 3\n") } else { format!("mkdir {word}\n") };
            let (out, flow) = run(&mut s, request.as_bytes());
            assert_eq!(
                out,
                format!("ERR 400 control characters are not allowed in new names: {shown}\n"),
                "{request:?}"
            );
            assert_eq!(flow, Flow::Continue);
        }
    }
    assert_eq!(names(), before, "nothing was created");
    // Printable names, spaces and UTF-8 included, are still fine.
    assert_eq!(run(&mut s, "mkdir \"a b é\"\n".as_bytes()).0, "OK\n");
}

/// Malformed requests whose answers echo words of the request.
const MALFORMED: &[&str] = &[
    "get a \"1\\nOK 0\"",
    "put a \"1\\rOK 0\"",
    "get a 1\r2",
    "x\\nOK",
    "\"a\\r\\nOK\"",
    "get a \\x1b[2J",
    "pwd extra\\n",
    "cd \"unterminated\\n",
    "frob\\x00\\x7f\\x85",
];

fn assert_one_line(input: &str) {
    let t = Tree::new("oneline");
    let mut s = t.session(false);
    let (out, flow) = run(&mut s, format!("{input}\n").as_bytes());
    assert!(out.starts_with("ERR 400 "), "{input:?} answered {out:?}");
    assert_eq!(out.matches('\n').count(), 1, "{input:?} answered {out:?}");
    assert!(out.ends_with('\n') && !out.contains('\r'), "{input:?} answered {out:?}");
    assert_eq!(flow, Flow::Continue);
}

#[test]
fn every_request_error_is_one_line() {
    for input in MALFORMED {
        assert_one_line(input);
    }
    let t = Tree::new("echo");
    let mut s = t.session(false);
    assert_eq!(run(&mut s, b"get a \"1\\nOK 0\"\n").0, "ERR 400 '1\\nOK 0' is not a valid number\n");
    assert_eq!(run(&mut s, b"x\\nOK\n").0, "ERR 400 unknown command 'x\\nok' (try 'help')\n");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn generated_bad_numbers_and_commands_answer_one_line(word in "[a-z\\\\\"\\x00-\\x1f\\x7f nr0-9]{1,12}") {
        let t = Tree::new("prop");
        let mut s = t.session(false);
        for line in [format!("get a {word}\n"), format!("{word}zz\n"), format!("put a \"{word}\"\n")] {
            // Raw LF would end the line early, which is not what this tests.
            let line = format!("{}\n", line.trim_end_matches('\n').replace('\n', " "));
            let (out, _) = run(&mut s, line.as_bytes());
            prop_assert_eq!(out.matches('\n').count(), out.lines().count(), "{:?} answered {:?}", line, out);
            for answer in out.lines() {
                prop_assert!(answer.starts_with("OK") || answer.starts_with("ERR "), "{:?} answered {:?}", line, out);
                prop_assert!(!answer.contains('\r'), "{:?} answered {:?}", line, out);
            }
        }
    }
}

/// Calls the session itself, as a driver that ignored its answer would.
fn direct(s: &mut FileSession, input: &[u8]) -> (String, Flow) {
    let mut out = Outbox::new();
    let progress = s.on_input(input, &mut out, Now::read());
    (String::from_utf8_lossy(&out.text().clone()).into_owned(), progress.flow)
}

#[test]
fn nothing_is_answered_after_quit() {
    let t = Tree::new("quit");
    let mut s = t.session(false);
    assert_eq!(direct(&mut s, b"quit\nping\n"), ("OK bye\n".to_string(), Flow::CloseAfterFlush));
    assert_eq!(direct(&mut s, b"ping\n"), (String::new(), Flow::CloseAfterFlush));
}

#[test]
fn nothing_is_answered_after_an_overlong_line() {
    let t = Tree::new("long");
    let mut s = t.session(false);
    let (out, flow) = direct(&mut s, &vec![b'a'; 5000]);
    assert!(out.starts_with("ERR 413 "), "{out}");
    assert_eq!(flow, Flow::CloseAfterFlush);
    assert_eq!(direct(&mut s, b"ping\n"), (String::new(), Flow::CloseAfterFlush));
}

#[test]
fn nothing_is_answered_after_a_failed_upload() {
    let t = Tree::new("upfail");
    let mut s = t.session(true);
    let (out, _) = direct(&mut s, b"put up.bin 10\n");
    assert_eq!(out, "OK 0\n");
    let mut out = Outbox::new();
    let flow = s.on_upload_done(Err(io::Error::other("disk on fire")), &mut out, Now::read());
    assert_eq!(flow, Flow::CloseAfterFlush);
    assert!(String::from_utf8_lossy(&out.text().clone()).starts_with("ERR 500 upload failed"));
    assert_eq!(direct(&mut s, b"ping\n"), (String::new(), Flow::CloseAfterFlush));
}
