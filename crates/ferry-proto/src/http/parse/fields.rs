//! Field values of a request head: the `Transfer-Encoding` codings,
//! `Host`, and the small readers (trim, decimal) other headers share.

/// What the `Transfer-Encoding` codings seen so far (across all the
/// header's lines, in order) amount to.
#[derive(Debug, Clone, Copy)]
pub(super) enum TransferEncoding {
    Absent,
    /// Only `chunked`.
    Chunked,
    /// Other codings, the last one not `chunked`: 501.
    Unknown,
    /// Other codings, then `chunked` last (`gzip, chunked`): 501.
    UnknownThenChunked,
    /// A coding after `chunked` (`chunked, gzip`, `chunked, chunked`):
    /// RFC 9112 sections 6.1 and 6.3 make it 400.
    ChunkedNotLast,
}

impl TransferEncoding {
    /// The state after one more coding.
    pub(super) fn then(self, chunked: bool) -> TransferEncoding {
        match self {
            TransferEncoding::Chunked | TransferEncoding::UnknownThenChunked | TransferEncoding::ChunkedNotLast => {
                TransferEncoding::ChunkedNotLast
            }
            TransferEncoding::Absent if chunked => TransferEncoding::Chunked,
            TransferEncoding::Absent | TransferEncoding::Unknown if chunked => TransferEncoding::UnknownThenChunked,
            TransferEncoding::Absent | TransferEncoding::Unknown => TransferEncoding::Unknown,
        }
    }
}

/// True when a `Host` value is `host [":" port]` with `host` as RFC 3986
/// section 3.2.2 has it: an IP literal in brackets, or a reg-name
/// (unreserved, sub-delims and `%XX` escapes; IPv4 addresses are among
/// them). Empty is valid (RFC 9112 section 3.2). Spaces, control bytes and
/// other delimiters are not.
pub(super) fn valid_host(value: &[u8]) -> bool {
    let (host_ok, port) = match value.strip_prefix(b"[") {
        Some(rest) => match rest.iter().position(|&b| b == b']') {
            Some(end) => {
                let literal = &rest[..end];
                let ok = !literal.is_empty() && literal.iter().all(|&b| unreserved_or_sub_delim(b) || b == b':');
                (ok, &rest[end + 1..])
            }
            None => return false,
        },
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            (reg_name(&value[..end]), &value[end..])
        }
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    host_ok && port_ok
}

/// RFC 3986 `reg-name`: unreserved, sub-delims and `%XX` escapes.
fn reg_name(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&b) = name.get(at) {
        if b == b'%' {
            match name.get(at + 1..at + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => at += 3,
                _ => return false,
            }
        } else if unreserved_or_sub_delim(b) {
            at += 1;
        } else {
            return false;
        }
    }
    true
}

/// RFC 3986 `unreserved` or `sub-delims`.
fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// A header value without surrounding spaces and tabs.
pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_space(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_space(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// A non-empty string of ASCII digits as a number; `None` on anything else
/// or on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}
