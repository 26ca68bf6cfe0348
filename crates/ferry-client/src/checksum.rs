//! SHA-256 of local files: announced with `put`, compared with the
//! server's `sum` by `--verify`.

use std::fs::File;
use std::io;
use std::path::Path;

pub(crate) use ferry_proto::digest::{hex, sha256_of};

/// The SHA-256 of the file at `path`, lowercase hex (as `sum` prints it).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_of(&File::open(path)?, &mut |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.txt");
        std::fs::write(&path, b"Hello, world!").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "315f5bdb76d078c43b8ac0064e4a0164612b1fce77c869345bfc94c75894edd3");
        let mut seen = 0;
        let file = File::open(&path).unwrap();
        assert_eq!(sha256_of(&file, &mut |n| seen += n).unwrap(), sha256_file(&path).unwrap());
        assert_eq!(seen, 13);
    }
}
