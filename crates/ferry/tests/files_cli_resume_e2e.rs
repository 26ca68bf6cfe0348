//! Resume identity end to end (issue 11 row 4): the real `ferry get` and
//! `ferry put` against a real `ferry serve` under every model, each
//! transfer broken off at a random byte by a relay that cuts the
//! connection, then run again. A resumed file is always exactly one
//! version of the file: never old bytes followed by new ones, never the
//! bytes of an earlier upload of other content.

mod util;

use std::path::Path;
use std::process::Output;

use util::relay::{Cut, cutting_relay};
use util::serve::{MODELS, Svc, start};
use util::*;

fn run(args: &[&str], cwd: &Path) -> Output {
    ferry(args, Some(cwd), b"")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A download broken off, then the remote file changes: the next `get`
/// is told so and ends with exactly the new file.
#[test]
fn a_resumed_get_of_a_changed_file_is_exactly_the_new_file() {
    let seed = rand_seed("get_changed");
    for (i, model) in MODELS.iter().enumerate() {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let old = random_bytes(2_000_000 + i, seed + i as u64);
        std::fs::write(root.join("f.bin"), &old).unwrap();
        let server = start(model, Svc::Files, &root, &[]);

        let limit = 200 + (seed + i as u64) % (old.len() as u64 - 400);
        let (relay, cutter) = cutting_relay(server.addr, Cut::Download, limit);
        let out = run(&["get", &relay, "/f.bin"], &work);
        cutter.join().unwrap();
        assert!(!out.status.success(), "{model}: the cut download fails");
        let part = std::fs::read(work.join("f.bin.part")).unwrap();
        assert!(!part.is_empty() && old.starts_with(&part), "{model}: the part is a prefix of the old file");

        let new = random_bytes(1_500_000 + i, !seed + i as u64);
        std::fs::write(root.join("f.bin"), &new).unwrap();
        let out = run(&["get", &server.addr.to_string(), "/f.bin"], &work);
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(stderr(&out).contains("changed since the partial download"), "{model}: {}", stderr(&out));
        assert_eq!(sha256_file(&work.join("f.bin")), sha256(&new), "{model}: exactly the new file");
        assert!(!work.join("f.bin.part").exists());
    }
}

/// An upload of other bytes broken off, then `ferry put mine.bin`: the
/// server holds exactly mine.bin, whatever the earlier attempt left.
#[test]
fn a_put_after_an_aborted_put_of_other_bytes_is_exactly_mine() {
    let seed = rand_seed("put_other");
    for (i, model) in MODELS.iter().enumerate() {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        // Same size, other bytes: only the digest tells them apart.
        let size = 1_800_000 + i;
        random_file(&work.join("other.bin"), size, seed + i as u64);
        let mine = random_file(&work.join("mine.bin"), size, !seed + i as u64);
        let server = start(model, Svc::Files, &root, &["--allow-write"]);

        let limit = 200 + (seed + i as u64) % (size as u64 - 400);
        let (relay, cutter) = cutting_relay(server.addr, Cut::Upload, limit);
        let out = run(&["put", &relay, "other.bin", "/r6.bin"], &work);
        cutter.join().unwrap();
        assert!(!out.status.success(), "{model}: the cut upload fails");
        assert!(!root.join("r6.bin").exists(), "{model}: nothing under the name yet");

        let out = run(&["put", &server.addr.to_string(), "mine.bin", "/r6.bin"], &work);
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(!stderr(&out).contains("resuming"), "{model}: other bytes are not resumed: {}", stderr(&out));
        assert_eq!(sha256_file(&root.join("r6.bin")), mine, "{model}: exactly mine.bin");
    }
}

/// A download and an upload broken off at a random byte and run again:
/// each resumes where it stopped and ends with exactly the file.
#[test]
fn interrupted_transfers_resume_to_the_exact_file() {
    let seed = rand_seed("resume_exact");
    for (i, model) in MODELS.iter().enumerate() {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let down = random_file(&root.join("down.bin"), 2_500_000 + i, seed ^ 0x5555 ^ i as u64);
        let up = random_file(&work.join("up.bin"), 2_200_000 + i, seed ^ 0xAAAA ^ i as u64);
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let direct = server.addr.to_string();

        let limit = 200 + (seed + i as u64) % 2_000_000;
        let (relay, cutter) = cutting_relay(server.addr, Cut::Download, limit);
        assert!(!run(&["get", &relay, "/down.bin"], &work).status.success(), "{model}");
        cutter.join().unwrap();
        let out = run(&["get", &direct, "/down.bin"], &work);
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(stderr(&out).contains("resuming /down.bin at"), "{model}: {}", stderr(&out));
        assert_eq!(sha256_file(&work.join("down.bin")), down, "{model}: cut after {limit} bytes");

        std::fs::create_dir_all(root.join("in")).unwrap();
        let limit = 200 + (!seed + i as u64) % 2_000_000;
        let (relay, cutter) = cutting_relay(server.addr, Cut::Upload, limit);
        assert!(!run(&["put", &relay, "up.bin", "/in/up.bin"], &work).status.success(), "{model}");
        cutter.join().unwrap();
        let out = run(&["put", &direct, "up.bin", "/in/up.bin", "--verify"], &work);
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(stderr(&out).contains("resuming up.bin at"), "{model}: {}", stderr(&out));
        assert_eq!(sha256_file(&root.join("in/up.bin")), up, "{model}: cut after {limit} bytes");
    }
}

/// A seed that differs between runs, printed so a failure can be replayed
/// (`FERRY_TEST_SEED=...`).
fn rand_seed(test: &str) -> u64 {
    let seed = std::env::var("FERRY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("{test}: FERRY_TEST_SEED={seed}");
    seed
}
