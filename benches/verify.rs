//! The verifier alone, without HTTP: [`Authenticator::authenticate`] over an
//! [`InMemoryKeyStore`] holding 10 000 and 1 000 000 real records, plus minting and
//! the bare SHA-256 for reference.
//!
//! - `verify/with_10k_keys`, `verify/with_1m_keys`: a valid `Authorization: Bearer`
//!   header, rotating among a few keys spread across the store. Target: ≤ 0.5 µs, and
//!   no growth from 10k to 1M keys (one hash-map probe per request).
//! - `verify/unknown_prefix`, `verify/wrong_secret` (1M store): the two refusals, which
//!   should cost about the same as a success (hash and constant-time compare either way).
//! - `verify/floor_10k_keys`, `verify/floor_1m_keys`: the floor any verifier pays, for
//!   reference: a hand-written parse of the header, one `HashMap<prefix, digest>`
//!   lookup, SHA-256 of the key and a constant-time compare (no lifecycle, no policy,
//!   no principal). Target: `with_*_keys` at most 1.2× the floor of the same size.
//! - `mint/generate`, `mint/generate_and_record`: `ApiKey::generate` alone, and with the
//!   `KeyRecord` a server would store; `mint/floor`: 32 bytes from the OS random
//!   source and their lowercase hex in one `String`, for reference (target:
//!   `generate` at most 1.2× it).
//! - `policy/limit_in_process`, `policy/limit_shared`: verify plus a per-key rate never
//!   reached, counted in process or in a shared quota store (slices leased from an
//!   in-memory one). Target: shared at most 1.2× in process.
//! - `usage/counted`, `usage/not_counted` (10k store): a valid key, with the per-key
//!   usage counting the built-in stores turn on, and with it off
//!   (`count_usage(false)`). Target: counting adds at most 20 ns.
//! - `hash/key_hash_72_chars`: `KeyHash::of` on a 72-character key, the SHA-256 that
//!   every verification pays.
//!
//! The in-memory store never pends, so futures are driven by polling them once with a
//! no-op waker instead of a runtime: the figures are the verifier's own cost.
//!
//! ```text
//! cargo bench --bench verify
//! ```

mod common;

use std::hint::black_box;

use common::{
    block_on, filled_store,
    reference::{floor_table, floor_verify, mint_floor, FloorTable},
};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{header::AUTHORIZATION, request::Parts, HeaderValue};
use tower_api_key::{
    auth::Authenticator,
    error::AuthErrorKind,
    key::{ApiKey, KeyHash, KeyMode},
    policy::{PeerAddr, RateLimit, Restrictions},
    store::{InsertRule, KeyRecord, KeyStore},
};

/// How many stored keys the valid-key benchmarks rotate among.
const ROTATION: usize = 8;

/// A request head carrying `Authorization: Bearer <key_text>`.
fn bearer(key_text: &str) -> Parts {
    let value = HeaderValue::from_str(&format!("Bearer {key_text}")).expect("header value");
    let mut request = http::Request::new(());
    request.headers_mut().insert(AUTHORIZATION, value);
    request.into_parts().0
}

/// Benchmarks `authenticate` on the given headers, cycling through them.
fn bench_headers(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    auth: &Authenticator,
    headers: &[Parts],
    expect: Result<(), AuthErrorKind>,
) {
    // Check once, outside the measurement, that the case is what its name says.
    for h in headers {
        let outcome = block_on(auth.authenticate(h))
            .map(drop)
            .map_err(|e| e.kind());
        assert_eq!(outcome, expect, "{name}");
    }
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % headers.len();
            block_on(auth.authenticate(black_box(&headers[i])))
        })
    });
}

/// The verifier alone: the failed-attempts budget (measured in `policy/`) would turn
/// the refusals measured here into 429s once spent.
fn verifier(store: tower_api_key::store::InMemoryKeyStore) -> Authenticator {
    Authenticator::builder(store)
        .failed_attempts_limit(None)
        .build()
}

fn bench_floor(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    table: &FloorTable,
    headers: &[Parts],
) {
    assert!(headers.iter().all(|h| floor_verify(table, h)), "{name}");
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % headers.len();
            floor_verify(table, black_box(&headers[i]))
        })
    });
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");

    {
        let (store, keys) = filled_store(10_000, ROTATION);
        let auth = verifier(store);
        let headers: Vec<_> = keys.iter().map(|k| bearer(k.expose_secret())).collect();
        let table = floor_table(10_000, &keys);
        bench_headers(&mut group, "with_10k_keys", &auth, &headers, Ok(()));
        bench_floor(&mut group, "floor_10k_keys", &table, &headers);
    }

    let (store, keys) = filled_store(1_000_000, ROTATION);
    let auth = verifier(store);
    let valid: Vec<_> = keys.iter().map(|k| bearer(k.expose_secret())).collect();
    bench_headers(&mut group, "with_1m_keys", &auth, &valid, Ok(()));
    {
        let table = floor_table(1_000_000, &keys);
        bench_floor(&mut group, "floor_1m_keys", &table, &valid);
    }

    // Well-formed keys whose prefixes are not in the store.
    let unknown: Vec<_> = (0..ROTATION)
        .map(|_| {
            bearer(
                ApiKey::generate(KeyMode::Live)
                    .expect("mint")
                    .expose_secret(),
            )
        })
        .collect();
    bench_headers(
        &mut group,
        "unknown_prefix",
        &auth,
        &unknown,
        Err(AuthErrorKind::InvalidCredentials),
    );

    // Stored prefixes with the last secret digit changed.
    let wrong: Vec<_> = keys
        .iter()
        .map(|k| {
            let mut text = k.expose_secret().to_owned();
            let last = if text.ends_with('a') { "b" } else { "a" };
            text.replace_range(text.len() - 1.., last);
            bearer(&text)
        })
        .collect();
    bench_headers(
        &mut group,
        "wrong_secret",
        &auth,
        &wrong,
        Err(AuthErrorKind::InvalidCredentials),
    );

    group.finish();
}

/// A valid key with and without per-key usage counting.
fn usage(c: &mut Criterion) {
    let (store, keys) = filled_store(10_000, ROTATION);
    let headers: Vec<_> = keys.iter().map(|k| bearer(k.expose_secret())).collect();
    let counted = Authenticator::builder(store.clone())
        .failed_attempts_limit(None)
        .build();
    let not_counted = Authenticator::builder(store)
        .failed_attempts_limit(None)
        .count_usage(false)
        .build();
    let mut group = c.benchmark_group("usage");
    bench_headers(&mut group, "counted", &counted, &headers, Ok(()));
    bench_headers(&mut group, "not_counted", &not_counted, &headers, Ok(()));
    group.finish();
}

fn mint(c: &mut Criterion) {
    let mut group = c.benchmark_group("mint");
    group.bench_function("generate", |b| {
        b.iter(|| ApiKey::generate(black_box(KeyMode::Live)).expect("mint"))
    });
    group.bench_function("floor", |b| b.iter(mint_floor));
    group.bench_function("generate_and_record", |b| {
        b.iter(|| {
            let key = ApiKey::generate(black_box(KeyMode::Live)).expect("mint");
            let record = KeyRecord::builder(&key, "acct_42").build();
            (key, record)
        })
    });
    group.finish();
}

fn hash(c: &mut Criterion) {
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let text = key.expose_secret();
    assert_eq!(text.len(), 72);
    let mut group = c.benchmark_group("hash");
    group.bench_function("key_hash_72_chars", |b| {
        b.iter(|| KeyHash::of(black_box(text)))
    });
    group.finish();
}

/// The verify path for a request head, with and without a rate limiter and
/// restrictions (issue target: at most 1.3× without them).
fn policy(c: &mut Criterion) {
    let (store, keys) = filled_store(10_000, 1);
    let plain_auth = Authenticator::builder(store.clone())
        .failed_attempts_limit(None)
        .build();
    // A second store with the same key, restricted, behind a layer-wide rate limit
    // (never reached), as most deployments configure it.
    let limited_store = tower_api_key::store::InMemoryKeyStore::new();
    let key = &keys[0];
    let restricted = KeyRecord::builder(key, "acct")
        .restrictions(
            Restrictions::default()
                .allow_ip("10.0.0.0/8".parse().expect("cidr"))
                .allow_route("GET /api/*".parse().expect("route")),
        )
        .build();
    block_on(limited_store.insert(restricted, InsertRule::Unconditional)).expect("insert");
    let limited_auth = Authenticator::builder(limited_store)
        .rate_limit("1000000000/s".parse::<RateLimit>().expect("rate"))
        .build();

    let mut request = http::Request::get("/api/account")
        .header(AUTHORIZATION, format!("Bearer {}", key.expose_secret()))
        .body(())
        .expect("request");
    request
        .extensions_mut()
        .insert(PeerAddr("10.1.2.3:5000".parse().expect("addr")));
    let (parts, ()) = request.into_parts();
    assert!(block_on(plain_auth.authenticate(&parts)).is_ok());
    assert!(block_on(limited_auth.authenticate(&parts)).is_ok());

    // Verify plus a rate never reached, counted in process or in a shared quota store
    // (slices leased from an in-memory one): the limiter's own cost at steady state.
    let rate = "1000000000/s".parse::<RateLimit>().expect("rate");
    let local_limit = Authenticator::builder(store.clone())
        .failed_attempts_limit(None)
        .rate_limit(rate)
        .build();
    let shared_limit = Authenticator::builder(store.clone())
        .failed_attempts_limit(None)
        .rate_limit(rate)
        .shared_rate_limits(tower_api_key::store::InMemoryKeyStore::new())
        .build();
    let mut plain = http::Request::get("/api/account")
        .header(AUTHORIZATION, format!("Bearer {}", key.expose_secret()))
        .body(())
        .expect("request");
    plain
        .extensions_mut()
        .insert(PeerAddr("10.1.2.3:5000".parse().expect("addr")));
    let (plain, ()) = plain.into_parts();

    let mut group = c.benchmark_group("policy");
    group.bench_function("request_plain", |b| {
        b.iter(|| block_on(plain_auth.authenticate(black_box(&parts))))
    });
    group.bench_function("limit_in_process", |b| {
        b.iter(|| block_on(local_limit.authenticate(black_box(&plain))))
    });
    group.bench_function("limit_shared", |b| {
        b.iter(|| block_on(shared_limit.authenticate(black_box(&plain))))
    });
    group.bench_function("request_with_limits_and_restrictions", |b| {
        b.iter(|| block_on(limited_auth.authenticate(black_box(&parts))))
    });
    group.finish();
}

criterion_group!(benches, verify, usage, mint, hash, policy);
criterion_main!(benches);
