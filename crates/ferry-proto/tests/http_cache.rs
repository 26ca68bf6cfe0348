//! The HTTP session's per-thread open-file cache, driven without sockets:
//! hits answer like the disk, changes are seen after the validity window,
//! its bounds hold, errors and escapes are never kept, and expiry follows
//! the driver's clock.

mod common;
mod http;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::http::{HttpConfig, HttpSession};
use ferry_proto::root::Root;
use http::{Tree, big_content, file_cache, file_cache_stats, get, get_with, one, one_of, parse_responses, run};

/// Waits (bounded) until the kernel's coarse clock, which file timestamps
/// come from, has moved past the file's ctime: only then does the open-file
/// cache keep the file (a write in the same clock tick would be invisible).
fn settle(path: &Path) {
    let meta = fs::metadata(path).unwrap();
    let ctime = (meta.ctime(), meta.ctime_nsec());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        if (now.tv_sec, now.tv_nsec) > ctime {
            return;
        }
        assert!(Instant::now() < deadline, "the coarse clock did not pass {}'s ctime", path.display());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A session on `root` with the open-file cache set up by `tune`.
fn session_with(root: &Arc<Root>, tune: impl FnOnce(&mut HttpConfig)) -> HttpSession {
    let mut config = HttpConfig::new(Arc::clone(root));
    tune(&mut config);
    HttpSession::new(Arc::new(config), file_cache())
}

#[test]
fn cache_hits_answer_exactly_like_the_disk() {
    let t = Tree::new("cache-hit");
    let root = Arc::new(Root::open(&t.0).unwrap());
    for file in ["hello.txt", "site/index.html"] {
        settle(&t.0.join(file));
    }
    let etag = one(&run(&mut session_with(&root, |_| {}), &get("/hello.txt"))).header("ETag").unwrap().to_string();
    let script = [
        get("/hello.txt"),
        "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
        get_with("/hello.txt", "Range: bytes=7-11"),
        get_with("/hello.txt", "Range: bytes=20-"),
        get_with("/hello.txt", &format!("If-None-Match: {etag}")),
        get("/site/"),
        get("/hello.txt/"),
    ]
    .concat();
    let heads = [false, true, false, false, false, false, false];
    let uncached = parse_responses(&run(&mut session_with(&root, |c| c.file_cache_entries = 0), &script).sent, &heads);
    let mut cached = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(3600));
    let warm = parse_responses(&run(&mut cached, &script).sent, &heads);
    let before = file_cache_stats();
    let hits = parse_responses(&run(&mut cached, &script).sent, &heads);
    let after = file_cache_stats();
    // Every file lookup is a hit; only `/site/` goes to the disk, to find
    // the directory (only regular files are cached), then hits its index.
    assert_eq!(after.hits - before.hits, 7, "{before:?} -> {after:?}");
    assert_eq!(after.opens - before.opens, 1, "{before:?} -> {after:?}");
    assert_eq!(uncached.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 206, 416, 304, 200, 404]);
    for (i, ((u, w), h)) in uncached.iter().zip(&warm).zip(&hits).enumerate() {
        assert_eq!((u.status, &u.headers, &u.body), (w.status, &w.headers, &w.body), "response {i}");
        assert_eq!((u.status, &u.headers, &u.body), (h.status, &h.headers, &h.body), "response {i}");
    }
    assert_eq!(hits[2].body, b"world");
    // Inside the validity window the cache is trusted: a same-size change
    // on disk is not seen yet (what the window documents), while a session
    // without the cache sees it at once.
    fs::write(t.0.join("hello.txt"), b"Hello, WORLD!").unwrap();
    assert_eq!(one(&run(&mut cached, &get("/hello.txt"))).body, b"Hello, world!");
    let fresh = one(&run(&mut session_with(&root, |c| c.file_cache_entries = 0), &get("/hello.txt")));
    assert_eq!(fresh.body, b"Hello, WORLD!");
}

#[test]
fn changed_files_are_seen_after_the_validity_window() {
    let t = Tree::new("cache-stale");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let file = t.0.join("hello.txt");
    settle(&file);
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::ZERO);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, world!");
    // Unchanged: checked (opened) again, body kept.
    let before = file_cache_stats();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, world!");
    let after = file_cache_stats();
    assert_eq!((after.opens - before.opens, after.entries), (1, before.entries), "{before:?} -> {after:?}");
    // Same size, same second: only ctime (and mtime's nanoseconds) move.
    fs::write(&file, b"Hello, WORLD!").unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, WORLD!");
    settle(&file);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, WORLD!");
    // Same size and the old mtime put back (to the nanosecond): ctime
    // still tells.
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    fs::write(&file, b"Jello, world!").unwrap();
    fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Jello, world!");
    // Another size.
    fs::write(&file, b"short").unwrap();
    let resp = one(&run(&mut s, &get("/hello.txt")));
    assert_eq!((resp.body.as_slice(), resp.header("Content-Length")), (&b"short"[..], Some("5")));
    settle(&file);
    run(&mut s, &get("/hello.txt"));
    // Replaced by a directory, then deleted: 301, then 404, and the entry
    // is gone.
    let entries = file_cache_stats().entries;
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 301);
    assert_eq!(file_cache_stats().entries, entries - 1);
    fs::remove_dir(&file).unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 404);
    assert_eq!(file_cache_stats().entries, entries - 1);
}

#[test]
fn cache_stays_within_its_bounds() {
    let t = Tree::new("cache-bounds");
    // A new root for each part, so no entry of an earlier part is hit.
    let root = Arc::new(Root::open(&t.0).unwrap());
    for i in 0..10 {
        fs::write(t.0.join(format!("f{i}.txt")), format!("file number {i:02}")).unwrap();
    }
    fs::write(t.0.join("forty.txt"), [b'x'; 40]).unwrap();
    settle(&t.0.join("forty.txt"));
    // At most 3 entries.
    let mut s = session_with(&root, |c| c.file_cache_entries = 3);
    for round in 0..2 {
        for i in 0..10 {
            let resp = one(&run(&mut s, &get(&format!("/f{i}.txt"))));
            assert_eq!(resp.body, format!("file number {i:02}").as_bytes(), "round {round}");
            let stats = file_cache_stats();
            assert!(stats.entries <= 3, "round {round}, file {i}: {stats:?}");
        }
    }
    // At most 40 bytes: two 14-byte files fit, a third clears the cache,
    // and a file of more than the whole budget is served but never kept.
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_bytes = 40);
    for i in 0..10 {
        one(&run(&mut s, &get(&format!("/f{i}.txt"))));
        let stats = file_cache_stats();
        assert!(stats.bytes <= 40 && stats.entries <= 2, "file {i}: {stats:?}");
    }
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_bytes = 39);
    let before = file_cache_stats();
    for _ in 0..3 {
        assert_eq!(one(&run(&mut s, &get("/forty.txt"))).body, [b'x'; 40]);
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.opens - before.opens), (before.hits, 3), "{before:?} -> {after:?}");
    // Files above the copy threshold go by sendfile and are not kept.
    let mut s = t.session();
    let before = file_cache_stats();
    for _ in 0..2 {
        let r = run(&mut s, &get("/big.bin"));
        assert_eq!((one(&r).body, r.file_ranges), (big_content(), 1));
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.opens - before.opens), (before.hits, 2), "{before:?} -> {after:?}");
}

#[test]
fn errors_and_escapes_are_never_cached() {
    let t = Tree::new("cache-errors");
    std::os::unix::fs::symlink("../../../../../../../../etc/passwd", t.0.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", t.0.join("etc-link")).unwrap();
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(3600));
    let before = file_cache_stats();
    let paths = ["/missing.txt", "/passwd-link", "/etc-link/passwd", "/%2e%2e/etc/passwd", "/sub", "/sub/"];
    for round in 0..2 {
        for path in paths {
            let status = one(&run(&mut s, &get(path))).status;
            assert!(matches!(status, 404 | 301 | 200), "{path}: {status}");
            assert_eq!(status == 404, !path.starts_with("/sub"), "round {round}, {path}: {status}");
        }
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.entries), (before.hits, before.entries), "{before:?} -> {after:?}");
    // A 404 is not remembered: the file is served as soon as it exists.
    fs::write(t.0.join("missing.txt"), b"here now").unwrap();
    assert_eq!(one(&run(&mut s, &get("/missing.txt"))).body, b"here now");
}

/// Time is the driver's: `Date` follows the Pair's fake clock, and a
/// cached file is trusted for exactly `file_cache_valid` of it.
#[test]
fn date_and_cache_expiry_follow_the_clock_they_are_given() {
    let t = Tree::new("clock");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let file = t.0.join("hello.txt");
    settle(&file);
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(1));
    let mut pair = Pair::new(&mut s, Timeouts::default());
    pair.send(get("/hello.txt").as_bytes());
    let first = one_of(&pair.take_received());
    assert_eq!(first.header("Date"), Some("Tue, 01 Dec 2026 00:00:00 GMT"));
    assert_eq!(first.body, b"Hello, world!");
    fs::write(&file, b"Hello, WORLD!").unwrap();
    pair.advance(Duration::from_millis(999)).send(get("/hello.txt").as_bytes());
    let trusted = one_of(&pair.take_received());
    assert_eq!(trusted.body, b"Hello, world!", "within the window the entry is trusted");
    pair.advance(Duration::from_millis(1)).send(get("/hello.txt").as_bytes());
    let checked = one_of(&pair.take_received());
    assert_eq!(checked.body, b"Hello, WORLD!", "after it the file is checked again");
    assert_eq!(checked.header("Date"), Some("Tue, 01 Dec 2026 00:00:01 GMT"));
}
