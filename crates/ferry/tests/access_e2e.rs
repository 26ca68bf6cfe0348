//! Accounts and rights over real sockets, under every model (issue 14):
//! `ferry passwd` and `ferry token` make the accounts file, `ferry serve
//! --auth` enforces it on both services; the file protocol's `auth`, the
//! CLI's `--user` and `FERRY_TOKEN`, and curl's Basic and Bearer.

mod util;

use std::path::Path;
use std::process::{Command, Output};

use util::serve::*;
use util::*;

/// Public read of /pub, uploads into /incoming for accounts, the rest
/// readable (not writable) by accounts only; alice has a password and a read-only token.
fn accounts(dir: &Path) -> (String, String) {
    let file = dir.join("accounts.toml");
    let file = file.to_str().unwrap();
    let out = ferry(&["passwd", file, "alice"], None, b"alice pw\n");
    assert!(out.status.success(), "passwd: {}", String::from_utf8_lossy(&out.stderr));
    let out = ferry(&["passwd", file, "bob"], None, b"bob pw\n");
    assert!(out.status.success());
    let out = ferry(&["token", file, "alice", "--rights", "list,read", "--expires", "1h"], None, b"");
    assert!(out.status.success(), "token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("ferry_"), "{token}");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains("alice pw") && !text.contains(&token[15..]), "no secret is stored");
    let rules = r#"
[[rule]]
who = "*"
path = "/"
allow = ["list", "read"]

[[rule]]
who = "anonymous"
path = "/pub"
allow = ["list", "read"]

[[rule]]
who = "*"
path = "/incoming"
allow = ["list", "write"]
"#;
    std::fs::write(file, text + rules).unwrap();
    (file.to_string(), token)
}

fn client(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ferry_bin());
    cmd.args(args).env_remove("FERRY_TOKEN").env_remove("FERRY_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_fed(&mut cmd, b"", PATIENCE)
}

fn curl(args: &[&str]) -> String {
    let out = run_fed(Command::new("curl").args(["-sS", "-i", "--max-time", "10"]).args(args), b"", PATIENCE);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_model_enforces_accounts_and_rights_on_both_services() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("pub")).unwrap();
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    std::fs::write(root.join("pub/free.txt"), b"free").unwrap();
    std::fs::write(root.join("private.txt"), b"private").unwrap();
    let (file, token) = accounts(dir.path());
    let up = dir.path().join("up.txt");
    std::fs::write(&up, b"upload").unwrap();
    for &model in MODELS {
        let args = ["--auth", file.as_str(), "--allow-write"];
        let mut files = start(model, Svc::Files, &root, &args);
        let mut http = start(model, Svc::Http, &root, &args);
        let addr = files.addr.to_string();

        // The protocol, raw.
        let mut raw = connect(files.addr);
        let answer = ask(&mut raw, "get private.txt");
        assert_eq!(answer, "ERR 403 read not allowed on /private.txt (log in: auth USER PASSWORD)", "{model}");
        assert_eq!(ask(&mut raw, "auth alice \"wrong\""), "ERR 401 wrong user name or password", "{model}");
        assert_eq!(ask(&mut raw, "auth bob \"bob pw\""), "OK user bob", "{model}");
        assert_eq!(ask(&mut raw, "put private.txt 1"), "ERR 403 write not allowed on /private.txt", "{model}");
        drop(raw);

        // The CLI: anonymous, a password from the environment, a token.
        let local = dir.path().join(format!("got-{model}.txt"));
        let got = local.to_str().unwrap();
        let out = client(&["get", &addr, "private.txt", got], &[]);
        assert!(!out.status.success(), "{model}: anonymous get of a private file");
        assert!(String::from_utf8_lossy(&out.stderr).contains("read not allowed on /private.txt"), "{model}");
        let out = client(&["get", "--user", "alice", &addr, "private.txt", got], &[("FERRY_PASSWORD", "alice pw")]);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(&local).unwrap(), b"private", "{model}");
        let out = client(
            &["put", "--user", "bob", &addr, up.to_str().unwrap(), "/incoming/"],
            &[("FERRY_PASSWORD", "bob pw")],
        );
        assert!(out.status.success(), "{model}: bob uploads into /incoming: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(root.join("incoming/up.txt")).unwrap(), b"upload", "{model}");
        std::fs::remove_file(root.join("incoming/up.txt")).unwrap();
        let out = client(&["put", &addr, up.to_str().unwrap(), "/pub/"], &[("FERRY_TOKEN", &token)]);
        assert!(!out.status.success(), "{model}: a read-only token cannot upload");
        let out = client(&["ls", &addr, "/"], &[("FERRY_TOKEN", &token)]);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("private.txt"), "{model}");

        // HTTP with curl.
        let base = format!("http://{}", http.addr);
        let anon = curl(&[&format!("{base}/private.txt")]);
        assert!(anon.starts_with("HTTP/1.1 401"), "{model}: {anon}");
        assert!(anon.contains("WWW-Authenticate: Basic realm=\"ferry\""), "{model}: {anon}");
        assert!(curl(&[&format!("{base}/pub/free.txt")]).ends_with("\r\n\r\nfree"), "{model}");
        assert!(
            curl(&["-u", "alice:alice pw", &format!("{base}/private.txt")]).ends_with("\r\n\r\nprivate"),
            "{model}"
        );
        let bearer = format!("Authorization: Bearer {token}");
        assert!(curl(&["-H", &bearer, &format!("{base}/private.txt")]).starts_with("HTTP/1.1 200"), "{model}");
        let wrong = curl(&["-u", "alice:nope", &format!("{base}/private.txt")]);
        assert!(wrong.starts_with("HTTP/1.1 401"), "{model}: {wrong}");
        files.stop();
        http.stop();
    }
}

/// Secure defaults: writes served to other machines with neither accounts
/// nor TLS refuse to start (before binding anything) unless `--insecure`;
/// loopback and `--auth` are unaffected.
#[test]
fn writes_on_a_reachable_address_without_accounts_need_insecure() {
    let dir = scratch();
    let root = dir.path().to_str().unwrap();
    let out = ferry(&["serve", root, "--files", "0.0.0.0:0", "--http", "off", "--allow-write"], None, b"");
    assert!(!out.status.success(), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve writes") && err.contains("0.0.0.0:0"), "{err}");
    assert!(err.contains("--auth FILE") && err.contains("--insecure") && err.contains("127.0.0.1"), "{err}");
    assert!(out.stdout.is_empty(), "nothing was bound");

    // --insecure serves (reached over loopback here).
    let args = ["--files", "0.0.0.0:0", "--http", "off", "--allow-write", "--insecure", "--quiet"];
    let (mut child, addr, _) = spawn_serve(dir.path(), &args, "files");
    let mut conn = connect(std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())));
    assert!(ask(&mut conn, "pwd").starts_with("OK"));
    drop(conn);
    kill_and_wait(&mut child);

    // Loopback, and a reachable address with accounts, start without it.
    let file = dir.path().join("accounts.toml");
    assert!(ferry(&["passwd", file.to_str().unwrap(), "alice"], None, b"pw\n").status.success());
    for args in [
        vec!["--files", "127.0.0.1:0", "--http", "off", "--allow-write", "--quiet"],
        vec!["--files", "0.0.0.0:0", "--http", "off", "--allow-write", "--auth", file.to_str().unwrap(), "--quiet"],
    ] {
        let (mut child, _, _) = spawn_serve(dir.path(), &args, "files");
        kill_and_wait(&mut child);
    }
}

fn kill_and_wait(child: &mut std::process::Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let status = wait_child(child, PATIENCE).expect("exited in time");
    assert!(status.success(), "{status}");
}

/// An argon2id hash of "slow pw" with costly parameters (32 MiB, 24
/// passes: over a second to check), so a check in progress is easy to see.
const SLOW_HASH: &str =
    "$argon2id$v=19$m=32768,t=24,p=1$c2xvd3NhbHRzbG93c2FsdA$sAMcBBg+JeS5sNxWBceDO/USPmcixMAODgP/u/fDJGA";

/// HTTP Basic's first check of a password runs as a job: while it runs,
/// the event loop that holds the connection keeps answering other
/// connections (before the fix the loop stalled for the whole hash, so
/// every request behind it was answered after the login's).
#[test]
fn a_basic_login_in_progress_does_not_stall_its_event_loop() {
    use std::io::{Read as _, Write as _};
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    let file = dir.path().join("accounts.toml");
    let rule = "[[rule]]\nwho = \"anonymous\"\npath = \"/\"\nallow = [\"list\", \"read\"]\n";
    std::fs::write(&file, format!("[users.slow]\npassword = \"{SLOW_HASH}\"\n\n{rule}")).unwrap();
    let one_loop: [(&str, &[&str]); 3] =
        [("reactor", &[]), ("multi-reactor", &["--io-threads", "1"]), ("uring", &["--io-threads", "1"])];
    for (model, extra) in one_loop {
        let mut args = vec!["--auth", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut server = start(model, Svc::Http, &root, &args);
        let mut login = connect(server.addr);
        let basic = "Authorization: Basic c2xvdzpzbG93IHB3"; // slow:slow pw
        login
            .write_all(format!("GET /a.txt HTTP/1.1\r\nHost: t\r\n{basic}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        for i in 0..5 {
            let mut other = connect(server.addr);
            other.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            other.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\na"), "{model} {i}: {answer}");
        }
        login.set_nonblocking(true).unwrap();
        let early = login.read(&mut [0u8; 1]);
        assert!(
            matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{model}: the login was answered before the other connections' requests: {early:?}"
        );
        login.set_nonblocking(false).unwrap();
        let mut answer = String::new();
        login.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\na"), "{model}: {answer}");
        server.stop();
    }
}

/// The client takes credentials from a netrc file (`--netrc-file`, or
/// `~/.netrc` with `--netrc`): the host's `machine` entry, else `default`;
/// with `--user NAME`, NAME's password. (Client side: one model suffices.)
#[test]
fn the_client_logs_in_with_credentials_from_a_netrc_file() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("pub")).unwrap();
    std::fs::write(root.join("private.txt"), b"private").unwrap();
    let (file, _) = accounts(dir.path());
    let mut server = start("reactor", Svc::Files, &root, &["--auth", file.as_str()]);
    let addr = server.addr.to_string();
    let got = dir.path().join("got.txt");
    let get = |extra: &[&str], env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&got);
        let mut args = vec!["get"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&addr, "private.txt", got.to_str().unwrap()]);
        let out = client(&args, env);
        (out.status.success() && std::fs::read(&got).is_ok_and(|b| b == b"private"), out)
    };
    let netrc = dir.path().join("netrc");
    let netrc_arg = netrc.to_str().unwrap();

    std::fs::write(
        &netrc,
        "machine 192.0.2.1 login bob password wrong\nmachine 127.0.0.1 login alice password \"alice pw\"\n",
    )
    .unwrap();
    let (ok, out) = get(&["--netrc-file", netrc_arg], &[]);
    assert!(ok, "the machine entry: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&netrc, "machine 192.0.2.1 login bob password wrong\ndefault login bob password \"bob pw\"\n")
        .unwrap();
    assert!(get(&["--netrc-file", netrc_arg], &[]).0, "the default entry when no machine matches");
    std::fs::write(&netrc, "default\n  login alice\n  password nope\n").unwrap();
    assert!(!get(&["--netrc-file", netrc_arg], &[]).0, "the default entry's password is the one used");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password nope\n").unwrap();
    let (ok, out) = get(&["--netrc-file", netrc_arg], &[]);
    assert!(
        !ok && String::from_utf8_lossy(&out.stderr).contains("wrong user name or password"),
        "a wrong password fails"
    );
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login bob password x\nmachine 127.0.0.1 login alice password \"alice pw\"\n",
    )
    .unwrap();
    assert!(get(&["--user", "alice", "--netrc-file", netrc_arg], &[]).0, "--user NAME takes NAME's password");
    let missing = dir.path().join("missing");
    let (ok, out) = get(&["--netrc-file", missing.to_str().unwrap()], &[]);
    assert!(!ok && String::from_utf8_lossy(&out.stderr).contains("cannot read"), "a missing --netrc-file is an error");

    // --netrc reads ~/.netrc.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".netrc"), "machine 127.0.0.1 login alice password \"alice pw\"\n").unwrap();
    assert!(get(&["--netrc"], &[("HOME", home.to_str().unwrap())]).0, "~/.netrc");

    // A password on the command line works, with a warning.
    let (ok, out) = get(&["--user", "alice:alice pw"], &[]);
    assert!(ok && String::from_utf8_lossy(&out.stderr).contains("visible to every user"));
    server.stop();
}
