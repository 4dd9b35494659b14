//! The references our code is measured against: the floor of a verification and a
//! minimal hand-written layer doing the same check, written as plainly as possible.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::body::Body;
use http::{header::AUTHORIZATION, request::Parts, HeaderMap, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use rand::{rngs::SysRng, TryRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};
use tower_api_key::key::{ApiKey, KeyMode};

/// The floor's table: digests by the 24-byte prefix of a `pk_live_` key.
pub type FloorTable = HashMap<[u8; 24], [u8; 32]>;

/// A floor table of `n` digests: `kept`'s and random others.
pub fn floor_table(n: usize, kept: &[ApiKey]) -> FloorTable {
    let mut table = HashMap::with_capacity(n);
    let minted = std::iter::repeat_with(|| ApiKey::generate(KeyMode::Live).expect("mint"));
    for key in kept.iter().cloned().chain(minted) {
        if table.len() == n.max(kept.len()) {
            break;
        }
        let text = key.expose_secret().as_bytes();
        let prefix: [u8; 24] = text[..24].try_into().expect("24 bytes");
        table.insert(prefix, Sha256::digest(text).into());
    }
    table
}

/// The floor of a verification, hand-written: parse `Bearer pk_live_<64 hex>`, look
/// the prefix up, hash the key, compare the digests in constant time.
pub fn floor_verify(table: &FloorTable, parts: &Parts) -> bool {
    floor_check(table, &parts.headers).is_some()
}

/// [`floor_verify`]'s check, with the verified prefix: what the hand layer runs.
fn floor_check(table: &FloorTable, headers: &HeaderMap) -> Option<[u8; 24]> {
    let token = headers
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
    let expected = table.get(&prefix).unwrap_or(&[0x5a; 32]);
    let digest = Sha256::digest(token);
    bool::from(digest.as_slice().ct_eq(expected)).then_some(prefix)
}

/// The floor of minting: 32 bytes from the OS random source, their lowercase hex in
/// one `String` after the `pk_live_` header.
pub fn mint_floor() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 32];
    SysRng.try_fill_bytes(&mut bytes).expect("OS random source");
    let mut text = String::with_capacity(72);
    text.push_str("pk_live_");
    for byte in bytes {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

/// The hand layer over `n` keys' digests: `kept`'s and random others.
pub fn hand_layer(n: usize, kept: &[ApiKey]) -> HandLayer {
    HandLayer {
        keys: Arc::new(floor_table(n, kept)),
    }
}

/// The hand-written reference layer: digests by the 24-byte prefix of a `pk_live_` key.
#[derive(Clone)]
pub struct HandLayer {
    keys: Arc<FloorTable>,
}

#[derive(Clone)]
pub struct HandService<S> {
    inner: S,
    keys: Arc<FloorTable>,
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
        match floor_check(&self.keys, request.headers()) {
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
    pub enum HandFuture<F> {
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
