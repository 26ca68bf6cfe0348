//! What an HTTP request contributes to its request record
//! ([`crate::observe`]).

use super::auth;
use super::parse::Request;
use crate::observe::Asked;

/// Longest request line or header value kept in a record.
const MAX_FIELD: usize = 2048;

/// The record's view of a parsed request whose head is `head`.
pub(super) fn asked(req: &Request<'_>, head: &[u8]) -> Asked {
    Asked {
        request: first_line(head),
        user: req.authorization.and_then(auth::basic_user),
        referer: req.referer.map(text),
        user_agent: req.user_agent.map(text),
        bytes_in: head.len() as u64,
    }
}

/// The record of input that is not a request (a malformed head): its
/// first line, as far as it arrived.
pub(super) fn malformed(input: &[u8]) -> Asked {
    Asked { request: first_line(input), bytes_in: input.len() as u64, ..Asked::default() }
}

fn first_line(head: &[u8]) -> String {
    let end = head.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(head.len());
    text(&head[..end])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_FIELD)]).into_owned()
}
