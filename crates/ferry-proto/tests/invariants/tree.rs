//! A served tree with things outside it that must stay out of reach.
//!
//! ```text
//! BASE/secret.txt                  sentinel: must never be read or changed
//! BASE/outside/only-outside-*.txt  a second one, in a directory
//! BASE/served/                     the root
//!   hello.txt  empty.txt  edge.bin (16 KiB: the HTTP copy threshold)
//!   big.bin (20 000 B: sent as a file range)  with space.txt
//!   sub/file.txt  sub/deeper/  site/index.html  .ferry-partials/x.part
//!   out -> ../outside      up -> ../secret.txt   sub/upup -> ../../secret.txt
//!   abs -> BASE/secret.txt absdir -> BASE/outside proc -> /proc/self/cwd
//!   loop -> loop           in -> sub (inside: followed)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_proto::files::{FileSession, FilesConfig};
use ferry_proto::http::{FileCache, HttpConfig, HttpSession};
use ferry_proto::root::Root;
use sha2::{Digest, Sha256};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The files served, by path under the root, and their contents.
pub fn served_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hello.txt", b"Hello, world!".to_vec()),
        ("empty.txt", Vec::new()),
        ("edge.bin", pattern(16 * 1024)),
        ("big.bin", pattern(20_000)),
        ("with space.txt", b"x".to_vec()),
        ("sub/file.txt", b"abc".to_vec()),
        ("site/index.html", b"<h1>hi</h1>".to_vec()),
        (".ferry-partials/x.part", b"partial".to_vec()),
    ]
}

/// `len` bytes of a pattern that never starts like a response
/// (`HTTP/1.1 `) and holds every byte value.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A served root inside a scratch directory that also holds sentinels.
pub struct Tree {
    /// The scratch directory (the root's parent).
    pub base: PathBuf,
    /// The served root, `BASE/served`.
    pub root: PathBuf,
    /// What lies outside the root, as it was made.
    outside: Snapshot,
    /// Byte strings no answer may contain: sentinel contents, their
    /// SHA-256 digests, outside names, the scratch path.
    secrets: Vec<Vec<u8>>,
}

/// Every entry under a directory (but the root): kind and content.
type Snapshot = BTreeMap<PathBuf, Entry>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(String),
    Dir,
    Link(PathBuf),
}

impl Tree {
    /// A fresh tree; `what` names it for whoever finds it left over.
    pub fn new(what: &str) -> Tree {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("ferry-inv-{what}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("served");
        let secret = format!("FERRY-SENTINEL-{}-{n}\n", std::process::id()).into_bytes();
        let hidden_name = format!("only-outside-{n}.txt");
        let secret2 = format!("FERRY-OUTSIDE-{}-{n}\n", std::process::id()).into_bytes();
        fs::create_dir_all(base.join("outside")).expect("mkdir outside");
        fs::write(base.join("secret.txt"), &secret).expect("write sentinel");
        fs::write(base.join("outside").join(&hidden_name), &secret2).expect("write sentinel");
        fs::create_dir_all(root.join("sub/deeper")).expect("mkdir served");
        fs::create_dir_all(root.join("site")).expect("mkdir served");
        fs::create_dir_all(root.join(".ferry-partials")).expect("mkdir served");
        for (path, content) in served_files() {
            fs::write(root.join(path), content).expect("write served file");
        }
        let links: [(&str, PathBuf); 9] = [
            ("out", "../outside".into()),
            ("up", "../secret.txt".into()),
            ("sub/upup", "../../secret.txt".into()),
            ("abs", base.join("secret.txt")),
            ("absdir", base.join("outside")),
            ("proc", "/proc/self/cwd".into()),
            ("loop", "loop".into()),
            ("in", "sub".into()),
            ("sub/deeper/top", "../../../outside".into()),
        ];
        for (name, target) in links {
            symlink(target, root.join(name)).expect("symlink");
        }
        let hex = |bytes: &[u8]| -> Vec<u8> {
            Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes()
        };
        let secrets = vec![
            hex(&secret),
            hex(&secret2),
            trim_newline(secret),
            trim_newline(secret2),
            hidden_name.into_bytes(),
            base.as_os_str().as_encoded_bytes().to_vec(),
        ];
        let mut tree = Tree { base, root, outside: Snapshot::new(), secrets };
        tree.outside = tree.snapshot_outside();
        tree
    }

    /// The root, opened.
    pub fn open_root(&self) -> Arc<Root> {
        Arc::new(Root::open(&self.root).expect("open root"))
    }

    /// A file session on the root.
    pub fn files_session(&self, allow_write: bool) -> FileSession {
        FileSession::new(FilesConfig::new(self.open_root(), allow_write).expect("files config"))
    }

    /// An HTTP session on the root with its own open-file cache; with
    /// `small` limits (512-byte heads, 128-byte targets, 64-byte bodies)
    /// random input reaches them.
    pub fn http_session(&self, small: bool) -> HttpSession {
        let mut config = HttpConfig::new(self.open_root());
        if small {
            config.max_head = 512;
            config.max_uri = 128;
            config.max_body = 64;
        }
        HttpSession::new(Arc::new(config), FileCache::new())
    }

    /// Fails unless everything outside the root is as it was made.
    pub fn assert_outside_untouched(&self) {
        let now = self.snapshot_outside();
        assert!(
            now == self.outside,
            "something outside the served root changed:\nwas {:?}\nnow {:?}",
            self.outside,
            now
        );
    }

    /// Fails if `output` holds anything only the outside has (and the
    /// client did not say itself in `input`).
    pub fn assert_not_revealed(&self, output: &[u8], input: &[u8]) {
        for secret in self.secrets.iter().filter(|s| !contains(input, s)) {
            assert!(
                !contains(output, secret),
                "an answer reveals {:?} from outside the root:\n{}",
                String::from_utf8_lossy(secret),
                String::from_utf8_lossy(output)
            );
        }
    }

    fn snapshot_outside(&self) -> Snapshot {
        let mut all = Snapshot::new();
        walk(&self.base, &self.base, &self.root, &mut all);
        all
    }
}

fn trim_newline(mut v: Vec<u8>) -> Vec<u8> {
    v.pop();
    v
}

/// True if `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn walk(base: &Path, dir: &Path, skip: &Path, all: &mut Snapshot) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == skip {
            continue;
        }
        let rel = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            all.insert(rel, Entry::Link(fs::read_link(&path).unwrap_or_default()));
        } else if meta.is_dir() {
            all.insert(rel, Entry::Dir);
            walk(base, &path, skip, all);
        } else {
            let content = fs::read(&path).unwrap_or_default();
            all.insert(rel, Entry::File(String::from_utf8_lossy(&content).into_owned()));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}
