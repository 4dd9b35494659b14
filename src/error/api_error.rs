use std::{borrow::Cow, fmt, time::Duration};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use super::{envelope_json, json_response, retry_after_value, ErrorCode};

/// The JSON envelope: `{"error":{"code":"…","message":"…"}}`.
///
/// Public so clients and tests can deserialise what the server sends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// The error.
    pub error: ErrorBody,
}

/// The inside of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message; never contains a key or part of one.
    pub message: String,
}

/// An error your own handlers return, in the same envelope the layer uses.
///
/// With the `axum` feature it implements `IntoResponse`; without it, turn it into an
/// `http::Response` with [`ApiError::into_http_response`].
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::error::{ApiError, ErrorCode};
///
/// let err = ApiError::new(ErrorCode::RateLimited, "Slow down.")
///     .with_retry_after(Duration::from_millis(1500));
/// let response: http::Response<bytes::Bytes> = err.into_http_response();
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers()["retry-after"], "2");
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// ```
#[derive(Clone)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    /// Extra headers; a `Vec` keeps the error small (most have none).
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with the code's default status.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 401 `unauthorized`: no credentials, or credentials that prove nothing. Add a
    /// `WWW-Authenticate` challenge with [`with_header`](Self::with_header) where your
    /// scheme has one.
    ///
    /// Each code has such a shortcut for [`ApiError::new`]:
    ///
    /// ```
    /// use tower_api_key::{ApiError, ErrorCode};
    ///
    /// let err = ApiError::not_found("No such lead.");
    /// assert_eq!((err.status().as_u16(), err.code()), (404, ErrorCode::NotFound));
    /// assert_eq!(err.message(), "No such lead.");
    ///
    /// for (err, status) in [
    ///     (ApiError::unauthorized("Log in first."), 401),
    ///     (ApiError::forbidden("Not your account."), 403),
    ///     (ApiError::invalid_request("`limit` must be a number."), 400),
    ///     (ApiError::conflict("Revoke the active key first."), 409),
    ///     (ApiError::unprocessable("`url` must be https."), 422),
    ///     (ApiError::rate_limited("Slow down."), 429),
    ///     (ApiError::internal("Something went wrong."), 500),
    /// ] {
    ///     assert_eq!(err.status(), status);
    /// }
    /// ```
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// 403 `forbidden`: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 400 `invalid_request`: a body, query or header the route cannot read.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 409 `conflict`: the request contradicts the current state.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 422 `unprocessable_content`: well-formed, but its values are refused.
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnprocessableContent, message)
    }

    /// 429 `rate_limited`; add [`with_retry_after`](Self::with_retry_after).
    pub fn rate_limited(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::RateLimited, message)
    }

    /// 500 `internal_error`; for a failure a retry may fix, add
    /// `.with_status(StatusCode::SERVICE_UNAVAILABLE)` and a `Retry-After`. The message
    /// is sent to the client: log the cause, do not put it here.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// Overrides the status, e.g. 503 for an `internal_error` that a retry may fix.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds `Retry-After` in whole seconds (rounded up, at least 1).
    pub fn with_retry_after(self, after: Duration) -> Self {
        self.with_header(header::RETRY_AFTER, retry_after_value(after))
    }

    /// Adds a response header. `content-type` and `cache-control` are always the
    /// envelope's own and cannot be changed.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name, value));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The envelope code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The envelope message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The envelope as an HTTP response, with any body type that can be made from
    /// `Bytes` (`axum::body::Body`, `http_body_util::Full<Bytes>`, `Bytes` itself…).
    ///
    /// Named apart from axum's `IntoResponse::into_response` (which calls it), so
    /// that with the trait in scope `into_response()` is the trait's.
    pub fn into_http_response<B: From<Bytes>>(self) -> Response<B> {
        let headers: HeaderMap = self.headers.into_iter().collect();
        json_response(
            self.status,
            envelope_json(self.code, &self.message),
            headers,
        )
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_escapes_and_parses_back() {
        let r: Response<Bytes> =
            ApiError::new(ErrorCode::NotFound, "no \"key\" here\n").into_http_response();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "application/json");
        let env: Envelope = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(env.error.code, ErrorCode::NotFound);
        assert_eq!(env.error.message, "no \"key\" here\n");
    }

    #[test]
    fn status_override_and_headers() {
        let r: Response<Bytes> = ApiError::new(ErrorCode::InternalError, "down")
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(Duration::from_secs(0))
            .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))
            .into_http_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}
