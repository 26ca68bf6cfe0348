//! SHA-256 of local files: announced with `put`, compared with the
//! server's `sum` by `--verify`.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Bytes read per call while hashing.
const CHUNK: usize = 256 * 1024;

/// The SHA-256 of the file at `path`, lowercase hex (as `sum` prints it).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_of(&File::open(path)?, &mut |_| {})
}

/// The SHA-256 of an open file from its first byte to its end, lowercase
/// hex, calling `hashed` with each chunk's length. Reads by position, so
/// the file's own offset is left alone.
pub(crate) fn sha256_of(file: &File, hashed: &mut dyn FnMut(u64)) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut offset = 0;
    loop {
        match file.read_at(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                offset += n as u64;
                hashed(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hex(hasher))
}

/// A finished hash as lowercase hex.
pub(crate) fn hex(hasher: Sha256) -> String {
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
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
