//! The HTTP session under an access model: Basic and Bearer credentials,
//! 401 with `WWW-Authenticate` where logging in could help, 403 where it
//! could not, listings that show only what the reader may see.

mod common;
mod http;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_proto::access::{Access, AccountsFile, Op, Rights, RuleEntry};
use ferry_proto::http::HttpSession;

use http::*;

fn rule(who: &str, path: &str, allow: &[Op]) -> RuleEntry {
    RuleEntry { who: who.into(), path: path.into(), allow: allow.to_vec() }
}

/// Public read of everything but /sub, which only alice may read; and a
/// read-only token for bob.
fn session(t: &Tree) -> (HttpSession, String) {
    let mut file = AccountsFile::default();
    file.set_password("alice", "alice pw").unwrap();
    file.set_password("bob", "bob pw").unwrap();
    let token = file.add_token("alice", Rights::READ_ONLY, Some(SystemTime::now() + Duration::from_secs(60))).unwrap();
    file.rules = vec![
        rule("anonymous", "/", &[Op::List, Op::Read]),
        rule("anonymous", "/sub", &[]),
        rule("*", "/", &[Op::List, Op::Read]),
        rule("*", "/sub", &[]),
        rule("alice", "/sub", &[Op::List, Op::Read]),
    ];
    let access = Arc::new(Access::with_accounts(file, false).unwrap());
    let config = Arc::new(t.config().with_access(access));
    (HttpSession::new(config, file_cache()), token)
}

fn basic(user_pass: &str) -> String {
    // The few credentials of these tests, encoded by hand (RFC 4648).
    let encoded = match user_pass {
        "alice:alice pw" => "YWxpY2U6YWxpY2UgcHc=",
        "bob:bob pw" => "Ym9iOmJvYiBwdw==",
        "alice:wrong" => "YWxpY2U6d3Jvbmc=",
        other => panic!("no encoding for {other}"),
    };
    format!("Authorization: Basic {encoded}")
}

#[test]
fn anonymous_gets_401_where_an_account_could_read() {
    let t = Tree::new("http-anon-access");
    let (mut s, _) = session(&t);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 200);
    let resp = one(&run(&mut s, &get("/sub/file.txt")));
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate"), Some("Basic realm=\"ferry\", charset=\"UTF-8\""));
    let page = one(&run(&mut s, &get("/"))).body_text();
    assert!(page.contains("hello.txt") && !page.contains("sub/"), "the listing hides /sub: {page}");
}

#[test]
fn basic_and_bearer_credentials_get_each_account_its_rights() {
    let t = Tree::new("http-user-access");
    let (mut s, token) = session(&t);
    let alice = basic("alice:alice pw");
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &alice))).body, b"abc");
    assert!(one(&run(&mut s, &get_with("/", &alice))).body_text().contains("sub/"), "alice sees /sub");
    let resp = one(&run(&mut s, &get_with("/sub/file.txt", &basic("bob:bob pw"))));
    assert_eq!(resp.status, 403, "bob is logged in: no login would help");
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &basic("alice:wrong")))).status, 401);
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &bearer))).status, 200);
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", "Authorization: Bearer ferry_0_1"))).status, 401);
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", "Authorization: Digest x"))).status, 401);
}

#[test]
fn failed_logins_from_one_address_get_429() {
    let t = Tree::new("http-throttle");
    let (s, _) = session(&t);
    let mut s = s.with_peer(Some("192.0.2.9".parse().unwrap()));
    let wrong = basic("alice:wrong");
    for _ in 0..3 {
        assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &wrong))).status, 401);
    }
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &wrong))).status, 429);
    assert_eq!(one(&run(&mut s, &get_with("/sub/file.txt", &basic("alice:alice pw")))).status, 429, "barred");
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 200, "anonymous reading goes on");
}

/// A password not checked before costs the slow hash: the session leaves
/// the request unread and hands the check to a job (an event loop runs it
/// on a worker, so its other connections go on), then answers once it is
/// back; a remembered password is answered at once.
#[test]
fn a_password_not_yet_checked_is_checked_in_a_job_not_in_on_input() {
    use ferry_proto::{Now, Outbox, Session};
    let t = Tree::new("http-login-job");
    let (mut s, _) = session(&t);
    let request = format!("GET /sub/file.txt HTTP/1.1\r\nHost: t\r\n{}\r\n\r\n", basic("alice:alice pw"));
    let mut out = Outbox::new();
    let progress = s.on_input(request.as_bytes(), &mut out, Now::read());
    assert_eq!(progress.consumed, 0, "the request waits for the check");
    assert_eq!(out.queued_bytes(), 0, "nothing is answered yet");
    let job = out.take_job().expect("the password check is a job");
    out.finish_job(job());
    assert!(out.is_empty(), "the job's own answer is empty");
    let progress = s.on_input(request.as_bytes(), &mut out, Now::read());
    assert_eq!(progress.consumed, request.len());
    let mut answer = String::new();
    while let Some(ferry_proto::Chunk::Bytes(bytes)) = out.front() {
        answer.push_str(&String::from_utf8_lossy(bytes));
        let n = bytes.len() as u64;
        out.advance(n);
    }
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("abc"), "{answer}");

    // Remembered now: answered in the same pass, no job.
    let progress = s.on_input(request.as_bytes(), &mut out, Now::read());
    assert_eq!(progress.consumed, request.len());
    assert!(!out.has_job() && out.queued_bytes() > 0);
}
