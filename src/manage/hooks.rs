use std::{
    borrow::Cow,
    fmt,
    future::Future,
    net::IpAddr,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use pin_project_lite::pin_project;
use serde::Serialize;

use super::LeakReport;

use super::{Actor, KeyView};
use crate::store::BoxError;

/// Code run after a key is created, rotated or revoked: create a webhook app, send an
/// e-mail, write an audit entry ([`AuditTrail`](super::AuditTrail)).
///
/// Register hooks with [`Keys::hook`](super::Keys::hook); they run one after the other,
/// in registration order, after the store has taken the change:
///
/// - after a create or a rotation, best effort: an error (or a panic) is logged with
///   the key's prefix, reported in the answer
///   ([`MintedKey::hook_failures`](super::MintedKey::hook_failures), `hook_errors` in
///   the JSON) and kept in the new key's
///   [metadata](crate::store::KeyRecord::metadata) as `hook.<name>.error`, so that its
///   owner (the dashboard shows it) and your code (a job that retries the work, then
///   removes the entry) still see it later; the key is minted all the same;
/// - after a revocation, once the store's `revoke` has returned (for a
///   [`CachedKeyStore`](crate::store) that is when every instance refuses the key): an
///   error is logged, the revocation stands.
///
/// A hook sees the key's public view ([`KeyEvent`]), never the raw key or its hash.
/// Hooks run inside the request: keep them quick, or hand slow work to a queue.
///
/// ```
/// use tower_api_key::manage::{Caller, HookError, KeyEvent, KeyHooks, Keys, NewKey};
/// use tower_api_key::store::InMemoryKeyStore;
///
/// /// Creates the owner's webhook app next to each new key.
/// struct WebhookApp;
///
/// #[tower_api_key::async_trait]
/// impl KeyHooks for WebhookApp {
///     fn name(&self) -> &str {
///         "webhook"
///     }
///
///     async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
///         // e.g. POST to the webhook service for `event.owner`; here it is down:
///         Err(HookError::new("The webhook app could not be created; it will be retried."))
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let keys = Keys::new(InMemoryKeyStore::new()).hook(WebhookApp);
/// let minted = keys.named().create(&Caller::system(), "acct_42", NewKey::named("ci")).await?; // still minted
/// assert_eq!(minted.hook_failures()[0].hook(), "webhook");
///
/// // Kept with the key, for its owner and for a job that retries:
/// let stored = &keys.named().list("acct_42").await?[0];
/// assert_eq!(
///     stored.metadata["hook.webhook.error"],
///     "The webhook app could not be created; it will be retried."
/// );
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait KeyHooks: Send + Sync + 'static {
    /// The hook's name in logs and in the answer's `hook_errors` (default: the type's
    /// name).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// After a key was minted (`event.action` is [`KeyAction::Created`]).
    async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }

    /// After a key was rotated: `event.key` is the successor, `event.replaced` the old
    /// key, which keeps working until its `revoked_at`.
    async fn after_rotate(&self, event: &KeyEvent) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }

    /// After a key was revoked, once the store's revocation returned.
    async fn after_revoke(&self, event: &KeyEvent) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }

    /// After a secret scanner reported the key leaked ([`KeyEvent::leak`]), once what
    /// the deployment does about it is done: revoked (then `after_revoke` ran first)
    /// or flagged in its metadata. Notify the owner here.
    async fn after_leak(&self, event: &KeyEvent) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: KeyHooks + ?Sized> KeyHooks for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
        (**self).after_create(event).await
    }

    async fn after_rotate(&self, event: &KeyEvent) -> Result<(), HookError> {
        (**self).after_rotate(event).await
    }

    async fn after_revoke(&self, event: &KeyEvent) -> Result<(), HookError> {
        (**self).after_revoke(event).await
    }

    async fn after_leak(&self, event: &KeyEvent) -> Result<(), HookError> {
        (**self).after_leak(event).await
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyAction {
    /// A key was minted.
    Created,
    /// A successor was minted; the old key retires after its grace period.
    Rotated,
    /// A key was revoked.
    Revoked,
    /// A secret scanner reported the key found where it should not be (public code);
    /// [`KeyEvent::leak`] says who and where.
    Leaked,
}

impl KeyAction {
    /// `created`, `rotated`, `revoked` or `leaked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyAction::Created => "created",
            KeyAction::Rotated => "rotated",
            KeyAction::Revoked => "revoked",
            KeyAction::Leaked => "leaked",
        }
    }
}

impl fmt::Display for KeyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a hook learns about a key operation: the key's public view, never the raw key
/// or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyEvent {
    /// What happened.
    pub action: KeyAction,
    /// The account the key acts for.
    pub owner: String,
    /// The key as it is now (for a rotation: the successor).
    pub key: KeyView,
    /// For a rotation: the old key, working until its `revoked_at`.
    pub replaced: Option<KeyView>,
    /// Who did it.
    pub actor: Actor,
    /// The client's address, when known: through the management router, the one the
    /// authenticator names (the connection's peer, or behind trusted proxies the
    /// rightmost untrusted forwarded hop).
    pub client_addr: Option<IpAddr>,
    /// When it happened.
    #[serde(serialize_with = "super::time::rfc3339")]
    pub at: SystemTime,
    /// For a [`KeyAction::Leaked`] event: the scanner's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak: Option<LeakReport>,
}

/// Why a hook failed. Its message is shown to the key's owner (in the create or rotate
/// answer) and logged; keep internals in the [`source`](HookError::with_source), which
/// is only logged.
///
/// ```
/// use tower_api_key::manage::HookError;
///
/// let io = std::io::Error::other("connection refused by 10.0.0.7:8080");
/// let error = HookError::new("The webhook app could not be created.").with_source(io);
/// assert_eq!(error.to_string(), "The webhook app could not be created.");
/// ```
#[derive(Debug)]
pub struct HookError {
    message: Cow<'static, str>,
    source: Option<BoxError>,
}

impl HookError {
    /// A failure with a message fit for the key's owner.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        HookError {
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error, which is logged but never shown to the owner.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The message shown to the owner.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A hook that failed after a create or rotate; the key was minted all the same.
/// Serialises as `{"hook":"webhook","error":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookFailure {
    hook: String,
    error: String,
}

impl HookFailure {
    /// The hook's [`name`](KeyHooks::name).
    pub fn hook(&self) -> &str {
        &self.hook
    }

    /// Its [`HookError`] message.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The key's [metadata](crate::store::KeyRecord::metadata) entry that keeps this
    /// failure: `hook.<name>.error`. Whoever resolves the failure (a job retrying the
    /// hook's work) removes it with
    /// [`KeyStore::set_metadata(id, name, None)`](crate::store::KeyStore::set_metadata).
    pub fn metadata_name(&self) -> String {
        format!("hook.{}.error", self.hook)
    }
}

/// The hooks registered on a [`Keys`](super::Keys).
#[derive(Clone, Default)]
pub(crate) struct Hooks(Vec<Arc<dyn KeyHooks>>);

impl Hooks {
    pub(crate) fn push(&mut self, hook: Arc<dyn KeyHooks>) {
        self.0.push(hook);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn names(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.name()).collect()
    }

    /// Runs every hook for `event`, in order; failures (errors and panics) are logged
    /// with the key's prefix and returned.
    pub(crate) async fn run(&self, event: &KeyEvent) -> Vec<HookFailure> {
        let mut failures = Vec::new();
        for hook in &self.0 {
            let call = match event.action {
                KeyAction::Created => hook.after_create(event),
                KeyAction::Rotated => hook.after_rotate(event),
                KeyAction::Revoked => hook.after_revoke(event),
                KeyAction::Leaked => hook.after_leak(event),
            };
            let error = match (CatchUnwind { inner: call }).await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error,
                Err(Panicked) => HookError::new("The hook failed unexpectedly."),
            };
            let source = std::error::Error::source(&error).map(ToString::to_string);
            tracing::warn!(
                hook = hook.name(),
                action = event.action.as_str(),
                key_prefix = %event.key.prefix,
                owner = %event.owner,
                error = error.message(),
                source = source.as_deref().unwrap_or(""),
                "API key hook failed",
            );
            failures.push(HookFailure {
                hook: hook.name().to_owned(),
                error: error.message().to_owned(),
            });
        }
        failures
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A hook panicked.
struct Panicked;

pin_project! {
    /// Completes with `Err(Panicked)` if polling the inner future panics, so a faulty
    /// hook cannot lose the answer that carries a freshly minted key.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{
        key::KeyPrefix,
        manage::{Caller, Keys, NewKey},
        store::{
            InMemoryKeyStore, InsertRule, KeyId, KeyRecord, KeyStore, Result as StoreResult,
            StoreError,
        },
    };

    /// Records the hook calls it sees, in order, under its name.
    struct Recorder {
        name: &'static str,
        calls: Arc<Mutex<Vec<String>>>,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl KeyHooks for Recorder {
        fn name(&self) -> &str {
            self.name
        }

        async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("{}:{}", self.name, event.action));
            if self.fail {
                return Err(HookError::new("down").with_source(std::io::Error::other("10.0.0.7")));
            }
            Ok(())
        }
    }

    struct Panics;

    #[async_trait::async_trait]
    impl KeyHooks for Panics {
        async fn after_create(&self, _: &KeyEvent) -> Result<(), HookError> {
            panic!("a faulty hook");
        }
    }

    #[tokio::test]
    async fn hooks_run_in_order_and_failures_never_fail_the_mint() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let hook = |name, fail| Recorder {
            name,
            calls: calls.clone(),
            fail,
        };
        let keys = Keys::new(InMemoryKeyStore::new())
            .hook(hook("first", true))
            .hook(Panics)
            .hook(hook("last", false));
        let minted = keys
            .named()
            .create(&Caller::system(), "acct", NewKey::named("ci"))
            .await
            .expect("minted despite the failing hooks");
        assert_eq!(
            *calls.lock().unwrap(),
            ["first:created", "last:created"],
            "every hook ran, in order, past a panic"
        );
        let failures = minted.hook_failures();
        assert_eq!(failures.len(), 2);
        assert_eq!((failures[0].hook(), failures[0].error()), ("first", "down"));
        assert!(failures[1].hook().ends_with("Panics"), "{failures:?}");
        assert_eq!(failures[1].error(), "The hook failed unexpectedly.");
        // The source is for the log only.
        let json = serde_json::to_string(failures).unwrap();
        assert!(!json.contains("10.0.0.7"), "{json}");
        let stored = keys.named().list("acct").await.unwrap();
        assert_eq!(stored.len(), 1, "the key is stored");
        assert_eq!(stored[0].metadata.len(), 2, "{:?}", stored[0].metadata);
        assert_eq!(stored[0].metadata["hook.first.error"], "down");
        assert_eq!(
            stored[0].metadata[&failures[1].metadata_name()],
            "The hook failed unexpectedly."
        );
        assert_eq!(
            minted.view().metadata,
            stored[0].metadata,
            "the answer agrees"
        );
    }

    /// A store that takes everything but metadata.
    struct NoMetadata(InMemoryKeyStore);

    #[async_trait::async_trait]
    impl KeyStore for NoMetadata {
        async fn find_by_prefix(&self, prefix: &KeyPrefix) -> StoreResult<Option<Arc<KeyRecord>>> {
            self.0.find_by_prefix(prefix).await
        }
        async fn insert(&self, record: KeyRecord, rule: InsertRule) -> StoreResult<()> {
            self.0.insert(record, rule).await
        }
        async fn revoke(&self, id: &KeyId, at: SystemTime) -> StoreResult<Option<KeyRecord>> {
            self.0.revoke(id, at).await
        }
        async fn list_by_owner(&self, owner: &str) -> StoreResult<Vec<KeyRecord>> {
            self.0.list_by_owner(owner).await
        }
        async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> StoreResult<()> {
            self.0.record_last_use(id, at).await
        }
        async fn set_metadata(&self, _: &KeyId, _: &str, _: Option<&str>) -> StoreResult<()> {
            Err(StoreError::Timeout)
        }
    }

    #[tokio::test]
    async fn a_failure_the_store_cannot_keep_is_still_answered_and_the_key_minted() {
        let keys = Keys::new(NoMetadata(InMemoryKeyStore::new())).hook(Recorder {
            name: "webhook",
            calls: Arc::default(),
            fail: true,
        });
        let minted = keys
            .named()
            .create(&Caller::system(), "acct", NewKey::named("ci"))
            .await
            .expect("minted although the store refused the note");
        assert_eq!(minted.hook_failures().len(), 1);
        assert!(
            minted.view().metadata.is_empty(),
            "not kept, so not shown as kept"
        );
        assert_eq!(keys.named().list("acct").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_successor_keeps_the_metadata_with_unresolved_hook_failures() {
        let store = InMemoryKeyStore::new();
        let keys = Keys::new(store.clone()).hook(Recorder {
            name: "webhook",
            calls: Arc::default(),
            fail: true,
        });
        let first = keys
            .named()
            .create(&Caller::system(), "acct", NewKey::named("ci"))
            .await
            .unwrap();
        store
            .set_metadata(&first.view().id, "app", Some("zapier"))
            .await
            .unwrap();
        // `Recorder` fails after a create only: the rotation has no failure of its own,
        // and the create's is still unresolved.
        let next = keys
            .named()
            .rotate(
                &Caller::system(),
                "acct",
                &first.view().id,
                std::time::Duration::ZERO,
            )
            .await
            .unwrap();
        assert!(next.hook_failures().is_empty());
        let successor = keys
            .named()
            .list("acct")
            .await
            .unwrap()
            .into_iter()
            .find(|view| view.id == next.view().id)
            .expect("the successor is listed");
        assert_eq!(
            successor.metadata,
            std::collections::BTreeMap::from([
                ("app".to_owned(), "zapier".to_owned()),
                ("hook.webhook.error".to_owned(), "down".to_owned()),
            ])
        );
    }

    #[test]
    fn actors_serialise_with_a_type_tag() {
        let json = |actor: &Actor| serde_json::to_string(actor).unwrap();
        assert_eq!(json(&Actor::user("u1")), r#"{"type":"user","id":"u1"}"#);
        assert_eq!(json(&Actor::System), r#"{"type":"system"}"#);
        let prefix: KeyPrefix = "pk_live_0123456789abcdef".parse().unwrap();
        assert_eq!(
            json(&Actor::Key { prefix }),
            r#"{"type":"key","prefix":"pk_live_0123456789abcdef"}"#
        );
    }
}
