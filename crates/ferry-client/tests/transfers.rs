//! Downloads and uploads against a real in-process server: round trips,
//! resume from either side, verification, saving into a directory.

mod support;

use std::fs;

use ferry_client::{ClientError, GetOptions, NoProgress, Progress, PutOptions};
use support::{Rng, TestServer, random_file, seed, sha256};

const MIB: usize = 1 << 20;

/// Records what the client reported, to check progress adds up.
#[derive(Default)]
struct Recorder {
    total: u64,
    already: u64,
    advanced: u64,
    finished: bool,
}

impl Progress for Recorder {
    fn start(&mut self, total: u64, already: u64) {
        (self.total, self.already) = (total, already);
    }
    fn advance(&mut self, n: u64) {
        self.advanced += n;
    }
    fn finish(&mut self) {
        self.finished = true;
    }
}

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
    let got = client.get(b"/big.bin", &back, GetOptions { restart: false, verify: true }, &mut progress).unwrap();
    assert_eq!((got.local.as_path(), got.size, got.resumed_from), (back.as_path(), original.len() as u64, 0));
    assert_eq!(progress.advanced, original.len() as u64);
    assert_eq!(sha256(&fs::read(&back).unwrap()), sha256(&original));
    assert!(!local.path().join("back.bin.part").exists(), "the .part is renamed away");
    // The connection is still in step after both transfers.
    client.ping().unwrap();
}

#[test]
fn interrupted_get_resumes_from_the_part() {
    let server = TestServer::start(false);
    let mut rng = Rng::new(seed("resume_get"));
    let original = random_file(&server.path("data.bin"), &mut rng, 3 * MIB + 7);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("data.bin");
    let part = local.path().join("data.bin.part");
    let mut client = server.client();

    for _ in 0..3 {
        let cut = rng.range(1, original.len() as u64) as usize;
        fs::write(&part, &original[..cut]).unwrap();
        let mut progress = Recorder::default();
        let got = client.get(b"data.bin", &target, GetOptions::default(), &mut progress).unwrap();
        assert_eq!(got.resumed_from, cut as u64);
        assert_eq!((progress.already, progress.advanced), (cut as u64, (original.len() - cut) as u64));
        assert_eq!(sha256(&fs::read(&target).unwrap()), sha256(&original), "resumed at {cut}");
        assert!(!part.exists());
    }

    // A part as long as the file: nothing left to fetch, still completes.
    fs::write(&part, &original).unwrap();
    let got = client.get(b"data.bin", &target, GetOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(got.resumed_from, original.len() as u64);
    assert_eq!(fs::read(&target).unwrap(), original);

    // A part longer than the remote file cannot be a prefix: start over.
    fs::write(&part, vec![0xAA; original.len() + 10]).unwrap();
    let got = client.get(b"data.bin", &target, GetOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(got.resumed_from, 0);
    assert_eq!(fs::read(&target).unwrap(), original);

    // --restart ignores a part, even a wrong one.
    fs::write(&part, vec![0xAA; 1000]).unwrap();
    let got = client.get(b"data.bin", &target, GetOptions { restart: true, verify: true }, &mut NoProgress).unwrap();
    assert_eq!(got.resumed_from, 0);
    assert_eq!(fs::read(&target).unwrap(), original);
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
fn verify_detects_a_stale_part_on_either_side() {
    let server = TestServer::start(true);
    let mut rng = Rng::new(seed("verify"));
    let original = random_file(&server.path("v.bin"), &mut rng, MIB);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("v.bin");
    let part = local.path().join("v.bin.part");
    // A part whose bytes are not the remote file's prefix.
    fs::write(&part, vec![0u8; 4096]).unwrap();

    let mut client = server.client();
    let err = client.get(b"v.bin", &target, GetOptions { restart: false, verify: true }, &mut NoProgress).unwrap_err();
    let ClientError::VerifyMismatch { local_sum, remote_sum, .. } = &err else { panic!("expected a mismatch: {err}") };
    assert_eq!(remote_sum, &sha256(&original));
    assert_ne!(local_sum, remote_sum);
    let message = err.to_string();
    assert!(message.contains(local_sum.as_str()) && message.contains(remote_sum.as_str()), "{message}");
    assert!(!target.exists(), "a download that failed verification never takes the final name");
    assert!(part.exists(), "the part is kept (run again with restart)");
    // The connection is still usable afterwards.
    client.ping().unwrap();
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
