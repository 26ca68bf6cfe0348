//! End-to-end tests of the file service's client subcommands against the
//! real `ferry` binary on loopback: `ls`, `put` to a read-only server,
//! errors that name the address and path, the interactive `shell`, where
//! a download may go (never renamed over a link or device; `-`), and the
//! timeouts against peers that do not answer. These test the client, so
//! one server model is enough.

mod util;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use util::*;

#[test]
fn read_only_server_refuses_writes_with_a_clear_error() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let local = dir.path().join("x.txt");
    std::fs::write(&local, b"data").unwrap();
    let out = ferry(&["put", &server.addr_arg(), local.to_str().unwrap()], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only"), "{err}");
    // The refused file, and where it was to go, are named.
    assert!(err.contains(local.to_str().unwrap()) && err.contains(&server.addr_arg()), "{err}");
    assert!(!root.join("x.txt").exists());
}

/// `-q` silences the summary line (and the bar); the file still arrives.
#[test]
fn quiet_get_prints_nothing_on_success() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let to = dir.path().join("h.txt");
    let out = ferry(&["-q", "get", &server.addr_arg(), "/hello.txt", to.to_str().unwrap()], None, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "-q printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read(&to).unwrap(), std::fs::read(root.join("hello.txt")).unwrap());
    let loud = ferry(&["get", &server.addr_arg(), "/hello.txt", dir.path().join("h2").to_str().unwrap()], None, b"");
    assert!(String::from_utf8_lossy(&loud.stdout).contains("got /hello.txt"), "without -q the summary is there");
}

#[test]
fn client_errors_name_the_address_and_path_and_fail() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let out = ferry(&["get", &server.addr_arg(), "/missing.txt", dir.path().join("m").to_str().unwrap()], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/missing.txt") && err.contains("404"), "{err}");
    assert!(!dir.path().join("m").exists() && !dir.path().join("m.part").exists());

    // A port nobody listens on: connect fails and names the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = ferry(&["ls", &addr], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "{err}");
}

#[test]
fn ls_lists_a_directory() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let out = ferry_ok(&["ls", &server.addr_arg(), "/sub"], None);
    assert!(out.contains("file.txt") && out.contains("deeper"), "{out}");
    let out = ferry_ok(&["ls", &server.addr_arg()], None);
    assert!(out.contains("hello.txt") && out.contains("sub"), "{out}");
}

#[test]
fn ls_for_scripts_filters_sorts_and_speaks_json() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    std::fs::write(root.join(".dot"), b"").unwrap();
    std::fs::write(root.join("big.bin"), vec![0u8; 3 * 1024 * 1024 / 2]).unwrap();
    // --hidden: the server lists dot names, and the client shows them only with -a.
    let server = Server::start(&root, &["--hidden"]);
    let addr = server.addr_arg();
    // Not a terminal: one name per line, hidden ones only with -a.
    assert_eq!(ferry_ok(&["ls", &addr], None), "big.bin\nhello.txt\nsub\n");
    assert_eq!(ferry_ok(&["ls", &addr, "-a"], None), ".dot\nbig.bin\nhello.txt\nsub\n");
    // Largest first, reversed.
    let by_size = ferry_ok(&["ls", &addr, "-S", "-r"], None);
    assert_eq!(by_size.lines().last(), Some("big.bin"), "{by_size}");
    // -lh: human sizes, directories marked.
    let long = ferry_ok(&["ls", &addr, "-lh"], None);
    assert!(long.lines().any(|l| l.starts_with("f  1.5M  ") && l.ends_with("  big.bin")), "{long}");
    assert!(long.lines().any(|l| l.starts_with("d  ") && l.ends_with("  sub/")), "{long}");
    let json = ferry_ok(&["ls", &addr, "--json", "/sub"], None);
    assert!(json.starts_with('[') && json.contains(r#""name":"file.txt""#) && json.contains(r#""size":3"#), "{json}");
}

#[test]
fn shell_over_a_pipe_browses_and_transfers() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &["--allow-write"]);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("local.txt"), b"from the shell").unwrap();
    let script = b"pwd\ncd sub\npwd\nls\nget file.txt\nput local.txt\ncd /nope\nping\n";
    let out = ferry(&["shell", "--keep-going", &server.addr_arg()], Some(&work), script);
    assert!(!out.status.success(), "a command failed, so the batch fails");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/sub"), "{text}");
    assert!(text.contains("file.txt") && text.contains("deeper"), "{text}");
    assert_eq!(std::fs::read(work.join("file.txt")).unwrap(), b"abc", "shell get wrote the file");
    assert_eq!(std::fs::read(root.join("sub/local.txt")).unwrap(), b"from the shell", "shell put uploaded");
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("404"), "errors are shown: {all}");
    assert!(all.contains("pong"), "{all}");
}

/// A batch (`sftp -b`): the exit status says whether every command
/// worked; it stops at the first failure unless `--keep-going`.
#[test]
fn a_batch_shell_stops_at_a_failure_and_fails_unless_told_to_keep_going() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let addr = server.addr_arg();
    let out = ferry(&["shell", &addr], None, b"pwd\nping\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let script = b"ping\ncd /nope\nstat hello.txt\nbogus\nping\n";
    let out = ferry(&["shell", &addr], None, script);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(stderr.contains("404") && stderr.contains("stopped at line 2"), "{stderr}");
    assert!(
        !stdout.contains("hello.txt") && stdout.matches("pong").count() == 1,
        "nothing after the failure: {stdout}"
    );

    let out = ferry(&["shell", "--keep-going", &addr], None, script);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(stdout.contains("hello.txt") && stdout.matches("pong").count() == 2, "the rest ran: {stdout}");
    assert!(stderr.contains("2 commands failed"), "an unknown command is a failure too: {stderr}");
}

/// sftp's local verbs: `lcd`, `lpwd`, `lls`, `!command` (whose failure
/// fails the batch, and which cannot eat the batch's input).
#[test]
fn shell_local_verbs_work_on_this_machine() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("here/inner")).unwrap();
    std::fs::write(work.join("here/a.txt"), b"").unwrap();
    let script = b"lcd here\nlpwd\nlls\n!cat; echo made > made.txt\nget /hello.txt\n!false\nping\n";
    let out = ferry(&["shell", "--keep-going", &server.addr_arg()], Some(&work), script);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{}\n", work.join("here").display())), "lpwd: {stdout}");
    assert!(stdout.contains("a.txt\ninner/\n"), "lls: {stdout}");
    assert_eq!(std::fs::read(work.join("here/made.txt")).unwrap(), b"made\n", "! ran in the new local directory");
    assert!(work.join("here/hello.txt").exists(), "get saved into the local directory lcd chose");
    assert!(stdout.contains("pong"), "! did not eat the commands: {stdout}");
    assert!(!out.status.success() && stderr.contains("!false"), "{stderr}");
}

#[test]
fn shell_notices_the_server_going_away() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &["--idle-timeout", "1"]);
    // stdin stays open (never written) so only the server closing can end the shell.
    let mut child = Command::new(ferry_bin())
        .args(["shell", &server.addr_arg()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let status = wait_child(&mut child, Duration::from_secs(15)).expect("shell exits when the server closes");
    drop(stdin);
    assert!(!status.success(), "losing the server is a failure");
}

/// Issue 11 row 8: `ferry get ... /dev/stdout` replaced the symlink with a
/// regular file. A download now renames only over a regular file or
/// nothing: a link to a pipe or a device is written through in place, a
/// link to a regular file replaces the file it leads to (the link stays),
/// a dangling link is refused. (Test-local links stand in for /dev/stdout
/// so that a regression cannot damage the machine's.)
#[test]
fn get_never_renames_over_what_is_not_a_regular_file() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let data = random_bytes(300_000, 11);
    std::fs::write(root.join("big.bin"), &data).unwrap();
    let server = Server::start(&root, &[]);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let link = |name: &str, to: &Path| {
        std::os::unix::fs::symlink(to, work.join(name)).unwrap();
        work.join(name).to_str().unwrap().to_owned()
    };
    let is_link_to = |name: &str, to: &Path| std::fs::read_link(work.join(name)).is_ok_and(|t| t == to);

    // What /dev/stdout is: a link to /proc/self/fd/1, here a pipe.
    let stdout = link("stdout", Path::new("/proc/self/fd/1"));
    let out = ferry(&["get", &server.addr_arg(), "/big.bin", &stdout], None, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(is_link_to("stdout", Path::new("/proc/self/fd/1")), "the link is still a link");
    assert_eq!(sha256(&out.stdout), sha256(&data), "stdout got exactly the file, and no summary line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("got /big.bin"), "the summary went to stderr");

    let null = link("null", Path::new("/dev/null"));
    ferry_ok(&["get", &server.addr_arg(), "/big.bin", &null], None);
    assert!(is_link_to("null", Path::new("/dev/null")));

    let fifo = work.join("fifo");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
        .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    ferry_ok(&["get", &server.addr_arg(), "/big.bin", fifo.to_str().unwrap()], None);
    assert_eq!(sha256(&reader.join().unwrap()), sha256(&data));
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");

    let real = work.join("real.txt");
    std::fs::write(&real, b"old").unwrap();
    let to_real = link("to-real", &real);
    ferry_ok(&["get", &server.addr_arg(), "/big.bin", &to_real], None);
    assert!(is_link_to("to-real", &real), "the link stays");
    assert_eq!(sha256_file(&real), sha256(&data), "the file it leads to was replaced");

    let dangling = link("dangling", &work.join("nothing"));
    let out = ferry(&["get", &server.addr_arg(), "/big.bin", &dangling], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symlink to nothing") && err.contains("dangling"), "{err}");
    assert!(is_link_to("dangling", &work.join("nothing")));

    let mut names: Vec<_> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["dangling", "fifo", "null", "real.txt", "stdout", "to-real"], "no .part left anywhere");
}

/// `-` is standard output for `get` (payload only; messages on stderr)
/// and standard input for `put` (a pipe is spooled first: the size must be
/// announced; a redirected regular file is used as it is).
#[test]
fn dash_is_stdout_for_get_and_stdin_for_put() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let data = random_bytes(1_500_000, 12);
    std::fs::write(root.join("big.bin"), &data).unwrap();
    let server = Server::start(&root, &["--allow-write"]);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();

    let out = ferry(&["get", &server.addr_arg(), "/big.bin", "-"], Some(&work), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&out.stdout), sha256(&data), "stdout is the file, nothing else");
    assert!(String::from_utf8_lossy(&out.stderr).contains("got /big.bin -> standard output"));
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "no .part, no file");

    let piped = random_bytes(700_001, 13);
    let out = ferry(&["put", &server.addr_arg(), "-", "/from-pipe.bin"], Some(&work), &piped);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256_file(&root.join("from-pipe.bin")), sha256(&piped));

    let source = work.join("source.bin");
    let file_sum = random_file(&source, 300_000, 14);
    let mut child = Command::new(ferry_bin())
        .args(["put", &server.addr_arg(), "-", "/from-file.bin"])
        .stdin(std::fs::File::open(&source).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_child(&mut child, PATIENCE).expect("put - < file finishes").success());
    assert_eq!(sha256_file(&root.join("from-file.bin")), file_sum);

    let out = ferry(&["put", &server.addr_arg(), "-"], Some(&work), b"x");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REMOTE"), "{}", String::from_utf8_lossy(&out.stderr));

    let help = ferry_ok(&["get", "--help"], None);
    assert!(help.contains("standard output, no .part, no resume"), "{help}");
    let help = ferry_ok(&["put", "--help"], None);
    assert!(help.contains("unnamed temporary file in $TMPDIR"), "{help}");
}

/// Issue 11 row 11: a listener that accepts and never answers, and one
/// whose accept queue is full, make every client command fail within its
/// timeout, naming the address (and the path, for a transfer).
#[test]
fn silent_and_full_listeners_fail_within_the_timeouts() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || (0..2).map(|_| silent.accept().unwrap().0).collect::<Vec<_>>());
    let bounded = |args: &[&str], limit: Duration| {
        let started = std::time::Instant::now();
        let out = ferry(args, None, b"");
        let took = started.elapsed();
        assert!(!out.status.success(), "{args:?}");
        assert!(took < limit, "{args:?} took {took:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = bounded(&["ls", &addr, "--stall-timeout", "1"], Duration::from_secs(6));
    assert!(err.contains(&addr) && err.contains("stall timeout"), "{err}");
    let dir = scratch();
    let to = dir.path().join("x.bin");
    let err =
        bounded(&["get", &addr, "/x.bin", to.to_str().unwrap(), "--stall-timeout", "1.5"], Duration::from_secs(7));
    assert!(err.contains(&addr) && err.contains("/x.bin") && err.contains("stall timeout"), "{err}");
    drop(holder.join().unwrap());

    // Backlog 1: Linux queues two connections and then drops SYNs, so a
    // third never completes its handshake.
    let full: std::os::fd::OwnedFd =
        rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::STREAM, None).unwrap();
    rustix::net::bind(&full, &"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap()).unwrap();
    rustix::net::listen(&full, 1).unwrap();
    let full = std::net::TcpListener::from(full);
    let full_addr = full.local_addr().unwrap();
    let fillers: Vec<_> =
        (0..3).map(|_| std::net::TcpStream::connect_timeout(&full_addr, Duration::from_millis(300))).collect();
    assert!(fillers.iter().filter(|f| f.is_ok()).count() >= 2, "{fillers:?}");
    let err = bounded(&["ls", &full_addr.to_string(), "--connect-timeout", "1"], Duration::from_secs(6));
    assert!(err.contains(&full_addr.to_string()) && err.contains("connect timeout"), "{err}");

    let help = ferry_ok(&["get", "--help"], None);
    assert!(help.contains("--connect-timeout <SECS>") && help.contains("[default: 10]"), "{help}");
    assert!(help.contains("--stall-timeout <SECS>") && help.contains("[default: 60]"), "{help}");
}

/// Pointing the client at the HTTP port gives the hint instead of a bare
/// protocol error.
#[test]
fn an_http_port_gets_a_hint() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let args = ["--files", "off", "--http", "127.0.0.1:0", "--header-timeout", "1", "--quiet"];
    let (mut child, addr, _lines) = spawn_serve(&root, &args, "http");
    let out = ferry(&["get", &addr.to_string(), "/hello.txt", dir.path().join("h").to_str().unwrap()], None, b"");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("looks like an HTTP server") && err.contains("7070"), "{err}");
    assert!(!dir.path().join("h.part").exists());
}
