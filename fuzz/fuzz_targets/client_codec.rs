//! Fuzzes the client codec against the server: the invariants of `invariants::codec`
//! (crates/ferry-proto/tests/invariants/codec.rs), which the proptest
//! properties in crates/ferry-proto/tests/properties_*.rs also run.
#![no_main]

#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::codec::check(data));
