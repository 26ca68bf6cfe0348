//! Uploads on the file session without sockets: resume only of the same
//! identity, the digest checked before the rename, partials out of every
//! command's reach, the space they may take, and the sweep of stale ones.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::{FileSession, PartialLimits};
use sha2::{Digest, Sha256};

use common::files_tree::Tree;

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Sends `input` on a fresh connection of `session`, lets its jobs finish,
/// and returns what came back.
fn run(session: &mut FileSession, input: &[u8]) -> String {
    let mut pair = Pair::new(session, Timeouts::default());
    pair.send(input).finish_jobs();
    String::from_utf8_lossy(pair.received()).into_owned()
}

/// Starts `put PATH SIZE [SHA]` and sends `part` of the payload, then the
/// connection breaks.
fn interrupted_put(t: &Tree, path: &str, size: usize, digest: Option<&str>, part: &[u8]) -> String {
    let mut s = t.session(true);
    let mut pair = Pair::new(&mut s, Timeouts::default());
    let digest = digest.map(|d| format!(" {d}")).unwrap_or_default();
    pair.send(format!("put {path} {size}{digest}\n").as_bytes()).send(part).client_close();
    String::from_utf8_lossy(pair.received()).into_owned()
}

#[test]
fn an_upload_resumes_only_with_the_same_identity() {
    let t = Tree::new("identity");
    let mine = b"0123456789";
    let theirs = b"abcdefghij";
    // Someone else's upload of the same path and size breaks off.
    assert_eq!(interrupted_put(&t, "r6.bin", 10, Some(&sha(theirs)), &theirs[..4]), "OK 0\n");
    assert!(!t.0.join("r6.bin").exists(), "never visible under its final name before completion");
    // Mine does not resume their bytes...
    let mut s = t.session(true);
    let put = format!("put r6.bin 10 {}\n", sha(mine));
    assert_eq!(interrupted_put(&t, "r6.bin", 10, Some(&sha(mine)), &mine[..6]), "OK 0\n");
    // ...but resumes its own.
    let answer = run(&mut s, &[put.as_bytes(), &mine[6..], b"pwd\n"].concat());
    assert_eq!(answer, "OK 6\nOK 10\nOK /\n");
    assert_eq!(fs::read(t.0.join("r6.bin")).unwrap(), mine);
}

#[test]
fn an_upload_without_a_digest_is_never_resumed() {
    let t = Tree::new("nodigest");
    assert_eq!(interrupted_put(&t, "x.bin", 10, None, b"0123"), "OK 0\n");
    let mut s = t.session(true);
    assert_eq!(run(&mut s, b"put x.bin 10\n0123456789"), "OK 0\nOK 10\n", "nothing kept to mix in");
    assert_eq!(fs::read(t.0.join("x.bin")).unwrap(), b"0123456789");
}

#[test]
fn bytes_that_do_not_match_the_digest_are_never_committed() {
    let t = Tree::new("mismatch");
    fs::write(t.0.join("keep.bin"), b"old").unwrap();
    let mut s = t.session(true);
    let lie = sha(b"something else");
    let answer = run(&mut s, format!("put keep.bin 10 {lie}\n0123456789pwd\n").as_bytes());
    let (first, rest) = answer.split_once('\n').unwrap();
    assert_eq!(first, "OK 0");
    assert!(rest.starts_with("ERR 422 /keep.bin: does not match its announced SHA-256"), "{rest}");
    assert!(rest.ends_with("; not saved\nOK /\n"), "one line, and the connection goes on: {rest}");
    assert_eq!(fs::read(t.0.join("keep.bin")).unwrap(), b"old", "the old file stays");
    let mut s = t.session(true);
    assert_eq!(run(&mut s, format!("put keep.bin 10 {lie}\n").as_bytes()), "OK 0\n", "the bad bytes are gone");
}

#[test]
fn a_complete_partial_is_committed_without_a_payload() {
    let t = Tree::new("complete");
    let data = b"xyz";
    // All bytes arrived, but the connection broke before the answer.
    let mut s = t.session(true);
    let mut pair = Pair::new(&mut s, Timeouts::default()).hold_jobs();
    pair.send(format!("put again 3 {}\n", sha(data)).as_bytes()).send(data);
    drop(pair);
    drop(s);
    let mut s = t.session(true);
    assert_eq!(run(&mut s, format!("put again 3 {}\n", sha(data)).as_bytes()), "OK 3\nOK 3\n");
    assert_eq!(fs::read(t.0.join("again")).unwrap(), data);
}

#[test]
fn partials_are_out_of_reach_of_every_command() {
    let t = Tree::new("reach");
    assert_eq!(interrupted_put(&t, "up.bin", 10, Some(&sha(b"0123456789")), b"0123"), "OK 0\n");
    let mut s = t.session(true);
    let reserved = "ERR 400 the name .ferry-partials is reserved by the server\n";
    for cmd in [
        "ls .ferry-partials",
        "cd .ferry-partials",
        "stat .ferry-partials",
        "get .ferry-partials/x",
        "sum .ferry-partials/x",
        "rm .ferry-partials",
        "mkdir sub/.ferry-partials",
        "put .ferry-partials/x 1",
        "get sub/../.ferry-partials/x",
    ] {
        assert_eq!(run(&mut s, format!("{cmd}\n").as_bytes()), reserved, "for {cmd}");
    }
    // The names the old layout used are ordinary names now (hidden ones,
    // answered as absent).
    let hidden = "ERR 404 no such file or directory (a hidden name: the server runs without --hidden)\n";
    assert_eq!(run(&mut s, b"get .up.bin.ferry-part\n"), hidden);
    assert!(!run(&mut s, b"ls\n").contains("ferry-partials"), "hidden from listings");
    // A new upload of the same path still resumes: nothing reached it.
    let answer = run(&mut s, format!("put up.bin 10 {}\n456789", sha(b"0123456789")).as_bytes());
    assert_eq!(answer, "OK 4\nOK 10\n");
}

#[test]
fn an_upload_too_big_for_the_partials_space_is_refused_before_its_payload() {
    let t = Tree::new("limit");
    let limits = PartialLimits { max_bytes: Some(64 << 10), ..PartialLimits::default() };
    let mut s = t.session_with(limits);
    let answer = run(&mut s, b"put big.bin 100000\nping\n");
    assert!(answer.starts_with("ERR 507 insufficient storage: "), "{answer}");
    assert!(answer.contains("--max-partial-bytes") && answer.contains("/big.bin"), "{answer}");
    assert!(answer.ends_with("\nOK pong\n"), "the connection stays usable: {answer}");
}

#[test]
fn idle_partials_are_evicted_to_make_room() {
    let t = Tree::new("evict");
    let limits = PartialLimits { max_bytes: Some(64 << 10), ..PartialLimits::default() };
    let old = vec![7u8; 40 << 10];
    let mut s = t.session_with(limits);
    let mut pair = Pair::new(&mut s, Timeouts::default());
    pair.send(format!("put old.bin {} {}\n", old.len(), sha(&old)).as_bytes()).send(&old[..20 << 10]).client_close();
    drop(pair);
    // A new upload that does not fit beside it evicts the idle one.
    let new = vec![9u8; 40 << 10];
    let mut s = t.session_with(limits);
    let answer = run(&mut s, &[format!("put new.bin {} {}\n", new.len(), sha(&new)).as_bytes(), &new].concat());
    assert_eq!(answer, format!("OK 0\nOK {}\n", new.len()));
    let mut s = t.session_with(limits);
    let answer = run(&mut s, format!("put old.bin {} {}\n", old.len(), sha(&old)).as_bytes());
    assert_eq!(answer, "OK 0\n", "the evicted partial is gone");
}

#[test]
fn the_sweep_removes_stale_partials_and_spares_uploads_in_flight() {
    let t = Tree::new("sweep");
    let data = b"0123456789";
    assert_eq!(interrupted_put(&t, "stale.bin", 10, Some(&sha(data)), b"0123"), "OK 0\n");
    // An upload in flight on another connection.
    let mut busy = t.session(true);
    let mut pair = Pair::new(&mut busy, Timeouts::default());
    pair.send(format!("put busy.bin 10 {}\n01", sha(data)).as_bytes());
    assert_eq!(pair.received(), b"OK 0\n");

    let limits = PartialLimits { ttl: Duration::from_secs(3600), max_bytes: None };
    let root = std::sync::Arc::new(ferry_proto::root::Root::open(&t.0).unwrap());
    let partials = ferry_proto::files::Partials::open(&root, limits).unwrap();
    assert_eq!(partials.sweep(SystemTime::now()).removed, 0, "nothing is older than the TTL yet");
    let later = SystemTime::now() + Duration::from_secs(2 * 3600);
    assert_eq!(partials.sweep(later).removed, 1, "the stale one goes, the one in flight stays");

    pair.send(b"23456789").finish_jobs();
    assert_eq!(pair.received(), b"OK 0\nOK 10\n", "the upload in flight finished");
    drop(pair);
    let mut s = t.session(true);
    assert_eq!(run(&mut s, format!("put stale.bin 10 {}\n", sha(data)).as_bytes()), "OK 0\n", "swept");
}
