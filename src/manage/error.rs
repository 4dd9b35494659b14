//! [`ManageError`]: why a management operation was refused, and its envelope.

use std::time::Duration;

use http::StatusCode;

use crate::{
    error::{ApiError, ErrorCode},
    key::MintError,
    store::StoreError,
};

/// Why a management operation was refused. Converts into the [`ApiError`] envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// No such key for this owner (another owner's key is "not found" too): 404.
    #[error("no such API key")]
    NotFound,
    /// The owner already has an active key (one-active policy): 409.
    #[error("an API key is already active")]
    ActiveKeyExists,
    /// The key is revoked, expired or already being replaced: 409.
    #[error("the API key is revoked, expired or already being replaced")]
    AlreadyRevoked,
    /// The key named is no longer the owner's active key (a rotation or another
    /// page got there first): 409.
    #[error("the API key is no longer the active key")]
    NotActiveKey,
    /// The owner holds as many keys as [`Keys::max_keys_per_owner`] allows: 409.
    ///
    /// [`Keys::max_keys_per_owner`]: super::Keys::max_keys_per_owner
    #[error("the owner holds the most API keys allowed ({max})")]
    TooManyKeys {
        /// The cap.
        max: usize,
    },
    /// A key managing keys ([`Caller::acting_key`](super::Caller::acting_key)) asked
    /// for more than it has (a scope, another mode, a later expiry, looser bounds), or
    /// cannot manage keys (rotated out, reported leaked): 403, with the reason.
    #[error("{0}")]
    BeyondCaller(&'static str),
    /// The request is well-formed but its content is not acceptable: 422.
    #[error("{0}")]
    Invalid(&'static str),
    /// The store failed: 503.
    #[error("the key store failed")]
    Store(#[source] StoreError),
    /// The OS random source failed: 500.
    #[error("minting failed")]
    Mint(#[source] MintError),
}

impl From<StoreError> for ManageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ActiveKeyExists => ManageError::ActiveKeyExists,
            StoreError::AlreadyRevoked => ManageError::AlreadyRevoked,
            StoreError::NotFound => ManageError::NotFound,
            other => ManageError::Store(other),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        match error {
            ManageError::NotFound => ApiError::new(ErrorCode::NotFound, "No such API key."),
            ManageError::ActiveKeyExists => ApiError::new(
                ErrorCode::Conflict,
                "An API key is already active. Revoke it first (or rotate it) to create a new one.",
            ),
            ManageError::AlreadyRevoked => ApiError::new(
                ErrorCode::Conflict,
                "This API key is revoked, expired or already being replaced.",
            ),
            ManageError::NotActiveKey => ApiError::new(
                ErrorCode::Conflict,
                "This API key is no longer the active key: reload to see the current one.",
            ),
            ManageError::TooManyKeys { max } => ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "You have the most API keys allowed ({max}). Revoke one to create another."
                ),
            ),
            ManageError::BeyondCaller(message) => ApiError::new(ErrorCode::Forbidden, message),
            ManageError::Invalid(message) => {
                ApiError::new(ErrorCode::UnprocessableContent, message)
            }
            ManageError::Store(_) => ApiError::new(
                ErrorCode::InternalError,
                "Key storage is temporarily unavailable. Please retry shortly.",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(Duration::from_secs(1)),
            ManageError::Mint(_) => ApiError::new(ErrorCode::InternalError, "Minting failed."),
        }
    }
}
