//! Fuzzes the HTTP session: the invariants of `invariants::http`
//! (crates/ferry-proto/tests/invariants/http.rs), which the proptest
//! properties in crates/ferry-proto/tests/properties_*.rs also run.
#![no_main]

#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::http::check(data));
