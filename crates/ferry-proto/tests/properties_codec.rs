//! The client codec, the escapes and `Root::resolve` as proptest
//! properties, on stable in CI: the same checks the `client_codec`,
//! `escape` and `resolve` fuzz targets run (`tests/invariants/`,
//! `docs/FUZZING.md`), on random inputs.

mod invariants;

use invariants::{codec, escape, resolve};
use proptest::prelude::*;

/// Bytes that favour the protocol's separators and escapes.
fn text_like() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => prop::sample::select(b" \t\n\r\"\\x0123456789abcdefOKER/.-".to_vec()),
            1 => Just(0xfe),
        ],
        0..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(invariants::cases(256)))]

    #[test]
    fn client_codec_invariants(data in text_like()) {
        codec::check(&data);
    }

    #[test]
    fn escape_invariants(data in text_like()) {
        escape::check(&data);
    }

    #[test]
    fn resolve_invariants(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        resolve::check(&data);
    }
}
