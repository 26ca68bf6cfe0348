//! `rename` and `df` of the file protocol under every model, raw and
//! through `ferry shell`: a rename is one `rename(2)` (the inode moves, a
//! file at the new name is replaced, a directory never is), confined like
//! every path (`..` above the root, a parent through a symlink out, hidden
//! names), under the access rules (`delete` on OLD, `write` on NEW) and
//! refused by a read-only server; `df` answers the root filesystem's sizes.

mod util;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use util::serve::{MODELS, Svc, ask, connect, start};
use util::{ferry, scratch};

fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub/inner")).unwrap();
    std::fs::create_dir_all(root.join("drop")).unwrap();
    std::fs::write(root.join("a.txt"), b"A").unwrap();
    std::fs::write(root.join("b.txt"), b"B").unwrap();
    std::fs::write(root.join("drop/theirs.txt"), b"T").unwrap();
    std::os::unix::fs::symlink(dir, root.join("link-out")).unwrap();
    root
}

/// Anonymous clients may do anything but delete in /drop.
fn rules(dir: &Path) -> String {
    let file = dir.join("rules.toml");
    let text = r#"
[[rule]]
who = "anonymous"
path = "/"
allow = ["list", "read", "write", "delete"]

[[rule]]
who = "anonymous"
path = "/drop"
allow = ["list", "read", "write"]
"#;
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn rename_is_atomic_confined_and_checked_under_every_model() {
    let dir = scratch();
    let rules = rules(dir.path());
    for model in MODELS {
        let case = dir.path().join(model);
        std::fs::create_dir_all(&case).unwrap();
        let root = tree(&case);
        let server = start(model, Svc::Files, &root, &["--allow-write", "--auth", &rules]);
        let mut c = connect(server.addr);
        let inode = std::fs::metadata(root.join("a.txt")).unwrap().ino();
        assert_eq!(ask(&mut c, "rename a.txt \"sub/inner/a 2.txt\""), "OK", "{model}");
        let moved = std::fs::metadata(root.join("sub/inner/a 2.txt")).expect("moved");
        assert_eq!(moved.ino(), inode, "{model}: the same inode: renamed, not copied");
        assert!(!root.join("a.txt").exists(), "{model}");
        assert_eq!(ask(&mut c, "cd sub"), "OK /sub", "{model}");
        assert_eq!(ask(&mut c, "mv \"inner/a 2.txt\" ../b.txt"), "OK", "{model}: relative paths, mv spelling");
        assert_eq!(std::fs::read(root.join("b.txt")).unwrap(), b"A", "{model}: a file is replaced");
        assert_eq!(ask(&mut c, "rename /b.txt /sub"), "ERR 409 is a directory: /sub", "{model}");
        for (request, code) in [
            ("rename /b.txt ../../x", "ERR 403 "),
            ("rename ../../b.txt x", "ERR 403 "),
            ("rename /b.txt /link-out/stolen", "ERR 403 "),
            ("rename /nothing x", "ERR 404 "),
            ("rename /b.txt /.hidden", "ERR 404 "),
            ("rename /b.txt /.ferry-partials/x", "ERR 400 "),
            ("rename /sub /sub/inner/sub", "ERR 400 "),
            ("rename / /x", "ERR 400 "),
            ("rename /b.txt", "ERR 400 usage: rename OLD NEW"),
            ("rename /drop/theirs.txt /drop/mine.txt", "ERR 403 delete not allowed on /drop/theirs.txt"),
        ] {
            let answer = ask(&mut c, request);
            assert!(answer.starts_with(code), "{model}: {request}: {answer}");
        }
        assert!(!case.join("stolen").exists() && !case.join("x").exists(), "{model}: nothing left the root");
        assert_eq!(ask(&mut c, "rename /b.txt /drop/b.txt"), "OK", "{model}: write is enough at NEW");
        assert_eq!(std::fs::read(root.join("drop/theirs.txt")).unwrap(), b"T", "{model}");
        assert_eq!(ask(&mut c, "rename /sub /moved"), "OK", "{model}: directories move");
        assert!(root.join("moved/inner").is_dir(), "{model}");
        let df = ask(&mut c, "df");
        let sizes: Vec<u64> = df.strip_prefix("OK ").unwrap_or("").split(' ').filter_map(|n| n.parse().ok()).collect();
        assert!(sizes.len() == 3 && sizes[0] > 0 && sizes[1] <= sizes[0] && sizes[2] <= sizes[1], "{model}: df: {df}");
        drop(server);

        let server = start(model, Svc::Files, &root, &[]);
        let mut c = connect(server.addr);
        assert!(ask(&mut c, "rename /drop/b.txt /c.txt").starts_with("ERR 403 read-only"), "{model}");
        assert!(ask(&mut c, "df").starts_with("OK "), "{model}: df needs no write");
    }
}

#[test]
fn the_shell_renames_and_shows_the_disk() {
    let dir = scratch();
    let root = tree(dir.path());
    let server = start("multi-reactor", Svc::Files, &root, &["--allow-write"]);
    let addr = server.addr.to_string();
    let out = ferry(&["shell", &addr], None, b"rename a.txt \"new name.txt\"\nmv b.txt sub/b.txt\ndf\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(root.join("new name.txt")).unwrap(), b"A");
    assert_eq!(std::fs::read(root.join("sub/b.txt")).unwrap(), b"B");
    let mut lines = text.lines().skip_while(|l| !l.contains("Size"));
    let head: Vec<&str> = lines.next().expect("a df header").split_whitespace().collect();
    assert_eq!(head, ["Size", "Used", "Avail", "Use%"], "{text}");
    let row: Vec<&str> = lines.next().expect("a df row").split_whitespace().collect();
    assert!(row.len() == 4 && row[3].ends_with('%'), "{text}");

    let out = ferry(&["shell", &addr], None, b"rename \"new name.txt\" sub\npwd\n");
    assert!(!out.status.success(), "a failed rename fails the batch");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERR 409 is a directory: /sub"), "{err}");
}
