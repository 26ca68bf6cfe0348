//! sftp's many-file verbs in `ferry shell` (a piped batch) under every
//! model: `get -r` and `put -r` of a tree with an odd name, `mget` with a
//! remote glob relative to the remote working directory, `mput` with a
//! local glob, and a failing file failing the batch while the others move.

mod util;

use std::path::Path;

use util::serve::{MODELS, Svc, start};
use util::{ferry, scratch};

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep dir")).unwrap();
    std::fs::write(root.join("docs/a.txt"), b"alpha").unwrap();
    std::fs::write(root.join("docs/b.txt"), b"beta").unwrap();
    std::fs::write(root.join("docs/c.bin"), b"gamma").unwrap();
    std::fs::write(root.join("docs/deep dir/d e.txt"), vec![7u8; 300_000]).unwrap();
}

fn assert_same_tree(a: &Path, b: &Path) {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let (pa, pb) = (entry.path(), b.join(entry.file_name()));
        names.push(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&pa, &pb);
        } else {
            assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap(), "{}", pb.display());
        }
    }
    assert_eq!(names.len(), std::fs::read_dir(b).unwrap().count(), "{} has other names", b.display());
}

#[test]
fn the_shell_moves_trees_and_globs_under_every_model() {
    for model in MODELS {
        let dir = scratch();
        let (root, here) = (dir.path().join("root"), dir.path().join("here"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&here).unwrap();
        tree(&root);
        let server = start(model, Svc::Files, &root, &["--allow-write"]);
        let addr = server.addr.to_string();

        // get -r, then mget with a glob relative to `cd`.
        let script = b"get -r docs copy\ncd docs\nmget *.txt\n";
        let out = ferry(&["shell", &addr], Some(&here), script);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{model}: {err}");
        assert_same_tree(&root.join("docs"), &here.join("copy"));
        assert_eq!(std::fs::read(here.join("a.txt")).unwrap(), b"alpha", "{model}");
        assert_eq!(std::fs::read(here.join("b.txt")).unwrap(), b"beta", "{model}");
        assert!(!here.join("c.bin").exists(), "{model}: the glob took only *.txt");

        // put -r of the copy under a new name, mput with a local glob.
        let script = b"put -r copy uploaded\nmkdir globbed\ncd globbed\nmput copy/*.txt\n";
        let out = ferry(&["shell", &addr], Some(&here), script);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{model}: {err}");
        assert_same_tree(&root.join("docs"), &root.join("uploaded"));
        assert_eq!(std::fs::read(root.join("globbed/a.txt")).unwrap(), b"alpha", "{model}");
        assert_eq!(std::fs::read(root.join("globbed/b.txt")).unwrap(), b"beta", "{model}");
        assert!(!root.join("globbed/c.bin").exists(), "{model}");

        // One missing source: the others still move, the batch fails.
        let out = ferry(&["shell", &addr], Some(&here), b"mget docs/c.bin docs/missing.txt\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{model}: a failed file fails the batch");
        assert!(err.contains("missing.txt"), "{model}: {err}");
        assert_eq!(std::fs::read(here.join("c.bin")).unwrap(), b"gamma", "{model}");
    }
}
