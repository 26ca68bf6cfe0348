//! How names travel inside the text lines of the file protocol.
//!
//! Linux names are bytes and may hold spaces, quotes, newlines or invalid
//! UTF-8, while protocol lines are UTF-8 text ended by `\n`. Two rules,
//! shared by server and client so they round-trip exactly:
//! - **Arguments** in requests are words separated by spaces or tabs. A word
//!   may be wrapped in double quotes to hold spaces. Inside or outside
//!   quotes, `\\`, `\"`, `\n`, `\r`, `\t` and `\xHH` are escapes.
//! - **Text** in responses (a path, a listing name) is printed as is, except
//!   that `\`, control characters and bytes that are not UTF-8 are written
//!   as the same escapes, so a response line never breaks.

use std::fmt::Write as _;

/// Why a request line could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A `"` was opened and never closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// A `\` was followed by something that is not an escape.
    #[error("bad escape sequence")]
    BadEscape,
}

/// Splits a request line (without its line ending) into words, applying
/// quotes and escapes. Words are bytes: `\xHH` may produce any byte.
pub fn split_words(line: &str) -> Result<Vec<Vec<u8>>, SplitError> {
    let mut words = Vec::new();
    let mut bytes = line.bytes().peekable();
    loop {
        while matches!(bytes.peek(), Some(b' ' | b'\t')) {
            bytes.next();
        }
        if bytes.peek().is_none() {
            return Ok(words);
        }
        let mut word = Vec::new();
        let mut quoted = false;
        loop {
            match bytes.next() {
                None if quoted => return Err(SplitError::UnterminatedQuote),
                None => break,
                Some(b'"') => quoted = !quoted,
                Some(b' ' | b'\t') if !quoted => break,
                Some(b'\\') => word.push(unescape_one(&mut bytes)?),
                Some(b) => word.push(b),
            }
        }
        words.push(word);
    }
}

fn unescape_one(bytes: &mut impl Iterator<Item = u8>) -> Result<u8, SplitError> {
    match bytes.next() {
        Some(b'\\') => Ok(b'\\'),
        Some(b'"') => Ok(b'"'),
        Some(b'n') => Ok(b'\n'),
        Some(b'r') => Ok(b'\r'),
        Some(b't') => Ok(b'\t'),
        Some(b'x') => {
            let hi = bytes.next().and_then(hex_digit).ok_or(SplitError::BadEscape)?;
            let lo = bytes.next().and_then(hex_digit).ok_or(SplitError::BadEscape)?;
            Ok(hi << 4 | lo)
        }
        _ => Err(SplitError::BadEscape),
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Writes `bytes` as one request word: bare if it needs no quoting,
/// otherwise quoted with escapes. [`split_words`] gives `bytes` back.
pub fn quote_word(bytes: &[u8]) -> String {
    let bare = !bytes.is_empty() && bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if bare {
        // All bytes are printable ASCII here.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::from("\"");
    escape_into(&mut out, bytes, true);
    out.push('"');
    out
}

/// Writes `bytes` as response text: as is, but with `\`, control
/// characters and invalid UTF-8 escaped. [`unescape_text`] reverses it.
pub fn escape_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes, false);
    out
}

fn escape_into(out: &mut String, mut bytes: &[u8], quote: bool) {
    while !bytes.is_empty() {
        let (valid, rest) = match std::str::from_utf8(bytes) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                // `valid_up_to` marks a UTF-8 prefix, so this cannot fail.
                (std::str::from_utf8(good).unwrap_or_default(), bad)
            }
        };
        for c in valid.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' if quote => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        if let Some((&bad, tail)) = rest.split_first() {
            let _ = write!(out, "\\x{bad:02x}");
            bytes = tail;
        } else {
            bytes = rest;
        }
    }
}

/// Reverses [`escape_text`].
pub fn unescape_text(text: &str) -> Result<Vec<u8>, SplitError> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            out.push(unescape_one(&mut bytes)?);
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_bare_and_quoted_words() {
        assert_eq!(split_words("get  a.txt 10").unwrap(), vec![b"get".to_vec(), b"a.txt".to_vec(), b"10".to_vec()]);
        assert_eq!(split_words(r#"cd "my dir""#).unwrap(), vec![b"cd".to_vec(), b"my dir".to_vec()]);
        assert_eq!(split_words(r#"cd my\x20dir"#).unwrap(), vec![b"cd".to_vec(), b"my dir".to_vec()]);
        assert_eq!(split_words(r#"ls """#).unwrap(), vec![b"ls".to_vec(), b"".to_vec()]);
        assert_eq!(split_words("   ").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split_words(r#"cd "open"#), Err(SplitError::UnterminatedQuote));
        assert_eq!(split_words(r"cd \q"), Err(SplitError::BadEscape));
        assert_eq!(split_words(r"cd \x4"), Err(SplitError::BadEscape));
    }

    #[test]
    fn text_escapes_only_what_breaks_a_line() {
        assert_eq!(escape_text("a b\"é".as_bytes()), "a b\"é");
        assert_eq!(escape_text(b"a\nb\\c\x01\xff"), "a\\nb\\\\c\\x01\\xff");
    }

    proptest! {
        #[test]
        fn quote_word_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let line = format!("put {} 5", quote_word(&bytes));
            let words = split_words(&line).unwrap();
            prop_assert_eq!(words.len(), 3);
            prop_assert_eq!(&words[1], &bytes);
        }

        #[test]
        fn escape_text_round_trips_and_stays_on_one_line(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let text = escape_text(&bytes);
            prop_assert!(!text.contains('\n') && !text.contains('\r'));
            prop_assert_eq!(unescape_text(&text).unwrap(), bytes);
        }
    }
}
