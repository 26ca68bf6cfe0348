//! Several files and whole trees with the real `ferry get`/`ferry put`
//! (issue 15): `-r` with names that are not plain (spaces, a newline,
//! bytes that are not UTF-8), byte-identical both ways under every model;
//! a tree download cut mid-way and resumed file by file; remote globs;
//! one failing file failing the exit status but not the others;
//! `--parallel` connections; rsync's skip rules; `--limit-rate`,
//! `--max-time`; the `--json` summary.

mod util;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use util::relay::{Cut, counting_relay, cutting_relay};
use util::serve::{MODELS, Svc, start};
use util::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run_ok(args: &[&str], cwd: &Path) -> Output {
    let out = ferry(args, Some(cwd), b"");
    assert!(out.status.success(), "ferry {args:?}: {}", stderr(&out));
    out
}

/// Every path under `dir` (relative, as bytes) with its contents (`None`
/// for a directory).
fn snapshot(dir: &Path) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().as_os_str().as_bytes().to_vec();
            if path.is_dir() {
                found.insert(rel, None);
                todo.push(path);
            } else {
                found.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

/// A tree with the names a careless client breaks on. With `newline`, one
/// name holds a `\n` (a server may serve it, but refuses to create it).
fn odd_tree(at: &Path, newline: bool) {
    std::fs::create_dir_all(at.join("sub dir/deeper")).unwrap();
    std::fs::create_dir_all(at.join("empty")).unwrap();
    std::fs::write(at.join("plain.txt"), b"plain").unwrap();
    std::fs::write(at.join("with space.txt"), b"spaced").unwrap();
    std::fs::write(at.join(OsStr::from_bytes(b"latin1-\xe9t\xe9.bin")), b"not utf-8").unwrap();
    std::fs::write(at.join("sub dir/deeper/quote\"back\\slash"), b"quoted").unwrap();
    random_file(&at.join("sub dir/big.bin"), 700_000, 7);
    if newline {
        std::fs::write(at.join("new\nline.txt"), b"two\nlines").unwrap();
    }
}

#[test]
fn trees_with_odd_names_go_both_ways_byte_identical_under_every_model() {
    for model in MODELS {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        odd_tree(&root.join("tree"), true);
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        std::fs::File::options().write(true).open(root.join("tree/plain.txt")).unwrap().set_modified(old).unwrap();
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let addr = server.addr.to_string();

        run_ok(&["get", &addr, "-r", "/tree"], &work);
        assert_eq!(snapshot(&work.join("tree")), snapshot(&root.join("tree")), "{model}: get -r");
        let mtime = std::fs::metadata(work.join("tree/plain.txt")).unwrap().modified().unwrap();
        assert_eq!(mtime, old, "{model}: the download keeps the remote modification time");

        // Up: the server refuses to create the name with a newline; that
        // one file fails the command, the rest arrive exactly.
        let out = ferry(&["put", &addr, "-r", "tree", "/up"], Some(&work), b"");
        assert_eq!(out.status.code(), Some(1), "{model}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("new\\nline.txt") && stderr(&out).contains("1 of 6 files failed"),
            "{model}: {}",
            stderr(&out)
        );
        let mut expected = snapshot(&root.join("tree"));
        expected.remove(&b"new\nline.txt"[..]);
        assert_eq!(snapshot(&root.join("up")), expected, "{model}: put -r");
    }
}

/// A tree download cut in the middle of its second file, run again: the
/// first file is up to date, the second resumes from its `.part`, the
/// third arrives; the tree is exact.
#[test]
fn a_tree_download_cut_mid_way_resumes_file_by_file_under_every_model() {
    for model in MODELS {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(root.join("t")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        random_file(&root.join("t/a.bin"), 300_000, 1);
        random_file(&root.join("t/b.bin"), 2_000_000, 2);
        random_file(&root.join("t/c.bin"), 500_000, 3);
        let server = start(model, Svc::Files, &root, &[]);

        let (relay, cutter) = cutting_relay(server.addr, Cut::Download, 1_300_000);
        let out = ferry(&["get", &relay, "-r", "/t"], Some(&work), b"");
        cutter.join().unwrap();
        assert_eq!(out.status.code(), Some(1), "{model}: the cut tree fails: {}", stderr(&out));
        assert!(stderr(&out).contains("kept for resuming"), "{model}: {}", stderr(&out));
        assert_eq!(std::fs::read(work.join("t/a.bin")).unwrap(), std::fs::read(root.join("t/a.bin")).unwrap());
        let part = std::fs::metadata(work.join("t/b.bin.part")).unwrap().len();
        assert!(part > 500_000 && part < 2_000_000, "{model}: b.bin.part holds {part} bytes");
        assert!(!work.join("t/c.bin").exists(), "{model}");

        let out = run_ok(&["get", &server.addr.to_string(), "-r", "/t", "--update"], &work);
        let (text, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(text.contains("skipped /t/a.bin -> t/a.bin: up to date"), "{model}: {text}");
        assert!(err.contains("resuming /t/b.bin at"), "{model}: {err}");
        assert!(text.contains("3 files (2 moved, 1 skipped, 0 failed)"), "{model}: {text}");
        assert_eq!(snapshot(&work.join("t")), snapshot(&root.join("t")), "{model}");
    }
}

#[test]
fn remote_globs_are_matched_against_the_listing() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("d")).unwrap();
    for name in ["x1.iso", "x2.iso", "notes.txt", ".hidden.iso", "d/y.iso", "d/z.txt"] {
        std::fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let server = start("reactor", Svc::Files, &root, &[]);
    let addr = server.addr.to_string();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("one")).unwrap();
    std::fs::create_dir_all(work.join("two")).unwrap();

    run_ok(&["get", &addr, "/*.iso", "one"], &work);
    let names = |d: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(work.join(d)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(names("one"), ["x1.iso", "x2.iso"], "no hidden file, nothing from d/");
    run_ok(&["get", &addr, "/*/?.iso", "notes.[st]xt", "two"], &work);
    assert_eq!(names("two"), ["notes.txt", "y.iso"]);
    assert_eq!(std::fs::read(work.join("two/y.iso")).unwrap(), b"d/y.iso");

    let out = ferry(&["get", &addr, "/*.nothing"], Some(&work), b"");
    assert!(!out.status.success() && stderr(&out).contains("no match for /*.nothing"), "{}", stderr(&out));
    let out = ferry(&["get", &addr, "/*.iso", "-"], Some(&work), b"");
    assert!(!out.status.success() && stderr(&out).contains("standard output takes one file"), "{}", stderr(&out));
}

/// `--parallel 4` makes four connections for many small files (counted by
/// a relay in between), each file arriving once and exactly, both ways.
#[test]
fn parallel_connections_share_one_plan_under_every_model() {
    for model in MODELS {
        let dir = scratch();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(root.join("many")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        for i in 0..120 {
            random_file(&root.join(format!("many/f{i:03}")), 1000 + i * 37, i as u64);
        }
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let (relay, count) = counting_relay(server.addr);

        let out = run_ok(&["get", &relay, "-r", "/many", "--parallel", "4", "--json"], &work);
        assert_eq!(count.load(Ordering::SeqCst), 4, "{model}: four connections");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        assert_eq!(summary["done"], 120, "{model}");
        assert_eq!(snapshot(&work.join("many")), snapshot(&root.join("many")), "{model}: get");

        count.store(0, Ordering::SeqCst);
        run_ok(&["put", &relay, "-r", "many", "/copy", "--parallel", "3", "-s"], &work);
        assert_eq!(count.load(Ordering::SeqCst), 3, "{model}: three connections");
        assert_eq!(snapshot(&root.join("copy")), snapshot(&root.join("many")), "{model}: put");
    }
}

/// Statuses by source name from a `--json` summary.
fn statuses(out: &Output) -> BTreeMap<String, String> {
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let files = summary["files"].as_array().expect("files");
    files.iter().map(|f| (f["source"].as_str().unwrap().to_owned(), f["status"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn skip_rules_leave_what_is_already_there() {
    let dir = scratch();
    let root = dir.path().join("root");
    let work = dir.path().join("work");
    std::fs::create_dir_all(root.join("s")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(root.join("s").join(name), format!("remote {name}")).unwrap();
    }
    let server = start("reactor", Svc::Files, &root, &["--allow-write"]);
    let addr = server.addr.to_string();
    let get = |extra: &[&str]| {
        let mut args = vec!["get", &addr, "-r", "/s", "--json"];
        args.extend_from_slice(extra);
        ferry(&args, Some(&work), b"")
    };
    assert!(get(&[]).status.success());
    // Same size, other bytes, here; a newer file there.
    std::fs::write(work.join("s/a"), b"LOCAL! a").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // mtimes are whole seconds
    std::fs::write(root.join("s/b"), b"remote B").unwrap();
    let all =
        |s: &str| ["/s/a", "/s/b", "/s/c"].iter().map(|n| (n.to_string(), s.to_string())).collect::<BTreeMap<_, _>>();

    let out = get(&["--skip-existing"]);
    assert_eq!(statuses(&out), all("skipped"));
    let out = get(&["--update"]);
    let mut want = all("skipped");
    want.insert("/s/b".into(), "done".into());
    assert_eq!(statuses(&out), want, "only the file that changed there");
    assert_eq!(std::fs::read(work.join("s/b")).unwrap(), b"remote B");
    assert_eq!(std::fs::read(work.join("s/a")).unwrap(), b"LOCAL! a", "same size, not older: left alone");
    let out = get(&["--checksum"]);
    let mut want = all("skipped");
    want.insert("/s/a".into(), "done".into());
    assert_eq!(statuses(&out), want, "only the file whose bytes differ");
    assert_eq!(std::fs::read(work.join("s/a")).unwrap(), b"remote a");

    std::fs::write(root.join("s/d"), b"new").unwrap();
    let out = get(&["--no-clobber"]);
    assert_eq!(out.status.code(), Some(1), "existing files are failures: {}", stderr(&out));
    let mut want = all("failed");
    want.insert("/s/d".into(), "done".into());
    assert_eq!(statuses(&out), want);

    // Uploads: the remote copy is newer than the local file after a put.
    // (Into an existing directory, so every run lands in /back/s.)
    std::fs::create_dir(root.join("back")).unwrap();
    run_ok(&["put", &addr, "-r", "s", "/back"], &work);
    let out = run_ok(&["put", &addr, "-r", "s", "/back", "--update", "--json"], &work);
    assert!(statuses(&out).values().all(|s| s == "skipped"), "{:?}", statuses(&out));
    std::fs::write(work.join("s/c"), b"LOCAL! c").unwrap();
    let out = run_ok(&["put", &addr, "-r", "s", "/back", "--checksum", "--json"], &work);
    let sent: Vec<_> = statuses(&out).into_iter().filter(|(_, s)| s == "done").map(|(n, _)| n).collect();
    assert_eq!(sent, ["s/c"]);
    assert_eq!(std::fs::read(root.join("back/s/c")).unwrap(), b"LOCAL! c");
}

/// `--limit-rate` holds a download and an upload under the rate (a lower
/// bound on the time taken, with room for the first burst); `--max-time`
/// stops a slow transfer, keeping its `.part` for the next run.
#[test]
fn limit_rate_and_max_time_pace_transfers() {
    let dir = scratch();
    let root = dir.path().join("root");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let sum = random_file(&root.join("r.bin"), 1_000_000, 5);
    random_file(&work.join("u.bin"), 1_000_000, 6);
    let server = start("reactor", Svc::Files, &root, &["--allow-write"]);
    let addr = server.addr.to_string();

    // 1 MB at 400 KiB/s: 2.4 s; the bucket starts empty, the head line may
    // bring up to 64 KiB with it.
    for args in [
        vec!["get", &addr, "/r.bin", "--limit-rate", "400k"],
        vec!["put", &addr, "u.bin", "/u.bin", "--limit-rate", "400K"],
        vec!["get", &addr, "/r.bin", "-", "--limit-rate", "400k"],
    ] {
        let started = Instant::now();
        let out = run_ok(&args, &work);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(2000), "{args:?} took {took:?}");
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
        if args.contains(&"-") {
            assert_eq!(sha256(&out.stdout), sum, "the pipe got the file");
        }
    }

    let started = Instant::now();
    let out = ferry(&["get", &addr, "/r.bin", "slow.bin", "--limit-rate", "100k", "--max-time", "1"], Some(&work), b"");
    assert!(!out.status.success() && stderr(&out).contains("max time"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let part = std::fs::metadata(work.join("slow.bin.part")).unwrap().len();
    assert!(part > 0 && part < 500_000, "{part}");
    let out = run_ok(&["get", &addr, "/r.bin", "slow.bin"], &work);
    assert!(stderr(&out).contains("resuming /r.bin"), "{}", stderr(&out));
    assert_eq!(sha256_file(&work.join("slow.bin")), sum);
}

/// The bars in a real 40-column terminal (tmux): a file bar and the total
/// bar, each on one line with its label, percentage and rate: nothing
/// wraps.
#[test]
fn the_bars_fit_a_40_column_terminal() {
    let dir = scratch();
    let root = dir.path().join("root");
    let work = dir.path().join("work");
    std::fs::create_dir_all(root.join("t")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    random_file(&root.join("t/a rather long name for a narrow terminal.bin"), 1_500_000, 9);
    std::fs::write(root.join("t/small.txt"), b"small").unwrap();
    let server = start("reactor", Svc::Files, &root, &[]);
    let socket = format!("ferry-transfers-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux").args(["-L", &socket, "-f", "/dev/null"]).args(args).output().expect("tmux")
    };
    let command = format!("'{}' get {} -r /t --limit-rate 300k; sleep 600", ferry_bin(), server.addr);
    let work_dir = work.to_str().unwrap();
    let started =
        tmux(&["new-session", "-d", "-x", "40", "-y", "10", "-c", work_dir, "env", "TERM=xterm", "sh", "-c", &command]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    struct Kill<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let _kill = Kill(&tmux);
    let deadline = Instant::now() + PATIENCE;
    let screen = loop {
        let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
        if screen.lines().any(|l| l.contains(" files ") && l.contains('%')) && screen.contains("/t/a rather") {
            break screen;
        }
        assert!(Instant::now() < deadline, "no bars on the screen:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let file_bar = screen.lines().find(|l| l.starts_with("/t/a rather")).expect("the file's bar");
    assert!(file_bar.contains('%') && file_bar.trim_end().ends_with('s'), "one line: {screen}");
    let total_bar = screen.lines().find(|l| l.contains(" files ")).expect("the total bar");
    assert!(total_bar.contains('%') && total_bar.contains("/s"), "one line: {screen}");
    for line in screen.lines() {
        assert!(line.chars().count() <= 40, "{line:?}");
    }
}

/// `--max-time` also bounds waits the transfer loop cannot see: a server
/// that accepts and never answers (the stall timeout is a minute).
#[test]
fn max_time_bounds_a_server_that_never_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
    let dir = scratch();
    let started = Instant::now();
    let out = ferry(&["get", &addr, "/x.bin", "--max-time", "1"], Some(dir.path()), b"");
    let took = started.elapsed();
    assert!(!out.status.success() && stderr(&out).contains("max-time"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(holder.join());
}
