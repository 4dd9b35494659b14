//! What both fuzz targets share: an authenticator over an in-memory store holding real
//! records in every state, and a reference answer for which credentials it may accept.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, SystemTime},
};

use http::{HeaderMap, HeaderName};
use tower_api_key::{
    auth::Authenticator,
    key::KeyFormat,
    store::{InsertRule, KeyStore},
    ApiKey, InMemoryKeyStore, KeyRecord, Principal,
};

/// The keys in the store. Only the first three may ever be accepted.
pub const LIVE: &str = "pk_live_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub const TEST_MODE: &str =
    "pk_test_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
/// Revocation scheduled an hour from now: still works.
pub const RETIRING: &str =
    "pk_live_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const REVOKED: &str = "pk_live_1111111111111111222222222222222233333333333333334444444444444444";
pub const EXPIRED: &str = "pk_live_5555555555555555666666666666666677777777777777778888888888888888";
/// Restricted to an address range: refused without the request's client address.
pub const RESTRICTED: &str =
    "pk_live_9999999999999999aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbcccccccccccccccc";

/// The keys that may be accepted.
pub const ACCEPTABLE: [&str; 3] = [LIVE, TEST_MODE, RETIRING];

/// The extra header the authenticator also reads a bare key from.
pub const EXTRA_HEADER: &str = "x-api-key";

/// Polls a future that never waits (the in-memory store answers at once).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn key(text: &str) -> ApiKey {
    ApiKey::parse(text, &KeyFormat::default()).expect("a well-formed fixed key")
}

/// The authenticator under test, with every kind of record in its store.
pub fn authenticator() -> Authenticator {
    let store = InMemoryKeyStore::new();
    let now = SystemTime::now();
    let records = [
        KeyRecord::builder(&key(LIVE), "a").build(),
        KeyRecord::builder(&key(TEST_MODE), "b").build(),
        KeyRecord::builder(&key(RETIRING), "c")
            .revoked_at(now + Duration::from_secs(3600))
            .build(),
        KeyRecord::builder(&key(REVOKED), "d")
            .revoked_at(now - Duration::from_secs(1))
            .build(),
        KeyRecord::builder(&key(EXPIRED), "e")
            .expires_at(now - Duration::from_secs(1))
            .build(),
        KeyRecord::builder(&key(RESTRICTED), "f")
            .restrictions(
                tower_api_key::policy::Restrictions::default()
                    .allow_ip("10.0.0.0/8".parse().expect("cidr")),
            )
            .build(),
    ];
    for record in records {
        block_on(store.insert(record, InsertRule::Unconditional)).expect("insert");
    }
    Authenticator::builder(store)
        .also_accept_header(HeaderName::from_static(EXTRA_HEADER))
        // The budget for failures would turn refusals into 429s: not what is tested.
        .failed_attempts_limit(None)
        .build()
}

/// The key `principal` was verified with must be one of [`ACCEPTABLE`], and exactly
/// the text presented.
pub fn check_accepted(principal: &Principal, presented: &str) {
    let Some(expected) = ACCEPTABLE.iter().find(|k| **k == presented) else {
        panic!("accepted a credential that is not exactly an acceptable key");
    };
    assert_eq!(
        principal.prefix().as_str(),
        &expected[..24],
        "accepted as another key"
    );
}

/// What the layer may accept, by the specification rather than the code: exactly one
/// credential header; `Authorization` as `Bearer` (any case), one or more spaces, and
/// the token; the extra header as the bare token. `None` when nothing may be accepted.
pub fn reference_token(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get_all(http::header::AUTHORIZATION);
    let extra = headers.get_all(EXTRA_HEADER);
    let mut values = authorization.iter().map(|v| (true, v)).chain(extra.iter().map(|v| (false, v)));
    let (is_authorization, value) = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    if !is_authorization {
        return Some(text.to_owned());
    }
    let (scheme, rest) = text.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim_start_matches(' ').to_owned())
}
