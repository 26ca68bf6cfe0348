//! Who an HTTP request comes from (`Authorization: Basic` or `Bearer`),
//! and whether the access rules let them: 401 with `WWW-Authenticate`
//! where logging in could help, 403 where it could not.
//!
//! A password not checked before costs the slow hash (tens of
//! milliseconds): [`slow_login`] makes that check a job, so an event loop
//! hands it to a worker; the request waits unanswered meanwhile and is
//! answered with the job's outcome ([`Checked`]) once it is back.

use std::sync::{Arc, Mutex, PoisonError};

use crate::access::PeerId;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::errors::HttpError;
use crate::access::{Access, Identity, LoginError, Op};
use crate::vpath::VirtualPath;

/// The outcome of a login a job checked, for the request that waited.
#[derive(Debug)]
pub(crate) struct Checked {
    /// SHA-256 of the `Authorization` value it is for.
    key: [u8; 32],
    result: Result<Identity, HttpError>,
}

/// Where a login job leaves its outcome.
pub(crate) type LoginSlot = Arc<Mutex<Option<Checked>>>;

/// The identity a request's `Authorization` value proves; wrong or
/// malformed credentials are 401, so a browser asks again. `checked`: the
/// outcome of a login job run for this request, used if it is for the same
/// value (so the check, and a failure, count once).
pub(crate) fn identify(
    access: &Access,
    authorization: Option<&[u8]>,
    peer: Option<PeerId>,
    now: SystemTime,
    checked: Option<Checked>,
) -> Result<Identity, HttpError> {
    let Some(value) = authorization else {
        return Ok(Identity::Anonymous);
    };
    if let Some(checked) = checked
        && checked.key == key(value)
    {
        return checked.result;
    }
    check_now(access, value, peer, now)
}

/// A job that checks `authorization` when it holds a password the slow
/// hash has to check, and the slot it fills; `None` when [`identify`] is
/// quick (no credentials, a token, a remembered or malformed password).
pub(crate) fn slow_login(
    access: &Arc<Access>,
    authorization: Option<&[u8]>,
    peer: Option<PeerId>,
    now: SystemTime,
) -> Option<(LoginSlot, impl FnOnce() -> Vec<u8> + Send + 'static)> {
    let value = authorization?;
    let (user, password) = basic(value)?;
    if !access.login_is_slow(&user, &password) {
        return None;
    }
    let slot: LoginSlot = Arc::default();
    let (filled, access, value) = (Arc::clone(&slot), Arc::clone(access), value.to_vec());
    let job = move || {
        let result = check_now(&access, &value, peer, now);
        *filled.lock().unwrap_or_else(PoisonError::into_inner) = Some(Checked { key: key(&value), result });
        // No bytes: the request is answered by the session once it is back.
        Vec::new()
    };
    Some((slot, job))
}

/// Checks the credentials now (slow for a password not remembered).
fn check_now(access: &Access, value: &[u8], peer: Option<PeerId>, now: SystemTime) -> Result<Identity, HttpError> {
    access.login_from(peer, now, |access| credentials(access, value, now)).map_err(|e| match e {
        LoginError::Barred(_) => HttpError::TooManyRequests,
        _ => HttpError::Unauthorized,
    })
}

fn key(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// The user name a `Basic` value gives (for the access log), checked
/// or not.
pub(crate) fn basic_user(value: &[u8]) -> Option<String> {
    basic(value).map(|(user, _)| user)
}

/// The name and password of a `Basic` value, if it is one.
fn basic(value: &[u8]) -> Option<(String, String)> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ').unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let text = String::from_utf8(decode_base64(rest.trim_ascii())?).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Checks the credentials of an `Authorization` value.
fn credentials(access: &Access, value: &[u8], now: SystemTime) -> Result<Identity, LoginError> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ').unwrap_or(value.len()));
    let credentials = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case(b"basic") {
        let (user, password) = basic(value).ok_or(LoginError::BadPassword)?;
        access.login(&user, &password)
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        let token = std::str::from_utf8(credentials).map_err(|_| LoginError::BadToken)?;
        access.login_token(token, now)
    } else {
        Err(LoginError::BadToken)
    }
}

/// Allows `op` at `path` for `who`, or the status that refuses it.
pub(crate) fn check(access: &Access, who: &Identity, op: Op, path: &VirtualPath) -> Result<(), HttpError> {
    access
        .check(who, op, path)
        .map_err(|denied| if denied.login_may_help { HttpError::Unauthorized } else { HttpError::Forbidden })
}

/// Standard base64 with padding (what `Basic` credentials use).
pub(crate) fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (i, chunk) in text.chunks(4).enumerate() {
        let last = i + 1 == text.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_basic_credentials() {
        assert_eq!(decode_base64(b"YWxpY2U6cHc=").as_deref(), Some(&b"alice:pw"[..]));
        assert_eq!(decode_base64(b"YTpi").as_deref(), Some(&b"a:b"[..]));
        assert_eq!(decode_base64(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64(b"YQ="), None);
        assert_eq!(decode_base64(b"Y===").as_deref(), None);
        assert_eq!(decode_base64(b"YQ==YQ=="), None);
        assert_eq!(decode_base64(b"a!b="), None);
    }
}
