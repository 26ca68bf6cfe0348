//! Fuzzes ranges, targets and chunked bodies, through the HTTP session: the invariants of `invariants::http_parsers`
//! (crates/ferry-proto/tests/invariants/http_parsers.rs), which the proptest
//! properties in crates/ferry-proto/tests/properties_*.rs also run.
#![no_main]

#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::http_parsers::check(data));
