//! `Accept-Encoding` (RFC 9110 section 12.5.3): which content coding a
//! client takes, by its q-values first and the server's preference second.

use super::Coding;
use crate::http::parse::trim;

/// A q-value in thousandths (0..=1000).
type Q = u16;

/// What a client said about each coding ferry makes, and about identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The q-value of each coding, in [`Coding::ALL`] order (0: not taken).
    q: [Q; 3],
    /// The q-value of `identity`: as given, 0 when excluded by `*;q=0`,
    /// else 1 (acceptable, but after any coding the client lists).
    identity: Q,
}

impl Accepted {
    /// Parses an `Accept-Encoding` value; `None` (no header) takes no coding
    /// (RFC 9110: a server may then pick any, but a client that did not ask
    /// may not decode, so identity is the safe answer).
    pub(crate) fn parse(value: Option<&[u8]>) -> Accepted {
        let mut accepted = Accepted { q: [0; 3], identity: 1 };
        let Some(value) = value else { return accepted };
        let (mut star, mut explicit, mut identity) = (None, [None::<Q>; 3], None);
        for item in value.split(|&b| b == b',') {
            let mut parts = item.split(|&b| b == b';');
            let name = trim(parts.next().unwrap_or_default());
            if name.is_empty() {
                continue;
            }
            let mut q = Some(1000);
            for param in parts {
                let param = trim(param);
                if param.len() >= 2 && param[..2].eq_ignore_ascii_case(b"q=") {
                    q = parse_q(trim(&param[2..]));
                }
            }
            // A malformed q-value makes the whole entry unusable.
            let Some(q) = q else { continue };
            if name == b"*" {
                star = Some(q);
            } else if name.eq_ignore_ascii_case(b"identity") {
                identity = Some(q);
            } else if let Some(coding) = Coding::from_token(name) {
                let slot = &mut explicit[coding as usize];
                // Listed twice (gzip and x-gzip): the better one counts.
                *slot = Some(slot.map_or(q, |old| old.max(q)));
            }
        }
        for (i, q) in explicit.iter().enumerate() {
            accepted.q[i] = q.or(star).unwrap_or(0);
        }
        // Identity is acceptable unless excluded by name or by `*;q=0`; not
        // named, it ranks below every coding the client does name.
        accepted.identity = identity.or(star.filter(|&q| q == 0)).unwrap_or(1);
        accepted
    }

    /// The q-value of `coding`.
    pub(crate) fn q(&self, coding: Coding) -> Q {
        self.q[coding as usize]
    }

    /// The codings the client takes, best first: by q-value, then by the
    /// server's preference ([`Coding::ALL`] order). Codings the client
    /// values below identity are left out (it asked for identity first).
    pub(crate) fn ranked(&self) -> impl Iterator<Item = Coding> + '_ {
        let mut order = Coding::ALL;
        // A stable sort keeps the server's order among equal q-values.
        order.sort_by_key(|&c| std::cmp::Reverse(self.q(c)));
        order.into_iter().filter(|&c| self.q(c) > 0 && self.q(c) >= self.identity)
    }

    /// The best coding the client takes among those `available` says
    /// exist, if any beats identity.
    pub(crate) fn best(&self, available: impl Fn(Coding) -> bool) -> Option<Coding> {
        self.ranked().find(|&c| available(c))
    }
}

/// `0`, `0.5`, `1.000`...: at most three decimals, at most 1.
fn parse_q(text: &[u8]) -> Option<Q> {
    let (int, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Q = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| Q::from(d - b'0'));
    }
    match int[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    fn best(value: &str) -> Option<Coding> {
        Accepted::parse(Some(value.as_bytes())).best(|_| true)
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q(b"0"), Some(0));
        assert_eq!(parse_q(b"1"), Some(1000));
        assert_eq!(parse_q(b"1.000"), Some(1000));
        assert_eq!(parse_q(b"0.5"), Some(500));
        assert_eq!(parse_q(b"0.125"), Some(125));
        assert_eq!(parse_q(b"0."), Some(0));
        assert_eq!(parse_q(b"1.5"), None);
        assert_eq!(parse_q(b"0.1234"), None);
        assert_eq!(parse_q(b"2"), None);
        assert_eq!(parse_q(b".5"), None);
        assert_eq!(parse_q(b""), None);
    }

    #[test]
    fn server_preference_breaks_ties() {
        // What browsers send: every coding at q=1.
        assert_eq!(best("gzip, deflate, br, zstd"), Some(Zstd));
        assert_eq!(best("gzip, deflate, br"), Some(Br));
        assert_eq!(best("gzip"), Some(Gzip));
        assert_eq!(best("x-gzip"), Some(Gzip));
        assert_eq!(best("GZIP ; Q=1"), Some(Gzip));
        assert_eq!(best("*"), Some(Zstd));
    }

    #[test]
    fn q_values_come_first() {
        assert_eq!(best("zstd;q=0.5, gzip;q=0.8, br;q=0.1"), Some(Gzip));
        assert_eq!(best("br;q=0.9, *;q=0.1"), Some(Br));
        assert_eq!(best("zstd;q=0, *"), Some(Br));
        let accepted = Accepted::parse(Some(b"gzip;q=0.2, br;q=0.9, zstd;q=0.5"));
        assert_eq!(accepted.ranked().collect::<Vec<_>>(), [Br, Zstd, Gzip]);
        assert_eq!(accepted.best(|c| c != Br), Some(Zstd));
    }

    #[test]
    fn identity_and_nothing() {
        assert_eq!(Accepted::parse(None).best(|_| true), None);
        assert_eq!(best(""), None);
        assert_eq!(best("identity"), None);
        assert_eq!(best("deflate, compress"), None);
        assert_eq!(best("gzip;q=0"), None);
        assert_eq!(best("gzip;q=0.5"), Some(Gzip));
        // The client prefers identity to gzip.
        assert_eq!(best("gzip;q=0.5, identity"), None);
        assert_eq!(best("gzip;q=0.5, identity;q=0.5"), Some(Gzip));
        assert_eq!(best("gzip, identity;q=0"), Some(Gzip));
        // A malformed q drops the entry, not the header.
        assert_eq!(best("zstd;q=high, gzip"), Some(Gzip));
        assert_eq!(best(",,gzip;q=0.3,"), Some(Gzip));
    }
}
