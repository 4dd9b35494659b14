//! dudect timing-leak tests of the verifier (`Authenticator::authenticate_key` over an
//! in-memory store of 100 000 keys), with a positive control. Run by
//! `scripts/timing.sh`, which checks each `max t`: below 5 for the verifier, above 10
//! for the control (so the harness is shown able to see a leak).
//!
//! - `wrong_secret_vs_unknown_prefix`: a stored key's prefix with a wrong secret
//!   (left) against a prefix no key has (right).
//! - `first_vs_last_byte`: a stored key with the first character after its prefix
//!   changed (left) against its last one changed (right).
//! - `control_plain_eq`: the same two classes, compared with a plain `==` on the key
//!   text, as tower-http's `ValidateRequestHeaderLayer::bearer` does.

use std::{
    future::Future,
    hint::black_box,
    pin::pin,
    sync::LazyLock,
    task::{Context, Poll, Waker},
};

use dudect_bencher::{ctbench_main, rand::Rng, BenchRng, Class, CtRunner};
use tower_api_key::{
    auth::Authenticator,
    store::{InsertRule, KeyStore},
    ApiKey, InMemoryKeyStore, KeyMode, KeyRecord,
};

/// Samples per call of a bench function, about half in each class; `--continuous`
/// calls it again and again, accumulating.
const SAMPLES: usize = 200_000;
const KEYS: usize = 100_000;

struct Fixture {
    auth: Authenticator,
    keys: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let store = InMemoryKeyStore::with_capacity(KEYS);
    let mut keys = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
        let record = KeyRecord::builder(&key, "timing").build();
        block_on(store.insert(record, InsertRule::Unconditional)).expect("insert");
        keys.push(key.expose_secret().to_owned());
    }
    let auth = Authenticator::builder(store)
        .failed_attempts_limit(None)
        .build();
    Fixture { auth, keys }
});

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn hex(rng: &mut BenchRng, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    while out.len() < digits {
        out.push_str(&format!("{:016x}", rng.next_u64()));
    }
    out.truncate(digits);
    out
}

fn class(rng: &mut BenchRng) -> Class {
    if rng.next_u64() & 1 == 0 {
        Class::Left
    } else {
        Class::Right
    }
}

/// `key` with the character at `at` (24..72, after the prefix) changed to another
/// hex digit.
fn changed_at(key: &str, at: usize) -> String {
    let mut bytes = key.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).expect("ascii")
}

/// A key's text inline: both classes' inputs lie in one array, made the same way, so
/// that nothing but their content differs (not where the allocator put them).
type KeyText = [u8; 72];

fn key_text(text: &str) -> KeyText {
    let mut out = [0u8; 72];
    out.copy_from_slice(text.as_bytes());
    out
}

fn verify(runner: &mut CtRunner, inputs: Vec<(Class, KeyText)>) {
    let auth = &FIXTURE.auth;
    for (class, bytes) in inputs {
        runner.run_one(class, || {
            let text = std::str::from_utf8(black_box(&bytes)).unwrap_or_default();
            let outcome = block_on(auth.authenticate_key(text));
            black_box(outcome.is_ok())
        });
    }
}

fn wrong_secret_vs_unknown_prefix(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = &FIXTURE.keys;
    let inputs = (0..SAMPLES)
        .map(|_| {
            let class = class(rng);
            // The same work for both: a random key, whose prefix is then replaced by a
            // stored key's for the left class.
            let mut text = key_text(&format!("pk_live_{}", hex(rng, 64)));
            let stored = &keys[(rng.next_u64() % KEYS as u64) as usize];
            if let Class::Left = class {
                text[..24].copy_from_slice(&stored.as_bytes()[..24]);
            }
            (class, text)
        })
        .collect();
    verify(runner, inputs);
}

/// Left: a stored key with the first character after its prefix changed; right: its
/// last. Both keep the stored prefix (a character changed inside the prefix would make
/// it an unknown prefix: the other bench). With the stored key's index.
fn first_or_last(rng: &mut BenchRng) -> Vec<(Class, String, usize)> {
    let keys = &FIXTURE.keys;
    (0..SAMPLES)
        .map(|_| {
            let class = class(rng);
            let index = (rng.next_u64() % KEYS as u64) as usize;
            let at = match class {
                Class::Left => 24,
                Class::Right => 71,
            };
            (class, changed_at(&keys[index], at), index)
        })
        .collect()
}

fn first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let inputs = first_or_last(rng)
        .into_iter()
        .map(|(class, text, _)| (class, key_text(&text)))
        .collect();
    verify(runner, inputs);
}

fn control_plain_eq(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = &FIXTURE.keys;
    for (class, text, index) in first_or_last(rng) {
        let stored = keys[index].as_str();
        runner.run_one(class, || {
            black_box(black_box(stored) == black_box(text.as_str()))
        });
    }
}

ctbench_main!(
    wrong_secret_vs_unknown_prefix,
    first_vs_last_byte,
    control_plain_eq
);
