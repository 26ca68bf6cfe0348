//! Fuzzes Root::resolve: the invariants of `invariants::resolve`
//! (crates/ferry-proto/tests/invariants/resolve.rs), which the proptest
//! properties in crates/ferry-proto/tests/properties_*.rs also run.
#![no_main]

#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::resolve::check(data));
