//! Uploads in progress over real sockets, under every model (issue 11
//! rows 2-4): a full disk refuses an upload before its payload and idle
//! partials make room; partials cannot be reached by any command of either
//! service; a resume takes only bytes of the same file, wherever the
//! earlier attempt broke off.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;

use util::serve::*;
use util::*;

/// Starts `put PATH SIZE SHA256` on a new connection and sends `part` of
/// the payload; returns the connection, still open.
fn start_upload(server: &Running, path: &str, data: &[u8], part: usize) -> TcpStream {
    let mut stream = connect(server.addr);
    let answer = ask(&mut stream, &format!("put {path} {} {}", data.len(), sha256(data)));
    assert_eq!(answer, "OK 0", "put {path}");
    stream.write_all(&data[..part]).expect("payload");
    stream
}

/// Breaks an upload off the way a vanishing client does, and waits until
/// the server has closed its side (its partial is then unlocked).
fn break_off(mut stream: TcpStream) {
    stream.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the server said nothing to a broken upload: {rest:?}");
}

/// A complete `put` of `data`: the answer to the request, then to the
/// payload after `HAVE`.
fn put(stream: &mut TcpStream, path: &str, data: &[u8]) -> (String, String) {
    let have = ask(stream, &format!("put {path} {} {}", data.len(), sha256(data)));
    let Some(n) = have.strip_prefix("OK ").and_then(|n| n.parse::<usize>().ok()) else {
        return (have, String::new());
    };
    stream.write_all(&data[n..]).expect("payload");
    (have, read_line(stream))
}

fn get(stream: &mut TcpStream, path: &str) -> Vec<u8> {
    let head = ask(stream, &format!("get {path}"));
    let len: usize = head.split(' ').nth(3).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("get: {head}"));
    let mut body = vec![0; len];
    stream.read_exact(&mut body).expect("payload");
    body
}

#[test]
fn every_model_refuses_an_upload_the_disk_cannot_hold_and_evicts_idle_partials() {
    const MIB: usize = 1024 * 1024;
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let old = random_bytes(MIB + MIB / 2, 21);
    let new = random_bytes(MIB, 22);
    for &model in MODELS {
        let opts = Opts { tmpfs: Some("2m"), ..Opts::default() };
        let mut server = spawn_server(model, Svc::Files, &root, &["--allow-write"], opts);
        let mut stream = connect(server.addr);
        // Bigger than the disk: refused before a byte is sent, and the
        // connection stays in step.
        let answer = ask(&mut stream, &format!("put huge.bin {} {}", 3 * MIB, sha256(&new)));
        assert!(answer.starts_with("ERR 507 insufficient storage: "), "{model}: {answer}");
        assert!(answer.contains("/huge.bin"), "{model}: the answer names the path: {answer}");
        assert_eq!(ask(&mut stream, "ping"), "OK pong", "{model}");
        drop(stream);
        // An abandoned upload holds 1.5 MiB of the 2 MiB...
        break_off(start_upload(&server, "old.bin", &old, MIB / 2));
        // ...and a new one that does not fit beside it takes its room.
        let mut stream = connect(server.addr);
        let (have, done) = put(&mut stream, "new.bin", &new);
        assert_eq!((have.as_str(), done), ("OK 0", format!("OK {}", new.len())), "{model}");
        assert!(get(&mut stream, "new.bin") == new, "{model}: new.bin arrived intact");
        let (have, _) = put(&mut stream, "old.bin", &old);
        assert!(have.starts_with("ERR 507"), "{model}: the evicted upload starts over and does not fit: {have}");
        server.stop();
    }
}

#[test]
fn every_model_keeps_partials_out_of_reach_of_both_services() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let data = random_bytes(256 * 1024, 23);
    for &model in MODELS {
        let mut files = start(model, Svc::Files, &root, &["--allow-write"]);
        let mut http = start(model, Svc::Http, &root, &[]);
        let name = format!("up-{model}.bin");
        break_off(start_upload(&files, &name, &data, 1000));
        let mut other = connect(files.addr);
        let listing = ask(&mut other, "ls");
        let len: usize = listing.strip_prefix("OK ").and_then(|n| n.parse().ok()).expect("ls");
        let mut names = vec![0; len];
        other.read_exact(&mut names).unwrap();
        assert!(!String::from_utf8_lossy(&names).contains("ferry-partials"), "{model}: listed");
        for cmd in ["ls .ferry-partials", "get .ferry-partials/x", "rm .ferry-partials", "stat /.ferry-partials"] {
            let answer = ask(&mut other, cmd);
            assert!(answer.starts_with("ERR 400 the name .ferry-partials is reserved"), "{model}: {cmd}: {answer}");
        }
        for target in ["/", "/.ferry-partials/", "/%2Eferry-partials/x"] {
            let mut web = connect(http.addr);
            let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            web.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = web.read_to_string(&mut answer);
            if target == "/" {
                assert!(answer.starts_with("HTTP/1.1 200"), "{model}: {answer}");
                assert!(!answer.contains("ferry-partials"), "{model}: the HTTP listing hides partials");
            } else {
                assert!(answer.starts_with("HTTP/1.1 400"), "{model}: GET {target}: {answer}");
            }
        }
        // Nothing reached the partial: the upload resumes where it stopped.
        let (have, done) = put(&mut other, &name, &data);
        assert_eq!((have, done), ("OK 1000".to_string(), format!("OK {}", data.len())), "{model}");
        assert!(std::fs::read(root.join(&name)).unwrap() == data, "{model}: intact");
        drop(other);
        // An upload in flight is locked against a second one. (The
        // iterative model serves one connection at a time: no second
        // client can ask while an upload runs.)
        if model != "iterative" {
            let mut uploader = start_upload(&files, &name, &data, 1000);
            let mut other = connect(files.addr);
            let answer = ask(&mut other, &format!("put {name} {} {}", data.len(), sha256(&data)));
            assert_eq!(answer, format!("ERR 409 an upload of /{name} is already in progress"), "{model}");
            uploader.write_all(&data[1000..]).unwrap();
            assert_eq!(read_line(&mut uploader), format!("OK {}", data.len()), "{model}");
        }
        files.stop();
        http.stop();
    }
}

/// Row 4's promise: however the earlier attempt broke off, and whoever
/// made it, a `put` ends with exactly its own bytes or a clear error.
#[test]
fn every_model_resumes_only_bytes_of_the_same_file() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    const SIZE: usize = 3 * 1024 * 1024 + 5;
    let theirs = random_bytes(SIZE, 40);
    let mine = random_bytes(SIZE, 43);
    let mut cuts = Rng(0x5eed_0000_0000_0011);
    for &model in MODELS {
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let name = format!("r6-{model}.bin");
        // Someone else's upload of the same path and size breaks off.
        break_off(start_upload(&server, &name, &theirs, cuts.below(SIZE)));
        // Mine starts over instead of adopting their bytes...
        let cut = cuts.below(SIZE);
        let mut stream = connect(server.addr);
        let answer = ask(&mut stream, &format!("put {name} {SIZE} {}", sha256(&mine)));
        assert_eq!(answer, "OK 0", "{model}: their partial is not mine");
        stream.write_all(&mine[..cut]).unwrap();
        break_off(stream);
        // ...and resumes its own, wherever it broke off.
        let mut stream = connect(server.addr);
        let (have, done) = put(&mut stream, &name, &mine);
        assert_eq!(have, format!("OK {cut}"), "{model}: resumed where it broke off");
        assert_eq!(done, format!("OK {SIZE}"), "{model}");
        assert!(std::fs::read(root.join(&name)).unwrap() == mine, "{model}: exactly my bytes");
        // A liar's bytes never take the name: the old file stays.
        let answer = ask(&mut stream, &format!("put {name} {SIZE} {}", sha256(&theirs)));
        assert_eq!(answer, "OK 0", "{model}");
        stream.write_all(&mine).unwrap();
        let answer = read_line(&mut stream);
        assert!(answer.starts_with(&format!("ERR 422 /{name}: does not match")), "{model}: {answer}");
        assert!(std::fs::read(root.join(&name)).unwrap() == mine, "{model}: unchanged");
    }
}

/// A small deterministic generator for cut points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1 + (self.0 % (n as u64 - 1)) as usize
    }
}
