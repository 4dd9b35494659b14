//! The envelope on every answer of the management routes, the rejections axum
//! answers itself included.

use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

use crate::error::{ApiError, ErrorCode};

/// 413, for a body over `limit` bytes ([`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) on
/// every route but the leak reports').
pub(super) fn too_large_error(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "The request body is too large: at most {} KiB.",
            limit / 1024
        ),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Below the management paths, but no route of ours: the envelope, not the app's 404.
pub(super) async fn no_such_route() -> Response {
    ApiError::new(ErrorCode::NotFound, "No such route.").into_http_response()
}

/// Every error answer of these routes as the envelope with `no-store`: rejections
/// that axum answers itself (405, 413, 400 in plain text or empty) are rewritten,
/// keeping their status and headers such as `Allow`.
pub(super) async fn envelope_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        let mut response = response;
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        return response;
    }
    let (parts, _) = response.into_parts();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "No such route."),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::InvalidRequest,
            "This method is not allowed here; see the Allow header.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large_error(super::MAX_BODY_BYTES),
        status if status.is_server_error() => {
            ApiError::new(ErrorCode::InternalError, "Internal error.")
        }
        _ => ApiError::new(ErrorCode::InvalidRequest, "The request could not be read."),
    }
    .with_status(status);
    let mut envelope: Response = error.into_http_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            envelope
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    envelope
}
