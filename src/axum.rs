//! axum integration (feature `axum`): [`Principal`] and [`SessionUser`] are
//! extractors, and [`AuthError`] and [`ApiError`] implement `IntoResponse`.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_api_key::{ApiError, ErrorCode, InMemoryKeyStore, ApiKeyLayer, Principal};
//!
//! async fn lead(caller: Principal) -> Result<String, ApiError> {
//!     Err(ApiError::new(ErrorCode::NotFound, format!("No such lead for {}.", caller.owner())))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/api/leads/1", get(lead))
//!     .layer(ApiKeyLayer::new(InMemoryKeyStore::new()));
//! ```
//!
//! With `IntoResponse` in scope, `into_response()` is axum's, and the response can be
//! changed further like any other (the conversion to any `http::Response<B>`, with or
//! without axum, is [`ApiError::into_http_response`]):
//!
//! ```
//! use axum::response::IntoResponse;
//! use http::HeaderValue;
//! use tower_api_key::{error::AuthErrorKind, ApiError, AuthError};
//!
//! let mut response = ApiError::not_found("No such lead.").into_response();
//! response.headers_mut().insert("x-request-id", HeaderValue::from_static("42"));
//! assert_eq!(response.status(), 404);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//!
//! let mut response = AuthError::new(AuthErrorKind::MissingCredentials).into_response();
//! response.headers_mut().insert("x-request-id", HeaderValue::from_static("42"));
//! assert_eq!(response.status(), 401);
//! ```

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;

use crate::{
    error::{ApiError, AuthError, AuthErrorKind, ErrorCode},
    session::SessionUser,
    Principal,
};

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    /// 401 if no [`ApiKeyLayer`](crate::ApiKeyLayer) verified a key for this request.
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| AuthError::new(AuthErrorKind::MissingCredentials))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionUser {
    /// 401 if no [`SessionGuardLayer`](crate::session::SessionGuardLayer) admitted this
    /// request.
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionUser>()
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "This route needs a browser session.",
                )
            })
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.into_http_response()
    }
}

impl IntoResponse for crate::manage::ManageError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_http_response()
    }
}
