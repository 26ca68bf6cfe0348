//! Downloads and uploads against a real in-process server: round trips,
//! partial downloads the server cannot vouch for, resumed uploads,
//! verification, saving into a directory or a stream.

mod support;

use std::fs;

use ferry_client::{Client, ClientError, GetOptions, NoProgress, PutOptions};
use support::{Recorder, Rng, TestServer, options, random_file, scripted_server, seed, sha256, write_part};

const MIB: usize = 1 << 20;

#[test]
fn put_then_get_round_trip_keeps_sha256() {
    let server = TestServer::start(true);
    let mut rng = Rng::new(seed("round_trip"));
    let local = tempfile::tempdir().unwrap();
    let original = random_file(&local.path().join("big.bin"), &mut rng, 4 * MIB + 123);

    let mut client = server.client();
    let mut progress = Recorder::default();
    let put = client.put(&local.path().join("big.bin"), None, PutOptions { verify: true }, &mut progress).unwrap();
    assert_eq!((put.remote.as_slice(), put.size, put.resumed_from), (&b"big.bin"[..], original.len() as u64, 0));
    assert_eq!(put.sha256.as_deref(), Some(sha256(&original).as_str()));
    assert_eq!(
        (progress.total, progress.already, progress.advanced),
        (original.len() as u64, 0, original.len() as u64)
    );
    assert!(progress.finished);
    assert_eq!(sha256(&fs::read(server.path("big.bin")).unwrap()), sha256(&original));

    let back = local.path().join("back.bin");
    let mut progress = Recorder::default();
    let got = client
        .get(b"/big.bin", &back, GetOptions { restart: false, verify: true, ..GetOptions::default() }, &mut progress)
        .unwrap();
    assert_eq!((got.local.as_path(), got.size, got.resumed_from), (back.as_path(), original.len() as u64, 0));
    assert_eq!(progress.advanced, original.len() as u64);
    assert_eq!(sha256(&fs::read(&back).unwrap()), sha256(&original));
    assert!(!local.path().join("back.bin.part").exists(), "the .part is renamed away");
    // The connection is still in step after both transfers.
    client.ping().unwrap();
}

/// A part that records no version, or one the server does not have (an
/// older server refuses the version; a newer one answers from 0), is
/// never resumed: the result is exactly the remote file.
#[test]
fn a_part_the_server_cannot_vouch_for_is_downloaded_again() {
    let server = TestServer::start(false);
    let mut rng = Rng::new(seed("unvouched_part"));
    let original = random_file(&server.path("data.bin"), &mut rng, 3 * MIB + 7);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("data.bin");
    let part = local.path().join("data.bin.part");
    let mut client = server.client();

    for version in [None, Some("not-the-servers-version")] {
        let cut = rng.range(1, original.len() as u64) as usize;
        // Same length as a real prefix, other bytes: resuming would mix.
        write_part(&part, &vec![0xAA; cut], version);
        let mut progress = Recorder::default();
        let got = client.get(b"data.bin", &target, GetOptions::default(), &mut progress).unwrap();
        assert_eq!(got.resumed_from, 0, "{version:?}");
        assert_eq!((progress.already, progress.advanced), (0, original.len() as u64));
        assert_eq!(sha256(&fs::read(&target).unwrap()), sha256(&original), "{version:?} at {cut}");
        assert!(!progress.notices.is_empty(), "starting over is said, not silent");
        assert!(!part.exists());
    }

    // A part longer than the remote file cannot be a prefix: start over.
    write_part(&part, &vec![0xAA; original.len() + 10], Some("v1"));
    let got = client.get(b"data.bin", &target, GetOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(got.resumed_from, 0);
    assert_eq!(fs::read(&target).unwrap(), original);

    // --restart ignores a part, even a wrong one.
    write_part(&part, &vec![0xAA; 1000], Some("v1"));
    let got = client
        .get(b"data.bin", &target, GetOptions { restart: true, verify: true, ..GetOptions::default() }, &mut NoProgress)
        .unwrap();
    assert_eq!(got.resumed_from, 0);
    assert_eq!(fs::read(&target).unwrap(), original);
    client.ping().unwrap();
}

#[test]
fn a_put_after_an_interrupted_one_lands_whole() {
    let server = TestServer::start(true);
    let mut rng = Rng::new(seed("resume_put"));
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("up.bin");
    let original = random_file(&source, &mut rng, 2 * MIB + 1);
    let cut = rng.range(1, original.len() as u64) as usize;
    fs::create_dir(server.path("in")).unwrap();
    // An earlier upload of the same file broke off after `cut` bytes.
    {
        let mut raw = std::net::TcpStream::connect(&server.addr).unwrap();
        let line = format!("put /in/up.bin {} {}\n", original.len(), sha256(&original));
        std::io::Write::write_all(&mut raw, line.as_bytes()).unwrap();
        let mut answer = [0u8; 5];
        std::io::Read::read_exact(&mut raw, &mut answer).unwrap();
        assert_eq!(&answer, b"OK 0\n");
        std::io::Write::write_all(&mut raw, &original[..cut]).unwrap();
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut raw, &mut rest).unwrap();
        assert!(rest.is_empty(), "the server closed without a word: {rest:?}");
    }

    let mut client = server.client();
    let mut progress = Recorder::default();
    let put = client.put(&source, Some(b"/in/"), PutOptions { verify: true }, &mut progress).unwrap();
    assert_eq!(put.remote.as_slice(), &b"/in/up.bin"[..]);
    assert_eq!(progress.already + progress.advanced, original.len() as u64);
    assert_eq!(sha256(&fs::read(server.path("in/up.bin")).unwrap()), sha256(&original));
}

#[test]
fn verify_detects_a_part_that_is_not_the_files_prefix() {
    // A server that resumes a part with bytes that are not
    // its file's prefix (a bug, or a lie about the version).
    let (addr, fake) = scripted_server(|peer| {
        peer.line();
        peer.send(b"OK 10 4 6 v1\n456789");
        assert_eq!(peer.line(), "sum v.bin");
        peer.send(format!("OK {}\n", sha256(b"0123456789")).as_bytes());
        assert_eq!(peer.line(), "ping");
        peer.send(b"OK pong\n");
    });
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("v.bin");
    let part = local.path().join("v.bin.part");
    write_part(&part, b"XXXX", Some("v1"));
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client
        .get(b"v.bin", &target, GetOptions { restart: false, verify: true, ..GetOptions::default() }, &mut NoProgress)
        .unwrap_err();
    let ClientError::VerifyMismatch { local_sum, remote_sum, .. } = &err else { panic!("expected a mismatch: {err}") };
    assert_eq!(
        (local_sum.as_str(), remote_sum.as_str()),
        (sha256(b"XXXX456789").as_str(), sha256(b"0123456789").as_str())
    );
    let message = err.to_string();
    assert!(message.contains(local_sum.as_str()) && message.contains(remote_sum.as_str()), "{message}");
    assert!(!target.exists(), "a download that failed verification never takes the final name");
    assert!(part.exists(), "the part is kept (run again with restart)");
    // The connection is still usable afterwards.
    client.ping().unwrap();
    fake.join().unwrap();
}

#[test]
fn get_into_a_directory_uses_the_remote_name() {
    let server = TestServer::start(false);
    fs::create_dir(server.path("sub")).unwrap();
    fs::write(server.path("sub/name with space.txt"), b"hello").unwrap();
    let local = tempfile::tempdir().unwrap();

    let mut client = server.client();
    let got = client.get(b"/sub/name with space.txt", local.path(), GetOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(got.local, local.path().join("name with space.txt"));
    assert_eq!(fs::read(&got.local).unwrap(), b"hello");

    // An empty file works too (no payload at all).
    fs::write(server.path("empty"), b"").unwrap();
    let got = client.get(b"empty", local.path(), GetOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(fs::read(&got.local).unwrap(), b"");
}

/// Into a pipe (spliced) or a file descriptor that is not one (copied,
/// hashed with verify): the bytes in order, no `.part` anywhere.
#[test]
fn get_to_a_stream_writes_the_bytes_in_order() {
    let server = TestServer::start(false);
    let mut rng = Rng::new(seed("stream"));
    let original = random_file(&server.path("s.bin"), &mut rng, 2 * MIB + 3);
    let mut client = server.client();

    let (read, write) = rustix::pipe::pipe().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut fs::File::from(read), &mut out).unwrap();
        out
    });
    let got = client
        .get_to(b"s.bin", std::os::fd::AsFd::as_fd(&write), "pipe".as_ref(), GetOptions::default(), &mut NoProgress)
        .unwrap();
    drop(write);
    assert_eq!((got.size, got.resumed_from, got.sha256), (original.len() as u64, 0, None));
    assert_eq!(sha256(&reader.join().unwrap()), sha256(&original));

    let local = tempfile::tempdir().unwrap();
    let file = fs::File::create(local.path().join("plain")).unwrap();
    let verify = GetOptions { restart: false, verify: true, ..GetOptions::default() };
    let got =
        client.get_to(b"s.bin", std::os::fd::AsFd::as_fd(&file), "plain".as_ref(), verify, &mut NoProgress).unwrap();
    assert_eq!(got.sha256.as_deref(), Some(sha256(&original).as_str()));
    assert_eq!(fs::read(local.path().join("plain")).unwrap(), original);
    assert_eq!(fs::read_dir(local.path()).unwrap().count(), 1, "no .part");
    client.ping().unwrap();
}
