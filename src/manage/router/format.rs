//! [`NamedKeysApi`]: the wire format the named-keys routes speak.

use std::time::SystemTime;

use http::{header::ACCEPT, HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::{answer, answer_in_order, to_json, Answer, SHOWN_ONCE};
use crate::{
    key::KeyPrefix,
    manage::{KeyStatus, KeyView, ManageError, MintedKey},
    store::KeyId,
};

/// The wire format of the named-keys routes of
/// [`ManagementRoutes`](super::ManagementRoutes), set with
/// [`named_api`](super::ManagementRoutes::named_api).
///
/// Both formats take the same requests (a create body may spell its expiry
/// `expires_at` or `expiresAt`), answer errors with the crate's envelope, and mount the
/// same routes: `GET`/`POST`/`DELETE {path}`, `DELETE {path}/{id}`,
/// `POST {path}/{id}/rotate` and `GET {path}/{id}/usage` (whose answer is
/// [`KeyUsage`](crate::manage::KeyUsage) in both). They differ in what the answers
/// carry:
///
/// | request | [`Detailed`](Self::Detailed) (default) | [`Compact`](Self::Compact) |
/// | --- | --- | --- |
/// | `POST {path}` `{"name":"New API Key"}` | 201, the [`KeyView`] with `api_key` and `message` beside it | 201 `{"key":{"id":"…","name":"New API Key","key":"pk_…","createdAt":"2024-01-15T12:00:00Z"}}` |
/// | `GET {path}` | 200 `{"keys":[KeyView…]}`: working and expired keys, and keys revoked in the last 7 days, marked so, with usage totals | 200 `{"keys":[{"id":"…","name":"Production Server","prefix":"pk_…","createdAt":"…","lastUsed":"…" or null}]}`: the keys that work |
/// | `DELETE {path}` `{"id":"…"}`, or `DELETE {path}/{id}` | 200, the revoked key's view | 200 `{"success":true}` |
/// | `POST {path}/{id}/rotate` | 201, as a create | 201, as a create |
///
/// `Compact` is the widely copied "many named keys per user" contract, field for
/// field, so a service that already publishes it can move onto the crate without its
/// clients noticing. In both, the raw key appears only in the create and rotate
/// answers, only once.
///
/// A request whose `Accept` names [`DETAILED_MEDIA_TYPE`](Self::DETAILED_MEDIA_TYPE)
/// gets the detailed answers whatever the routes speak. The key dashboard asks so,
/// which is how it works over either format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamedKeysApi {
    /// The crate's own format: snake_case [`KeyView`]s with every field, flat objects.
    #[default]
    Detailed,
    /// The compact contract: camelCase, the key wrapped as `{"key":{…}}`, five fields
    /// per listed key, `{"success":true}` for a revocation.
    Compact,
}

/// A listed key, as [`NamedKeysApi::Compact`] shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompactKey<'a> {
    id: &'a KeyId,
    name: &'a str,
    prefix: KeyPrefix,
    #[serde(serialize_with = "crate::manage::time::rfc3339")]
    created_at: SystemTime,
    #[serde(serialize_with = "crate::manage::time::rfc3339_opt::serialize")]
    last_used: Option<SystemTime>,
}

/// The compact answers' wrappers, serialised in the contract's field order.
#[derive(Serialize)]
struct KeyWrapped<T> {
    key: T,
}

#[derive(Serialize)]
struct KeysWrapped<T> {
    keys: Vec<T>,
}

#[derive(Serialize)]
struct Success {
    success: bool,
}

/// A minted key, as [`NamedKeysApi::Compact`] shows it: the raw key, this once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompactMinted<'a> {
    id: &'a KeyId,
    name: &'a str,
    key: &'a str,
    #[serde(serialize_with = "crate::manage::time::rfc3339")]
    created_at: SystemTime,
}

impl NamedKeysApi {
    /// The media type that asks a named-keys route for the detailed answers, whatever
    /// format the routes speak: `Accept: application/vnd.tower-api-key.detailed+json`.
    ///
    /// ```
    /// use tower_api_key::manage::NamedKeysApi;
    ///
    /// assert_eq!(
    ///     NamedKeysApi::DETAILED_MEDIA_TYPE,
    ///     "application/vnd.tower-api-key.detailed+json"
    /// );
    /// ```
    pub const DETAILED_MEDIA_TYPE: &'static str = "application/vnd.tower-api-key.detailed+json";

    /// The format a request gets: the detailed one when its `Accept` names
    /// [`DETAILED_MEDIA_TYPE`](Self::DETAILED_MEDIA_TYPE) (parameters and case aside),
    /// else this one.
    pub(super) fn for_request(self, headers: &HeaderMap) -> Self {
        let asks_detailed = headers.get_all(ACCEPT).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value.split(',').any(|range| {
                    let media = range.split(';').next().unwrap_or_default().trim();
                    media.eq_ignore_ascii_case(Self::DETAILED_MEDIA_TYPE)
                })
            })
        });
        if asks_detailed {
            NamedKeysApi::Detailed
        } else {
            self
        }
    }

    /// 201 with a key just minted (created or rotated).
    pub(super) fn minted(self, minted: Result<MintedKey, ManageError>) -> Answer {
        let minted = minted?;
        match self {
            NamedKeysApi::Detailed => Ok(answer(StatusCode::CREATED, detailed_minted(&minted)?)),
            NamedKeysApi::Compact => {
                let view = minted.view();
                let key = CompactMinted {
                    id: &view.id,
                    name: &view.name,
                    key: minted.api_key().expose_secret(),
                    created_at: view.created_at,
                };
                answer_in_order(StatusCode::CREATED, &KeyWrapped { key })
            }
        }
    }

    /// 200 with the owner's keys.
    pub(super) fn listed(self, views: &[KeyView]) -> Answer {
        match self {
            NamedKeysApi::Detailed => {
                Ok(answer(StatusCode::OK, json!({ "keys": to_json(&views)? })))
            }
            NamedKeysApi::Compact => {
                let keys = views
                    .iter()
                    .filter(|view| matches!(view.status, KeyStatus::Active | KeyStatus::Retiring))
                    .map(|view| CompactKey {
                        id: &view.id,
                        name: &view.name,
                        prefix: view.prefix,
                        created_at: view.created_at,
                        last_used: view.last_used_at,
                    })
                    .collect();
                answer_in_order(StatusCode::OK, &KeysWrapped { keys })
            }
        }
    }

    /// 200 for a key just revoked.
    pub(super) fn revoked(self, view: &KeyView) -> Answer {
        match self {
            NamedKeysApi::Detailed => Ok(answer(StatusCode::OK, to_json(view)?)),
            NamedKeysApi::Compact => answer_in_order(StatusCode::OK, &Success { success: true }),
        }
    }
}

/// The view, with the raw key (this once), the save-it-now message and any hook
/// failures beside it.
fn detailed_minted(minted: &MintedKey) -> Result<Value, crate::error::ApiError> {
    let mut body = to_json(minted.view())?;
    let failures = minted.hook_failures();
    let failures = (!failures.is_empty())
        .then(|| to_json(&failures))
        .transpose()?;
    if let Value::Object(fields) = &mut body {
        fields.insert("api_key".into(), minted.api_key().expose_secret().into());
        fields.insert("message".into(), SHOWN_ONCE.into());
        if let Some(failures) = failures {
            fields.insert("hook_errors".into(), failures);
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::test_headers;

    #[test]
    fn the_detailed_media_type_asks_for_the_detailed_format() {
        let compact = NamedKeysApi::Compact;
        for accept in [
            "application/vnd.tower-api-key.detailed+json",
            "application/vnd.tower-api-key.detailed+json, application/json",
            "application/json;q=0.9, Application/VND.tower-api-key.detailed+JSON;q=1",
        ] {
            let headers = test_headers(&[("accept", accept)]);
            assert_eq!(
                compact.for_request(&headers),
                NamedKeysApi::Detailed,
                "{accept}"
            );
        }
        for accept in [
            "application/json",
            "*/*",
            "application/vnd.tower-api-key+json",
        ] {
            let headers = test_headers(&[("accept", accept)]);
            assert_eq!(compact.for_request(&headers), compact, "{accept}");
        }
        assert_eq!(compact.for_request(&HeaderMap::new()), compact);
        let headers = test_headers(&[("accept", "application/json")]);
        assert_eq!(
            NamedKeysApi::Detailed.for_request(&headers),
            NamedKeysApi::Detailed
        );
    }
}
