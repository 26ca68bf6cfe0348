//! Folders as tar archives over HTTP (`GET /dir/?archive=tar`) with the
//! real binary under every model: curl + GNU tar extract exactly the tree
//! (odd names, a long path, a file large enough for `sendfile`), never a
//! symlink's target or a partial upload; raw sockets check the framing
//! (chunked on HTTP/1.1, close-delimited on HTTP/1.0), a pipelined request
//! answered after the archive, and an archive finished after the client's
//! half-close.

mod http_util;
mod util;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use http_util::{ALL_MODELS, HttpServer, PATIENCE, read_response, require_tool, run_bounded, send_raw};
use util::{random_file, scratch, sha256_file};

/// A tree with the cases an archiver gets wrong.
fn archive_tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let long_dir = root.join("x".repeat(70)).join("y".repeat(70));
    std::fs::create_dir_all(&long_dir).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join(".ferry-partials")).unwrap();
    std::fs::write(root.join(".ferry-partials/abc.part"), b"half an upload").unwrap();
    std::fs::write(root.join("hello.txt"), b"Hello, world!").unwrap();
    std::fs::write(root.join("a b café.txt"), b"spaces and accents").unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"bad\xffname")), b"not UTF-8").unwrap();
    std::fs::write(long_dir.join("z".repeat(120)), b"a path past ustar's 255 bytes").unwrap();
    std::fs::write(root.join(".hidden"), b"dot").unwrap();
    random_file(&root.join("big.bin"), 3 << 20, 11);
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    root
}

/// Every regular file and directory under `dir`, relative, with each
/// file's SHA-256.
fn inventory(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                out.push((rel, "dir".into()));
                stack.push(path);
            } else if kind.is_file() {
                out.push((rel, sha256_file(&path)));
            } else {
                out.push((rel, "other".into()));
            }
        }
    }
    out.sort();
    out
}

/// What an archive of `root` must hold: everything but symlinks, hidden
/// names (served only with `--hidden`) and the partials' directory.
fn expected(root: &Path) -> Vec<(PathBuf, String)> {
    let hidden = |rel: &Path| rel.iter().any(|name| name.as_encoded_bytes().starts_with(b"."));
    inventory(root).into_iter().filter(|(rel, kind)| kind != "other" && !hidden(rel)).collect()
}

fn extract(tar_bytes: &[u8], into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let mut tar = Command::new("tar")
        .args(["-x", "-f", "-", "-C"])
        .arg(into)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run tar");
    tar.stdin.take().unwrap().write_all(tar_bytes).unwrap();
    assert!(tar.wait().unwrap().success(), "tar -x accepts the archive");
}

#[test]
fn curl_and_tar_get_exactly_the_tree_under_every_model() {
    require_tool("curl", "curl");
    require_tool("tar", "tar");
    let dir = scratch();
    let root = archive_tree(dir.path());
    let want = expected(&root);
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &[]);
        let headers = dir.path().join(format!("headers-{}", m.replace('/', "-")));
        let out = run_bounded(
            Command::new("curl").args(["-sS", "--fail", "-D"]).arg(&headers).arg(server.url("/?archive=tar")),
            PATIENCE,
        );
        assert!(out.status.success(), "{m}: curl: {}", String::from_utf8_lossy(&out.stderr));
        let head = std::fs::read_to_string(&headers).unwrap().to_ascii_lowercase();
        assert!(head.contains("content-type: application/x-tar"), "{m}: {head}");
        assert!(head.contains("transfer-encoding: chunked"), "{m}: {head}");
        assert!(head.contains("content-disposition: attachment; filename=\"root.tar\""), "{m}: {head}");
        let into = dir.path().join(format!("x-{}", m.replace('/', "-")));
        extract(&out.stdout, &into);
        assert_eq!(inventory(&into.join("root")), want, "{m}: the extracted tree is the served one");

        // A subfolder's archive is named after it and holds only it.
        let out =
            run_bounded(Command::new("curl").args(["-sS", "--fail"]).arg(server.url("/empty/?archive=tar")), PATIENCE);
        assert!(out.status.success(), "{m}");
        let into = dir.path().join(format!("e-{}", m.replace('/', "-")));
        extract(&out.stdout, &into);
        assert_eq!(inventory(&into), [(PathBuf::from("empty"), "dir".to_string())], "{m}");

        // Unknown formats are refused, not guessed.
        let out = run_bounded(
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(server.url("/?archive=rar")),
            PATIENCE,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "400", "{m}");
    }
}

/// Reads a chunked body to its last chunk.
fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("chunk size line");
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap_or_else(|_| panic!("chunk size {line:?}"));
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).expect("chunk");
        assert_eq!(&chunk[size..], b"\r\n", "chunk ends in CRLF");
        chunk.truncate(size);
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk);
    }
}

/// Reads a response head; returns its lines.
fn read_head(reader: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("head line");
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn framing_pipelining_http10_and_half_close_under_every_model() {
    require_tool("tar", "tar");
    let dir = scratch();
    let root = archive_tree(dir.path());
    let want = expected(&root);
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &[]);
        let check = |bytes: &[u8], tag: &str| {
            let into = dir.path().join(format!("{tag}-{}", m.replace('/', "-")));
            extract(bytes, &into);
            assert_eq!(inventory(&into.join("root")), want, "{m} {tag}");
        };

        // HTTP/1.1, a request pipelined behind the archive: answered after it.
        let mut stream = server.connect();
        send_raw(
            &mut stream,
            b"GET /?archive=tar HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let head = read_head(&mut reader);
        assert!(head[0].starts_with("HTTP/1.1 200"), "{m}: {head:?}");
        check(&read_chunked(&mut reader), "pipelined");
        let next = read_response(&mut reader, false);
        assert_eq!((next.status, &next.body[..]), (200, &b"Hello, world!"[..]), "{m}: the pipelined request");

        // HEAD: the head only, and the connection stays in step.
        send_raw(
            &mut stream,
            b"HEAD /?archive=tar HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let head = read_head(&mut reader);
        assert!(head.iter().any(|h| h.eq_ignore_ascii_case("content-type: application/x-tar")), "{m}: {head:?}");
        assert_eq!(read_response(&mut reader, false).body, b"Hello, world!", "{m}: after HEAD");
        // (The iterative model serves the next connection once this one is gone.)
        drop((stream, reader));

        // The client sends its request and half-closes: the archive still
        // arrives whole.
        let mut stream = server.connect();
        send_raw(&mut stream, b"GET /?archive=tar HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.shutdown(Shutdown::Write).unwrap();
        let mut reader = BufReader::new(stream);
        read_head(&mut reader);
        check(&read_chunked(&mut reader), "half-closed");

        // HTTP/1.0: no chunks; the end of the connection ends the archive.
        let mut stream = server.connect();
        send_raw(&mut stream, b"GET /?archive=tar HTTP/1.0\r\n\r\n");
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader);
        assert!(!head.iter().any(|h| h.to_ascii_lowercase().starts_with("transfer-encoding")), "{m}: {head:?}");
        assert!(head.iter().any(|h| h.eq_ignore_ascii_case("connection: close")), "{m}: {head:?}");
        let mut body = Vec::new();
        reader.read_to_end(&mut body).unwrap();
        check(&body, "http10");
    }
}

#[test]
fn an_archive_holds_only_what_the_client_may_read_under_every_model() {
    require_tool("curl", "curl");
    require_tool("tar", "tar");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("private/deep")).unwrap();
    std::fs::write(root.join("private/deep/secret.txt"), b"secret").unwrap();
    std::fs::write(root.join("public.txt"), b"public").unwrap();
    let file = dir.path().join("accounts.toml");
    let out = util::ferry(&["passwd", file.to_str().unwrap(), "alice"], None, b"alice pw\n");
    assert!(out.status.success(), "passwd: {}", String::from_utf8_lossy(&out.stderr));
    let rules = "\n[[rule]]\nwho = \"anonymous\"\npath = \"/\"\nallow = [\"list\", \"read\"]\n\n\
                 [[rule]]\nwho = \"anonymous\"\npath = \"/private\"\nallow = []\n";
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text + rules).unwrap();
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &["--auth", file.to_str().unwrap()]);
        let names = |user: &[&str]| {
            let out = run_bounded(
                Command::new("curl").args(["-sS", "--fail"]).args(user).arg(server.url("/?archive=tar")),
                PATIENCE,
            );
            assert!(out.status.success(), "{m}: {}", String::from_utf8_lossy(&out.stderr));
            let mut tar = Command::new("tar")
                .args(["-t", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            tar.stdin.take().unwrap().write_all(&out.stdout).unwrap();
            let listed = tar.wait_with_output().unwrap();
            assert!(listed.status.success(), "{m}: tar -t");
            let mut names: Vec<String> = String::from_utf8_lossy(&listed.stdout).lines().map(String::from).collect();
            names.sort();
            names
        };
        assert_eq!(names(&[]), ["root/", "root/public.txt"], "{m}: anonymous");
        assert_eq!(
            names(&["-u", "alice:alice pw"]),
            ["root/", "root/private/", "root/private/deep/", "root/private/deep/secret.txt", "root/public.txt"],
            "{m}: alice"
        );
    }
}

/// Downloads `url` with curl into `to`, within `patience`.
fn curl_to(url: &str, to: &Path, patience: std::time::Duration) {
    let out = run_bounded(Command::new("curl").args(["-sS", "--fail", "-o"]).arg(to).arg(url), patience);
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unzip_and_7z_test_and_extract_exactly_the_tree_under_every_model() {
    require_tool("curl", "curl");
    require_tool("unzip", "unzip");
    let seven = seven_zip();
    require_tool(seven, "7zip");
    let dir = scratch();
    let root = archive_tree(dir.path());
    // unzip turns names without the UTF-8 flag into its own charset; the
    // odd name's bytes are checked in the archive itself instead.
    let odd = OsStr::from_bytes(b"bad\xffname");
    let want: Vec<_> = expected(&root).into_iter().filter(|(rel, _)| rel.as_os_str() != odd).collect();
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &[]);
        let zip = dir.path().join(format!("{}.zip", m.replace('/', "-")));
        curl_to(&server.url("/?archive=zip"), &zip, PATIENCE);
        let test = run_bounded(Command::new("unzip").arg("-tq").arg(&zip), PATIENCE);
        assert!(test.status.success(), "{m}: unzip -t: {}", String::from_utf8_lossy(&test.stdout));
        let bytes = std::fs::read(&zip).unwrap();
        assert!(bytes.windows(13).any(|w| w == b"root/bad\xffname"), "{m}: the odd name's bytes are kept");
        let into = dir.path().join(format!("z-{}", m.replace('/', "-")));
        let out = run_bounded(Command::new("unzip").arg("-q").arg(&zip).arg("-d").arg(&into), PATIENCE);
        assert!(out.status.success(), "{m}: unzip: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<_> = inventory(&into.join("root"))
            .into_iter()
            .filter(|(rel, _)| !rel.to_string_lossy().starts_with("bad"))
            .collect();
        assert_eq!(got, want, "{m}: the extracted tree is the served one");
        // unzip restores the modification time (to the second) from the
        // extended timestamp.
        let mtime = |p: &Path| std::os::unix::fs::MetadataExt::mtime(&std::fs::metadata(p).unwrap());
        assert_eq!(mtime(&into.join("root/big.bin")), mtime(&root.join("big.bin")), "{m}");

        // 7-Zip, a second, independent zip reader: tests every CRC and
        // extracts the same tree.
        let test = run_bounded(Command::new(seven).arg("t").arg(&zip), PATIENCE);
        assert!(test.status.success(), "{m}: {seven} t: {}", String::from_utf8_lossy(&test.stdout));
        let into = dir.path().join(format!("7z-{}", m.replace('/', "-")));
        let out = run_bounded(
            Command::new(seven).arg("x").arg("-y").arg(format!("-o{}", into.display())).arg(&zip),
            PATIENCE,
        );
        assert!(out.status.success(), "{m}: {seven} x: {}", String::from_utf8_lossy(&out.stdout));
        let got: Vec<_> = inventory(&into.join("root"))
            .into_iter()
            .filter(|(rel, _)| !rel.to_string_lossy().starts_with("bad"))
            .collect();
        assert_eq!(got, want, "{m}: the tree 7-Zip extracts is the served one");
    }
}

/// Debian's 7zip package installs `7zz`; p7zip and others `7z`.
fn seven_zip() -> &'static str {
    let on_path = |tool: &str| {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    if on_path("7zz") { "7zz" } else { "7z" }
}

/// zip64 where a plain zip's fields overflow: a file past 4 GiB (sparse)
/// and a folder of more than 65,535 entries. One model: the format is the
/// same under all, and moving 4.5 GiB eleven times would take minutes.
#[test]
fn zip64_holds_a_file_past_4_gib_and_70000_entries() {
    require_tool("curl", "curl");
    require_tool("python3", "python3");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("many")).unwrap();
    std::fs::create_dir_all(root.join("huge")).unwrap();
    for i in 0..70_000 {
        std::fs::File::create(root.join(format!("many/{i}"))).unwrap();
    }
    let huge = std::fs::File::create(root.join("huge/sparse.bin")).unwrap();
    huge.set_len((4 << 30) + 12_345).unwrap();
    huge.write_all_at(b"tail", (4 << 30) + 12_000).unwrap();
    let server = HttpServer::start(&root, http_util::ALL_MODELS[5], &[]);
    let check = r#"
import sys, zipfile, zlib
z = zipfile.ZipFile(sys.argv[1])
infos = z.infolist()
print(len(infos), max(i.file_size for i in infos))
if len(sys.argv) > 2:
    # The big entry's CRC, streamed, as unzip would check it.
    with z.open(infos[-1]) as f:
        crc = 0
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    print(crc == infos[-1].CRC)
"#;
    let zip = dir.path().join("many.zip");
    curl_to(&server.url("/many/?archive=zip"), &zip, PATIENCE);
    let out = run_bounded(Command::new("python3").args(["-c", check]).arg(&zip), PATIENCE);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "70001 0", "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&zip).unwrap();

    let zip = dir.path().join("huge.zip");
    // The server's memory stays flat while 4 GiB go through it.
    let pid = server.child.id();
    let rss = move || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB").to_string();
        line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).unwrap_or(0)
    };
    let before = rss();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss());
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak
        })
    };
    curl_to(&server.url("/huge/?archive=zip"), &zip, PATIENCE * 6);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(before > 0 && peak < before + 16 * 1024, "server RSS went from {before} kB to {peak} kB");
    let out = run_bounded(Command::new("python3").args(["-c", check]).arg(&zip).arg("crc"), PATIENCE * 6);
    let want = format!("2 {}\nTrue", (4u64 << 30) + 12_345);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{}", String::from_utf8_lossy(&out.stderr));
}
