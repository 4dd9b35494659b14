//! What a management request carries: its body (a bounded JSON object) and the key
//! it names.

use std::time::Duration;

use axum::{
    body::Body,
    extract::{rejection::PathRejection, Path},
};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize};

use super::{envelope::too_large_error, MAX_BODY_BYTES};
use crate::{
    error::{ApiError, ErrorCode},
    key::KeyPrefix,
    manage::{KeyRef, ManageError},
    store::KeyId,
};

/// Reads a request body of at most `limit` bytes; 413 over it.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            too_large_error(limit)
        } else {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "The request body could not be read.",
            )
        }
    })
}

/// Parses an optional JSON object body; an empty body is the default value. Arrays,
/// scalars and `null` are refused: serde would read an array by position.
pub(super) async fn body<T: DeserializeOwned + Default>(body: Body) -> Result<T, ApiError> {
    let bytes = read_body(body, MAX_BODY_BYTES).await?;
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Ok(T::default());
    }
    if text.first() != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "The request body must be a JSON object ({…}), or empty.",
        ));
    }
    serde_json::from_slice(text).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "The request body is not the JSON object this endpoint expects.",
        )
    })
}

/// A key named in a body, by `id` or `prefix` (not both).
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Named {
    pub(super) id: Option<String>,
    pub(super) prefix: Option<String>,
}

impl Named {
    pub(super) fn key(self) -> Result<Option<KeyRef>, ApiError> {
        match (self.id, self.prefix) {
            (None, None) => Ok(None),
            (Some(id), None) => Ok(Some(KeyRef::Id(KeyId::new(id)))),
            (None, Some(prefix)) => match prefix.parse::<KeyPrefix>() {
                Ok(prefix) => Ok(Some(KeyRef::Prefix(prefix))),
                Err(_) => Err(ManageError::NotFound.into()),
            },
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorCode::UnprocessableContent,
                "Name the key by id or by prefix, not both.",
            )),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Rotation {
    /// How long the old key keeps working (at most 30 days; checked by `Keys`).
    grace_seconds: u64,
    /// The key the owner saw (one-active shape): rotate only if it is still active.
    pub(super) id: Option<String>,
    pub(super) prefix: Option<String>,
}

impl Rotation {
    pub(super) fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_seconds)
    }

    pub(super) fn key(&self) -> Result<Option<KeyRef>, ApiError> {
        Named {
            id: self.id.clone(),
            prefix: self.prefix.clone(),
        }
        .key()
    }
}

/// An id from the path; one that does not decode (`%FF`) is a malformed request.
pub(super) fn path_id(id: Result<Path<String>, PathRejection>) -> Result<KeyId, ApiError> {
    match id {
        Ok(Path(id)) => Ok(KeyId::new(id)),
        Err(_) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "The key id in the path is not valid: it must be UTF-8 text.",
        )),
    }
}
