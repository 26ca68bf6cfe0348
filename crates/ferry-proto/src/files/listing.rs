//! Answers the file session computes in jobs: a directory's listing (only
//! the entries the client may see) and a login.

use crate::access::PeerId;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::SystemTime;

use super::answer::{Failure, err_line, ok_line};
use super::escape::escape_text;
use super::request::Credentials;
use crate::access::{Access, Identity, LoginError, Rights};
use crate::root::{Entry, Kind, VirtualPath};

pub(super) fn kind_letter(kind: Kind) -> char {
    match kind {
        Kind::File => 'f',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Other => 'o',
    }
}

/// `ls`'s payload: one line per entry of `dir` that `who` has any right
/// to, so a listing never shows what its reader may not touch.
pub(super) fn render_listing(entries: &[Entry], dir: &VirtualPath, access: &Access, who: &Identity) -> Vec<u8> {
    let mut text = Vec::with_capacity(entries.len() * 40);
    for e in entries {
        if access.rights(who, &dir.join_name(&e.name)) == Rights::NONE {
            continue;
        }
        let _ = writeln!(
            text,
            "{} {} {} {}",
            kind_letter(e.meta.kind),
            e.meta.size,
            e.meta.mtime,
            escape_text(e.name.as_bytes())
        );
    }
    text
}

/// `auth`: checks the credentials (slow for passwords: run in a job) and
/// makes the connection act as their account, or as nobody if they fail.
pub(super) fn log_in(
    access: &Access,
    credentials: &Credentials,
    (peer, now): (Option<PeerId>, SystemTime),
    slot: &Mutex<Identity>,
    line: &mut Vec<u8>,
) {
    let result = access.login_from(peer, now, |access| match credentials {
        Credentials::Password { user, password } => access.login(user, password),
        Credentials::Token(token) => access.login_token(token, now),
    });
    let who = result.clone().unwrap_or_default();
    if let Ok(mut current) = slot.lock() {
        *current = who;
    }
    match result {
        Ok(who) => ok_line(line, &format!("user {}", escape_text(who.name().unwrap_or_default().as_bytes()))),
        Err(e) => {
            let code = if matches!(e, LoginError::Barred(_)) { 429 } else { 401 };
            err_line(line, &Failure::new(code, e.to_string()));
        }
    }
}
