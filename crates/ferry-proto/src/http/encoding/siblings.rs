//! Precompressed siblings: `x.js.zst`, `x.js.br`, `x.js.gz` next to
//! `x.js`, served in its place (with `Content-Encoding`, the original's
//! `Content-Type`, and by `sendfile` like any file) when the client takes
//! that coding and the sibling is not older than the file.
//!
//! Which siblings a file has is remembered per path for
//! [`HttpConfig::file_cache_valid`] (1 s), like the open-file cache, so a
//! file without any costs no failed `openat2` per request; a sibling added
//! or removed is noticed within that time.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use super::Coding;
use super::negotiate::Accepted;
use crate::http::HttpConfig;
use crate::http::file_cache::{FileCache, Opened};
use crate::root::{Meta, VirtualPath};

/// Most paths remembered; more clears the memory.
const MAX_PATHS: usize = 8192;

/// Which siblings each recently asked-for path has.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Root id and path -> when looked at, and a bit per [`Coding`].
    map: HashMap<Box<[u8]>, (Instant, u8)>,
}

/// The path of `path`'s sibling in `coding`.
fn sibling(path: &VirtualPath, coding: Coding) -> Option<VirtualPath> {
    let (parent, name) = path.split_last()?;
    let mut name = OsString::from(name);
    name.push(coding.extension());
    Some(parent.join_name(&name))
}

/// Whether `sibling` may stand for the file: not older than it, to the
/// second (compressors that keep the original's time, such as `brotli -k`,
/// may keep only its seconds).
fn current(sibling: &Meta, file: &Meta) -> bool {
    sibling.mtime >= file.mtime
}

/// The best sibling of `path` (whose metadata is `file`) that `accepted`
/// takes, opened, or `None`.
pub(crate) fn find(
    config: &HttpConfig,
    cache: &FileCache,
    path: &VirtualPath,
    file: &Meta,
    accepted: &Accepted,
    now: Instant,
) -> Option<(Coding, Opened)> {
    let encoding = &config.encoding;
    accepted.ranked().next()?;
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&config.root.id().to_le_bytes());
    for name in path.names() {
        key.push(b'/');
        key.extend_from_slice(name.as_bytes());
    }
    let known = {
        let known = encoding.siblings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.map.get(key.as_slice()).copied()
    };
    let fresh = known.filter(|(at, _)| now.saturating_duration_since(*at) < config.file_cache_valid);
    if let Some((_, mask)) = fresh {
        let coding = accepted.best(|c| mask & (1 << c as u8) != 0)?;
        let opened = cache.open(config, &sibling(path, coding)?, now).ok();
        match opened {
            Some(opened) if current(&opened.info.meta, file) => return Some((coding, opened)),
            // Gone or stale since: look again next time.
            _ => {
                forget(config, &key);
                return None;
            }
        }
    }
    // Look at every sibling (not only those this client takes, so the
    // memory serves the next client too).
    let mut mask = 0u8;
    let mut found: [Option<Opened>; 3] = [None, None, None];
    for coding in Coding::ALL {
        let Some(opened) = sibling(path, coding).and_then(|p| cache.open(config, &p, now).ok()) else { continue };
        if current(&opened.info.meta, file) {
            mask |= 1 << coding as u8;
            found[coding as usize] = Some(opened);
        }
    }
    {
        let mut known = encoding.siblings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.map.len() >= MAX_PATHS {
            known.map.clear();
        }
        known.map.insert(key.into(), (now, mask));
    }
    let coding = accepted.best(|c| mask & (1 << c as u8) != 0)?;
    found[coding as usize].take().map(|opened| (coding, opened))
}

/// Drops what is known about a path.
fn forget(config: &HttpConfig, key: &[u8]) {
    let mut known = config.encoding.siblings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    known.map.remove(key);
}
