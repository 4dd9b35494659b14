//! Leak reports from secret scanners (feature `secret-scanning`): [`SecretScanning`],
//! a route of the management router that speaks GitHub's secret scanning partner
//! format, and [`ScannerKeys`], the public keys its reports are signed with.

use std::{fmt, sync::Arc};

use base64ct::{Base64, Encoding};
use p256::{
    ecdsa::{signature::Verifier, Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
};
use serde::Deserialize;

use super::LeakAction;

/// The largest report body the route reads: 256 KiB.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;
/// The most tokens one report may carry.
pub const MAX_REPORTED_TOKENS: usize = 1000;

/// Receives leaked-key reports in GitHub's [secret scanning partner
/// program](https://docs.github.com/en/code-security/secret-scanning/secret-scanning-partnership-program)
/// format, as a route of [`ManagementRoutes`](super::ManagementRoutes)
/// ([`secret_scanning`](super::ManagementRoutes::secret_scanning)).
///
/// The scanner `POST`s a JSON array of `{"token","type","url","source"}`, signed with
/// ECDSA P-256 over SHA-256 of the raw body: the base64 DER signature in
/// `Github-Public-Key-Signature`, the signing key's id in
/// `Github-Public-Key-Identifier`. The route:
///
/// 1. verifies the signature against the [`ScannerKeys`] you configured (nothing is
///    fetched); a missing, unknown or forged signature gets 401 and changes nothing;
/// 2. reads at most [`MAX_REPORT_BYTES`] (413 over it) and [`MAX_REPORTED_TOKENS`]
///    tokens (413 over it); anything but that array is 400;
/// 3. looks each token up ([`Keys::report_leak`](super::Keys::report_leak)): for one of
///    your keys it does what [`on_true_positive`](Self::on_true_positive) says (revoke,
///    by default, or flag), notes the report in the key's metadata, runs the hooks
///    ([`KeyHooks::after_leak`](super::KeyHooks::after_leak)) and the audit trail;
/// 4. answers 200 with `[{"token_hash":"<SHA-256 of the token, hex>","token_type":"…",
///    "label":"true_positive"|"false_positive"}]`, one entry per token, in order.
///
/// A failing store answers 503 (the scanner retries). The route needs no session and
/// no key: the signature is its authentication.
///
/// ```
/// use tower_api_key::manage::{LeakAction, ScannerKeys, SecretScanning};
///
/// // GitHub's document, from `GET https://api.github.com/meta/public_keys/secret_scanning`,
/// // saved with your deployment (here, a key of the tests).
/// let document = r#"{"public_keys":[{"key_identifier":"test-key-1","key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhQhK+YVWyZJc300s/pDjsOdGccgV\nfYBzBq/TGZIQtRlAQGJ7/xDczCj5U9/yH8FkBmrewH6WQaXwkkNyB7/fVg==\n-----END PUBLIC KEY-----\n","is_current":true}]}"#;
/// let scanning = SecretScanning::github(ScannerKeys::from_github_document(document)?)
///     .path("/api/secret-scanning")
///     .on_true_positive(LeakAction::Revoke);
/// # Ok::<_, tower_api_key::manage::InvalidScannerKeys>(())
/// ```
#[derive(Clone, Debug)]
pub struct SecretScanning {
    pub(crate) path: String,
    pub(crate) keys: Arc<ScannerKeys>,
    pub(crate) action: LeakAction,
    pub(crate) reporter: String,
}

impl SecretScanning {
    /// GitHub's format, verified with `keys`, at `/api/secret-scanning`, revoking
    /// true positives.
    pub fn github(keys: ScannerKeys) -> Self {
        SecretScanning {
            path: "/api/secret-scanning".into(),
            keys: Arc::new(keys),
            action: LeakAction::Revoke,
            reporter: "github".into(),
        }
    }

    /// Where the route is mounted.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// What to do with a reported token that is one of your keys.
    pub fn on_true_positive(mut self, action: LeakAction) -> Self {
        self.action = action;
        self
    }
}

/// The public keys a secret scanner signs its reports with, by identifier.
///
/// Read them from a document shaped like GitHub's
/// (`{"public_keys":[{"key_identifier":"…","key":"-----BEGIN PUBLIC KEY-----…","is_current":true}]}`):
/// every listed key is accepted, current or not, since a report names the key it was
/// signed with. Keep the document with your deployment and refresh it when the
/// scanner rotates its keys.
#[derive(Clone)]
pub struct ScannerKeys {
    keys: Vec<(String, VerifyingKey)>,
}

/// The public-keys document could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidScannerKeys {
    /// Not JSON of the expected shape.
    #[error("not a public-keys document: {0}")]
    Document(#[source] serde_json::Error),
    /// A key that is not a P-256 public key in PEM (SubjectPublicKeyInfo).
    #[error("public key {0:?} is not a P-256 public key in PEM")]
    Key(String),
    /// The document lists no key.
    #[error("the document lists no public key")]
    Empty,
}

#[derive(Deserialize)]
struct Document {
    public_keys: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    key_identifier: String,
    key: String,
}

impl ScannerKeys {
    /// The keys of a document shaped like GitHub's public-keys document.
    pub fn from_github_document(json: &str) -> Result<Self, InvalidScannerKeys> {
        let document: Document =
            serde_json::from_str(json).map_err(InvalidScannerKeys::Document)?;
        let keys = document
            .public_keys
            .into_iter()
            .map(
                |listed| match VerifyingKey::from_public_key_pem(listed.key.trim()) {
                    Ok(key) => Ok((listed.key_identifier, key)),
                    Err(_) => Err(InvalidScannerKeys::Key(listed.key_identifier)),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(InvalidScannerKeys::Empty);
        }
        Ok(ScannerKeys { keys })
    }

    /// Whether `signature` (base64 of a DER ECDSA signature) is a signature of `body`
    /// by the key named `identifier`.
    pub(crate) fn verify(&self, identifier: &str, signature: &str, body: &[u8]) -> bool {
        let Some((_, key)) = self.keys.iter().find(|(id, _)| id == identifier) else {
            return false;
        };
        let Ok(der) = Base64::decode_vec(signature.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        key.verify(body, &signature).is_ok()
    }
}

impl fmt::Debug for ScannerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScannerKeys")
            .field(
                "identifiers",
                &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}
