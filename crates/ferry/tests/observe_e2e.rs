//! The access log and the metrics (issue 16) under every model: what the
//! log and the counters say matches what the test did (curl for HTTP, the
//! file protocol over a socket), JSON lines parse, SIGUSR1 after a rename
//! (logrotate's way) moves logging to a new file, `promtool check metrics`
//! accepts the exposition, and /healthz turns 503 while the server drains.

mod util;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use rustix::process::Signal;
use util::serve::*;
use util::*;

/// A `ferry serve` with both services, an access log and metrics.
struct Observed {
    child: Child,
    files: SocketAddr,
    http: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_observed(model: &str, root: &Path, log: &Path, extra: &[&str]) -> Observed {
    let log_arg = log.to_str().expect("utf-8 path");
    let mut args = vec!["--model", model, "--files", "127.0.0.1:0", "--http", "127.0.0.1:0", "--access-log", log_arg];
    args.extend(["--metrics", "127.0.0.1:0", "--quiet"]);
    args.extend_from_slice(extra);
    let (child, files, lines) = spawn_serve(root, &args, "files");
    let http = listening(&lines, "http");
    let metrics = listening(&lines, "metrics");
    Observed { child, files, http, metrics, log: log.to_path_buf() }
}

fn listening(lines: &mpsc::Receiver<String>, service: &str) -> SocketAddr {
    let line = lines.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no {service} listening line"));
    let prefix = format!("ferry: {service} listening on ");
    line.strip_prefix(&prefix).unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}")).parse().expect("addr")
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-sS", "--max-time", "20"]).args(args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The access log's lines once it holds at least `n` (it is flushed at
/// least once a second).
fn log_lines(path: &Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(&format!("{} holds {n} lines", path.display()), || {
        lines = std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
        lines.len() >= n
    });
    lines
}

/// An HTTP GET on the metrics address: status and body.
fn scrape(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read metrics answer");
    let status = text.get(9..12).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

/// What every test does to a server: two HTTP requests with curl and two
/// file-protocol commands (`get`, `ping`) on one connection.
fn traffic(s: &Observed) {
    let url = format!("http://{}/a.txt", s.http);
    assert_eq!(curl(&["-A", "probe/1.0", "-e", "http://from.example/", &url]), "hello\n");
    let missing = format!("http://{}/missing", s.http);
    assert_eq!(curl(&["-o", "/dev/null", "-w", "%{http_code}", &missing]), "404");
    let mut conn = connect(s.files);
    assert!(ask(&mut conn, "get /a.txt").starts_with("OK 6 0 6 "));
    let mut body = [0u8; 6];
    conn.read_exact(&mut body).expect("file body");
    assert_eq!(ask(&mut conn, "ping"), "OK pong");
}

fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir root");
    std::fs::write(root.join("a.txt"), "hello\n").expect("write a.txt");
    (dir, root)
}

#[test]
fn access_log_has_a_combined_line_per_request_and_command_under_every_model() {
    let (dir, root) = tree();
    for &model in MODELS {
        let s = start_observed(model, &root, &dir.path().join(format!("{model}.log")), &[]);
        traffic(&s);
        // No accounts: Basic credentials are refused, and the name sent is
        // logged as nginx's $remote_user is.
        let refused = format!("http://{}/a.txt?who", s.http);
        assert_eq!(curl(&["-u", "ann:pw", "-o", "/dev/null", "-w", "%{http_code}", &refused]), "401");
        let lines = log_lines(&s.log, 5);
        let find = |needle: &str| {
            lines.iter().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{model}: no {needle:?} in {lines:#?}"))
        };
        let get = find("\"GET /a.txt HTTP/1.1\"");
        assert!(get.starts_with("127.0.0.1 - - ["), "{model}: {get}");
        assert!(get.contains("\" 200 6 \"http://from.example/\" \"probe/1.0\" "), "{model}: {get}");
        assert!(find("\"GET /missing HTTP/1.1\"").contains("\" 404 "), "{model}");
        assert!(find("\"get /a.txt\"").contains("\" 200 6 \"-\" \"-\" "), "{model}");
        assert!(find("\"ping\"").contains("\" 200 0 "), "{model}");
        assert!(find("?who HTTP/1.1\"").starts_with("127.0.0.1 - ann ["), "{model}");
        assert!(find("?who HTTP/1.1\"").contains("\" 401 "), "{model}");
        assert_eq!(lines.len(), 5, "{model}: one line per request, no more: {lines:#?}");
    }
}

#[test]
fn json_access_log_lines_parse_and_say_what_was_asked_under_every_model() {
    let (dir, root) = tree();
    for &model in MODELS {
        let log = dir.path().join(format!("{model}.jsonl"));
        let s = start_observed(model, &root, &log, &["--access-log-format", "json"]);
        traffic(&s);
        let lines = log_lines(&s.log, 4);
        let records: Vec<serde_json::Value> =
            lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{model}: {l}: {e}"))).collect();
        let by_request = |r: &str| {
            records.iter().find(|v| v["request"] == r).unwrap_or_else(|| panic!("{model}: no {r:?} in {records:#?}"))
        };
        let get = by_request("GET /a.txt HTTP/1.1");
        assert_eq!(get["service"], "http");
        assert_eq!(get["status"], 200);
        assert_eq!(get["bytes_sent"], 6);
        assert_eq!(get["user_agent"], "probe/1.0");
        assert_eq!(get["referer"], "http://from.example/");
        assert_eq!(get["remote_addr"], "127.0.0.1");
        assert!(get["duration"].as_f64().is_some_and(|d| d >= 0.0), "{model}: {get}");
        assert_eq!(by_request("GET /missing HTTP/1.1")["status"], 404);
        let file_get = by_request("get /a.txt");
        assert_eq!(
            (&file_get["service"], &file_get["status"], &file_get["bytes_sent"]),
            (&"files".into(), &200.into(), &6.into())
        );
        assert_eq!(by_request("ping")["user"], serde_json::Value::Null);
    }
}

#[test]
fn sigusr1_reopens_the_access_log_after_a_rename_under_every_model() {
    let (dir, root) = tree();
    for &model in MODELS {
        let log = dir.path().join(format!("{model}.log"));
        let s = start_observed(model, &root, &log, &[]);
        let url = |n: usize| format!("http://{}/a.txt?before={n}", s.http);
        curl(&["-o", "/dev/null", &url(0)]);
        log_lines(&log, 1);
        let rotated = dir.path().join(format!("{model}.log.1"));
        std::fs::rename(&log, &rotated).expect("rotate");
        let pid = rustix::process::Pid::from_raw(s.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, Signal::USR1).expect("SIGUSR1");
        // The signal is read by the server's loop some time after it is
        // sent: ask until a request lands in the new file.
        let mut n = 0;
        eventually(&format!("{model}: a request is logged to the new file"), || {
            n += 1;
            curl(&["-o", "/dev/null", &format!("http://{}/a.txt?after={n}", s.http)]);
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("after="))
        });
        let old = std::fs::read_to_string(&rotated).expect("rotated log");
        let new = std::fs::read_to_string(&log).expect("new log");
        assert!(old.contains("?before=0"), "{model}: {old}");
        assert!(!new.contains("before="), "{model}: a line of before the rotation in the new file: {new}");
        assert!(
            old.lines().chain(new.lines()).all(|l| l.ends_with(|c: char| c.is_ascii_digit())),
            "{model}: a broken line"
        );
    }
}

#[test]
fn metrics_count_the_requests_and_pass_promtool_under_every_model() {
    http_util_require("promtool", "prometheus");
    let (dir, root) = tree();
    for &model in MODELS {
        let s = start_observed(model, &root, &dir.path().join(format!("{model}.log")), &[]);
        traffic(&s);
        // Counted when each answer reached the kernel; the log's flush
        // (at least once a second) shows when all four are in.
        log_lines(&s.log, 4);
        let (status, text) = scrape(s.metrics, "/metrics");
        assert_eq!(status, 200, "{model}");
        let l = |service: &str| format!("service=\"{service}\",model=\"{model}\"");
        assert_eq!(sample(&text, &format!("ferry_requests_total{{{},class=\"2xx\"}}", l("http"))), 1.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_requests_total{{{},class=\"4xx\"}}", l("http"))), 1.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_requests_total{{{},class=\"2xx\"}}", l("files"))), 2.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_connections_total{{{}}}", l("http"))), 2.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_connections_total{{{}}}", l("files"))), 1.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_sent_bytes_total{{{}}}", l("files"))), 6.0, "{model}");
        assert_eq!(sample(&text, &format!("ferry_request_duration_seconds_count{{{}}}", l("http"))), 2.0, "{model}");
        if matches!(model, "threadpool" | "prefork") {
            let free = sample(&text, &format!("ferry_workers{{model=\"{model}\",state=\"free\"}}"));
            assert!(free >= 1.0, "{model}: {free} free workers");
        }
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        promtool.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
        let out = promtool.wait_with_output().expect("promtool output");
        assert!(
            out.status.success(),
            "{model}: promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn healthz_answers_200_then_503_while_the_server_drains_under_every_model() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for &model in MODELS {
        let mut s = start_observed(model, &root, &dir.path().join(format!("{model}.log")), &["--drain-timeout", "20"]);
        assert_eq!(scrape(s.metrics, "/healthz"), (200, "ok\n".to_string()), "{model}");
        // A download the client does not read keeps the drain going.
        let (held, _) = request(Svc::Files, s.files, "big.bin");
        let pid = rustix::process::Pid::from_raw(s.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, Signal::TERM).expect("SIGTERM");
        eventually(&format!("{model}: /healthz says 503"), || scrape(s.metrics, "/healthz").0 == 503);
        assert_eq!(s.child.try_wait().expect("try_wait"), None, "{model}: still draining");
        drop(held);
        let status = wait_child(&mut s.child, PATIENCE).expect("exits after the drain");
        assert!(status.success(), "{model}: {status}");
        eventually(&format!("{model}: the metrics process ends with the server"), || {
            TcpStream::connect(s.metrics).is_err()
        });
    }
}

/// Fails the test (never skips it) if `tool` is not installed.
fn http_util_require(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(found, "`{tool}` is not installed; this test needs it: apt-get install {package}");
}
