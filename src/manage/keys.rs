use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{
    hooks::Hooks, leak::LEAK_NOTES, Caller, HookFailure, KeyAction, KeyEvent, KeyHooks, KeyRef,
    KeyView, ManageError, MintedKey, NamedKeys, NewKey, OneActiveKeys,
};
use tracing::Instrument;

use crate::{
    key::{ApiKey, KeyFormat, KeyMode, KeyPrefix},
    store::{InsertRule, KeyRecord, KeyRecordBuilder, KeyStore, LastUse, UsageBucket},
};

/// How many keys an owner may hold that are not revoked, by default.
const DEFAULT_MAX_KEYS_PER_OWNER: usize = 100;
/// How long a revoked key stays in the named-key list, marked revoked.
pub(super) const REVOKED_SHOWN_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest rotation grace period accepted: 30 days.
const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Key lifecycle over any [`KeyStore`]: mint, view, rotate and revoke, under the
/// policy you pick — [`Keys::one_active`] (one key per owner) or [`Keys::named`] (many
/// named keys per owner).
///
/// Owners are whatever your app calls accounts: usually the session user's id. An
/// owner never sees or touches another owner's keys; they are "not found". Cloning is
/// cheap.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::{auth::Authenticator, manage::{Caller, Keys, NewKey}, store::InMemoryKeyStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryKeyStore::new();
/// let auth = Authenticator::new(store.clone());
/// let keys = Keys::new(store).last_use(auth.last_use().clone());
///
/// let minted = keys.one_active().create(&Caller::system(), "acct_42", NewKey::default()).await?;
/// println!("shown once: {}", minted.api_key().expose_secret());
/// assert!(keys.one_active().create(&Caller::system(), "acct_42", NewKey::default()).await.is_err()); // 409
///
/// let next = keys.one_active().rotate(&Caller::system(), "acct_42", Duration::from_secs(3600)).await?;
/// assert_eq!(keys.one_active().view("acct_42").await?.retiring.len(), 1);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Keys {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    last_use: Option<LastUse>,
    default_scopes: Vec<String>,
    grantable_scopes: Vec<String>,
    max_keys_per_owner: usize,
    hooks: Hooks,
    on_mint: Option<OnMint>,
}

/// A key-management action's span (`manage_api_key`, at `DEBUG`): the action, the
/// owner and the key's public prefix (a minted key's once it is known), never a key.
fn action_span(action: &'static str, owner: &str, prefix: Option<&KeyPrefix>) -> tracing::Span {
    let span = tracing::debug_span!(
        "manage_api_key",
        action,
        owner,
        key_prefix = tracing::field::Empty,
    );
    if let Some(prefix) = prefix {
        span.record("key_prefix", prefix.as_str());
    }
    span
}

/// The mint-time policy of [`Keys::on_mint`].
type OnMint = Arc<dyn Fn(&str, KeyRecordBuilder) -> KeyRecordBuilder + Send + Sync>;

/// What a new key is made from.
enum Grant<'a> {
    /// An owner's request, checked against what this service lets owners grant.
    Requested(NewKey),
    /// A rotation's successor: everything that bounds or describes the old key
    /// (scopes, mode, expiry, restrictions, rate limit, name, metadata), granted
    /// before; only its identity and lifecycle times are new.
    Successor(&'a KeyRecord),
}

impl Keys {
    /// Key management over `store`, minting `pk_` keys.
    pub fn new(store: impl KeyStore) -> Self {
        Keys {
            store: Arc::new(store),
            format: KeyFormat::default(),
            last_use: None,
            default_scopes: Vec::new(),
            grantable_scopes: Vec::new(),
            max_keys_per_owner: DEFAULT_MAX_KEYS_PER_OWNER,
            hooks: Hooks::default(),
            on_mint: None,
        }
    }

    /// Mint keys in this format (the layer must accept the same one).
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// Show last uses from this log (usually the layer's: `auth.last_use().clone()`),
    /// including uses not yet written to the store.
    pub fn last_use(mut self, last_use: LastUse) -> Self {
        self.last_use = Some(last_use);
        self
    }

    /// Scopes a new key gets when its request names none. They are grantable too.
    pub fn default_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Further scopes an owner may ask for when minting (besides the default ones).
    /// A request naming any other scope is refused (422): owners cannot grant
    /// themselves `admin`. Default: none.
    pub fn grantable_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.grantable_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The most keys an owner may hold that are not revoked (expired ones count until
    /// revoked; a rotation's successor does not count against it, as it replaces a
    /// key). Creating one more is refused with [`ManageError::TooManyKeys`] (409).
    /// Default: 100. The count is read before the insert, so concurrent creates by
    /// one owner may pass it by the number of requests in flight.
    pub fn max_keys_per_owner(mut self, max: usize) -> Self {
        self.max_keys_per_owner = max;
        self
    }

    /// Adds a [hook](KeyHooks) run after every create, rotate and revoke (several
    /// hooks run in the order added), e.g. an [`AuditTrail`](super::AuditTrail).
    pub fn hook(mut self, hook: impl KeyHooks) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// A policy applied to every key an owner mints (not to a rotation's successor,
    /// which keeps the old key's bounds): it gets the owner and the record being built,
    /// after the request's name, scopes, expiry and mode, and returns it with whatever
    /// your service sets for that owner — a rate limit by plan, restrictions, metadata.
    ///
    /// ```
    /// use tower_api_key::{manage::{Caller, Keys, NewKey}, policy::RateLimit, store::InMemoryKeyStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let free: RateLimit = "100/h".parse()?;
    /// let keys = Keys::new(InMemoryKeyStore::new())
    ///     .on_mint(move |owner, record| {
    ///         // Look the owner's plan up in memory: this runs on every mint.
    ///         if owner.starts_with("trial_") { record.rate_limit(free) } else { record }
    ///     });
    /// let minted = keys.named().create(&Caller::system(), "trial_7", NewKey::named("ci")).await?;
    /// assert_eq!(minted.view().rate_limit, Some(free));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn on_mint(
        mut self,
        policy: impl Fn(&str, KeyRecordBuilder) -> KeyRecordBuilder + Send + Sync + 'static,
    ) -> Self {
        self.on_mint = Some(Arc::new(policy));
        self
    }

    #[cfg(feature = "axum")]
    pub(crate) fn has_last_use(&self) -> bool {
        self.last_use.is_some()
    }

    /// The one-active-key policy: an owner has at most one working key, plus old ones
    /// in a rotation's grace period.
    pub fn one_active(&self) -> OneActiveKeys {
        OneActiveKeys::new(self.clone())
    }

    /// The many-named-keys policy: an owner has as many keys as they create.
    pub fn named(&self) -> NamedKeys {
        NamedKeys::new(self.clone())
    }

    pub(super) fn view(&self, record: &KeyRecord, now: SystemTime) -> KeyView {
        let last_used = match &self.last_use {
            Some(log) => log.last_used_at(record),
            None => record.last_used_at,
        };
        KeyView::of(record, last_used, now)
    }

    /// Mints a key for `owner` as `caller`; a key acting gives the new key nothing it
    /// does not have ([`Caller::acting_key`]).
    async fn mint(
        &self,
        caller: &Caller,
        owner: &str,
        grant: Grant<'_>,
        rule: InsertRule,
    ) -> Result<MintedKey, ManageError> {
        caller.may_act_for(owner)?;
        let now = SystemTime::now();
        let acting = caller.acting();
        let (key, record) = match grant {
            Grant::Requested(new) => {
                let new = self.checked(owner, new, now).await?;
                let scopes = if new.scopes.is_empty() {
                    self.default_scopes.clone()
                } else {
                    new.scopes
                };
                let (mode, expires_at) = match acting {
                    Some(acting) => {
                        acting.may_grant(&scopes)?;
                        (
                            acting.mode_for(new.mode)?,
                            acting.expiry_for(new.expires_at)?,
                        )
                    }
                    None => (new.mode.unwrap_or(KeyMode::Live), new.expires_at),
                };
                let key = ApiKey::generate_in(&self.format, mode).map_err(ManageError::Mint)?;
                let record = KeyRecord::builder(&key, owner)
                    .name(new.name)
                    .scopes(scopes)
                    .expires_at(expires_at)
                    .created_at(now);
                let mut record = match &self.on_mint {
                    Some(policy) => policy(owner, record),
                    None => record,
                }
                .build();
                if let Some(acting) = acting {
                    acting.bound(&mut record);
                }
                (key, record)
            }
            Grant::Successor(old) => {
                if let Some(acting) = acting {
                    acting.may_replace(old)?;
                }
                let key = ApiKey::generate_in(&self.format, old.mode).map_err(ManageError::Mint)?;
                let fresh = KeyRecord::builder(&key, &old.owner).build();
                // Struct update: a field added to the record later carries over too.
                let mut record = KeyRecord {
                    id: fresh.id,
                    prefix: fresh.prefix,
                    hash: fresh.hash,
                    mode: fresh.mode,
                    created_at: now,
                    revoked_at: None,
                    last_used_at: None,
                    ..old.clone()
                };
                // A leak report is about the old key's text, not its successor's.
                record
                    .metadata
                    .retain(|name, _| !name.starts_with(LEAK_NOTES));
                (key, record)
            }
        };
        let view = self.view(&record, now);
        self.store.insert(record, rule).await?;
        Ok(MintedKey {
            key,
            view,
            hook_failures: Vec::new(),
        })
    }

    /// An owner's request, validated and normalised: scopes deduplicated and each one
    /// this service lets owners grant, and room left under the owner's key cap.
    async fn checked(
        &self,
        owner: &str,
        mut new: NewKey,
        now: SystemTime,
    ) -> Result<NewKey, ManageError> {
        new.validate(now)?;
        new.dedup_scopes();
        let grantable = |scope: &String| {
            self.default_scopes.contains(scope) || self.grantable_scopes.contains(scope)
        };
        if !new.scopes.iter().all(grantable) {
            return Err(ManageError::Invalid(
                "A requested scope is not one this service lets owners grant.",
            ));
        }
        let held = self
            .owned(owner)
            .await?
            .iter()
            .filter(|r| !r.is_revoked_at(now))
            .count();
        if held >= self.max_keys_per_owner {
            return Err(ManageError::TooManyKeys {
                max: self.max_keys_per_owner,
            });
        }
        Ok(new)
    }

    /// Runs the hooks for an operation that happened just now; the failures (already
    /// logged).
    async fn announce(
        &self,
        caller: &Caller,
        action: KeyAction,
        owner: &str,
        key: &KeyView,
        replaced: Option<KeyView>,
    ) -> Vec<HookFailure> {
        if self.hooks.is_empty() {
            return Vec::new();
        }
        let event = KeyEvent {
            action,
            owner: owner.to_owned(),
            key: key.clone(),
            replaced,
            actor: caller.actor.clone(),
            client_addr: caller.client_addr,
            at: SystemTime::now(),
            leak: None,
        };
        self.run_hooks(&event).await
    }

    /// Runs the hooks for `event`; the failures (already logged).
    pub(super) async fn run_hooks(&self, event: &KeyEvent) -> Vec<HookFailure> {
        self.hooks.run(event).await
    }

    /// The stored record of the key `text` is, when `text` is a key of this format
    /// whose hash matches its record's (compared in constant time); `None` for
    /// anything else.
    pub(super) async fn record_of(
        &self,
        text: &str,
    ) -> Result<Option<Arc<KeyRecord>>, ManageError> {
        use subtle::ConstantTimeEq;
        let Ok(key) = ApiKey::parse(text, &self.format) else {
            return Ok(None);
        };
        let found = self.store.find_by_prefix(&key.prefix()).await?;
        Ok(found.filter(|record| bool::from(record.hash.ct_eq(&key.hash()))))
    }

    /// Notes `value` (or removes the note) in a key's metadata.
    pub(super) async fn set_metadata(
        &self,
        id: &crate::store::KeyId,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), ManageError> {
        Ok(self.store.set_metadata(id, name, value).await?)
    }

    /// Keeps each hook failure in the new key's metadata (`hook.<name>.error`, which
    /// its view shows too) and in the answer. A store that cannot take the note is
    /// logged with the prefix, never an error: the key is minted.
    async fn keep_failures(&self, minted: &mut MintedKey, failures: Vec<HookFailure>) {
        for failure in &failures {
            let name = failure.metadata_name();
            let kept = self
                .store
                .set_metadata(&minted.view.id, &name, Some(failure.error()))
                .await;
            match kept {
                Ok(()) => {
                    minted
                        .view
                        .metadata
                        .insert(name, failure.error().to_owned());
                }
                Err(error) => tracing::warn!(
                    hook = failure.hook(),
                    key_prefix = %minted.view.prefix,
                    error = %error,
                    "API key hook failure could not be kept in the key's metadata",
                ),
            }
        }
        minted.hook_failures = failures;
    }

    /// Mints a key and runs the create hooks.
    pub(super) async fn create(
        &self,
        caller: &Caller,
        owner: &str,
        new: NewKey,
        rule: InsertRule,
    ) -> Result<MintedKey, ManageError> {
        let span = action_span("create", owner, None);
        async move {
            let mut minted = self
                .mint(caller, owner, Grant::Requested(new), rule)
                .await?;
            tracing::Span::current().record("key_prefix", minted.view.prefix.as_str());
            let failures = self
                .announce(caller, KeyAction::Created, owner, &minted.view, None)
                .await;
            self.keep_failures(&mut minted, failures).await;
            Ok(minted)
        }
        .instrument(span)
        .await
    }

    pub(super) async fn owned(&self, owner: &str) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(self.store.list_by_owner(owner).await?)
    }

    /// Whether the store keeps usage (and so views carry totals).
    pub(super) fn keeps_usage(&self) -> bool {
        self.store.keeps_usage()
    }

    /// A key's stored usage by hour (hours that start in `from..to`), with the
    /// pending counts of the log given to [`Keys::last_use`].
    pub(super) async fn hourly_usage(
        &self,
        record: &KeyRecord,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>, ManageError> {
        Ok(match &self.last_use {
            Some(log) => log.usage(&*self.store, record, from, to).await?,
            None => self.store.usage(&record.id, from, to).await?,
        })
    }

    /// One of the owner's keys; another owner's key, or an unknown one, is
    /// [`ManageError::NotFound`].
    pub(super) async fn find(&self, owner: &str, key: &KeyRef) -> Result<KeyRecord, ManageError> {
        self.owned(owner)
            .await?
            .into_iter()
            .find(|r| key.names(r))
            .ok_or(ManageError::NotFound)
    }

    pub(super) async fn revoke_record(
        &self,
        caller: &Caller,
        record: &KeyRecord,
        now: SystemTime,
    ) -> Result<KeyView, ManageError> {
        caller.may_act_for(&record.owner)?;
        let span = action_span("revoke", &record.owner, Some(&record.prefix));
        async move {
            let revoked = self
                .store
                .revoke(&record.id, now)
                .await?
                .ok_or(ManageError::NotFound)?;
            let view = self.view(&revoked, now);
            // Revoking a revoked key changes nothing, so it is no event.
            if !record.is_revoked_at(now) {
                self.announce(caller, KeyAction::Revoked, &record.owner, &view, None)
                    .await;
            }
            Ok(view)
        }
        .instrument(span)
        .await
    }

    /// Mints a successor (every bound of the old key: scopes, mode, expiry,
    /// restrictions, rate limit; and its name and metadata) and schedules
    /// the old key's revocation `grace` from now, in one atomic store operation.
    pub(super) async fn rotate_record(
        &self,
        caller: &Caller,
        old: &KeyRecord,
        grace: Duration,
    ) -> Result<MintedKey, ManageError> {
        let span = action_span("rotate", &old.owner, Some(&old.prefix));
        async move {
            if grace > MAX_GRACE {
                return Err(ManageError::Invalid("The grace period is at most 30 days."));
            }
            let now = SystemTime::now();
            if !old.works_at(now) {
                return Err(ManageError::AlreadyRevoked);
            }
            let revoke_at = now + grace;
            let rule = InsertRule::Replace {
                old: old.id.clone(),
                revoke_at,
            };
            // Metadata carries over too: notes such as an unresolved hook failure stay
            // with the owner's working key until whoever resolves them removes them.
            let mut minted = self
                .mint(caller, &old.owner, Grant::Successor(old), rule)
                .await?;
            let mut retiring = old.clone();
            retiring.revoked_at = Some(revoke_at);
            let replaced = self.view(&retiring, now);
            let failures = self
                .announce(
                    caller,
                    KeyAction::Rotated,
                    &old.owner,
                    &minted.view,
                    Some(replaced),
                )
                .await;
            self.keep_failures(&mut minted, failures).await;
            Ok(minted)
        }
        .instrument(span)
        .await
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("format", &self.format)
            .field("default_scopes", &self.default_scopes)
            .field("grantable_scopes", &self.grantable_scopes)
            .field("hooks", &self.hooks)
            .field("on_mint", &self.on_mint.is_some())
            .finish_non_exhaustive()
    }
}
