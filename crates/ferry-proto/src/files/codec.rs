//! The client side of the file protocol: encoding requests and decoding
//! answers. Pure functions over bytes; `ferry-client` does the I/O.

use super::escape::{quote_word, unescape_text};
use super::request::MAX_LINE;
use crate::root::{DiskSpace, Kind};

/// Why an answer from the server could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The line starts with neither `OK` nor `ERR <code>`.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
}

/// The first line of every answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK [TEXT]`: the text after `OK ` (empty if none).
    Ok(String),
    /// `ERR CODE MESSAGE`.
    Err {
        /// The status code (`400`, `403`, `404`, `409`, `413`, `416`, `500`, ...).
        code: u16,
        /// The human-readable message.
        message: String,
    },
}

fn malformed(line: &[u8]) -> CodecError {
    CodecError::Malformed(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned())
}

/// Parses a reply line (with or without its `\n` / `\r\n`).
pub fn parse_reply(line: &[u8]) -> Result<Reply, CodecError> {
    let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    let text = std::str::from_utf8(trimmed).map_err(|_| malformed(line))?;
    if text == "OK" {
        return Ok(Reply::Ok(String::new()));
    }
    if let Some(rest) = text.strip_prefix("OK ") {
        return Ok(Reply::Ok(rest.to_string()));
    }
    if let Some(rest) = text.strip_prefix("ERR ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code.parse().map_err(|_| malformed(line))?;
        return Ok(Reply::Err { code, message: message.to_string() });
    }
    Err(malformed(line))
}

/// Builds a request line: the command, then each argument quoted as
/// needed, then `\n`. Returns `None` if the line would exceed the
/// protocol's limit.
pub fn encode_request(command: &str, args: &[&[u8]]) -> Option<Vec<u8>> {
    let mut line = command.to_string();
    for arg in args {
        line.push(' ');
        line.push_str(&quote_word(arg));
    }
    line.push('\n');
    (line.len() <= MAX_LINE).then(|| line.into_bytes())
}

/// The head of a `get` answer: `OK SIZE OFFSET LEN [VERSION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetHead {
    /// The file's whole size.
    pub size: u64,
    /// Where the bytes that follow start.
    pub offset: u64,
    /// How many bytes follow the line.
    pub len: u64,
    /// The server's name for this version of the file, to send back when
    /// resuming (`get PATH OFFSET VERSION`); `None` from servers that do
    /// not name versions.
    pub version: Option<String>,
}

/// The longest version token a server may send.
pub const MAX_VERSION_LEN: usize = 64;

/// Whether `token` is a well-formed file version: 1 to
/// [`MAX_VERSION_LEN`] characters from `[0-9a-zA-Z._-]`, so it travels as
/// one request word without quoting and can be stored anywhere.
pub fn is_version_token(token: &str) -> bool {
    (1..=MAX_VERSION_LEN).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn numbers<const N: usize>(text: &str) -> Option<[u64; N]> {
    let mut out = [0; N];
    let mut words = text.split(' ');
    for slot in &mut out {
        *slot = words.next()?.parse().ok()?;
    }
    words.next().is_none().then_some(out)
}

/// Parses the text of a `get` answer's `OK` line: three numbers (servers
/// that name no versions) or three numbers and a version token.
pub fn parse_get_head(text: &str) -> Result<GetHead, CodecError> {
    let bad = || malformed(text.as_bytes());
    let (numbers_text, version) = match text.splitn(4, ' ').nth(3) {
        Some(token) => {
            if !is_version_token(token) {
                return Err(bad());
            }
            (&text[..text.len() - token.len() - 1], Some(token.to_string()))
        }
        None => (text, None),
    };
    let [size, offset, len] = numbers(numbers_text).ok_or_else(bad)?;
    if offset.checked_add(len) != Some(size) {
        return Err(bad());
    }
    Ok(GetHead { size, offset, len, version })
}

/// Whether `text` is a SHA-256 as the protocol writes it: 64 lowercase
/// hex digits (`sum` answers, `put PATH SIZE SHA256`).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `df` answer: `TOTAL FREE AVAILABLE`, in bytes.
pub fn parse_df(text: &str) -> Result<DiskSpace, CodecError> {
    let [total, free, available] = numbers(text).ok_or_else(|| malformed(text.as_bytes()))?;
    Ok(DiskSpace { total, free, available })
}

/// Parses a single number (the `OK HAVE` of `put`, `OK LEN` of `ls`).
pub fn parse_number(text: &str) -> Result<u64, CodecError> {
    numbers::<1>(text).map(|[n]| n).ok_or_else(|| malformed(text.as_bytes()))
}

/// One line of a listing or a `stat` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// File, directory, symlink or other.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// The name (listing) or virtual path (`stat`), unescaped.
    pub name: Vec<u8>,
}

/// Parses `TYPE SIZE MTIME NAME`.
pub fn parse_entry(line: &str) -> Result<EntryInfo, CodecError> {
    let bad = || malformed(line.as_bytes());
    let mut parts = line.splitn(4, ' ');
    let kind = match parts.next() {
        Some("f") => Kind::File,
        Some("d") => Kind::Dir,
        Some("l") => Kind::Symlink,
        Some("o") => Kind::Other,
        _ => return Err(bad()),
    };
    let size = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let mtime = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let name = unescape_text(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(EntryInfo { kind, size, mtime, name })
}

/// Parses an `ls` payload: one entry per line.
pub fn parse_listing(payload: &[u8]) -> Result<Vec<EntryInfo>, CodecError> {
    let text = std::str::from_utf8(payload).map_err(|_| malformed(payload))?;
    text.lines().map(parse_entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"OK\n"), Ok(Reply::Ok(String::new())));
        assert_eq!(parse_reply(b"OK /sub\r\n"), Ok(Reply::Ok("/sub".into())));
        assert_eq!(
            parse_reply(b"ERR 404 no such file: /x\n"),
            Ok(Reply::Err { code: 404, message: "no such file: /x".into() })
        );
        assert!(parse_reply(b"HELLO\n").is_err());
        assert!(parse_reply(b"ERR x y\n").is_err());
    }

    #[test]
    fn requests_quote_and_respect_the_limit() {
        assert_eq!(encode_request("get", &[b"a b", b"10"]).unwrap(), b"get \"a b\" 10\n");
        assert!(encode_request("cd", &[&vec![b'a'; MAX_LINE]]).is_none());
    }

    #[test]
    fn get_heads_may_name_a_version() {
        let head = parse_get_head("10 0 10 ino42.m1700000000_5-x").unwrap();
        assert_eq!((head.size, head.offset, head.len), (10, 0, 10));
        assert_eq!(head.version.as_deref(), Some("ino42.m1700000000_5-x"));
        assert_eq!(parse_get_head(&format!("1 1 0 {}", "v".repeat(64))).unwrap().version.unwrap().len(), 64);
        for bad in ["10 0 10 a b", "10 0 10 a/b", "10 0 10 \"a\"", "10 0 11 v", "10 0 10  v"] {
            assert!(parse_get_head(bad).is_err(), "{bad}");
        }
        assert!(parse_get_head(&format!("1 1 0 {}", "v".repeat(65))).is_err());
        assert!(is_sha256_hex(&"0a".repeat(32)) && !is_sha256_hex(&"0A".repeat(32)) && !is_sha256_hex("0a"));
    }

    #[test]
    fn heads_and_entries() {
        assert_eq!(parse_get_head("10 4 6"), Ok(GetHead { size: 10, offset: 4, len: 6, version: None }));
        assert!(parse_get_head("10 4 7").is_err());
        assert!(parse_get_head("10 4").is_err());
        assert!(parse_get_head("10 4 6 ").is_err());
        assert_eq!(parse_number("42"), Ok(42));
        assert_eq!(parse_df("100 40 30"), Ok(DiskSpace { total: 100, free: 40, available: 30 }));
        assert!(parse_df("100 40").is_err() && parse_df("100 40 30 2").is_err());
        let e = parse_entry("f 5 1700000000 a b\\nc").unwrap();
        assert_eq!((e.kind, e.size, e.mtime, e.name), (Kind::File, 5, 1_700_000_000, b"a b\nc".to_vec()));
        assert_eq!(parse_listing(b"d 0 1 x\nf 1 2 y\n").unwrap().len(), 2);
    }
}
