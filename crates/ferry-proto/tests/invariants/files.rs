//! The file session fed scripts of commands on paths that try to leave
//! the root.
//!
//! Input: byte 0 says whether writes are allowed (odd: `--allow-write`),
//! bytes 1-4 a [`Split`], byte 5 a read window, the rest a [`Script`] of
//! at most 32 lines: per line one byte picks the command (and whether it
//! ends in CRLF), further bytes its paths (1-5 pieces of [`PATH_TOKENS`],
//! quoted or not) and numbers ([`NUMBERS`]).
//!
//! Invariants:
//! - one request at a time: every reply line is one line (UTF-8, no
//!   control character, `\n` only at its end) starting with `OK` or
//!   `ERR NNN`; payloads are exactly as long as announced (`get`, `ls`,
//!   `help`); each request gets exactly its answer and nothing more;
//! - nothing outside the root is ever changed (checked after every line,
//!   writes allowed or not) or shown in an answer;
//! - `ls` never lists the partials' directory (`.ferry-partials`, where
//!   uploads in progress live) or another name starting with `.` (hidden
//!   by default), and no client makes that name (docs/PROTOCOL.md,
//!   "Uploads in progress"); `rename` too is confined (the tree outside
//!   the root is checked after every line);
//! - after `quit`, a 413 or a failed upload, nothing more is answered,
//!   over the connection or by the session itself;
//! - the same script pipelined gives the same bytes however it is split
//!   (read-only on one tree; with writes on two fresh trees, without `ls`
//!   and `stat`, whose times would differ) and however slowly it is read;
//! - the queue never holds more than [`MAX_QUEUED`] bytes, in one pass
//!   or over a connection whose client does not read.

use std::fmt;

use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::codec::{parse_entry, parse_get_head, parse_listing, parse_number};
use ferry_proto::files::escape::unescape_text;
use ferry_proto::files::{MAX_LINE, Request};
use ferry_proto::root::RESERVED_NAME;

use super::drive::{self, End};
use super::source::{Source, Split, repeat_to};
use super::tree::Tree;

/// The session stops a pass once 256 KiB of text is queued
/// (`MAX_QUEUED_TEXT` in `src/files/session.rs`); one more answer may
/// follow, at most an error echoing a 4 KiB path with every byte escaped
/// as `\xHH` (16 KiB).
pub const MAX_QUEUED: usize = 256 * 1024 + 20 * 1024;

/// A request sent after a close, which must get no answer.
pub const PROBE: &[u8] = b"ping\n";

/// Pieces of request paths, as written in a request (escapes are the
/// protocol's).
pub const PATH_TOKENS: &[&str] = &[
    "..",
    ".",
    "/",
    "a",
    "b",
    "sub",
    "hello.txt",
    "file.txt",
    "deeper",
    "out",
    "up",
    "upup",
    "abs",
    "absdir",
    "proc",
    "loop",
    "in",
    "top",
    "secret.txt",
    "outside",
    "\"",
    "\\",
    "\\x2e",
    "\\x2f",
    "\\x00",
    "\\n",
    "\\r",
    "\\t",
    " ",
    "\\\"",
    "\\x1b",
    "\u{1}",
    "\r",
    "é",
    "\\xff",
    ".ferry-partials",
    ".x",
    "new",
    "*",
    "~",
];

/// Numbers for offsets and sizes, good and bad.
pub const NUMBERS: &[&str] = &["0", "1", "3", "10", "13", "007", "99999999999999999999", "-1", "x", "\"2\""];

/// What a `put` sends after `OK HAVE`: request-like bytes, so a payload
/// taken for requests shows.
const PAYLOAD: &[u8] = b"ping\nquit\n\x00\xff\r\nls\n";

/// Lines of requests, without their line ends.
#[derive(Clone)]
pub struct Script(pub Vec<Line>);

/// One request line.
#[derive(Clone)]
pub struct Line {
    pub text: Vec<u8>,
    pub crlf: bool,
}

impl Line {
    /// The bytes sent.
    pub fn wire(&self) -> Vec<u8> {
        let mut v = self.text.clone();
        v.extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
        v
    }

    /// The line the server parses (one `\r` before `\n` is dropped).
    pub fn parsed(&self) -> &[u8] {
        if self.crlf { &self.text } else { self.text.strip_suffix(b"\r").unwrap_or(&self.text) }
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|l| String::from_utf8_lossy(&l.wire()).into_owned())).finish()
    }
}

impl Script {
    /// Reads a script from the rest of `src`.
    pub fn decode(src: &mut Source<'_>) -> Script {
        let mut lines = Vec::new();
        while !src.is_empty() && lines.len() < 32 {
            let op = src.byte();
            let mut text = Vec::new();
            let word = |text: &mut Vec<u8>, w: &[u8]| {
                if !text.is_empty() {
                    text.push(b' ');
                }
                text.extend_from_slice(w);
            };
            // Commands with several numbers come up more often; which
            // numbers take a path, a count or raw bytes is said below.
            let cmd: &[u8] = match op % 24 {
                0 => b"pwd",
                1 | 2 => b"cd",
                22 => b"rename",
                3 | 4 => b"ls",
                5 => b"stat",
                6..=8 | 21 => b"get",
                9 | 10 => b"put",
                20 => b"PUT",
                11 | 23 => b"mkdir",
                12 => b"rm",
                13 => b"sum",
                14 => b"ping",
                15 => b"help",
                16 => b"quit",
                17 => b"exit",
                // 18: raw bytes, 19: a blank line.
                _ => b"",
            };
            word(&mut text, cmd);
            match op % 24 {
                1 | 4 | 5 | 6 | 7 | 11 | 12 | 13 | 23 => word(&mut text, &path(src)),
                22 => {
                    word(&mut text, &path(src));
                    word(&mut text, &path(src));
                }
                8 | 9 | 10 | 20 => {
                    word(&mut text, &path(src));
                    word(&mut text, src.pick(NUMBERS).as_bytes());
                }
                21 => {
                    word(&mut text, &path(src));
                    word(&mut text, src.pick(NUMBERS).as_bytes());
                    word(&mut text, src.pick(NUMBERS).as_bytes());
                }
                18 => {
                    // Raw bytes, no line end inside.
                    for _ in 0..src.below(16) {
                        text.push(match src.byte() {
                            b'\n' => b' ',
                            b => b,
                        });
                    }
                }
                _ => {}
            }
            lines.push(Line { text, crlf: op & 0x80 != 0 });
        }
        Script(lines)
    }

    /// The script as one pipelined stream: each `put` that parses is
    /// followed by its whole payload.
    pub fn stream(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.0 {
            out.extend_from_slice(&line.wire());
            if let Ok(Some(Request::Put(_, size, _))) = Request::parse(line.parsed()) {
                out.extend(payload(0, size));
            }
        }
        out
    }

    /// The script without the lines whose answers show times.
    pub fn timeless(&self) -> Script {
        // `get` too: its answer names the file's version (inode, mtime),
        // which differs between two trees; the read-only check covers it.
        let keep = |l: &&Line| {
            !matches!(Request::parse(l.parsed()), Ok(Some(Request::Ls(_) | Request::Stat(_) | Request::Get(..))))
        };
        Script(self.0.iter().filter(keep).cloned().collect())
    }
}

/// A path of one to five tokens, quoted as a whole or not.
fn path(src: &mut Source<'_>) -> Vec<u8> {
    let mut p = String::new();
    for _ in 0..=src.below(5) {
        // A rare long name: over NAME_MAX, and two make a line over MAX_LINE.
        match src.byte() {
            0xff => p.push_str(&"L".repeat(2100)),
            0xfe => p.push_str(&"n".repeat(300)),
            b => p.push_str(PATH_TOKENS[usize::from(b) % PATH_TOKENS.len()]),
        }
    }
    if src.flag() { format!("\"{p}\"").into_bytes() } else { p.into_bytes() }
}

/// Bytes `from..to` of an upload's payload.
fn payload(from: u64, to: u64) -> impl Iterator<Item = u8> {
    PAYLOAD.iter().copied().cycle().skip(from as usize).take(to.saturating_sub(from) as usize)
}

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    let mut src = Source::new(data);
    let write = src.flag();
    let split = Split::decode(&mut src);
    let window = 64 + 64 * usize::from(src.byte());
    let script = Script::decode(&mut src);
    let tree = Tree::new("files");
    check_one_at_a_time(&tree, write, &script);
    // Read-only from here on: the tree no longer changes.
    let stream = script.stream();
    check_split(&tree, false, &stream, &split);
    let flood = repeat_to(&stream, 4 * 1024, 512);
    check_undrained(&tree, &flood, window);
    if write {
        let timeless = script.timeless().stream();
        let (a, b) = (Tree::new("files-a"), Tree::new("files-b"));
        let whole = run_split(&a, true, &timeless, &Split::Whole);
        let cut = run_split(&b, true, &timeless, &split);
        assert_same(&whole, &cut, &split);
        a.assert_outside_untouched();
        b.assert_outside_untouched();
    }
}

/// Sends the script a line at a time and checks each answer.
pub fn check_one_at_a_time(tree: &Tree, write: bool, script: &Script) {
    let mut session = tree.files_session(write);
    let mut pair = Pair::new(&mut session, Timeouts::default()).max_queued(MAX_QUEUED);
    let mut closed = false;
    let mut sent = Vec::new();
    for line in &script.0 {
        let wire = line.wire();
        let mut at = pair.received().len();
        sent.extend_from_slice(&wire);
        pair.send(&wire);
        if closed {
            let extra = &pair.received()[at..];
            assert!(extra.is_empty(), "answered after a close: {}", String::from_utf8_lossy(extra));
            continue;
        }
        let mut reader = Reader { bytes: pair.received(), at, line: &wire };
        let next = if line.text.len() + usize::from(line.crlf) >= MAX_LINE {
            assert!(reader.line().starts_with("ERR 413 "), "an overlong line is refused");
            Next::Closed
        } else {
            match Request::parse(line.parsed()) {
                Ok(None) => Next::Done,
                Err(_) => {
                    assert!(reader.line().starts_with("ERR 400 "), "{:?}: a bad request is refused", reader.line);
                    Next::Done
                }
                Ok(Some(req)) => expect_answer(&mut reader, &req),
            }
        };
        at = reader.at;
        match next {
            Next::Done => {}
            Next::Closed => closed = true,
            Next::Upload { have, size } => {
                if have < size {
                    Reader { bytes: pair.received(), at, line: &wire }.assert_all_read();
                    let payload: Vec<u8> = payload(have, size).collect();
                    sent.extend_from_slice(&payload);
                    pair.send(&payload);
                }
                let mut reader = Reader { bytes: pair.received(), at, line: &wire };
                let done = reader.line();
                if done.starts_with("ERR ") {
                    closed = true;
                } else {
                    assert_eq!(done, format!("OK {size}"), "{:?}: an upload ends with OK SIZE", reader.line);
                }
                at = reader.at;
            }
        }
        Reader { bytes: pair.received(), at, line: &wire }.assert_all_read();
        tree.assert_outside_untouched();
        let ended = pair.closed().is_some() || pair.server_fin();
        assert_eq!(
            ended,
            closed,
            "{:?}: the connection closing ({ended}) was not foretold",
            String::from_utf8_lossy(&wire)
        );
    }
    let received = pair.received().to_vec();
    drop(pair);
    if closed {
        drive::assert_silent_after_close(&mut session, PROBE);
    }
    tree.assert_not_revealed(&received, &sent);
}

/// What follows an answer's first line.
enum Next {
    Done,
    Closed,
    Upload { have: u64, size: u64 },
}

/// Reads the answer to `req` and checks its shape.
fn expect_answer(r: &mut Reader<'_>, req: &Request) -> Next {
    let first = r.line();
    if first.starts_with("ERR ") {
        return Next::Done;
    }
    let text = first.strip_prefix("OK ").unwrap_or("");
    let what = format!("{:?}: {req:?} answered {first:?}", String::from_utf8_lossy(r.line));
    match req {
        Request::Get(_, offset, version) => {
            let head = parse_get_head(text).unwrap_or_else(|e| panic!("{what}: {e}"));
            // Another version of the file than the one named starts over
            // from 0, like If-Range (docs/PROTOCOL.md).
            let restarted = version.is_some() && head.offset == 0;
            assert!(head.offset == *offset || restarted, "{what}");
            r.take(head.len);
        }
        Request::Ls(_) => {
            let len = parse_number(text).unwrap_or_else(|e| panic!("{what}: {e}"));
            let listing = parse_listing(r.take(len)).unwrap_or_else(|e| panic!("{what}: {e}"));
            for entry in listing {
                assert!(entry.name != RESERVED_NAME.as_bytes(), "{what}: the partials' directory is listed");
                assert!(!entry.name.starts_with(b"."), "{what}: a hidden name is listed");
                assert!(!entry.name.is_empty() && !entry.name.contains(&b'/'), "{what}: a listed name is no name");
            }
        }
        Request::Help => {
            let len = parse_number(text).unwrap_or_else(|e| panic!("{what}: {e}"));
            r.take(len);
        }
        Request::Put(path, size, _) => {
            assert_not_reserved(path, &what);
            let have = parse_number(text).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(have <= *size, "{what}: more already there than the upload's size");
            return Next::Upload { have, size: *size };
        }
        Request::Quit => {
            assert_eq!(text, "bye", "{what}");
            return Next::Closed;
        }
        Request::Pwd | Request::Cd(_) => {
            let path = unescape_text(text).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(path.starts_with(b"/"), "{what}");
        }
        Request::Stat(_) => {
            parse_entry(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        Request::Sum(_) => {
            assert!(text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()), "{what}");
        }
        Request::Mkdir(path) => {
            assert_eq!(first, "OK", "{what}");
            assert_not_reserved(path, &what);
        }
        Request::Rm(_) => assert_eq!(first, "OK", "{what}"),
        Request::Rename(_, to) => {
            assert_eq!(first, "OK", "{what}");
            assert_not_reserved(to, &what);
        }
        Request::Df => {
            let sizes: Vec<u64> =
                text.split(' ').map(|n| n.parse().unwrap_or_else(|e| panic!("{what}: {e}"))).collect();
            assert!(sizes.len() == 3 && sizes[2] <= sizes[1] && sizes[1] <= sizes[0], "{what}");
        }
        Request::Ping => assert_eq!(text, "pong", "{what}"),
        Request::Auth(_) => assert!(text.starts_with("user "), "{what}"),
    }
    Next::Done
}

/// A request that made `path` did not make the name the server reserves
/// for its uploads in progress (which listings hide).
fn assert_not_reserved(path: &[u8], what: &str) {
    let last = path.split(|&b| b == b'/').rfind(|n| !n.is_empty() && *n != b".");
    if let Some(name) = last.filter(|n| *n != b"..") {
        assert!(name != RESERVED_NAME.as_bytes(), "{what}: made the reserved name {RESERVED_NAME}");
    }
}

/// Answers received for one request line.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The request, for messages.
    line: &'a [u8],
}

impl Reader<'_> {
    /// The next reply line, checked: one line of UTF-8 without control
    /// characters, `OK`, `OK TEXT` or `ERR NNN MESSAGE`.
    fn line(&mut self) -> String {
        let rest = &self.bytes[self.at..];
        let what = String::from_utf8_lossy(self.line).into_owned();
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            panic!("{what:?}: no complete reply line in {:?}", String::from_utf8_lossy(rest));
        };
        self.at += end + 1;
        let line = std::str::from_utf8(&rest[..end]).unwrap_or_else(|_| panic!("{what:?}: a reply line is not UTF-8"));
        assert!(!line.chars().any(char::is_control), "{what:?}: a control character in reply line {line:?}");
        let ok = line == "OK" || line.starts_with("OK ");
        let err = line.strip_prefix("ERR ").is_some_and(|rest| {
            let code = rest.get(..3).unwrap_or("");
            code.bytes().all(|b| b.is_ascii_digit())
                && code.len() == 3
                && matches!(rest.as_bytes().get(3), None | Some(b' '))
        });
        assert!(ok || err, "{what:?}: a reply line that is neither OK nor ERR NNN: {line:?}");
        line.to_string()
    }

    /// The next `n` bytes: a payload announced as `n` long.
    fn take(&mut self, n: u64) -> &[u8] {
        let n = usize::try_from(n).expect("payload length");
        let rest = &self.bytes[self.at..];
        assert!(rest.len() >= n, "{:?}: a payload shorter than announced", String::from_utf8_lossy(self.line));
        self.at += n;
        &rest[..n]
    }

    /// Nothing followed the answer.
    fn assert_all_read(&self) {
        let extra = &self.bytes[self.at..];
        assert!(
            extra.is_empty(),
            "{:?}: more than its answer: {:?}",
            String::from_utf8_lossy(self.line),
            String::from_utf8_lossy(extra)
        );
    }
}

/// Runs `stream` whole and cut by `split` on `tree`: the same bytes.
pub fn check_split(tree: &Tree, write: bool, stream: &[u8], split: &Split) {
    let whole = run_split(tree, write, stream, &Split::Whole);
    let cut = run_split(tree, write, stream, split);
    assert_same(&whole, &cut, split);
}

fn run_split(tree: &Tree, write: bool, stream: &[u8], split: &Split) -> drive::Outcome {
    let mut session = tree.files_session(write);
    let outcome = drive::run(&mut session, &split.pieces(stream), MAX_QUEUED, PROBE);
    if outcome.end != End::Open {
        drive::assert_silent_after_close(&mut session, PROBE);
    }
    tree.assert_not_revealed(&outcome.received, stream);
    outcome
}

fn assert_same(whole: &drive::Outcome, cut: &drive::Outcome, split: &Split) {
    assert!(
        whole == cut,
        "the answers depend on how the input was split ({split:?}):\nwhole ({:?}): {:?}\ncut ({:?}): {:?}",
        whole.end,
        whole.text(),
        cut.end,
        cut.text()
    );
}

/// A slow reader gets what a fast one gets; the queue stays bounded,
/// also when one pass is handed all of `flood`.
pub fn check_undrained(tree: &Tree, flood: &[u8], window: usize) {
    let mut session = tree.files_session(false);
    drive::assert_one_pass_bounded(&mut session, flood, MAX_QUEUED);
    let mut session = tree.files_session(false);
    let fast = drive::run(&mut session, &[flood], MAX_QUEUED, &[]);
    let mut session = tree.files_session(false);
    let slow = drive::run_undrained(&mut session, flood, MAX_QUEUED, window);
    assert!(
        slow == fast,
        "a slow reader got other answers (window {window}): {} bytes {:?} instead of {} bytes {:?}",
        slow.received.len(),
        slow.end,
        fast.received.len(),
        fast.end
    );
}
