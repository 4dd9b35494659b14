//! Our code next to its hand-written references (`common/reference.rs`), for the
//! ratios the targets are written in, measured so that a busy machine's drift cannot
//! blur them.
//!
//! - Run alone (`cargo bench --bench side_by_side`), it times every case in turn, in
//!   batches of `BATCH` requests for `ROUNDS` rounds, so that each comparison's two
//!   sides see the same machine; it prints, for each comparison, the ratio of the
//!   batches' 10th percentiles and of their medians. Targets: verify ≤ 1.2× its floor
//!   (10k and 1M keys), mint ≤ 1.2× its floor, and each layer placement adding no
//!   more over the bare router than the hand-written layer does.
//! - With `CASE` and `REQUESTS` set, it runs that one case that many times after a
//!   warm-up: `scripts/instructions.sh` runs each case so under valgrind, with and
//!   without requests, for exact instructions per request.
//!
//! - `signed/ours` / `verify/ours`: verify of a signed key (`KeyFormat::signed_with`,
//!   an HMAC more per request) next to an unsigned one, both over 10 000 keys.
//! - `checksummed/ours` / `verify/ours`: the same with a checksummed key
//!   (`KeyFormat::checksum`, a CRC-32 more per request).
//! - `usage/counted` / `usage/not_counted`: verify with the per-key usage counting
//!   the built-in stores turn on, and with it off (`count_usage(false)`). Target:
//!   counting adds at most 20 ns.
//! - `limit/shared` / `limit/local`: verify plus a rate limit never reached, counted in
//!   a shared quota store (slices leased from an `InMemoryKeyStore`) or in process.
//!   Target: ≤ 1.2×.
//!
//! Cases: `verify/ours`, `verify/floor` (10 000 keys), `verify_1m/ours`,
//! `verify_1m/floor`, `mint/ours`, `mint/floor`; `router/bare`, `router/ours`,
//! `router/hand` (one `GET` through `Router::oneshot`, bare, behind
//! `Router::layer(ApiKeyLayer)`, behind the hand layer); `service/bare`,
//! `service/ours`, `service/hand` (the same around the whole router, a service built
//! once and driven with `ready` + `call`). Futures never wait here and are polled with
//! a no-op waker.
//!
//! One process's figures move together with its code and memory layout (by up to
//! ±100 ns here): `scripts/side_by_side.sh` runs it in several processes and prints
//! the medians over them, the figures to quote.
//!
//! ```text
//! cargo bench --bench side_by_side
//! bash scripts/side_by_side.sh
//! bash scripts/instructions.sh
//! ```

mod common;

use std::{env, hint::black_box, time::Instant};

use axum::body::Body;
use common::{
    block_on, filled_store,
    reference::{floor_table, floor_verify, hand_layer, mint_floor},
    request, router,
};
use http::{HeaderValue, Request, StatusCode};
use tower::{Layer, Service, ServiceExt};
use tower_api_key::{
    auth::Authenticator,
    key::{ApiKey, Checksum, KeyFormat, KeyMode, KeySecret},
    policy::RateLimit,
    store::{InsertRule, KeyRecord, KeyStore},
    ApiKeyLayer, InMemoryKeyStore,
};

/// Requests run before counting or timing starts: first-use costs (lazy statics, a
/// key's first last-use entry) stay out.
const WARM_UP: usize = 100;
/// Requests per timed batch.
const BATCH: usize = 1_000;
/// Timed batches per case.
const ROUNDS: usize = 200;

const CASES: [&str; 18] = [
    "verify/ours",
    "verify/floor",
    "verify_1m/ours",
    "verify_1m/floor",
    "mint/ours",
    "mint/floor",
    "router/bare",
    "router/ours",
    "router/hand",
    "service/bare",
    "service/ours",
    "service/hand",
    "limit/local",
    "limit/shared",
    "signed/ours",
    "checksummed/ours",
    "usage/counted",
    "usage/not_counted",
];

/// One request of a case; `true` when it was answered as the case expects.
type Case = Box<dyn FnMut() -> bool>;

/// `n` keys' worth of the case's state: a store of them (for our cases) or only one
/// key (the references make their own table), and the `Authorization` value of one.
fn keys(n: usize, store: bool) -> (InMemoryKeyStore, Vec<ApiKey>, HeaderValue) {
    let (store, kept) = if store {
        filled_store(n, 1)
    } else {
        let key = ApiKey::generate(KeyMode::Live).expect("mint");
        (InMemoryKeyStore::new(), vec![key])
    };
    let value = format!("Bearer {}", kept[0].expose_secret());
    let header = HeaderValue::from_str(&value).expect("header value");
    (store, kept, header)
}

/// Sets up one case.
fn case(name: &str) -> Case {
    let n = if name.starts_with("verify_1m") {
        1_000_000
    } else {
        10_000
    };
    match name {
        "mint/ours" => return Box::new(|| ApiKey::generate(KeyMode::Live).is_ok()),
        "mint/floor" => return Box::new(|| black_box(mint_floor()).len() == 72),
        _ => {}
    }
    let stored =
        name.ends_with("/ours") || name.starts_with("limit/") || name.starts_with("usage/");
    let (store, kept, header) = keys(n, stored);
    let (parts, _) = request(Some(&header)).into_parts();
    let ok = |status: StatusCode| status == StatusCode::OK;
    match name {
        "verify/ours" | "verify_1m/ours" => {
            let auth = Authenticator::builder(store)
                .failed_attempts_limit(None)
                .build();
            Box::new(move || block_on(auth.authenticate(black_box(&parts))).is_ok())
        }
        "verify/floor" | "verify_1m/floor" => {
            let table = floor_table(n, &kept);
            Box::new(move || floor_verify(&table, black_box(&parts)))
        }
        "router/bare" | "router/ours" | "router/hand" => {
            let app = match name {
                "router/bare" => router(),
                "router/ours" => router().layer(ApiKeyLayer::new(store)),
                _ => router().layer(hand_layer(n, &kept)),
            };
            Box::new(move || {
                let response = block_on(app.clone().oneshot(request(Some(&header))));
                ok(response.expect("infallible").status())
            })
        }
        "signed/ours" | "checksummed/ours" => {
            // The same store's keys cannot be signed or checksummed after the fact: a
            // store of its own, minted in the format, of the same size.
            let format = if name == "signed/ours" {
                KeyFormat::default().signed_with(KeySecret::from_bytes([7; 32]))
            } else {
                KeyFormat::default().checksum(Checksum::Required)
            };
            let store = InMemoryKeyStore::with_capacity(n);
            let mut kept = None;
            for _ in 0..n {
                let key = ApiKey::generate_in(&format, KeyMode::Live).expect("mint");
                let record = KeyRecord::builder(&key, "acct").build();
                block_on(store.insert(record, InsertRule::Unconditional)).expect("insert");
                kept.get_or_insert(key);
            }
            let key = kept.expect("a key");
            let header =
                HeaderValue::try_from(format!("Bearer {}", key.expose_secret())).expect("header");
            let (parts, _) = request(Some(&header)).into_parts();
            let auth = Authenticator::builder(store)
                .key_format(format)
                .failed_attempts_limit(None)
                .build();
            Box::new(move || block_on(auth.authenticate(black_box(&parts))).is_ok())
        }
        "limit/local" | "limit/shared" => {
            // A rate never reached: the steady state of a key under its limit.
            let rate: RateLimit = "1000000000/s".parse().expect("rate");
            let mut builder = Authenticator::builder(store.clone())
                .failed_attempts_limit(None)
                .rate_limit(rate);
            if name == "limit/shared" {
                builder = builder.shared_rate_limits(InMemoryKeyStore::new());
            }
            let auth = builder.build();
            Box::new(move || block_on(auth.authenticate(black_box(&parts))).is_ok())
        }
        "usage/counted" | "usage/not_counted" => {
            let auth = Authenticator::builder(store)
                .failed_attempts_limit(None)
                .count_usage(name == "usage/counted")
                .build();
            Box::new(move || block_on(auth.authenticate(black_box(&parts))).is_ok())
        }
        "service/bare" => serve(router(), header),
        "service/ours" => serve(ApiKeyLayer::new(store).layer(router()), header),
        "service/hand" => serve(hand_layer(n, &kept).layer(router()), header),
        other => panic!("unknown case {other}; cases: {}", CASES.join(", ")),
    }
}

/// `ready` + `call` on a service built once.
fn serve<S, B>(mut service: S, header: HeaderValue) -> Case
where
    S: Service<Request<Body>, Response = http::Response<B>> + 'static,
    S::Error: std::fmt::Debug,
{
    Box::new(move || {
        let response = block_on(async {
            service.ready().await.expect("ready");
            service.call(request(Some(&header))).await
        });
        response.expect("infallible").status() == StatusCode::OK
    })
}

/// Runs `requests` requests of a case; each must be answered as expected.
fn run(case: &mut Case, requests: usize) {
    for _ in 0..requests {
        assert!(
            black_box(case()),
            "every request of a case is answered as expected"
        );
    }
}

fn main() {
    if let (Ok(name), Ok(requests)) = (env::var("CASE"), env::var("REQUESTS")) {
        let mut one = case(&name);
        run(
            &mut one,
            WARM_UP + requests.parse::<usize>().expect("REQUESTS: a number"),
        );
        return;
    }
    if env::args().any(|arg| arg == "--list") {
        return;
    }
    // `cargo bench --bench side_by_side -- verify signed`: only the cases of groups
    // that contain one of the words (all without any).
    let filters: Vec<String> = env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |name: &str| {
        name.split('/').next().is_some_and(|group| {
            filters.is_empty() || filters.iter().any(|f| group.contains(f.as_str()))
        })
    };
    let mut cases: Vec<(&str, Case)> = CASES
        .iter()
        .filter(|name| wanted(name))
        .map(|name| (*name, case(name)))
        .collect();
    let mut batches = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for (_, one) in &mut cases {
        run(one, WARM_UP);
    }
    for _ in 0..ROUNDS {
        for ((_, one), times) in cases.iter_mut().zip(&mut batches) {
            let start = Instant::now();
            run(one, BATCH);
            times.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    let at = |name: &str, quantile: f64| {
        let i = cases.iter().position(|(c, _)| *c == name)?;
        let mut times = batches[i].clone();
        times.sort_by(f64::total_cmp);
        Some(times[((times.len() - 1) as f64 * quantile) as usize])
    };
    println!("side by side: {ROUNDS} rounds of {BATCH} requests per case; p10 | median, ns");
    for (ours, floor) in [
        ("verify/ours", "verify/floor"),
        ("verify_1m/ours", "verify_1m/floor"),
        ("mint/ours", "mint/floor"),
        ("limit/shared", "limit/local"),
        ("signed/ours", "verify/ours"),
        ("checksummed/ours", "verify/ours"),
        ("usage/counted", "usage/not_counted"),
    ] {
        let (Some(ours_p10), Some(ours_median), Some(floor_p10), Some(floor_median)) =
            (at(ours, 0.1), at(ours, 0.5), at(floor, 0.1), at(floor, 0.5))
        else {
            continue;
        };
        println!(
            "{ours:<15} / {floor:<16} {:.2}x | {:.2}x  ({ours_p10:.0} / {floor_p10:.0} ns at p10)",
            ours_p10 / floor_p10,
            ours_median / floor_median,
        );
    }
    for placement in ["router", "service"] {
        let added = |who: &str, q: f64| {
            Some(at(&format!("{placement}/{who}"), q)? - at(&format!("{placement}/bare"), q)?)
        };
        let (Some(ours_p10), Some(ours_median), Some(hand_p10), Some(hand_median)) = (
            added("ours", 0.1),
            added("ours", 0.5),
            added("hand", 0.1),
            added("hand", 0.5),
        ) else {
            continue;
        };
        println!(
            "{placement:<8} added over bare: ours {ours_p10:.0} | {ours_median:.0}, \
             hand layer {hand_p10:.0} | {hand_median:.0}",
        );
    }
}
