//! Resume identity, against a scripted server that speaks the protocol's
//! answers exactly as specified: a download resumes only bytes of the
//! version its `.part` recorded (`get PATH HAVE VERSION`; a changed file
//! comes back from 0), an upload announces its SHA-256 (`put PATH SIZE
//! SHA256`) and resumes only from what the server says it holds of those
//! bytes; `ERR 507` stops it before the payload, `ERR 422` after.

mod support;

use std::fs;

use ferry_client::{Client, ClientError, GetOptions, NoProgress, PutOptions};
use support::{Recorder, Rng, options, part_version, scripted_server, seed, sha256, write_part};

/// A download cut short records the version; the next attempt names it
/// and gets exactly the rest.
#[test]
fn an_interrupted_download_resumes_only_the_same_version() {
    let mut rng = Rng::new(seed("same_version"));
    let data = rng.bytes(100_000);
    let cut = rng.range(1, data.len() as u64) as usize;
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("f.bin");
    let part = local.path().join("f.bin.part");

    let first = data.clone();
    let (addr, server) = scripted_server(move |peer| {
        let request = peer.line();
        peer.send(format!("OK {} 0 {} v1\n", first.len(), first.len()).as_bytes());
        peer.send(&first[..cut]);
        request
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.get(b"/f.bin", &target, GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::ShortPayload { .. }), "{err}");
    assert_eq!(server.join().unwrap(), "get /f.bin 0");
    assert_eq!(fs::read(&part).unwrap(), &data[..cut]);
    assert_eq!(part_version(&part).as_deref(), Some("v1"), "the version is recorded beside the bytes");

    let rest = data.clone();
    let (addr, server) = scripted_server(move |peer| {
        let request = peer.line();
        peer.send(format!("OK {} {cut} {} v1\n", rest.len(), rest.len() - cut).as_bytes());
        peer.send(&rest[cut..]);
        let _ = peer.line(); // the client's next request, or end of stream
        request
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let mut progress = Recorder::default();
    let got = client.get(b"/f.bin", &target, GetOptions::default(), &mut progress).unwrap();
    drop(client);
    assert_eq!(server.join().unwrap(), format!("get /f.bin {cut} v1"));
    assert_eq!((got.resumed_from, got.version.as_deref()), (cut as u64, Some("v1")));
    assert_eq!((progress.already, progress.advanced), (cut as u64, (data.len() - cut) as u64));
    assert!(progress.notices.is_empty(), "{:?}", progress.notices);
    assert_eq!(sha256(&fs::read(&target).unwrap()), sha256(&data));
    assert!(!part.exists());
    assert_eq!(part_version(&target), None, "the finished file carries no download record");
}

/// The server's version differs: it answers from 0, and the client starts
/// the part over, says so, and ends with exactly the new file.
#[test]
fn a_changed_remote_file_is_downloaded_again_from_zero() {
    let mut rng = Rng::new(seed("changed"));
    let old = rng.bytes(5000);
    let new = rng.bytes(3000);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("f.bin");
    let part = local.path().join("f.bin.part");
    write_part(&part, &old[..4000], Some("v1"));

    let sent = new.clone();
    let (addr, server) = scripted_server(move |peer| {
        let request = peer.line();
        peer.send(format!("OK {} 0 {} v2\n", sent.len(), sent.len()).as_bytes());
        peer.send(&sent);
        request
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let mut progress = Recorder::default();
    let got = client.get(b"/f.bin", &target, GetOptions::default(), &mut progress).unwrap();
    assert_eq!(server.join().unwrap(), "get /f.bin 4000 v1");
    assert_eq!((got.resumed_from, got.version.as_deref()), (0, Some("v2")));
    assert_eq!(fs::read(&target).unwrap(), new, "exactly the new file, no old byte");
    assert!(
        progress.notices.iter().any(|n| n.contains("changed since the partial download") && n.contains("from 0")),
        "{:?}",
        progress.notices
    );
}

/// A part that records no version (an older ferry made it, or the server
/// named none) is never resumed: the client asks from 0 and says why.
#[test]
fn a_part_without_a_recorded_version_starts_over() {
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("f.bin");
    write_part(&local.path().join("f.bin.part"), b"stale bytes of who knows what", None);
    let (addr, server) = scripted_server(|peer| {
        let request = peer.line();
        peer.send(b"OK 5 0 5 v9\nfresh");
        request
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let mut progress = Recorder::default();
    let got = client.get(b"/f.bin", &target, GetOptions::default(), &mut progress).unwrap();
    assert_eq!(server.join().unwrap(), "get /f.bin 0");
    assert_eq!((got.resumed_from, fs::read(&target).unwrap()), (0, b"fresh".to_vec()));
    assert!(progress.notices.iter().any(|n| n.contains("does not record which version")), "{:?}", progress.notices);
}

/// A server that names no version leaves the part unrecorded, so an
/// interruption is followed by a fresh start, not a blind resume.
#[test]
fn bytes_from_a_server_without_versions_are_not_resumed() {
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("f.bin");
    let part = local.path().join("f.bin.part");
    write_part(&part, b"0123", Some("v1"));
    let (addr, server) = scripted_server(|peer| {
        let request = peer.line();
        peer.send(b"ERR 400 usage: get PATH [OFFSET]\n"); // an older server
        let retry = peer.line();
        peer.send(b"OK 10 0 10\n01234");
        (request, retry)
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let mut progress = Recorder::default();
    let err = client.get(b"/f.bin", &target, GetOptions::default(), &mut progress).unwrap_err();
    assert!(matches!(err, ClientError::ShortPayload { .. }), "{err}");
    assert_eq!(server.join().unwrap(), ("get /f.bin 4 v1".to_string(), "get /f.bin 0".to_string()));
    assert!(progress.notices.iter().any(|n| n.contains("names no file versions")), "{:?}", progress.notices);
    assert_eq!(fs::read(&part).unwrap(), b"01234");
    assert_eq!(part_version(&part), None, "no stale record on unversioned bytes");
}

/// Defence in depth: a server that resumes at the asked offset but with
/// another version is refused rather than mixed in.
#[test]
fn a_resume_with_another_version_is_a_protocol_error() {
    let local = tempfile::tempdir().unwrap();
    let part = local.path().join("f.part");
    write_part(&part, b"0123", Some("v1"));
    let (addr, server) = scripted_server(|peer| {
        peer.line();
        peer.send(b"OK 10 4 6 v2\n456789");
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.get(b"f", &local.path().join("f"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
    server.join().unwrap();
    assert_eq!(fs::read(&part).unwrap(), b"0123", "nothing of v2 was written");
}

/// `put PATH SIZE SHA256`; HAVE > 0 means only the rest is sent.
#[test]
fn an_upload_announces_its_digest_and_sends_only_what_the_server_lacks() {
    let mut rng = Rng::new(seed("put_digest"));
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("mine.bin");
    let data = support::random_file(&source, &mut rng, 200_000);
    let have = rng.range(1, data.len() as u64) as usize;
    let size = data.len();
    let (addr, server) = scripted_server(move |peer| {
        let request = peer.line();
        peer.send(format!("OK {have}\n").as_bytes());
        let payload = peer.bytes(size - have);
        peer.send(format!("OK {size}\n").as_bytes());
        (request, payload)
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let mut progress = Recorder::default();
    let put = client.put(&source, Some(b"/r6.bin"), PutOptions::default(), &mut progress).unwrap();
    let (request, payload) = server.join().unwrap();
    assert_eq!(request, format!("put /r6.bin {size} {}", sha256(&data)));
    assert_eq!(payload, &data[have..]);
    assert_eq!(
        (put.resumed_from, progress.already, progress.advanced),
        (have as u64, have as u64, (size - have) as u64)
    );
    assert_eq!(progress.hashed, size as u64, "the whole file was hashed first");
}

/// `ERR 507` before the payload: nothing is sent, the error names the
/// path, and the connection is still in step.
#[test]
fn insufficient_storage_stops_an_upload_before_its_payload() {
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("big.bin");
    fs::write(&source, vec![7u8; 64 * 1024]).unwrap();
    let (addr, server) = scripted_server(|peer| {
        peer.line();
        peer.send(b"ERR 507 insufficient storage for /big.bin (65536 bytes)\n");
        let next = peer.line();
        peer.send(b"OK pong\n");
        next
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.put(&source, None, PutOptions::default(), &mut NoProgress).unwrap_err();
    assert_eq!(err.server_code(), Some(507), "{err}");
    assert!(err.to_string().contains("/big.bin"), "{err}");
    client.ping().unwrap();
    assert_eq!(server.join().unwrap(), "ping", "the next bytes after the refusal are a request, not payload");
}

/// `ERR 422` after the payload: reported with the path; nothing saved.
#[test]
fn a_digest_mismatch_after_the_payload_is_reported() {
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("a.bin");
    fs::write(&source, b"abcdef").unwrap();
    let (addr, server) = scripted_server(|peer| {
        peer.line();
        peer.send(b"OK 0\n");
        peer.bytes(6);
        peer.send(b"ERR 422 /a.bin does not match its announced SHA-256; not saved\n");
        let next = peer.line();
        peer.send(b"OK pong\n");
        next
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.put(&source, None, PutOptions::default(), &mut NoProgress).unwrap_err();
    assert_eq!(err.server_code(), Some(422), "{err}");
    assert!(err.to_string().contains("/a.bin") && err.to_string().contains("not saved"), "{err}");
    client.ping().unwrap();
    assert_eq!(server.join().unwrap(), "ping");
}

/// A server that predates the digest refuses `put PATH SIZE SHA256` with
/// its usage line; the client asks again the old way.
#[test]
fn an_older_server_is_asked_without_the_digest() {
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("a.bin");
    fs::write(&source, b"abc").unwrap();
    let (addr, server) = scripted_server(|peer| {
        let first = peer.line();
        peer.send(b"ERR 400 usage: put PATH SIZE\n");
        let second = peer.line();
        peer.send(b"OK 0\n");
        let payload = peer.bytes(3);
        peer.send(b"OK 3\n");
        (first, second, payload)
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    client.put(&source, None, PutOptions::default(), &mut NoProgress).unwrap();
    let (first, second, payload) = server.join().unwrap();
    assert_eq!(first, format!("put a.bin 3 {}", sha256(b"abc")));
    assert_eq!((second.as_str(), payload.as_slice()), ("put a.bin 3", &b"abc"[..]));
}
