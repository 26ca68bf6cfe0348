//! `ferry serve --config FILE`: the file's keys are options, the command
//! line overrides them, an unknown key is refused by name, and SIGHUP
//! re-reads the file under every model: the accounts file it names is
//! re-read, and changed options are logged as needing a restart or an
//! upgrade instead of being half-applied. The test waits for log lines.

mod util;

use std::io::Write as _;
use std::path::Path;

use rustix::process::Signal;
use util::serve::*;
use util::*;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn keys_are_options_and_the_command_line_wins() {
    let dir = scratch();
    std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    let config = dir.path().join("ferry.toml");
    let root = dir.path().to_str().unwrap();
    // The root and the services come from the file; its HTTP address
    // (a privileged port, not ours to bind) is overridden.
    write(&config, &format!("root = \"{root}\"\nfiles = \"off\"\nhttp = \"127.0.0.1:1\"\nmodel = \"thread\"\n"));
    let (mut child, addr, _log) = spawn_serve_config(&config, &["--http", "127.0.0.1:0"]);
    assert_ne!(addr.port(), 1);
    assert_eq!(download(Svc::Http, addr, "a.txt"), sha256(b"hello"));
    let _ = child.kill();
    let _ = child.wait();
}

/// `ferry serve --config CONFIG ARGS` (logged), its HTTP address and log.
fn spawn_serve_config(
    config: &Path,
    args: &[&str],
) -> (std::process::Child, std::net::SocketAddr, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(ferry_bin())
        .args(["serve", "--config", config.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    let addr = line.trim_end().strip_prefix("ferry: http listening on ").expect("http line").parse().unwrap();
    std::thread::spawn(move || stdout.lines().for_each(drop));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, addr, rx)
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let dir = scratch();
    let config = dir.path().join("ferry.toml");
    write(&config, "model = \"reactor\"\ndrain-timeuot = 3\n");
    let out = ferry(&["serve", "--config", config.to_str().unwrap()], None, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("config {}: key \"drain-timeuot\": unknown key", config.display())), "{err}");
}

#[test]
fn sighup_rereads_the_config_under_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for &model in MODELS {
        let config = dir.path().join(format!("{model}.toml"));
        let accounts = dir.path().join(format!("accounts-{model}.toml"));
        let out = ferry(&["passwd", accounts.to_str().unwrap(), "alice"], None, b"alice pw\n");
        assert!(out.status.success());
        let base = format!("auth = \"{}\"\ndrain-timeout = 30\n", accounts.display());
        write(&config, &base);
        let server = start_logged(model, Svc::Files, &root, &["--config", config.to_str().unwrap()]);
        // Unchanged: said so, and the accounts are re-read.
        server.signal(Signal::HUP);
        server.log_line("no option changed");
        server.log_line("reloaded accounts from");
        // Changed: the options that need a restart are named, not applied.
        write(&config, &format!("{base}max-conns = 7\n").replace("drain-timeout = 30", "drain-timeout = 5"));
        server.signal(Signal::HUP);
        let line = server.log_line("need a restart or an upgrade");
        assert!(line.contains("drain_timeout: 30 -> 5") && line.contains("max_conns: 1024 -> 7"), "{model}: {line}");
        // Broken: the configuration in use stays.
        let mut file = std::fs::OpenOptions::new().append(true).open(&config).unwrap();
        file.write_all(b"no-such-option = 1\n").unwrap();
        server.signal(Signal::HUP);
        let line = server.log_line("keeping the configuration in use");
        assert!(line.contains("\"no-such-option\""), "{model}: {line}");
        let mut conn = connect(server.addr);
        assert_eq!(ask(&mut conn, "auth alice \"alice pw\""), "OK user alice", "{model}");
        drop(conn);
        let mut server = server;
        server.stop();
    }
}
