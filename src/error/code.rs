use std::fmt;

use http::StatusCode;

/// The machine-readable `code` of an error envelope.
///
/// Each code has a default HTTP status ([`ErrorCode::status`]). New codes may be added
/// in minor releases, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 401: missing, malformed, unknown, revoked or expired credentials.
    Unauthorized,
    /// 403: authenticated, but not allowed to do this.
    Forbidden,
    /// 404: no such resource (or not one the caller may know about).
    NotFound,
    /// 400: the request itself is malformed.
    InvalidRequest,
    /// 409: the request conflicts with the current state, e.g. a key is already active.
    Conflict,
    /// 422: well-formed, but the content fails validation (RFC 9110 "Unprocessable
    /// Content"); on the wire `unprocessable_content`.
    UnprocessableContent,
    /// 429: too many requests; add `Retry-After` with
    /// [`ApiError::with_retry_after`](crate::error::ApiError::with_retry_after).
    RateLimited,
    /// 500 (503 when a dependency such as the key store is down, with `Retry-After`).
    InternalError,
}

impl ErrorCode {
    /// The default HTTP status for this code.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::UnprocessableContent => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it appears on the wire, e.g. `"not_found"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Conflict => "conflict",
            ErrorCode::UnprocessableContent => "unprocessable_content",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::InvalidRequest,
            ErrorCode::Conflict,
            ErrorCode::UnprocessableContent,
            ErrorCode::RateLimited,
            ErrorCode::InternalError,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
        assert_eq!(ErrorCode::UnprocessableContent.status(), 422);
        assert_eq!(ErrorCode::RateLimited.status(), 429);
    }
}
