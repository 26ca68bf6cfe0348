//! The file session's answers to hostile input: names with control bytes
//! are not created.

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_proto::Flow;
use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::{FileSession, FilesConfig};
use ferry_proto::root::Root;

/// A served directory for one test, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("ferry-faults-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("hello.txt"), b"Hello, world!").unwrap();
        Tree(dir)
    }

    fn session(&self, allow_write: bool) -> FileSession {
        let root = Arc::new(Root::open(&self.0).unwrap());
        FileSession::new(FilesConfig { root, allow_write })
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(session: &mut FileSession, input: &[u8]) -> (String, Flow) {
    let mut pair = Pair::new(session, Timeouts::default());
    pair.send(input);
    (String::from_utf8_lossy(pair.received()).into_owned(), common::flow_of(&pair))
}

#[test]
fn names_with_control_bytes_are_not_created() {
    let t = Tree::new("ctl");
    let mut s = t.session(true);
    for (word, shown) in [(r"a\rb", r"a\rb"), (r"a\x1bb", r"a\x1bb"), (r"a\x7fb", r"a\x7fb"), (r"a\x01b", r"a\x01b")] {
        for command in ["put", "mkdir"] {
            let request = if command == "put" { format!("put {word} 3\n") } else { format!("mkdir {word}\n") };
            let (out, flow) = run(&mut s, request.as_bytes());
            assert_eq!(
                out,
                format!("ERR 400 control characters are not allowed in new names: {shown}\n"),
                "{request:?}"
            );
            assert_eq!(flow, Flow::Continue);
        }
    }
    let left: Vec<_> = fs::read_dir(&t.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["hello.txt"], "nothing was created");
    // Printable names, spaces and UTF-8 included, are still fine.
    assert_eq!(run(&mut s, "mkdir \"a b é\"\n".as_bytes()).0, "OK\n");
}
