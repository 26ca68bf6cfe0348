//! SHA-256 of whole files, lowercase hex: what `sum` answers, what `put`
//! announces and the server checks, what `--verify` compares. One
//! implementation for the server and the client.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

/// Bytes read per call while hashing.
const CHUNK: usize = 256 * 1024;

/// The SHA-256 of an open file from its first byte to its end, lowercase
/// hex, calling `hashed` with each chunk's length (for progress). Reads by
/// position, so the file's own offset is left alone.
pub fn sha256_of(file: &File, hashed: &mut dyn FnMut(u64)) -> io::Result<String> {
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
pub fn hex(hasher: Sha256) -> String {
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}
