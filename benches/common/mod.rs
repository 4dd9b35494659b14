//! Shared by the benches: a store full of real keys, and ways to drive a future that
//! never waits without a runtime.
#![allow(dead_code)]

pub mod reference;

use std::{
    future::Future,
    pin::pin,
    sync::{Once, OnceLock},
    task::{Context, Poll, Waker},
};

use axum::{body::Body, routing::get, Router};
use http::{header::AUTHORIZATION, HeaderValue, Request};
use tower_api_key::{
    key::{ApiKey, KeyMode},
    store::{InMemoryKeyStore, InsertRule, KeyRecord, KeyStore},
};

/// Runs a future that is expected to complete on its first poll (a synchronous handler
/// over the in-memory store never waits), so the figures are the code's own cost, not
/// a runtime's. Should one ever pend, it is finished on a current-thread tokio runtime
/// instead, with a warning, rather than spinning.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                eprintln!("warning: a benchmarked future pended; falling back to a tokio runtime")
            });
            static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
            RUNTIME
                .get_or_init(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime")
                })
                .block_on(future)
        }
    }
}

/// [`block_on`] for futures whose I/O belongs to `runtime` (a store's connections were
/// made on it): the first poll, with a no-op waker, costs exactly what it costs under
/// [`block_on`] — a cache hit never pends — and a future that does pend (a cache miss
/// once the TTL has passed, a last-use write) is finished on `runtime`, silently.
///
/// Call it with `runtime` entered (`let _guard = runtime.enter();`, once, around the
/// measurement): a first poll that goes to the store must be able to start its timers
/// and I/O.
pub fn block_on_or_in<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => runtime.block_on(future),
    }
}

/// A store of `n` freshly minted keys (scope `account:read`, two per account), and
/// `keep` of them spread evenly across the insertion order.
pub fn filled_store(n: usize, keep: usize) -> (InMemoryKeyStore, Vec<ApiKey>) {
    let store = InMemoryKeyStore::with_capacity(n);
    let step = (n / keep).max(1);
    let mut kept = Vec::with_capacity(keep);
    for i in 0..n {
        let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
        let record = KeyRecord::builder(&key, format!("acct_{}", i / 2))
            .scope("account:read")
            .build();
        block_on(store.insert(record, InsertRule::Unconditional)).expect("insert");
        if i % step == step / 2 && kept.len() < keep {
            kept.push(key);
        }
    }
    assert_eq!(store.len(), n);
    (store, kept)
}

/// The path every layer bench requests.
pub const PATH: &str = "/api/account";

/// The router the layer benches guard: one route at [`PATH`].
pub fn router() -> Router {
    Router::new().route(PATH, get(|| async { "acct_1" }))
}

/// A `GET` of [`PATH`], with `authorization` as its `Authorization` header if given.
pub fn request(authorization: Option<&HeaderValue>) -> Request<Body> {
    let mut builder = Request::get(PATH);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value.clone());
    }
    builder.body(Body::empty()).expect("request")
}
