//! Fuzzes the file session: the invariants of `invariants::files`
//! (crates/ferry-proto/tests/invariants/files.rs), which the proptest
//! properties in crates/ferry-proto/tests/properties_*.rs also run.
#![no_main]

#[path = "../../crates/ferry-proto/tests/invariants/mod.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::files::check(data));
