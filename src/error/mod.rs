//! The error envelope: one wire shape for every failure, from the layer or from your
//! own handlers.
//!
//! ```json
//! {"error":{"code":"unauthorized","message":"Missing or invalid authentication credentials."}}
//! ```
//!
//! Every envelope response has `content-type: application/json` and
//! `Cache-Control: no-store`. The layer answers with [`AuthError`]; application handlers
//! answer with [`ApiError`] (both implement axum's `IntoResponse` with the `axum`
//! feature), so clients parse one shape.
//!
//! | situation | status | `code` | extra headers |
//! | --- | --- | --- | --- |
//! | no credentials | 401 | `unauthorized` | `WWW-Authenticate: Bearer realm="api"` |
//! | malformed, unknown, wrong, revoked or expired key; a key of a mode not accepted | 401 | `unauthorized` | `WWW-Authenticate: Bearer realm="api", error="invalid_token"` |
//! | valid key without the required scope | 403 | `forbidden` | `WWW-Authenticate: Bearer realm="api", error="insufficient_scope", scope="…"` |
//! | valid key outside its restrictions (address, origin, route) | 403 | `forbidden` | `WWW-Authenticate: Bearer realm="api", error="insufficient_scope"` |
//! | over the key's rate, or a client over its failed-attempts budget | 429 | `rate_limited` | `Retry-After` |
//! | key store failing | 503 | `internal_error` | `Retry-After` |
//!
//! ```
//! use tower_api_key::error::{ApiError, ErrorCode};
//!
//! let err = ApiError::new(ErrorCode::Conflict, "Revoke the active key first.");
//! let response: http::Response<bytes::Bytes> = err.into_http_response();
//! assert_eq!(response.status(), 409);
//! assert_eq!(
//!     response.body(),
//!     r#"{"error":{"code":"conflict","message":"Revoke the active key first."}}"#
//! );
//! ```

mod api_error;
mod auth_error;
mod code;

pub use api_error::{ApiError, Envelope, ErrorBody};
pub(crate) use auth_error::{is_scope_token, Messages, SharedRejections};
pub use auth_error::{AuthError, AuthErrorKind};
pub use code::ErrorCode;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// Serialises an envelope. Serialising two strings cannot fail; the fallback keeps the
/// wire shape even so.
pub(crate) fn envelope_json(code: ErrorCode, message: &str) -> Bytes {
    let envelope = Envelope {
        error: ErrorBody {
            code,
            message: message.into(),
        },
    };
    serde_json::to_vec(&envelope)
        .map(Bytes::from)
        .unwrap_or_else(|_| {
            Bytes::from_static(
                br#"{"error":{"code":"internal_error","message":"Internal error."}}"#,
            )
        })
}

/// A JSON response that is never cached: status, body, `content-type:
/// application/json`, `Cache-Control: no-store`, plus `extra` headers. Every envelope
/// and every management answer goes out this way.
pub(crate) fn json_response<B: From<Bytes>>(
    status: StatusCode,
    body: Bytes,
    extra: HeaderMap,
) -> Response<B> {
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    *headers = extra;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Retry-After` in whole seconds, at least 1.
pub(crate) fn retry_after_value(after: std::time::Duration) -> HeaderValue {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}
