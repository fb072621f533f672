//! Property tests (fixed seed): arbitrary input and any one-character change never verify or panic.

use proptest::prelude::*;

use crate::{KEY_A, NOW, claims, verifier};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0xA17_0001),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(config())]

    // AC-AUTH-9
    #[test]
    fn arbitrary_input_is_refused_without_panic(text in ".{0,600}", dots in "[A-Za-z0-9_.-]{0,600}") {
        let v = verifier(&[&KEY_A]);
        prop_assert!(v.verify(&text, NOW).is_err());
        prop_assert!(v.verify(&dots, NOW).is_err());
    }

    // AC-AUTH-9
    #[test]
    fn any_one_character_change_is_refused(position in any::<prop::sample::Index>(), pick in 0usize..64) {
        let token = KEY_A.mint(&claims()).expect("mint");
        let at = position.index(token.len());
        prop_assume!(token.as_bytes()[at] != b'.');
        let mut bytes = token.clone().into_bytes();
        let replacement = BASE64URL[pick];
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let changed = String::from_utf8(bytes).expect("ascii");
        prop_assert!(verifier(&[&KEY_A]).verify(&changed, NOW).is_err(), "changed byte {at}");
    }
}
