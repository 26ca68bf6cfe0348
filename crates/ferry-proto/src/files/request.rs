//! Requests of the file protocol: one text line each, parsed into a
//! [`Request`]. See `docs/PROTOCOL.md` for the grammar.

use super::escape::{SplitError, escape_text, split_words};

/// Longest request line accepted, including its `\n`.
pub const MAX_LINE: usize = 4096;

/// One parsed request. Paths are raw bytes, still to be resolved against
/// the connection's working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `pwd`: print the working directory.
    Pwd,
    /// `cd [PATH]`: change the working directory (`/` without a path).
    Cd(Vec<u8>),
    /// `ls [PATH]`: list a directory (the working directory by default).
    Ls(Option<Vec<u8>>),
    /// `stat PATH`: kind, size and mtime.
    Stat(Vec<u8>),
    /// `get PATH [OFFSET [VERSION]]`: download from `OFFSET` (0 by
    /// default), if the file is still `VERSION` (else from 0).
    Get(Vec<u8>, u64, Option<String>),
    /// `put PATH SIZE [SHA256]`: upload `SIZE` bytes whose SHA-256 is, if
    /// given, `SHA256` (lowercase hex): resumes a partial upload of the same
    /// identity, and is checked before it gets its name.
    Put(Vec<u8>, u64, Option<String>),
    /// `mkdir PATH`.
    Mkdir(Vec<u8>),
    /// `rm PATH`: remove a file or an empty directory.
    Rm(Vec<u8>),
    /// `sum PATH`: SHA-256 of a file.
    Sum(Vec<u8>),
    /// `rename OLD NEW`: give a file or directory another name or place,
    /// atomically.
    Rename(Vec<u8>, Vec<u8>),
    /// `df`: the size, free and available bytes of the served filesystem.
    Df,
    /// `ping`: heartbeat, answered `OK pong`.
    Ping,
    /// `help`: the list of commands.
    Help,
    /// `quit`: say goodbye and close.
    Quit,
    /// `auth USER PASSWORD` or `auth token TOKEN`: log in.
    Auth(Credentials),
}

/// What `auth` offers.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An account's name and password.
    Password {
        /// The account.
        user: String,
        /// Its password.
        password: String,
    },
    /// A token made by `ferry token`.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    /// Never prints a secret (requests end up in debug logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Credentials::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// Why a line is not a valid request. The connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The line is not UTF-8.
    #[error("request is not valid UTF-8")]
    NotUtf8,
    /// Quoting or escaping is broken.
    #[error("{0}")]
    Split(#[from] SplitError),
    /// The command word is not one the protocol knows.
    #[error("unknown command '{0}' (try 'help')")]
    Unknown(String),
    /// Too few or too many arguments.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A number argument is not a non-negative integer.
    #[error("'{0}' is not a valid number")]
    BadNumber(String),
    /// A `get` version is not one the server hands out.
    #[error("'{0}' is not a valid file version")]
    BadVersion(String),
    /// A `put` digest is not 64 hexadecimal digits.
    #[error("'{0}' is not a SHA-256 (64 hexadecimal digits)")]
    BadDigest(String),
}

impl Request {
    /// Parses one line without its line ending. Returns `Ok(None)` for a
    /// blank line, which is not a request and gets no answer.
    pub fn parse(line: &[u8]) -> Result<Option<Request>, RequestError> {
        let line = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
        let mut words = split_words(line)?.into_iter();
        let Some(command) = words.next() else {
            return Ok(None);
        };
        let args: Vec<Vec<u8>> = words.collect();
        let command = String::from_utf8_lossy(&command).to_ascii_lowercase();
        let request = match command.as_str() {
            "pwd" => no_args(args, "pwd", Request::Pwd)?,
            "cd" => match <[Vec<u8>; 0]>::try_from(args) {
                Ok([]) => Request::Cd(b"/".to_vec()),
                Err(args) => Request::Cd(one_path(args, "cd [PATH]")?),
            },
            "ls" => match <[Vec<u8>; 0]>::try_from(args) {
                Ok([]) => Request::Ls(None),
                Err(args) => Request::Ls(Some(one_path(args, "ls [PATH]")?)),
            },
            "stat" => Request::Stat(one_path(args, "stat PATH")?),
            "get" => {
                const USAGE: &str = "get PATH [OFFSET [VERSION]]";
                let mut args = args.into_iter();
                let (Some(path), offset, version, None) = (args.next(), args.next(), args.next(), args.next()) else {
                    return Err(RequestError::Usage(USAGE));
                };
                let offset = offset.map(|o| number(&o)).transpose()?.unwrap_or(0);
                Request::Get(path, offset, version.map(|v| token(&v)).transpose()?)
            }
            "put" => {
                let mut args = args.into_iter();
                let (Some(path), Some(size), sha256, None) = (args.next(), args.next(), args.next(), args.next())
                else {
                    return Err(RequestError::Usage("put PATH SIZE [SHA256]"));
                };
                Request::Put(path, number(&size)?, sha256.map(|d| digest(&d)).transpose()?)
            }
            "mkdir" => Request::Mkdir(one_path(args, "mkdir PATH")?),
            "rm" => Request::Rm(one_path(args, "rm PATH")?),
            "sum" => Request::Sum(one_path(args, "sum PATH")?),
            "rename" | "mv" => {
                let [from, to] = <[Vec<u8>; 2]>::try_from(args).map_err(|_| RequestError::Usage("rename OLD NEW"))?;
                Request::Rename(from, to)
            }
            "df" => no_args(args, "df", Request::Df)?,
            "ping" => no_args(args, "ping", Request::Ping)?,
            "help" => no_args(args, "help", Request::Help)?,
            "quit" | "exit" => no_args(args, "quit", Request::Quit)?,
            "auth" => {
                const USAGE: &str = "auth USER PASSWORD | auth token TOKEN";
                let [first, second] = <[Vec<u8>; 2]>::try_from(args).map_err(|_| RequestError::Usage(USAGE))?;
                let text = |w: Vec<u8>| String::from_utf8(w).map_err(|_| RequestError::NotUtf8);
                if first == b"token" {
                    Request::Auth(Credentials::Token(text(second)?))
                } else {
                    Request::Auth(Credentials::Password { user: text(first)?, password: text(second)? })
                }
            }
            _ => return Err(RequestError::Unknown(echo(command.as_bytes()))),
        };
        Ok(Some(request))
    }
}

fn no_args(args: Vec<Vec<u8>>, usage: &'static str, request: Request) -> Result<Request, RequestError> {
    if args.is_empty() { Ok(request) } else { Err(RequestError::Usage(usage)) }
}

fn one_path(args: Vec<Vec<u8>>, usage: &'static str) -> Result<Vec<u8>, RequestError> {
    match <[Vec<u8>; 1]>::try_from(args) {
        Ok([path]) => Ok(path),
        Err(_) => Err(RequestError::Usage(usage)),
    }
}

fn number(word: &[u8]) -> Result<u64, RequestError> {
    std::str::from_utf8(word)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RequestError::BadNumber(echo(word)))
}

/// The longest version token a `get` may name.
const MAX_VERSION: usize = 64;

/// A file version as `get` answers it: a short word of letters, digits,
/// `.`, `-` and `_`.
fn token(word: &[u8]) -> Result<String, RequestError> {
    let valid = !word.is_empty()
        && word.len() <= MAX_VERSION
        && word.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
    if valid { Ok(String::from_utf8_lossy(word).into_owned()) } else { Err(RequestError::BadVersion(echo(word))) }
}

/// A SHA-256 in hex, normalised to lowercase.
fn digest(word: &[u8]) -> Result<String, RequestError> {
    if word.len() == 64 && word.iter().all(u8::is_ascii_hexdigit) {
        Ok(String::from_utf8_lossy(word).to_ascii_lowercase())
    } else {
        Err(RequestError::BadDigest(echo(word)))
    }
}

/// A client's word as an error message may quote it: its first 40
/// characters, escaped like response text, so an answer never spans lines.
/// Every message that echoes the request goes through here.
fn echo(word: &[u8]) -> String {
    let shown: String = String::from_utf8_lossy(word).chars().take(40).collect();
    escape_text(shown.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Option<Request>, RequestError> {
        Request::parse(line.as_bytes())
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(p("pwd"), Ok(Some(Request::Pwd)));
        assert_eq!(p("PWD"), Ok(Some(Request::Pwd)));
        assert_eq!(p("cd"), Ok(Some(Request::Cd(b"/".to_vec()))));
        assert_eq!(p("cd sub"), Ok(Some(Request::Cd(b"sub".to_vec()))));
        assert_eq!(p("ls"), Ok(Some(Request::Ls(None))));
        assert_eq!(p("ls \"a b\""), Ok(Some(Request::Ls(Some(b"a b".to_vec())))));
        assert_eq!(p("stat f"), Ok(Some(Request::Stat(b"f".to_vec()))));
        assert_eq!(p("get f"), Ok(Some(Request::Get(b"f".to_vec(), 0, None))));
        assert_eq!(p("get f 123"), Ok(Some(Request::Get(b"f".to_vec(), 123, None))));
        assert_eq!(p("get f 12 a1-b.2"), Ok(Some(Request::Get(b"f".to_vec(), 12, Some("a1-b.2".into())))));
        assert_eq!(p("put f 9"), Ok(Some(Request::Put(b"f".to_vec(), 9, None))));
        let upper = "AB".repeat(32);
        assert_eq!(p(&format!("put f 9 {upper}")), Ok(Some(Request::Put(b"f".to_vec(), 9, Some("ab".repeat(32))))));
        assert_eq!(p("mkdir d"), Ok(Some(Request::Mkdir(b"d".to_vec()))));
        assert_eq!(p("rm d"), Ok(Some(Request::Rm(b"d".to_vec()))));
        assert_eq!(p("sum f"), Ok(Some(Request::Sum(b"f".to_vec()))));
        assert_eq!(p("rename a \"b c\""), Ok(Some(Request::Rename(b"a".to_vec(), b"b c".to_vec()))));
        assert_eq!(p("mv a b"), Ok(Some(Request::Rename(b"a".to_vec(), b"b".to_vec()))));
        assert_eq!(p("df"), Ok(Some(Request::Df)));
        assert_eq!(p("ping"), Ok(Some(Request::Ping)));
        assert_eq!(p("help"), Ok(Some(Request::Help)));
        assert_eq!(p("quit"), Ok(Some(Request::Quit)));
        assert_eq!(p(""), Ok(None));
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(p("frobnicate"), Err(RequestError::Unknown("frobnicate".into())));
        assert_eq!(p("pwd extra"), Err(RequestError::Usage("pwd")));
        assert_eq!(p("get"), Err(RequestError::Usage("get PATH [OFFSET [VERSION]]")));
        assert_eq!(p("get a 1 v w"), Err(RequestError::Usage("get PATH [OFFSET [VERSION]]")));
        assert_eq!(p("get a 1 \"v w\""), Err(RequestError::BadVersion("v w".into())));
        assert_eq!(p("put a 1 abc"), Err(RequestError::BadDigest("abc".into())));
        assert_eq!(p("put a 1 2 3"), Err(RequestError::Usage("put PATH SIZE [SHA256]")));
        assert_eq!(p("get a -1"), Err(RequestError::BadNumber("-1".into())));
        assert_eq!(p("put a"), Err(RequestError::Usage("put PATH SIZE [SHA256]")));
        assert_eq!(p("put a 99999999999999999999999"), Err(RequestError::BadNumber("99999999999999999999999".into())));
        assert_eq!(p("stat"), Err(RequestError::Usage("stat PATH")));
        assert_eq!(p("rename a"), Err(RequestError::Usage("rename OLD NEW")));
        assert_eq!(p("rename a b c"), Err(RequestError::Usage("rename OLD NEW")));
        assert_eq!(p("df x"), Err(RequestError::Usage("df")));
        assert_eq!(Request::parse(b"cd \xff"), Err(RequestError::NotUtf8));
        assert_eq!(p("cd \"x"), Err(RequestError::Split(SplitError::UnterminatedQuote)));
        assert_eq!(p("get a \"1\\nOK 0\""), Err(RequestError::BadNumber("1\\nOK 0".into())));
        assert_eq!(p("x\\nOK"), Err(RequestError::Unknown("x\\nok".into())));
        assert_eq!(p("x\ry"), Err(RequestError::Unknown("x\\ry".into())));
    }
}
