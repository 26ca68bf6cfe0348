//! The file session under an access model: `auth`, per-path rights for
//! two users and anonymous across every command, listings that show only
//! what the reader may touch, and refusals that leave the connection
//! usable.

mod common;

use std::fs;
use std::sync::Arc;

use ferry_proto::access::{Access, AccountsFile, Op, RuleEntry};
use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::{FileSession, FilesConfig};
use ferry_proto::root::Root;

use common::files_tree::Tree;

fn rule(who: &str, path: &str, allow: &[Op]) -> RuleEntry {
    RuleEntry { who: who.into(), path: path.into(), allow: allow.to_vec() }
}

/// Public read of everything but /sub, uploads into /sub for accounts,
/// everything for alice.
fn access() -> Arc<Access> {
    let mut file = AccountsFile::default();
    file.set_password("alice", "alice pw").unwrap();
    file.set_password("bob", "bob pw").unwrap();
    file.rules = vec![
        rule("anonymous", "/", &[Op::List, Op::Read]),
        rule("anonymous", "/sub", &[]),
        rule("*", "/", &[Op::List, Op::Read]),
        rule("*", "/sub", &[Op::List, Op::Write]),
        rule("alice", "/sub", &[Op::List, Op::Read, Op::Write, Op::Delete]),
    ];
    Arc::new(Access::with_accounts(file, true).unwrap())
}

fn session(t: &Tree) -> FileSession {
    let root = Arc::new(Root::open(&t.0).unwrap());
    FileSession::new(FilesConfig::new(root, true).unwrap().with_access(access()))
}

fn run(s: &mut FileSession, input: &str) -> String {
    let mut pair = Pair::new(s, Timeouts::default());
    pair.send(input.as_bytes()).finish_jobs();
    String::from_utf8_lossy(pair.received()).into_owned()
}

#[test]
fn anonymous_reads_the_public_part_and_nothing_else() {
    let t = Tree::new("anon-access");
    let mut s = session(&t);
    assert!(run(&mut s, "get hello.txt\n").starts_with("OK 13 0 13 "));
    let hint = "(log in: auth USER PASSWORD)";
    assert_eq!(run(&mut s, "get sub/file.txt\n"), format!("ERR 403 read not allowed on /sub/file.txt {hint}\n"));
    assert_eq!(run(&mut s, "cd sub\n"), format!("ERR 403 list not allowed on /sub {hint}\n"));
    assert_eq!(run(&mut s, "put x 1\n"), format!("ERR 403 write not allowed on /x {hint}\n"));
    assert_eq!(run(&mut s, "rm hello.txt\n"), format!("ERR 403 delete not allowed on /hello.txt {hint}\n"));
    let listing = run(&mut s, "ls\n");
    assert!(listing.contains(" hello.txt\n") && !listing.contains(" sub\n"), "listing hides /sub: {listing}");
    assert_eq!(run(&mut s, "pwd\n"), "OK /\n", "the connection stays usable");
}

#[test]
fn each_account_gets_its_own_rights() {
    let t = Tree::new("user-access");
    let mut bob = session(&t);
    assert_eq!(run(&mut bob, "auth bob \"bob pw\"\n"), "OK user bob\n");
    assert_eq!(run(&mut bob, "put sub/drop.txt 2\nhi"), "OK 0\nOK 2\n", "bob may upload into /sub");
    assert_eq!(fs::read(t.0.join("sub/drop.txt")).unwrap(), b"hi");
    assert_eq!(run(&mut bob, "get sub/drop.txt\n"), "ERR 403 read not allowed on /sub/drop.txt\n");
    assert_eq!(run(&mut bob, "rm sub/drop.txt\n"), "ERR 403 delete not allowed on /sub/drop.txt\n");
    assert_eq!(run(&mut bob, "put top.txt 1\n"), "ERR 403 write not allowed on /top.txt\n");

    let mut alice = session(&t);
    assert_eq!(run(&mut alice, "auth alice \"alice pw\"\n"), "OK user alice\n");
    assert!(run(&mut alice, "get sub/drop.txt\n").starts_with("OK 2 0 2 "));
    assert_eq!(run(&mut alice, "rm sub/drop.txt\nmkdir sub/new\n"), "OK\nOK\n");
    assert_eq!(run(&mut alice, "rm hello.txt\n"), "ERR 403 delete not allowed on /hello.txt\n");
}

#[test]
fn a_failed_login_says_401_and_leaves_the_connection_anonymous() {
    let t = Tree::new("bad-login");
    let mut s = session(&t);
    assert_eq!(run(&mut s, "auth alice \"alice pw\"\n"), "OK user alice\n");
    assert_eq!(run(&mut s, "auth alice nope\n"), "ERR 401 wrong user name or password\n");
    let hint = "(log in: auth USER PASSWORD)";
    assert_eq!(run(&mut s, "cd sub\n"), format!("ERR 403 list not allowed on /sub {hint}\n"), "logged out");
    assert_eq!(run(&mut s, "auth token ferry_00_11\n"), "ERR 401 invalid token\n");
    assert_eq!(run(&mut s, "auth alice\n"), "ERR 400 usage: auth USER PASSWORD | auth token TOKEN\n");
    // Pipelined after a login: answered as the new account.
    assert_eq!(run(&mut s, "auth alice \"alice pw\"\ncd sub\n"), "OK user alice\nOK /sub\n");
}

#[test]
fn without_accounts_auth_is_refused_and_everything_works_as_before() {
    let t = Tree::new("no-accounts");
    let mut s = t.session(true);
    assert_eq!(run(&mut s, "auth alice pw\n"), "ERR 401 this server has no accounts\n");
    assert_eq!(run(&mut s, "put x 1\nx"), "OK 0\nOK 1\n");
}

#[test]
fn failed_logins_from_one_address_are_slowed_down() {
    let t = Tree::new("throttle");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let config = FilesConfig::new(root, true).unwrap().with_access(access());
    let attacker = Some("192.0.2.7".parse::<std::net::IpAddr>().unwrap().into());
    let mut s = FileSession::new(config.clone()).with_peer(attacker);
    for _ in 0..3 {
        assert_eq!(run(&mut s, "auth alice guess\n"), "ERR 401 wrong user name or password\n");
    }
    let barred = "ERR 429 too many failed logins from this address; try again in 2 s\n";
    assert_eq!(run(&mut s, "auth alice guess\n"), barred);
    // Even the right password waits out the bar, on a new connection too.
    let mut again = FileSession::new(config.clone()).with_peer(attacker);
    assert_eq!(run(&mut again, "auth alice \"alice pw\"\n"), barred);
    // Another address is not held back.
    let mut other = FileSession::new(config).with_peer(Some("192.0.2.8".parse::<std::net::IpAddr>().unwrap().into()));
    assert_eq!(run(&mut other, "auth alice \"alice pw\"\n"), "OK user alice\n");
}
