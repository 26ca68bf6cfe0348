//! `Range: bytes=...` for one range. Several ranges are answered with the
//! whole file (RFC 9110 lets a server ignore `Range`), which spares a
//! multipart encoder nobody here needs.

use super::parse::{parse_decimal, trim};

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// Send the whole file (no usable range: invalid syntax, other units,
    /// several ranges).
    Full,
    /// Send `len` bytes from `start` (206).
    Partial { start: u64, len: u64 },
    /// Nothing of the file is in the range (416).
    Unsatisfiable,
}

/// Evaluates a `Range` header value against a file of `size` bytes.
pub(crate) fn evaluate(value: &[u8], size: u64) -> RangeAnswer {
    let value = trim(value);
    let Some(unit) = value.get(..6) else {
        return RangeAnswer::Full;
    };
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return RangeAnswer::Full;
    }
    let spec = trim(&value[6..]);
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    if first.is_empty() {
        // `-n`: the last n bytes.
        return match number(last) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => {
                let len = n.min(size);
                RangeAnswer::Partial { start: size - len, len }
            }
        };
    }
    let Some(start) = number(first) else {
        return RangeAnswer::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    let end = end.min(size - 1);
    RangeAnswer::Partial { start, len: end - start + 1 }
}

/// Digits as a number; digits too many for u64 still mean "huge", which
/// is what a range bound that large means.
fn number(digits: &[u8]) -> Option<u64> {
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        Some(parse_decimal(digits).unwrap_or(u64::MAX))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::*;
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(evaluate(b"bytes=0-4", 13), Partial { start: 0, len: 5 });
        assert_eq!(evaluate(b"bytes=7-", 13), Partial { start: 7, len: 6 });
        assert_eq!(evaluate(b"bytes=-6", 13), Partial { start: 7, len: 6 });
        assert_eq!(evaluate(b"bytes=-100", 13), Partial { start: 0, len: 13 });
        assert_eq!(evaluate(b"bytes=5-100", 13), Partial { start: 5, len: 8 });
        assert_eq!(evaluate(b"Bytes = 12-12 ", 13), Full, "no spaces around '='");
        assert_eq!(evaluate(b"BYTES=12-12 ", 13), Partial { start: 12, len: 1 });
        assert_eq!(evaluate(b"bytes=0-99999999999999999999999", 13), Partial { start: 0, len: 13 });
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(evaluate(b"bytes=13-", 13), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=99999999999999999999999-", 13), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-0", 13), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-5", 0), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=5-4", 13), Full);
        assert_eq!(evaluate(b"bytes=0-1,3-4", 13), Full);
        assert_eq!(evaluate(b"items=0-1", 13), Full);
        assert_eq!(evaluate(b"bytes=a-b", 13), Full);
        assert_eq!(evaluate(b"bytes=-", 13), Full);
        assert_eq!(evaluate(b"bytes=", 13), Full);
    }
}
