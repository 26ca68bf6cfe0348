//! Compressed answers kept so a hot file is compressed once: keyed by the
//! root, the path, the file's inode, size and mtime (to the nanosecond),
//! the coding and the level, so a changed file or setting never meets an
//! old result. Bounded like the open-file cache: an insertion that would
//! pass the byte bound clears everything first (no recency bookkeeping);
//! stale entries of changed files go with the next clear.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::{Coding, Level};
use crate::root::{Meta, VirtualPath};

/// Most entries, whatever their size.
const MAX_ENTRIES: usize = 4096;

/// The compressed bodies held, and their total size.
#[derive(Debug, Default)]
pub(crate) struct Results {
    map: HashMap<Box<[u8]>, Arc<[u8]>>,
    bytes: usize,
}

/// What a compressed body is a compression of.
pub(crate) fn key(root: u64, path: &VirtualPath, meta: &Meta, coding: Coding, level: Level) -> Box<[u8]> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&root.to_le_bytes());
    key.extend_from_slice(&meta.ino.to_le_bytes());
    key.extend_from_slice(&meta.size.to_le_bytes());
    key.extend_from_slice(&meta.mtime.to_le_bytes());
    key.extend_from_slice(&meta.mtime_nsec.to_le_bytes());
    key.push(coding as u8);
    key.push(level as u8);
    for name in path.names() {
        key.push(b'/');
        key.extend_from_slice(name.as_bytes());
    }
    key.into()
}

impl Results {
    /// The body kept under `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Arc<[u8]>> {
        self.map.get(key).cloned()
    }

    /// Keeps `body` under `key` within `bound` bytes.
    pub(crate) fn insert(&mut self, key: Box<[u8]>, body: Arc<[u8]>, bound: usize) {
        if body.len() > bound / 4 {
            // One entry may not take over the cache.
            return;
        }
        if self.bytes + body.len() > bound || self.map.len() >= MAX_ENTRIES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += body.len();
        if let Some(old) = self.map.insert(key, body) {
            self.bytes -= old.len();
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Kind;

    #[test]
    fn keyed_by_version_and_bounded() {
        let path = VirtualPath::root().join_name(std::ffi::OsStr::new("a.js"));
        let meta = Meta { kind: Kind::File, size: 10, mtime: 5, mtime_nsec: 0, ino: 1 };
        let touched = Meta { mtime_nsec: 1, ..meta };
        let k = key(1, &path, &meta, Coding::Gzip, Level::Default);
        assert_ne!(k, key(1, &path, &touched, Coding::Gzip, Level::Default));
        assert_ne!(k, key(1, &path, &meta, Coding::Br, Level::Default));
        assert_ne!(k, key(1, &path, &meta, Coding::Gzip, Level::Best));
        assert_ne!(k, key(2, &path, &meta, Coding::Gzip, Level::Default));

        let mut results = Results::default();
        results.insert(k.clone(), vec![0; 100].into(), 1000);
        assert_eq!(results.get(&k).map(|b| b.len()), Some(100));
        results.insert(key(1, &path, &touched, Coding::Gzip, Level::Default), vec![0; 200].into(), 1000);
        assert_eq!(results.bytes(), 300);
        for k in 0..3u8 {
            results.insert(vec![k].into(), vec![0; 250].into(), 1000);
        }
        assert_eq!(results.bytes(), 250, "cleared before passing the bound");
        assert!(results.get(&k).is_none());
        results.insert(vec![7].into(), vec![0; 251].into(), 1000);
        assert!(results.get(&[7]).is_none(), "too large for a quarter of the cache");
    }
}
