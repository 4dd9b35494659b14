//! Property tests of the credential parser and verifier: for arbitrary header bytes
//! nothing panics, and nothing is accepted unless it is exactly a stored key.

mod common;

use std::sync::OnceLock;

use http::HeaderValue;
use proptest::prelude::*;
use tower_api_key::{key::KeyFormat, ApiKey, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord};

struct Fixture {
    rt: tokio::runtime::Runtime,
    auth: Authenticator,
    keys: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = InMemoryKeyStore::new();
        let keys = rt.block_on(async {
            let mut keys = Vec::new();
            for mode in [KeyMode::Live, KeyMode::Test].repeat(3) {
                let key = ApiKey::generate(mode).unwrap();
                common::insert(&store, KeyRecord::builder(&key, "prop").build()).await;
                keys.push(key.expose_secret().to_owned());
            }
            keys
        });
        Fixture {
            rt,
            auth: Authenticator::new(store),
            keys,
        }
    })
}

/// Runs the verifier on one `Authorization` value; `None` if `http` itself refuses
/// the bytes as a header value.
fn verify(value: &[u8]) -> Option<Result<String, ()>> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut request = http::Request::new(());
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value);
    let (parts, ()) = request.into_parts();
    let f = fixture();
    Some(
        f.rt.block_on(f.auth.authenticate(&parts))
            .map(|p| p.prefix().to_string())
            .map_err(|_| ()),
    )
}

fn accepted_exactly(value: &[u8]) -> bool {
    let f = fixture();
    f.keys.iter().any(|k| {
        value.len() > 7 && value[..6].eq_ignore_ascii_case(b"bearer") && {
            let rest = &value[6..];
            let token = rest.trim_ascii_start();
            rest.first() == Some(&b' ') && token == k.as_bytes() && !rest.contains(&b'\t')
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_pass(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Some(Ok(_)) = verify(&value) {
            prop_assert!(accepted_exactly(&value), "accepted {value:?}");
        }
    }

    #[test]
    fn mutated_keys_are_refused(index in 0usize..6, pos in 0usize..72, byte in any::<u8>()) {
        let key = fixture().keys[index].clone();
        let mut bytes = key.clone().into_bytes();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&bytes);
        prop_assert!(!matches!(verify(&value), Some(Ok(_))));
    }

    #[test]
    fn key_like_strings_are_refused(secret in "[0-9a-f]{64}", mode in "live|test") {
        let value = format!("Bearer pk_{mode}_{secret}");
        prop_assert!(matches!(verify(value.as_bytes()), Some(Err(()))));
    }

    #[test]
    fn near_miss_shapes_are_refused(
        scheme in "[bB][eE][aA][rR][eE][rR]",
        spaces in " {1,4}",
        head in "(pk|px|p|pkk)_(live|test|Live|prod)_",
        secret in "[0-9a-fA-F]{60,68}",
        tail in "( |,|\"|)",
    ) {
        let value = format!("{scheme}{spaces}{head}{secret}{tail}");
        if let Some(Ok(_)) = verify(value.as_bytes()) {
            prop_assert!(accepted_exactly(value.as_bytes()));
        }
    }

    #[test]
    fn every_real_key_passes_in_any_scheme_case(index in 0usize..6, scheme in "[bB][eE][aA][rR][eE][rR]", spaces in " {1,8}") {
        let key = &fixture().keys[index];
        let value = format!("{scheme}{spaces}{key}");
        let prefix = verify(value.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(prefix, &key[..24]);
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,120}") {
        let _ = ApiKey::parse(&text, &KeyFormat::default());
        let _ = text.parse::<tower_api_key::key::KeyPrefix>();
    }
}
