//! Helpers shared by the in-memory drivers of the session tests.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// What a driver's `sendfile` of this range would put on the wire; fails
/// the test if the file is shorter than the range the session announced.
pub fn read_range(file: &File, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; usize::try_from(len).expect("range fits in memory")];
    file.read_exact_at(&mut buf, offset).expect("file range shorter than announced");
    buf
}
