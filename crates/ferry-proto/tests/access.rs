//! The access model on its own: defaults with and without accounts, rules
//! by longest prefix, password and token logins, the accounts file's
//! round trip.

use std::time::{Duration, SystemTime};

use ferry_proto::access::{Access, AccountsFile, Identity, LoginError, Op, Rights, RuleEntry};
use ferry_proto::root::VirtualPath;

fn vp(p: &str) -> VirtualPath {
    VirtualPath::parse_absolute(p.as_bytes()).unwrap()
}

fn accounts() -> AccountsFile {
    let mut file = AccountsFile::default();
    file.set_password("alice", "correct horse").unwrap();
    file.set_password("bob", "battery staple").unwrap();
    file
}

fn rule(who: &str, path: &str, allow: &[Op]) -> RuleEntry {
    RuleEntry { who: who.into(), path: path.into(), allow: allow.to_vec() }
}

#[test]
fn without_accounts_everyone_has_todays_rights() {
    let anon = Identity::Anonymous;
    assert_eq!(Access::open(false).rights(&anon, &vp("/x")), Rights::READ_ONLY);
    assert_eq!(Access::open(true).rights(&anon, &vp("/x")), Rights::ALL);
    assert_eq!(Access::open(true).login("alice", "x"), Err(LoginError::NoAccounts));
}

#[test]
fn with_accounts_and_no_rules_anonymous_gets_nothing_and_accounts_get_the_rest() {
    let access = Access::with_accounts(accounts(), true).unwrap();
    let denied = access.check(&Identity::Anonymous, Op::Read, &vp("/a")).unwrap_err();
    assert!(denied.login_may_help);
    let alice = access.login("alice", "correct horse").unwrap();
    assert_eq!(access.rights(&alice, &vp("/a")), Rights::ALL);
    let read_only = Access::with_accounts(accounts(), false).unwrap();
    assert_eq!(read_only.rights(&alice, &vp("/a")), Rights::READ_ONLY, "--allow-write stays the master switch");
}

#[test]
fn public_read_and_uploads_into_incoming_for_accounts() {
    let mut file = accounts();
    file.rules = vec![
        rule("anonymous", "/", &[Op::List, Op::Read]),
        rule("*", "/", &[Op::List, Op::Read]),
        rule("*", "/incoming", &[Op::List, Op::Write]),
        rule("alice", "/", &[Op::List, Op::Read, Op::Write, Op::Delete]),
    ];
    let access = Access::with_accounts(file, true).unwrap();
    let anon = Identity::Anonymous;
    let bob = access.login("bob", "battery staple").unwrap();
    let alice = access.login("alice", "correct horse").unwrap();
    assert!(access.check(&anon, Op::Read, &vp("/pub/f")).is_ok());
    let denied = access.check(&anon, Op::Write, &vp("/incoming/f")).unwrap_err();
    assert_eq!((denied.op, denied.login_may_help), (Op::Write, true));
    assert!(access.check(&bob, Op::Write, &vp("/incoming/f")).is_ok());
    assert!(access.check(&bob, Op::Read, &vp("/incoming/f")).is_err(), "a drop box: no reading back");
    let denied = access.check(&bob, Op::Delete, &vp("/pub/f")).unwrap_err();
    assert!(!denied.login_may_help, "bob is logged in already");
    assert!(access.check(&alice, Op::Delete, &vp("/pub/f")).is_ok(), "alice's own rule");
    assert!(
        access.check(&alice, Op::Delete, &vp("/incoming/f")).is_err(),
        "the longest prefix wins, even over a rule of the user's own on a shorter one"
    );
}

#[test]
fn passwords_are_checked_and_never_stored() {
    let file = accounts();
    assert!(file.users["alice"].password.starts_with("$argon2id$"));
    assert!(!file.users["alice"].password.contains("correct horse"));
    let access = Access::with_accounts(file, true).unwrap();
    assert_eq!(access.login("alice", "wrong"), Err(LoginError::BadPassword));
    assert_eq!(access.login("nobody", "correct horse"), Err(LoginError::BadPassword));
    assert!(access.login("alice", "correct horse").is_ok());
    assert!(access.login("alice", "correct horse").is_ok(), "remembered");
    assert_eq!(access.login("alice", "correct horsE"), Err(LoginError::BadPassword));
}

#[test]
fn tokens_act_as_their_user_within_their_rights_until_they_expire() {
    let mut file = accounts();
    let now = SystemTime::now();
    let read = file.add_token("alice", Rights::READ_ONLY, Some(now + Duration::from_secs(3600))).unwrap();
    let forever = file.add_token("bob", Rights::ALL, None).unwrap();
    assert!(file.add_token("carol", Rights::ALL, None).is_err());
    assert!(file.tokens.values().all(|t| !read.contains(&t.sha256)), "only the hash is stored");
    let access = Access::with_accounts(file, true).unwrap();
    let alice = access.login_token(&read, now).unwrap();
    assert_eq!(alice.name(), Some("alice"));
    assert_eq!(access.rights(&alice, &vp("/x")), Rights::READ_ONLY);
    assert_eq!(access.login_token(&read, now + Duration::from_secs(7200)), Err(LoginError::Expired));
    assert_eq!(access.rights(&access.login_token(&forever, now).unwrap(), &vp("/x")), Rights::ALL);
    let mut forged = read.clone();
    forged.pop();
    forged.push(if read.ends_with('0') { '1' } else { '0' });
    assert_eq!(access.login_token(&forged, now), Err(LoginError::BadToken));
    assert_eq!(access.login_token("ferry_nope", now), Err(LoginError::BadToken));
}

#[test]
fn the_file_round_trips_and_bad_rules_are_refused() {
    let dir = std::env::temp_dir().join(format!("ferry-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("accounts.toml");
    let mut file = accounts();
    file.rules = vec![rule("anonymous", "/pub", &[Op::List, Op::Read])];
    file.save(&path).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "hashes are for the owner only");
    let back = AccountsFile::load(&path, false).unwrap();
    let access = Access::with_accounts(back, true).unwrap();
    assert!(access.login("bob", "battery staple").is_ok());
    assert!(access.check(&Identity::Anonymous, Op::Read, &vp("/pub/a")).is_ok());
    std::fs::write(&path, "[[rule]]\nwho = \"*\"\npath = \"/a/../..\"\nallow = [\"read\"]\n").unwrap();
    let err = Access::with_accounts(AccountsFile::load(&path, false).unwrap(), true).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
    std::fs::write(&path, "[users.x]\npasword = \"typo\"\n").unwrap();
    let err = AccountsFile::load(&path, false).unwrap_err();
    assert!(err.to_string().contains("accounts.toml"), "names the file: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
