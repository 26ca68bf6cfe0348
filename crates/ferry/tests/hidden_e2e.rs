//! Names starting with `.` and symlinks out of the root, the same on both
//! services under every model: hidden names are left out of every listing
//! (file protocol `ls`, HTTP pages, searches and archives) and answered as
//! not found, unless the server runs with `--hidden`; uploads (whose
//! partials live in a dot directory) keep working; a symlink that leads out
//! of the root is listed by neither service, one inside it by both.

mod http_util;
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use http_util::{ALL_MODELS, HttpServer, PATIENCE, require_tool, run_bounded};
use util::serve::{MODELS, Svc, connect, start};
use util::{Conn, scratch};

/// `hello.txt`, `sub/file.txt`, the hidden `.env`, `.git/config` and
/// `sub/.secret`, a symlink inside the root and one out of it.
fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("hello.txt"), b"Hello").unwrap();
    std::fs::write(root.join("sub/file.txt"), b"abc").unwrap();
    std::fs::write(root.join(".env"), b"SECRET=1").unwrap();
    std::fs::write(root.join(".git/config"), b"[core]").unwrap();
    std::fs::write(root.join("sub/.secret"), b"s").unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link-in")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("link-out")).unwrap();
    root
}

/// The names of a file-protocol `ls`.
fn ls(conn: &mut Conn, path: &str) -> Vec<String> {
    let head = conn.ask(&format!("ls {path}"));
    let len: usize = head.strip_prefix("OK ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("ls: {head}"));
    let body = String::from_utf8(conn.bytes(len)).expect("UTF-8 listing");
    body.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap_or("?").to_string()).collect()
}

#[test]
fn file_service_hides_dot_names_and_escaping_links_under_every_model() {
    let dir = scratch();
    let root = tree(dir.path());
    for model in MODELS {
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let mut c = Conn::new(connect(server.addr));
        assert_eq!(ls(&mut c, "/"), ["hello.txt", "link-in", "sub"], "{model}: no dot names, no link out");
        assert_eq!(ls(&mut c, "sub"), ["file.txt"], "{model}");
        for ask in ["get .env", "get /.git/config", "cd .git", "stat sub/.secret", "ls .git", "sum sub/../.env"] {
            let answer = c.ask(ask);
            assert!(answer.starts_with("ERR 404 "), "{model}: {ask}: {answer}");
        }
        assert!(c.ask("put .new 1").starts_with("ERR 404 "), "{model}: a hidden name cannot be created");
        assert!(c.ask("mkdir .d").starts_with("ERR 404 "), "{model}");
        assert!(c.ask("get link-out/passwd").starts_with("ERR 403 "), "{model}: links out stay refused");
        assert!(c.ask("get link-in").starts_with("OK 5 0 5 "), "{model}: links inside are followed");
        assert_eq!(c.bytes(5), b"Hello", "{model}");
        // Uploads, whose partials live in ROOT/.ferry-partials, still work.
        assert_eq!(c.ask("put up.txt 2"), "OK 0", "{model}");
        c.send(b"hi");
        assert_eq!(c.line(), "OK 2", "{model}");
        assert_eq!(std::fs::read(root.join("up.txt")).unwrap(), b"hi", "{model}");
        assert_eq!(c.ask("rm up.txt"), "OK", "{model}");
        drop(server);

        let server = start(model, Svc::Files, &root, &["--allow-write", "--hidden"]);
        let mut c = Conn::new(connect(server.addr));
        assert_eq!(ls(&mut c, "/"), [".env", ".git", "hello.txt", "link-in", "sub"], "{model}: --hidden");
        assert_eq!(ls(&mut c, "sub"), [".secret", "file.txt"], "{model}: --hidden");
        assert!(c.ask("get .git/config").starts_with("OK 6 0 6 "), "{model}: --hidden serves dot names");
        assert_eq!(c.bytes(6), b"[core]", "{model}");
        assert!(c.ask("ls .ferry-partials").starts_with("ERR 400 "), "{model}: the partials stay reserved");
    }
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = run_bounded(Command::new("curl").args(["-sS", "-w", "\n%{http_code}"]).args(args), PATIENCE);
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = out.stdout;
    let cut = text.iter().rposition(|&b| b == b'\n').expect("status line");
    (String::from_utf8_lossy(&text[cut + 1..]).into_owned(), text[..cut].to_vec())
}

fn json_names(server: &HttpServer, path: &str) -> Vec<String> {
    let (status, body) = curl(&[&server.url(path)]);
    assert_eq!(status, "200", "{path}");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("a JSON listing");
    let mut names: Vec<String> =
        value.as_array().expect("an array").iter().map(|e| e["name"].as_str().unwrap_or("?").to_string()).collect();
    names.sort();
    names
}

/// The member names of a tar archive.
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut cmd = Command::new("tar");
    cmd.args(["-t", "-f", "-"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run tar");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), tar).unwrap();
    let out = child.wait_with_output().expect("tar -t");
    assert!(out.status.success(), "tar -t");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn http_service_hides_dot_names_and_escaping_links_under_every_model() {
    require_tool("curl", "curl");
    require_tool("tar", "tar");
    let dir = scratch();
    let root = tree(dir.path());
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &[]);
        assert_eq!(json_names(&server, "/?json"), ["hello.txt", "link-in", "sub"], "{m}: no dot names, no link out");
        assert_eq!(json_names(&server, "/sub/?json"), ["file.txt"], "{m}");
        for path in ["/.env", "/.git/config", "/.git/", "/sub/.secret", "/%2eenv", "/link-out/passwd"] {
            assert_eq!(curl(&["-o", "/dev/null", &server.url(path)]).0, "404", "{m}: {path}");
        }
        assert_eq!(json_names(&server, "/?q=secret&json"), Vec::<String>::new(), "{m}: searches skip dot names");
        assert_eq!(json_names(&server, "/?q=config&json"), Vec::<String>::new(), "{m}");
        let (status, tar) = curl(&[&server.url("/?archive=tar")]);
        assert_eq!(status, "200", "{m}");
        let members = tar_names(&tar);
        assert!(
            !members.is_empty() && members.iter().all(|n| !n.split('/').any(|c| c.starts_with('.'))),
            "{m}: {members:?}"
        );
        drop(server);

        let server = HttpServer::start(&root, model, &["--hidden"]);
        assert_eq!(json_names(&server, "/?json"), [".env", ".git", "hello.txt", "link-in", "sub"], "{m}: --hidden");
        let (status, body) = curl(&[&server.url("/.git/config")]);
        assert_eq!((status.as_str(), &body[..]), ("200", &b"[core]"[..]), "{m}: --hidden serves dot names");
        assert_eq!(json_names(&server, "/?q=secret&json"), ["sub/.secret"], "{m}: --hidden searches them");
        let members = tar_names(&curl(&[&server.url("/?archive=tar")]).1);
        assert!(members.iter().any(|n| n.ends_with(".git/config")), "{m}: --hidden archives them: {members:?}");
        assert_eq!(curl(&["-o", "/dev/null", &server.url("/link-out/passwd")]).0, "404", "{m}");
    }
}
