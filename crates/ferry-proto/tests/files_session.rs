//! The file session driven from byte strings, without sockets: every
//! command, every error, and requests split and merged at any boundary.

mod common;

use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::FileSession;
use ferry_proto::{Chunk, Flow, Now, Outbox, Session};

use common::files_tree::Tree;

/// Drives `session` over a [`Pair`]: the server reads `input` in pieces of
/// `step` bytes; returns what the client received and what the session
/// asked for ([`common::flow_of`]).
fn drive(session: &mut FileSession, input: &[u8], step: usize) -> (Vec<u8>, Flow) {
    let mut pair = Pair::new(session, Timeouts::default()).read_chunk(step);
    pair.send(input);
    (pair.received().to_vec(), common::flow_of(&pair))
}

fn run(session: &mut FileSession, input: &str) -> String {
    let (out, _) = drive(session, input.as_bytes(), usize::MAX);
    String::from_utf8(out).unwrap()
}

#[test]
fn navigation_commands() {
    let t = Tree::new("nav");
    let mut s = t.session(false);
    assert_eq!(run(&mut s, "pwd\n"), "OK /\n");
    assert_eq!(run(&mut s, "cd sub\npwd\n"), "OK /sub\nOK /sub\n");
    assert_eq!(run(&mut s, "cd deeper/..\n"), "OK /sub\n");
    assert_eq!(run(&mut s, "cd\n"), "OK /\n");
    assert_eq!(run(&mut s, "cd \"with space.txt\"\n"), "ERR 409 not a directory: /with space.txt\n");
    assert_eq!(run(&mut s, "cd nope\n"), "ERR 404 no such file or directory: /nope\n");
    assert_eq!(run(&mut s, "ping\nPING\n"), "OK pong\nOK pong\n");
}

#[test]
fn ls_and_stat() {
    let t = Tree::new("ls");
    let mut uploader = t.session(true);
    assert_eq!(run(&mut uploader, "put up.bin 10\n0123"), "OK 0\n", "an upload in progress");
    let mut s = t.session(false);
    let out = run(&mut s, "ls\n");
    let (head, body) = out.split_once('\n').unwrap();
    assert_eq!(head, format!("OK {}", body.len()));
    let names: Vec<&str> = body.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap()).collect();
    assert_eq!(names, ["hello.txt", "sub", "with space.txt"], "sorted, uploads in progress hidden");
    assert!(body.lines().any(|l| l.starts_with("f 13 ") && l.ends_with(" hello.txt")));
    assert!(body.lines().any(|l| l.starts_with("d ") && l.ends_with(" sub")));
    let out = run(&mut s, "ls sub\n");
    assert!(out.contains(" file.txt\n") && out.contains(" deeper\n"), "{out}");
    assert_eq!(run(&mut s, "ls hello.txt\n"), "ERR 409 not a directory: /hello.txt\n");
    let out = run(&mut s, "stat sub/file.txt\n");
    assert!(out.starts_with("OK f 3 ") && out.ends_with(" /sub/file.txt\n"), "{out}");
    assert_eq!(run(&mut s, "stat missing\n"), "ERR 404 no such file or directory: /missing\n");
}

#[test]
fn get_whole_from_offset_and_errors() {
    let t = Tree::new("get");
    let mut s = t.session(false);
    let v = t.version("hello.txt");
    assert_eq!(run(&mut s, "get hello.txt\n"), format!("OK 13 0 13 {v}\nHello, world!"));
    assert_eq!(run(&mut s, "get /hello.txt 7\n"), format!("OK 13 7 6 {v}\nworld!"));
    assert_eq!(run(&mut s, "get hello.txt 13\n"), format!("OK 13 13 0 {v}\n"));
    assert_eq!(run(&mut s, &format!("get hello.txt 7 {v}\n")), format!("OK 13 7 6 {v}\nworld!"), "same version");
    assert_eq!(
        run(&mut s, "get hello.txt 7 1-2.3-4\n"),
        format!("OK 13 0 13 {v}\nHello, world!"),
        "another version of the file: from the start"
    );
    assert_eq!(run(&mut s, "get hello.txt 14\n"), "ERR 416 offset 14 is beyond the end of the file (13 bytes)\n");
    assert_eq!(run(&mut s, "get sub\n"), "ERR 409 is a directory: /sub\n");
    assert_eq!(run(&mut s, "get nope\n"), "ERR 404 no such file or directory: /nope\n");
    assert_eq!(run(&mut s, "get hello.txt x\n"), "ERR 400 'x' is not a valid number\n");
    assert_eq!(run(&mut s, "sum hello.txt\n"), "OK 315f5bdb76d078c43b8ac0064e4a0164612b1fce77c869345bfc94c75894edd3\n");
}

#[test]
fn pipelined_gets_are_answered_in_order() {
    let t = Tree::new("pipe");
    let mut s = t.session(false);
    let out = run(&mut s, "get hello.txt\nget sub/file.txt\nget hello.txt 12\npwd\n");
    let (hello, file) = (t.version("hello.txt"), t.version("sub/file.txt"));
    assert_eq!(out, format!("OK 13 0 13 {hello}\nHello, world!OK 3 0 3 {file}\nabcOK 13 12 1 {hello}\n!OK /\n"));
}

#[test]
fn split_at_every_boundary_gives_the_same_answers() {
    let t = Tree::new("split");
    let script = "pwd\r\ncd sub\nls\nget file.txt 1\n\nstat ../hello.txt\nbogus\nping\n";
    let mut whole = t.session(false);
    let (expected, _) = drive(&mut whole, script.as_bytes(), usize::MAX);
    for step in 1..=7 {
        let mut s = t.session(false);
        let (got, _) = drive(&mut s, script.as_bytes(), step);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected), "step {step}");
    }
    let text = String::from_utf8(expected).unwrap();
    assert!(text.contains(&format!("OK 3 1 2 {}\nbc", t.version("sub/file.txt"))), "{text}");
    assert!(text.contains("ERR 400 unknown command 'bogus'"), "{text}");
}

#[test]
fn bad_requests_keep_the_connection() {
    let t = Tree::new("bad");
    let mut s = t.session(false);
    let cases = [
        ("frob\n", "ERR 400 unknown command 'frob' (try 'help')\n"),
        ("pwd x\n", "ERR 400 usage: pwd\n"),
        ("get\n", "ERR 400 usage: get PATH [OFFSET [VERSION]]\n"),
        ("cd \"open\n", "ERR 400 unterminated quote\n"),
        ("cd \\q\n", "ERR 400 bad escape sequence\n"),
        ("cd a\\x00b\n", "ERR 400 path contains a NUL byte\n"),
        ("cd ../..\n", "ERR 403 path escapes the served root\n"),
        ("put a 3\n", "ERR 403 read-only (the server runs without --allow-write)\n"),
        ("mkdir d\n", "ERR 403 read-only (the server runs without --allow-write)\n"),
        ("rm hello.txt\n", "ERR 403 read-only (the server runs without --allow-write)\n"),
    ];
    for (input, expected) in cases {
        let (out, flow) = drive(&mut s, input.as_bytes(), usize::MAX);
        assert_eq!(String::from_utf8_lossy(&out), expected, "for {input:?}");
        assert_eq!(flow, Flow::Continue, "for {input:?}");
    }
    let (out, _) = drive(&mut s, b"cd \xff\n", usize::MAX);
    assert_eq!(out, b"ERR 400 request is not valid UTF-8\n");
    assert_eq!(run(&mut s, "pwd\n"), "OK /\n", "still usable");
    assert!(run(&mut s, "help\n").contains("get PATH [OFFSET [VERSION]]"));
}

#[test]
fn oversize_line_closes() {
    let t = Tree::new("long");
    let mut s = t.session(false);
    let mut input = vec![b'a'; 5000];
    input.push(b'\n');
    let (out, flow) = drive(&mut s, &input, 1000);
    assert_eq!(String::from_utf8_lossy(&out), "ERR 413 request line longer than 4096 bytes; closing\n");
    assert_eq!(flow, Flow::CloseAfterFlush);
    // A line of exactly 4096 bytes with its newline is accepted.
    let mut s = t.session(false);
    let line = format!("cd {}\n", "a/".repeat(2046));
    assert_eq!(line.len(), 4096);
    let (out, flow) = drive(&mut s, line.as_bytes(), usize::MAX);
    assert!(String::from_utf8_lossy(&out).starts_with("ERR 404"), "{}", String::from_utf8_lossy(&out));
    assert_eq!(flow, Flow::Continue);
}

#[test]
fn quit_says_bye_and_closes() {
    let t = Tree::new("quit");
    let mut s = t.session(false);
    let (out, flow) = drive(&mut s, b"pwd\nquit\npwd\n", usize::MAX);
    assert_eq!(out, b"OK /\nOK bye\n");
    assert_eq!(flow, Flow::CloseAfterFlush);
}

#[test]
fn upload_errors() {
    let t = Tree::new("puterr");
    let mut s = t.session(true);
    assert_eq!(run(&mut s, "put sub 3\n"), "ERR 409 is a directory: /sub\n");
    assert_eq!(run(&mut s, "put /\"\" 3\n"), "ERR 409 is a directory: /\n");
    assert_eq!(run(&mut s, "put nodir/x 3\n"), "ERR 404 no such file or directory: /nodir/x\n");
    // Two uploads of one path at once: the second is refused.
    let mut out = Outbox::new();
    let p = s.on_input(b"put busy 100\nabc", &mut out, Now::read());
    assert_eq!(p.consumed, 13, "payload bytes are left for the driver to route into the sink");
    assert!(out.has_sink());
    let mut other = t.session(true);
    assert_eq!(run(&mut other, "put busy 100\n"), "ERR 409 an upload of /busy is already in progress\n");
}

#[test]
fn mkdir_and_rm() {
    let t = Tree::new("mkrm");
    let mut s = t.session(true);
    assert_eq!(run(&mut s, "mkdir new\n"), "OK\n");
    assert!(t.0.join("new").is_dir());
    assert_eq!(run(&mut s, "mkdir new\n"), "ERR 409 already exists: /new\n");
    assert_eq!(run(&mut s, "rm sub\n"), "ERR 409 directory not empty: /sub\n");
    assert_eq!(run(&mut s, "rm new\nrm hello.txt\n"), "OK\nOK\n");
    assert!(!t.0.join("hello.txt").exists());
    assert_eq!(run(&mut s, "rm /\n"), "ERR 403 the served root cannot be removed\n");
    assert_eq!(run(&mut s, "rm gone\n"), "ERR 404 no such file or directory: /gone\n");
}

#[test]
fn escapes_are_refused() {
    let t = Tree::new("escape");
    std::os::unix::fs::symlink("/etc", t.0.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc/passwd", t.0.join("sub/passwd-link")).unwrap();
    std::os::unix::fs::symlink("self-loop", t.0.join("self-loop")).unwrap();
    let mut s = t.session(true);
    for cmd in [
        "get ../etc/passwd",
        "get /../../etc/passwd",
        "cd ..",
        "get etc-link/passwd",
        "ls etc-link",
        "cd etc-link",
        "get sub/passwd-link",
        "stat sub/passwd-link",
        "put etc-link/evil 1",
        "mkdir etc-link/evil",
        "rm etc-link/passwd",
        "sum etc-link/passwd",
    ] {
        let out = run(&mut s, &format!("{cmd}\n"));
        assert_eq!(out, "ERR 403 path escapes the served root\n", "for {cmd}");
    }
    assert_eq!(run(&mut s, "get self-loop\n"), "ERR 400 too many levels of symbolic links: /self-loop\n");
    assert_eq!(run(&mut s, "pwd\n"), "OK /\n");
}

/// `sum` and `ls` are jobs (blocking work the driver may hand to a worker):
/// one per pass, nothing else answered before it, and a job's answer is
/// the same as if it had been written in place.
#[test]
fn sum_and_ls_are_jobs_one_per_pass() {
    let tree = Tree::new("jobs");
    let mut s = tree.session(false);
    let mut out = Outbox::new();
    let input = b"sum hello.txt\nls\nping\n";
    let p = s.on_input(input, &mut out, Now::read());
    assert_eq!(p.consumed, b"sum hello.txt\n".len(), "the session stops after a job");
    assert!(matches!(out.front(), Some(Chunk::Job)));
    let job = out.take_job().expect("a job");
    out.finish_job(job());
    let Some(Chunk::Bytes(sent)) = out.front() else { panic!("the job's answer takes its place") };
    let sum = String::from_utf8(sent.to_vec()).unwrap();
    // sha256("Hello, world!")
    assert_eq!(sum, "OK 315f5bdb76d078c43b8ac0064e4a0164612b1fce77c869345bfc94c75894edd3\n");
    let rest = run(&mut s, "ls\nping\n");
    assert!(rest.starts_with("OK ") && rest.contains(" hello.txt\n"), "the listing: {rest:?}");
    assert!(rest.ends_with("OK pong\n"), "answered after the listing, in order: {rest:?}");
}
