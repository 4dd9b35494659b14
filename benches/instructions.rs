//! Instructions per request, counted exactly: the companion of the `verify` and `layer`
//! benches for figures that a busy machine's timing noise cannot blur.
//!
//! `scripts/instructions.sh` runs each case below under valgrind twice, with a few
//! thousand requests and with none (after the same warm-up), and prints the difference
//! per request. Run alone (as `cargo bench` does), this prints how to use it.
//!
//! - `verify/ours`, `verify/floor`: [`Authenticator::authenticate`] over 10 000 keys,
//!   and the hand-written floor (parse, hash-map lookup, SHA-256, constant-time
//!   compare), as in `benches/verify.rs`.
//! - `router/bare`, `router/ours`, `router/hand`: one `GET` through `Router::oneshot`,
//!   bare, behind `Router::layer(ApiKeyLayer)` and behind the hand-written layer, as
//!   in `benches/layer.rs`.
//! - `service/bare`, `service/ours`, `service/hand`: the same around the whole router,
//!   a service built once and driven with `ready` + `call`.
//!
//! ```text
//! bash scripts/instructions.sh
//! CASE=router/ours REQUESTS=1000 valgrind --tool=cachegrind --cache-sim=no <binary>
//! ```

mod common;

use std::{env, hint::black_box};

use axum::{body::Body, routing::get, Router};
use common::{
    block_on, filled_store,
    reference::{floor_table, floor_verify, hand_layer},
};
use http::{header::AUTHORIZATION, HeaderValue, Request, StatusCode};
use tower::{Layer, Service, ServiceExt};
use tower_api_key::{auth::Authenticator, ApiKeyLayer};

/// Requests run before counting starts, in both runs: first-use costs (lazy statics,
/// a key's first last-use entry) stay out of the difference.
const WARM_UP: usize = 100;
/// Keys in the store.
const KEYS: usize = 10_000;

const CASES: [&str; 8] = [
    "verify/ours",
    "verify/floor",
    "router/bare",
    "router/ours",
    "router/hand",
    "service/bare",
    "service/ours",
    "service/hand",
];

fn router() -> Router {
    Router::new().route("/api/account", get(|| async { "acct_1" }))
}

fn request(authorization: &HeaderValue) -> Request<Body> {
    Request::get("/api/account")
        .header(AUTHORIZATION, authorization.clone())
        .body(Body::empty())
        .expect("request")
}

/// Runs `one` `WARM_UP + requests` times; each call must succeed.
fn run(requests: usize, mut one: impl FnMut() -> bool) {
    for _ in 0..WARM_UP + requests {
        assert!(black_box(one()), "every request of a case is admitted");
    }
}

fn main() {
    let (Ok(case), Ok(requests)) = (env::var("CASE"), env::var("REQUESTS")) else {
        println!(
            "instructions: counts need valgrind; run `bash scripts/instructions.sh` \
             (cases: {})",
            CASES.join(", ")
        );
        return;
    };
    let requests: usize = requests.parse().expect("REQUESTS: a number");
    let (store, kept) = filled_store(KEYS, 1);
    let value = format!("Bearer {}", kept[0].expose_secret());
    let header = HeaderValue::from_str(&value).expect("header value");
    let ok = |status: StatusCode| status == StatusCode::OK;
    match case.as_str() {
        "verify/ours" => {
            let auth = Authenticator::builder(store)
                .failed_attempts_limit(None)
                .build();
            let (parts, _) = request(&header).into_parts();
            run(requests, || block_on(auth.authenticate(&parts)).is_ok());
        }
        "verify/floor" => {
            let table = floor_table(KEYS, &kept);
            let (parts, _) = request(&header).into_parts();
            run(requests, || floor_verify(&table, &parts));
        }
        "router/bare" | "router/ours" | "router/hand" => {
            let app = match case.as_str() {
                "router/bare" => router(),
                "router/ours" => router().layer(ApiKeyLayer::new(store)),
                _ => router().layer(hand_layer(KEYS, &kept)),
            };
            run(requests, || {
                let response = block_on(app.clone().oneshot(request(&header)));
                ok(response.expect("infallible").status())
            });
        }
        "service/bare" => serve(router(), requests, &header),
        "service/ours" => serve(ApiKeyLayer::new(store).layer(router()), requests, &header),
        "service/hand" => serve(hand_layer(KEYS, &kept).layer(router()), requests, &header),
        other => panic!("unknown case {other}; cases: {}", CASES.join(", ")),
    }
}

/// `ready` + `call` on a service built once.
fn serve<S, B>(mut service: S, requests: usize, header: &HeaderValue)
where
    S: Service<Request<Body>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
{
    run(requests, || {
        let response = block_on(async {
            service.ready().await.expect("ready");
            service.call(request(header)).await
        });
        response.expect("infallible").status() == StatusCode::OK
    });
}
