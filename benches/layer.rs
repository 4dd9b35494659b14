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

use std::{
    collections::HashMap,
    future::Future,
    hint::black_box,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use common::{block_on, filled_store};

use axum::{body::Body, routing::get, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{header::AUTHORIZATION, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service, ServiceExt};
use tower_api_key::ApiKeyLayer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

const PATH: &str = "/api/account";

fn router() -> Router {
    Router::new().route(PATH, get(|| async { "acct_1" }))
}

/// The request every case sends; `authorization` is `None` for the rejected case.
fn request(authorization: Option<&HeaderValue>) -> Request<Body> {
    let mut builder = Request::get(PATH);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value.clone());
    }
    builder.body(Body::empty()).expect("request")
}

/// The hand-written reference layer: digests by the 24-byte prefix of a `pk_live_` key.
#[derive(Clone)]
struct HandLayer {
    keys: Arc<HashMap<[u8; 24], [u8; 32]>>,
}

#[derive(Clone)]
struct HandService<S> {
    inner: S,
    keys: Arc<HashMap<[u8; 24], [u8; 32]>>,
}

/// What the hand layer puts into the request's extensions: the verified prefix.
#[derive(Clone)]
struct HandPrincipal(#[allow(dead_code)] [u8; 24]);

impl<S> Layer<S> for HandLayer {
    type Service = HandService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HandService {
            inner,
            keys: self.keys.clone(),
        }
    }
}

impl<S> HandService<S> {
    fn check(&self, request: &Request<Body>) -> Option<[u8; 24]> {
        let token = request
            .headers()
            .get(AUTHORIZATION)?
            .as_bytes()
            .strip_prefix(b"Bearer ")?;
        if token.len() != 72
            || !token.starts_with(b"pk_live_")
            || !token[8..]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return None;
        }
        let prefix: [u8; 24] = token[..24].try_into().ok()?;
        let expected = self.keys.get(&prefix).unwrap_or(&[0x5a; 32]);
        let digest = Sha256::digest(token);
        bool::from(digest.as_slice().ct_eq(expected)).then_some(prefix)
    }
}

impl<S> Service<Request<Body>> for HandService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = HandFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.check(&request) {
            Some(prefix) => {
                request.extensions_mut().insert(HandPrincipal(prefix));
                HandFuture::Inner {
                    future: self.inner.call(request),
                }
            }
            None => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                HandFuture::Refused {
                    response: Some(response),
                }
            }
        }
    }
}

pin_project! {
    #[project = HandFutureProj]
    enum HandFuture<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Body>> },
    }
}

impl<F, E> Future for HandFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            HandFutureProj::Inner { future } => future.poll(cx),
            HandFutureProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}

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
    let guarded = router().layer(ApiKeyLayer::new(store.clone()));
    // The same 1 000 keys' digests, for the hand-written layer.
    let hand_keys: HashMap<[u8; 24], [u8; 32]> = std::iter::once(&kept[0])
        .map(|k| k.expose_secret().to_owned())
        .chain((1..1_000).map(|_| {
            tower_api_key::key::ApiKey::generate(tower_api_key::key::KeyMode::Live)
                .expect("mint")
                .expose_secret()
                .to_owned()
        }))
        .map(|text| {
            let prefix = text.as_bytes()[..24].try_into().expect("24 bytes");
            (prefix, Sha256::digest(text.as_bytes()).into())
        })
        .collect();
    let hand = HandLayer {
        keys: Arc::new(hand_keys),
    };
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
    let mut guarded_service = ApiKeyLayer::new(store).layer(router());
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
