//! The client codec (`ferry_proto::files::codec`) against itself and
//! against the server.
//!
//! Input: any bytes. Whole, they are a reply line, an entry, a listing
//! and a `get` head to parse. Cut at each 0xFE, they are the arguments of
//! requests to encode, and (those that can be) names of files made in a
//! served directory.
//!
//! Invariants:
//! - a reply, entry, listing or `get` head the codec accepts, written
//!   back the way the server writes it, parses to the same value; an
//!   accepted `get` head adds up (`OFFSET + LEN = SIZE`);
//! - a request the codec encodes is one line within `MAX_LINE` (and it
//!   refuses only longer ones) that the server's parser reads as exactly
//!   the command and arguments encoded;
//! - whatever bytes a name holds, the server's `ls`, `stat`, `get`, `cd`
//!   and `pwd` answers, parsed by the codec, give back the name, the path
//!   and the content.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_proto::files::codec::{
    EntryInfo, Reply, encode_request, parse_entry, parse_get_head, parse_listing, parse_number, parse_reply,
};
use ferry_proto::files::escape::{escape_text, quote_word, unescape_text};
use ferry_proto::files::{FileSession, FilesConfig, MAX_LINE, Request};
use ferry_proto::root::RESERVED_NAME;
use ferry_proto::root::{Kind, Root, Visibility};

use super::drive;

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    parsers_round_trip(data);
    let args: Vec<&[u8]> = data.split(|&b| b == 0xfe).collect();
    requests_round_trip(&args);
    server_agrees(&args);
}

fn kind_letter(kind: Kind) -> char {
    match kind {
        Kind::File => 'f',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Other => 'o',
    }
}

/// An entry as the server writes it.
fn render_entry(e: &EntryInfo) -> String {
    format!("{} {} {} {}", kind_letter(e.kind), e.size, e.mtime, escape_text(&e.name))
}

fn parsers_round_trip(data: &[u8]) {
    match parse_reply(data) {
        Ok(Reply::Ok(text)) => {
            let line = if text.is_empty() { "OK\n".to_string() } else { format!("OK {text}\n") };
            assert_eq!(parse_reply(line.as_bytes()), Ok(Reply::Ok(text)), "{data:?}");
        }
        Ok(Reply::Err { code, message }) => {
            let line = format!("ERR {code} {message}\n");
            assert_eq!(parse_reply(line.as_bytes()), Ok(Reply::Err { code, message }), "{data:?}");
        }
        Err(_) => {}
    }
    if let Ok(listing) = parse_listing(data) {
        let text: String = listing.iter().map(|e| render_entry(e) + "\n").collect();
        assert_eq!(parse_listing(text.as_bytes()).as_ref(), Ok(&listing), "{data:?}");
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(entry) = parse_entry(text) {
        assert_eq!(parse_entry(&render_entry(&entry)).as_ref(), Ok(&entry), "{text:?}");
    }
    if let Ok(head) = parse_get_head(text) {
        assert_eq!(head.offset.checked_add(head.len), Some(head.size), "{text:?}");
        let again = format!("{} {} {}", head.size, head.offset, head.len);
        assert_eq!(parse_get_head(&again), Ok(head), "{text:?}");
    }
    if let Ok(n) = parse_number(text) {
        assert_eq!(parse_number(&n.to_string()), Ok(n), "{text:?}");
    }
}

fn requests_round_trip(args: &[&[u8]]) {
    let first = args[0].to_vec();
    let second = args.get(1).copied().unwrap_or(b"x").to_vec();
    let cases: [(&str, Vec<&[u8]>, Request); 7] = [
        ("cd", vec![&first], Request::Cd(first.clone())),
        ("ls", vec![&first], Request::Ls(Some(first.clone()))),
        ("stat", vec![&first], Request::Stat(first.clone())),
        ("get", vec![&first, b"17"], Request::Get(first.clone(), 17, None)),
        ("put", vec![&first, b"0"], Request::Put(first.clone(), 0, None)),
        ("mkdir", vec![&second], Request::Mkdir(second.clone())),
        ("rm", vec![&second], Request::Rm(second.clone())),
    ];
    for (command, words, expected) in cases {
        let Some(line) = encode_request(command, &words) else {
            let len = command.len() + words.iter().map(|w| quote_word(w).len() + 1).sum::<usize>() + 1;
            assert!(len > MAX_LINE, "{command} {words:?} refused though it fits ({len} bytes)");
            continue;
        };
        assert!(line.len() <= MAX_LINE, "{command}: an encoded request over MAX_LINE");
        assert_eq!(line.iter().position(|&b| b == b'\n'), Some(line.len() - 1), "{command}: not one line");
        assert!(!line.contains(&b'\r'), "{command}: a CR in an encoded request");
        let parsed = Request::parse(&line[..line.len() - 1]);
        assert_eq!(parsed, Ok(Some(expected)), "{command} {words:?} encoded as {:?}", String::from_utf8_lossy(&line));
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Names the server is asked about, made as files (and one directory)
/// in a scratch root.
fn server_agrees(args: &[&[u8]]) {
    let mut names: Vec<&[u8]> = args
        .iter()
        .copied()
        .filter(|n| !n.is_empty() && n.len() <= 200 && *n != b"." && *n != b".." && !n.contains(&b'/'))
        .filter(|n| !n.contains(&0))
        .collect();
    names.sort();
    names.dedup();
    names.truncate(8);
    if names.is_empty() {
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ferry-inv-codec-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch root");
    let cleanup = Cleanup(dir.clone());
    let (dir_name, file_names) = names.split_first().expect("one name at least");
    fs::create_dir(dir.join(std::ffi::OsStr::from_bytes(dir_name))).expect("mkdir");
    for name in file_names {
        fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), name).expect("write");
    }
    // Hidden names shown (`--hidden`): names starting with `.` travel too.
    let root = Arc::new(Root::open(&dir).expect("open root").with_visibility(Visibility::SHOW_HIDDEN));
    let mut session = FileSession::new(FilesConfig::read_only(root));
    let ask = |session: &mut FileSession, command: &str, words: &[&[u8]]| -> Option<Vec<u8>> {
        let line = encode_request(command, words)?;
        let out = drive::run(session, &[&line], 1 << 20, &[]);
        Some(out.received)
    };

    // ls: the names, all of them, as made.
    let answer = ask(&mut session, "ls", &[]).expect("ls encodes");
    let (head, payload) = split_line(&answer);
    let Ok(Reply::Ok(len)) = parse_reply(head) else { panic!("ls answered {:?}", String::from_utf8_lossy(head)) };
    assert_eq!(parse_number(&len), Ok(payload.len() as u64), "ls announced another length");
    let listed: Vec<Vec<u8>> =
        parse_listing(payload).expect("the codec parses the server's listing").into_iter().map(|e| e.name).collect();
    let mut expected: Vec<Vec<u8>> =
        names.iter().filter(|n| **n != RESERVED_NAME.as_bytes()).map(|n| n.to_vec()).collect();
    expected.sort();
    assert_eq!(listed, expected, "ls and the codec disagree on names");

    for name in file_names {
        // stat: the path, with kind and size.
        if let Some(answer) = ask(&mut session, "stat", &[name]) {
            let (head, rest) = split_line(&answer);
            assert!(rest.is_empty());
            let Ok(Reply::Ok(text)) = parse_reply(head) else {
                panic!("stat {name:?} answered {:?}", String::from_utf8_lossy(head))
            };
            let entry = parse_entry(&text).expect("the codec parses the server's stat");
            let mut path = b"/".to_vec();
            path.extend_from_slice(name);
            assert_eq!((entry.kind, entry.size, entry.name), (Kind::File, name.len() as u64, path));
        }
        // get: the content.
        if let Some(answer) = ask(&mut session, "get", &[name]) {
            let (head, rest) = split_line(&answer);
            let Ok(Reply::Ok(text)) = parse_reply(head) else {
                panic!("get {name:?} answered {:?}", String::from_utf8_lossy(head))
            };
            let head = parse_get_head(&text).expect("the codec parses the server's get head");
            assert_eq!((head.offset, head.len, rest), (0, name.len() as u64, *name));
        }
    }
    // cd and pwd: the directory's path.
    if let Some(answer) = ask(&mut session, "cd", &[dir_name]) {
        let mut path = b"/".to_vec();
        path.extend_from_slice(dir_name);
        let (head, _) = split_line(&answer);
        let Ok(Reply::Ok(text)) = parse_reply(head) else {
            panic!("cd {dir_name:?} answered {:?}", String::from_utf8_lossy(head))
        };
        assert_eq!(unescape_text(&text).as_ref(), Ok(&path), "cd");
        let answer = ask(&mut session, "pwd", &[]).expect("pwd encodes");
        let Ok(Reply::Ok(text)) = parse_reply(&answer) else { panic!("pwd answered {answer:?}") };
        assert_eq!(unescape_text(&text).as_ref(), Ok(&path), "pwd");
    }
    drop(cleanup);
}

/// The first line (with its `\n`) and the rest.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => bytes.split_at(i + 1),
        None => panic!("no complete reply line: {:?}", String::from_utf8_lossy(bytes)),
    }
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
