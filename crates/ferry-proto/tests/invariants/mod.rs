//! The invariants the fuzz targets (`fuzz/`) and the proptest properties
//! (`tests/properties_*.rs`) check, written once.
//!
//! Every check takes arbitrary bytes and decodes them with [`source::Source`]
//! into something meaningful (a request stream, a script of file commands, a
//! path), so a coverage-guided fuzzer and proptest's random vectors drive the
//! same code and a failing input from either replays in the other. A check
//! panics (`assert!`) when an invariant does not hold; it never reports
//! "uninteresting" inputs, it just returns.
//!
//! The fuzz crate compiles this directory with
//! `#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"] mod invariants;`,
//! so it may use only what both have: `ferry-proto` and two of its
//! dependencies (`httparse`, `sha2`), no proptest.
//!
//! | module | what it checks |
//! |---|---|
//! | [`http`] | HTTP session: same output however the input is split or read, nothing after a close, a bounded queue, well-formed responses, nothing from outside the root |
//! | [`http_parsers`] | ranges, targets and chunked bodies, through the session |
//! | [`files`] | file session: every reply line one line, nothing outside the root read or changed, nothing after a close, split independence, a bounded queue |
//! | [`codec`] | the client codec against the server: requests, replies, listings, `get` heads |
//! | [`escape`] | escape/quote round trips |
//! | [`resolve`] | `Root::resolve`: normalised, never above the root |

#![allow(dead_code)] // each user takes a subset

pub mod codec;
pub mod drive;
pub mod escape;
pub mod files;
pub mod http;
pub mod http_parsers;
pub mod resolve;
pub mod source;
pub mod tree;

/// How many cases a proptest property runs: `default`, or
/// `PROPTEST_CASES` if set (to run more locally).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
