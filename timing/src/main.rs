//! dudect timing-leak tests of the verifier (`Authenticator::authenticate_outside_http` over an
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
//!
//! Each timed call follows an untimed one with the same input: what an attacker who
//! repeats a probe to average out noise measures. Without it, the classes would differ
//! in how often their memory is still cached from an earlier sample (a stored key's
//! record is drawn again when its key is; an unknown prefix's decoy when any prefix
//! sharing it is), which measures the sampling, not the verifier — `cold_pools`
//! shows that effect between two pools of *unknown* prefixes alone.

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
    key::{KeyFormat, KeySecret},
    store::{InsertRule, KeyStore},
    ApiKey, InMemoryKeyStore, KeyMode, KeyRecord,
};

/// Samples per call of a bench function, about half in each class; `--continuous`
/// calls it again and again, accumulating.
const SAMPLES: usize = 200_000;
const KEYS: usize = 100_000;

struct Fixture {
    auth: Authenticator,
    /// The stored keys.
    keys: Vec<String>,
    /// As many keys that no record has, minted the same way.
    unknown: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture::new(KeyFormat::default()));

/// The same over signed keys: every guess is refused at the signature, before lookup.
static SIGNED: LazyLock<Fixture> = LazyLock::new(|| {
    let secret = KeySecret::generate().expect("OS random source");
    Fixture::new(KeyFormat::default().signed_with(secret))
});

impl Fixture {
    /// `KEYS` stored keys of `format`, and as many unknown ones minted the same way.
    fn new(format: KeyFormat) -> Fixture {
        let store = InMemoryKeyStore::with_capacity(KEYS);
        let mint = || {
            ApiKey::generate_in(&format, KeyMode::Live)
                .expect("OS random source")
                .expose_secret()
                .to_owned()
        };
        let keys: Vec<String> = (0..KEYS).map(|_| mint()).collect();
        for key in &keys {
            let key = ApiKey::parse(key, &format).expect("a minted key");
            let record = KeyRecord::builder(&key, "timing").build();
            block_on(store.insert(record, InsertRule::Unconditional)).expect("insert");
        }
        let unknown = (0..KEYS).map(|_| mint()).collect();
        let auth = Authenticator::builder(store)
            .key_format(format)
            .failed_attempts_limit(None)
            .build();
        Fixture {
            auth,
            keys,
            unknown,
        }
    }
}

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

fn pick<'a>(rng: &mut BenchRng, pool: &'a [String]) -> &'a str {
    &pool[(rng.next_u64() % pool.len() as u64) as usize]
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

/// `prefix`'s first 24 characters with a random secret.
fn with_random_secret(rng: &mut BenchRng, prefix: &str) -> KeyText {
    let mut text = key_text(&format!("pk_live_{}", hex(rng, 64)));
    text[..24].copy_from_slice(&prefix.as_bytes()[..24]);
    text
}

fn verify(runner: &mut CtRunner, fixture: &Fixture, inputs: Vec<(Class, KeyText)>) {
    let auth = &fixture.auth;
    let run = |bytes: &KeyText| {
        let text = std::str::from_utf8(black_box(bytes)).unwrap_or_default();
        black_box(block_on(auth.authenticate_outside_http(text)).is_ok())
    };
    for (class, bytes) in inputs {
        run(&bytes);
        runner.run_one(class, || run(&bytes));
    }
}

fn wrong_secret_vs_unknown_prefix(runner: &mut CtRunner, rng: &mut BenchRng) {
    wrong_secret_vs_unknown_prefix_in(&FIXTURE, runner, rng);
}

/// The same with signed keys: both classes fail the signature.
fn signed_wrong_secret_vs_unknown_prefix(runner: &mut CtRunner, rng: &mut BenchRng) {
    wrong_secret_vs_unknown_prefix_in(&SIGNED, runner, rng);
}

fn wrong_secret_vs_unknown_prefix_in(fixture: &Fixture, runner: &mut CtRunner, rng: &mut BenchRng) {
    let Fixture { keys, unknown, .. } = fixture;
    let inputs = (0..SAMPLES)
        .map(|_| {
            let class = class(rng);
            // The same work for both: a key drawn from a pool of 100 000, with a
            // random secret.
            let pool = match class {
                Class::Left => keys,
                Class::Right => unknown,
            };
            let prefix = pick(rng, pool);
            (class, with_random_secret(rng, prefix))
        })
        .collect();
    verify(runner, fixture, inputs);
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
    verify(runner, &FIXTURE, inputs);
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

/// Not a test of the verifier but of the method: unknown prefixes on both sides,
/// timed cold (no untimed call first), left drawn from 100 000 prefixes drawn with
/// replacement from the pool (so about 63% distinct, some repeated), right from the
/// pool itself. Both are refused the same way; any `t` here comes from how often
/// memory is reused between samples, which is why the verifier's benches time warm.
fn cold_pools(runner: &mut CtRunner, rng: &mut BenchRng) {
    static REDRAWN: LazyLock<Vec<String>> = LazyLock::new(|| {
        let unknown = &FIXTURE.unknown;
        let mut draw = <BenchRng as dudect_bencher::rand::SeedableRng>::seed_from_u64(7);
        (0..KEYS)
            .map(|_| pick(&mut draw, unknown).to_owned())
            .collect()
    });
    let auth = &FIXTURE.auth;
    for _ in 0..SAMPLES {
        let class = class(rng);
        let pool = match class {
            Class::Left => &*REDRAWN,
            Class::Right => &FIXTURE.unknown,
        };
        let prefix = pick(rng, pool);
        let bytes = with_random_secret(rng, prefix);
        runner.run_one(class, || {
            let text = std::str::from_utf8(black_box(&bytes)).unwrap_or_default();
            black_box(block_on(auth.authenticate_outside_http(text)).is_ok())
        });
    }
}

ctbench_main!(
    wrong_secret_vs_unknown_prefix,
    signed_wrong_secret_vs_unknown_prefix,
    first_vs_last_byte,
    control_plain_eq,
    cold_pools
);
