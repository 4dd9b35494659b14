//! What `ApiKeyLayer` adds to an axum request: one `GET /api/account` through
//! `Router::oneshot`, bare and behind the layer.
//!
//! - `layer/bare_router`: the router alone.
//! - `layer/with_api_key_layer`: the same router `.layer(ApiKeyLayer::new(store))`, with
//!   a valid key. Target: at most 0.5 µs more than `bare_router`.
//! - `layer/tower_http_static_bearer`: for reference, the same router behind
//!   tower-http's `ValidateRequestHeaderLayer::bearer` (one static token compared with
//!   `==`: no store, no hashing, no principal).
//! - `layer/with_hand_layer`, `layer/service_with_hand_layer_ready_call`: for reference,
//!   a minimal hand-written layer doing the same check (parse the bearer key, one
//!   `HashMap<prefix, digest>` lookup, SHA-256, a constant-time compare, the prefix
//!   into the request's extensions, a bare 401 otherwise), in the same two placements
//!   as ours. Target: ours adds no more time over the bare router than it does.
//! - `layer/with_layer_rejected`: the same, without an `Authorization` header (401 with
//!   the JSON envelope; the handler is never called).
//! - `layer/service_bare_ready_call`, `layer/service_with_layer_ready_call`: a service
//!   built once and driven with `ready` + `call`, so no router is cloned per request;
//!   here the layer wraps the whole router (`ApiKeyLayer::layer(router)`).
//!
//! `bare_router` and `with_api_key_layer` send the very same request, `Authorization`
//! header included (the bare router ignores it), so the difference between them is the
//! layer alone. Requests are built inside the measured loop the same way for every
//! case. The store holds 1 000 keys. Nothing here waits on I/O, so futures are driven
//! by polling them with a no-op waker instead of a runtime.
//!
//! ```text
//! cargo bench --bench layer
//! ```

mod common;

use std::hint::black_box;

use common::{block_on, filled_store, reference::hand_layer, request, router};

use axum::{body::Body, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderValue, Request, StatusCode};
use tower::{Layer, Service, ServiceExt};
use tower_api_key::ApiKeyLayer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

/// `ready` then `call`, on a service kept across requests.
async fn ready_call<S>(service: &mut S, request: Request<Body>) -> Result<S::Response, S::Error>
where
    S: Service<Request<Body>>,
{
    service.ready().await?.call(request).await
}

fn layer(c: &mut Criterion) {
    let (store, kept) = filled_store(1_000, 1);
    let value = format!("Bearer {}", kept[0].expose_secret());
    let header = HeaderValue::from_str(&value).expect("header value");
    let bare = router();
    // One layer for both placements, as a service has: one authenticator, one log of
    // last uses (a second log over the same records would note through its map).
    let api_key_layer = ApiKeyLayer::new(store);
    let guarded = router().layer(api_key_layer.clone());
    // The same 1 000 keys' digests, for the hand-written layer.
    let hand = hand_layer(1_000, &kept[..1]);
    let hand_guarded = router().layer(hand.clone());
    // For reference: tower-http's bearer check against one static token (a plain `==`
    // on the header, no store, no principal, no challenge), on the same request.
    // (Deprecated upstream as "too basic for real applications", which is the point.)
    #[allow(deprecated)]
    let static_token = router().layer(ValidateRequestHeaderLayer::bearer(kept[0].expose_secret()));

    // Check once, outside the measurement, that each case answers as its name says.
    let status = |app: &Router, auth: Option<&HeaderValue>| {
        block_on(app.clone().oneshot(request(auth)))
            .expect("infallible")
            .status()
    };
    assert_eq!(status(&bare, Some(&header)), StatusCode::OK);
    assert_eq!(status(&guarded, Some(&header)), StatusCode::OK);
    assert_eq!(status(&guarded, None), StatusCode::UNAUTHORIZED);
    assert_eq!(status(&static_token, Some(&header)), StatusCode::OK);
    assert_eq!(status(&hand_guarded, Some(&header)), StatusCode::OK);
    assert_eq!(status(&hand_guarded, None), StatusCode::UNAUTHORIZED);

    let mut group = c.benchmark_group("layer");
    group.bench_function("bare_router", |b| {
        b.iter(|| block_on(bare.clone().oneshot(request(Some(black_box(&header))))))
    });
    group.bench_function("with_api_key_layer", |b| {
        b.iter(|| block_on(guarded.clone().oneshot(request(Some(black_box(&header))))))
    });
    group.bench_function("with_hand_layer", |b| {
        b.iter(|| {
            block_on(
                hand_guarded
                    .clone()
                    .oneshot(request(Some(black_box(&header)))),
            )
        })
    });
    group.bench_function("tower_http_static_bearer", |b| {
        b.iter(|| {
            block_on(
                static_token
                    .clone()
                    .oneshot(request(Some(black_box(&header)))),
            )
        })
    });
    group.bench_function("with_layer_rejected", |b| {
        b.iter(|| block_on(guarded.clone().oneshot(request(black_box(None)))))
    });

    // Pre-built services, driven with `ready` + `call`.
    let mut bare_service = router();
    let mut guarded_service = api_key_layer.layer(router());
    let mut hand_service = hand.layer(router());
    let response = block_on(ready_call(&mut hand_service, request(Some(&header))));
    assert_eq!(response.expect("infallible").status(), StatusCode::OK);
    let response = block_on(ready_call(&mut guarded_service, request(Some(&header))));
    assert_eq!(response.expect("infallible").status(), StatusCode::OK);
    group.bench_function("service_bare_ready_call", |b| {
        b.iter(|| {
            block_on(ready_call(
                &mut bare_service,
                request(Some(black_box(&header))),
            ))
        })
    });
    group.bench_function("service_with_layer_ready_call", |b| {
        b.iter(|| {
            block_on(ready_call(
                &mut guarded_service,
                request(Some(black_box(&header))),
            ))
        })
    });
    group.bench_function("service_with_hand_layer_ready_call", |b| {
        b.iter(|| {
            block_on(ready_call(
                &mut hand_service,
                request(Some(black_box(&header))),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
