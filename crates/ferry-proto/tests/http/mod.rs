//! The in-memory driver the HTTP session tests share: a served tree, a
//! run over a [`Pair`] with the session's bounds checked at every step,
//! the per-thread open-file cache, and a response parser.
//!
//! Each test file uses part of it.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_proto::Flow;
use ferry_proto::conn::{Pair, PairEvent, Timeouts};
use ferry_proto::http::{FileCache, FileCacheStats, HttpConfig, HttpSession};
use ferry_proto::root::Root;

/// What the session may queue in text before it stops answering (its
/// 256 KiB budget) plus one response.
pub const MAX_QUEUED: usize = 256 * 1024 + 64 * 1024;

/// A served directory for one test, removed on drop.
pub struct Tree(pub PathBuf);

impl Tree {
    pub fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("ferry-http-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::create_dir_all(dir.join("site")).unwrap();
        fs::write(dir.join("hello.txt"), b"Hello, world!").unwrap();
        fs::write(dir.join("sub/file.txt"), b"abc").unwrap();
        fs::write(dir.join("site/index.html"), b"<h1>hi</h1>").unwrap();
        fs::write(dir.join("big.bin"), big_content()).unwrap();
        Tree(dir)
    }

    pub fn config(&self) -> HttpConfig {
        HttpConfig::new(Arc::new(Root::open(&self.0).unwrap()))
    }

    pub fn session(&self) -> HttpSession {
        HttpSession::new(Arc::new(self.config()), file_cache())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// 100 KiB, above the copy threshold, so it goes by file range.
pub fn big_content() -> Vec<u8> {
    (0..100 * 1024).map(|i| (i % 251) as u8).collect()
}

/// What a run over a [`Pair`] saw.
#[derive(Debug)]
pub struct Run {
    /// Everything the client received, file ranges read back in place.
    pub sent: Vec<u8>,
    /// What the session asked of the connection ([`crate::common::flow_of`]).
    pub flow: Flow,
    /// `on_input` calls made.
    pub passes: u64,
    /// Byte chunks written, and file ranges sent.
    pub writes: usize,
    pub file_ranges: usize,
}

impl Run {
    pub fn flow(&self) -> Flow {
        self.flow
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

/// Sends `pieces` one after the other over a [`Pair`], as a client would,
/// and checks the bounds the session promises after every step: at most
/// [`MAX_QUEUED`] bytes queued, and less than `max_head` bytes left
/// unconsumed while it waits for more.
pub fn drive_pieces(session: &mut HttpSession, pieces: &[&[u8]], max_head: usize) -> Run {
    let mut pair = Pair::new(session, Timeouts::default()).max_queued(MAX_QUEUED);
    for piece in pieces {
        pair.send(piece);
        if pair.closed().is_some() || pair.server_fin() {
            break;
        }
        let left = pair.conn().buffered_input();
        assert!(left < max_head, "session left {left} bytes it will never consume");
    }
    let count = |want: fn(&PairEvent) -> bool| pair.events().iter().filter(|e| want(e)).count();
    Run {
        sent: pair.received().to_vec(),
        flow: crate::common::flow_of(&pair),
        passes: pair.conn().stats().input_passes,
        writes: count(|e| matches!(e, PairEvent::Send(_))),
        file_ranges: count(|e| matches!(e, PairEvent::SendFile(_))),
    }
}

/// [`HttpConfig`]'s default `max_head`: the most a session with default
/// limits leaves unconsumed.
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;

pub fn drive_step(session: &mut HttpSession, input: &[u8], step: usize) -> Run {
    let pieces: Vec<&[u8]> = input.chunks(step.max(1)).collect();
    drive_pieces(session, &pieces, DEFAULT_MAX_HEAD)
}

pub fn run(session: &mut HttpSession, input: &str) -> Run {
    drive_step(session, input.as_bytes(), usize::MAX)
}

thread_local! {
    /// The open-file cache this test's sessions share, as the sessions of
    /// one event loop do.
    static CACHE: FileCache = FileCache::new();
}

pub fn file_cache() -> FileCache {
    CACHE.with(FileCache::clone)
}

pub fn file_cache_stats() -> FileCacheStats {
    file_cache().stats()
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits output into responses; `head[i]` says response i answers a
/// HEAD (no body whatever `Content-Length` says).
pub fn parse_responses(mut bytes: &[u8], head: &[bool]) -> Vec<Resp> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = resp.parse(bytes).expect("well-formed response") else {
            panic!("incomplete response head: {}", String::from_utf8_lossy(bytes));
        };
        assert_eq!(resp.version, Some(1), "answers are HTTP/1.1");
        let status = resp.code.unwrap();
        let headers: Vec<(String, String)> =
            resp.headers.iter().map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap())).collect();
        let content_length = headers.iter().find(|(n, _)| n == "Content-Length").map(|(_, v)| v.parse().unwrap());
        let no_body = head.get(all.len()).copied().unwrap_or(false) || status == 304;
        let body_len = if no_body { 0 } else { content_length.expect("every body has a Content-Length") };
        assert!(bytes.len() >= len + body_len, "body shorter than Content-Length");
        let body = bytes[len..len + body_len].to_vec();
        bytes = &bytes[len + body_len..];
        all.push(Resp { status, headers, body });
    }
    all
}

pub fn one(run: &Run) -> Resp {
    let mut all = parse_responses(&run.sent, &[]);
    assert_eq!(all.len(), 1, "exactly one response: {}", run.text());
    all.remove(0)
}

pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

pub fn get_with(path: &str, header: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{header}\r\n\r\n")
}

pub fn one_of(bytes: &[u8]) -> Resp {
    let all = parse_responses(bytes, &[]);
    assert_eq!(all.len(), 1, "one response");
    all[0].clone()
}
