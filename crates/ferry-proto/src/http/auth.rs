//! Who an HTTP request comes from (`Authorization: Basic` or `Bearer`),
//! and whether the access rules let them: 401 with `WWW-Authenticate`
//! where logging in could help, 403 where it could not.

use crate::access::PeerId;
use std::time::SystemTime;

use super::errors::HttpError;
use crate::access::{Access, Identity, LoginError, Op};
use crate::vpath::VirtualPath;

/// The identity a request's `Authorization` value proves; wrong or
/// malformed credentials are 401, so a browser asks again.
pub(crate) fn identify(
    access: &Access,
    authorization: Option<&[u8]>,
    peer: Option<PeerId>,
    now: SystemTime,
) -> Result<Identity, HttpError> {
    let Some(value) = authorization else {
        return Ok(Identity::Anonymous);
    };
    access.login_from(peer, now, |access| credentials(access, value, now)).map_err(|e| match e {
        LoginError::Barred(_) => HttpError::TooManyRequests,
        _ => HttpError::Unauthorized,
    })
}

/// Checks the credentials of an `Authorization` value.
fn credentials(access: &Access, value: &[u8], now: SystemTime) -> Result<Identity, LoginError> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ').unwrap_or(value.len()));
    let credentials = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = decode_base64(credentials).ok_or(LoginError::BadPassword)?;
        let text = String::from_utf8(decoded).map_err(|_| LoginError::BadPassword)?;
        let (user, password) = text.split_once(':').ok_or(LoginError::BadPassword)?;
        access.login(user, password)
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
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
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
