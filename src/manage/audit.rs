use std::{
    collections::VecDeque,
    fmt,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use serde::Serialize;

use super::{Actor, HookError, KeyAction, KeyEvent, KeyHooks};
use crate::{key::KeyPrefix, store::KeyId};

/// One line of the audit trail: who did what to which key, when, from where. Names the
/// key by id and prefix only. Serialises to JSON with RFC 3339 times:
///
/// ```json
/// {"at":"2026-11-23T17:00:00Z","actor":{"type":"user","id":"acct_42"},"action":"created",
///  "owner":"acct_42","key_id":"key_1f0c…","key_prefix":"pk_live_0123456789abcdef",
///  "key_name":"ci","replaced_prefix":null,"client_addr":"203.0.113.9"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When it happened.
    #[serde(serialize_with = "super::time::rfc3339")]
    pub at: SystemTime,
    /// Who did it: the session user, the key itself, or the system.
    pub actor: Actor,
    /// Created, rotated, revoked or leaked.
    pub action: KeyAction,
    /// The account the key acts for.
    pub owner: String,
    /// The key's id (for a rotation: the successor's).
    pub key_id: KeyId,
    /// The key's public prefix (for a rotation: the successor's).
    pub key_prefix: KeyPrefix,
    /// The key's name.
    pub key_name: String,
    /// For a rotation: the old key's prefix.
    pub replaced_prefix: Option<KeyPrefix>,
    /// The client's address, when known.
    pub client_addr: Option<IpAddr>,
    /// For a leak report: where the key was found, when the scanner said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_url: Option<String>,
}

impl AuditEntry {
    /// The entry for a key event.
    pub fn of(event: &KeyEvent) -> Self {
        AuditEntry {
            at: event.at,
            actor: event.actor.clone(),
            action: event.action,
            owner: event.owner.clone(),
            key_id: event.key.id.clone(),
            key_prefix: event.key.prefix,
            key_name: event.key.name.clone(),
            replaced_prefix: event.replaced.as_ref().map(|old| old.prefix),
            client_addr: event.client_addr,
            leak_url: event.leak.as_ref().and_then(|leak| leak.url.clone()),
        }
    }
}

/// Where an [`AuditTrail`] writes: a database table, a log, a queue. Closures
/// `Fn(&AuditEntry)` are sinks that cannot fail.
///
/// ```
/// use tower_api_key::manage::{AuditEntry, AuditSink, HookError};
///
/// struct AuditTable; // e.g. a sqlx pool
///
/// #[tower_api_key::async_trait]
/// impl AuditSink for AuditTable {
///     async fn record(&self, entry: &AuditEntry) -> Result<(), HookError> {
///         // INSERT INTO audit … ; on failure:
///         // Err(HookError::new("The audit trail is unavailable.").with_source(e))
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Writes one entry. An error is logged (and, after a create or rotate, reported to
    /// the owner); it never undoes the key operation.
    async fn record(&self, entry: &AuditEntry) -> Result<(), HookError>;
}

#[async_trait::async_trait]
impl<F> AuditSink for F
where
    F: Fn(&AuditEntry) + Send + Sync + 'static,
{
    async fn record(&self, entry: &AuditEntry) -> Result<(), HookError> {
        self(entry);
        Ok(())
    }
}

/// The audit trail: a [hook](KeyHooks) that writes an [`AuditEntry`] for every create,
/// rotate and revoke to its [`AuditSink`]. Its hook name is `audit`.
///
/// The management router fills in the actor (the session user, or the key revoking
/// itself) and the client address (as the authenticator names it); code calling
/// [`Keys`](super::Keys) directly says who acts with the [`Caller`](super::Caller)
/// it passes.
///
/// ```
/// use tower_api_key::manage::{Actor, AuditTrail, Caller, Keys, MemoryAuditSink, NewKey, TracingAuditSink};
/// use tower_api_key::store::InMemoryKeyStore;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let recent = MemoryAuditSink::new(1000);
/// let keys = Keys::new(InMemoryKeyStore::new())
///     .hook(AuditTrail::new(recent.clone()))
///     .hook(AuditTrail::new(TracingAuditSink))
///     .hook(AuditTrail::new(|entry: &tower_api_key::manage::AuditEntry| {
///         eprintln!("audit: {}", serde_json::to_string(entry).unwrap_or_default());
///     }));
///
/// let minted = keys
///     .named()
///     .create(&Caller::user("acct_42"), "acct_42", NewKey::named("ci"))
///     .await?;
/// let entry = &recent.entries()[0];
/// assert_eq!(entry.key_prefix, minted.view().prefix);
/// assert_eq!(entry.actor, Actor::user("acct_42"));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct AuditTrail {
    sink: Arc<dyn AuditSink>,
}

impl AuditTrail {
    /// An audit trail writing to `sink`.
    pub fn new(sink: impl AuditSink) -> Self {
        AuditTrail {
            sink: Arc::new(sink),
        }
    }

    async fn write(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.sink.record(&AuditEntry::of(event)).await
    }
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl KeyHooks for AuditTrail {
    fn name(&self) -> &str {
        "audit"
    }

    async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.write(event).await
    }

    async fn after_rotate(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.write(event).await
    }

    async fn after_revoke(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.write(event).await
    }

    async fn after_leak(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.write(event).await
    }
}

/// The most recent audit entries, in memory: at most `capacity`, the oldest dropped
/// first. Cloning shares the entries. For tests, and for a "recent activity" view.
#[derive(Clone)]
pub struct MemoryAuditSink {
    entries: Arc<Mutex<VecDeque<AuditEntry>>>,
    capacity: usize,
}

impl MemoryAuditSink {
    /// Keeps the `capacity` most recent entries.
    pub fn new(capacity: usize) -> Self {
        MemoryAuditSink {
            entries: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(1024)))),
            capacity,
        }
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<AuditEntry>> {
        // An entry is pushed whole or not at all: a poisoned lock holds consistent data.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryAuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAuditSink")
            .field("len", &self.lock().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, entry: &AuditEntry) -> Result<(), HookError> {
        if self.capacity == 0 {
            return Ok(());
        }
        let mut entries = self.lock();
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry.clone());
        Ok(())
    }
}

/// Writes each entry as a `tracing` event at `INFO`, target `tower_api_key::audit`,
/// with the entry's fields (`action`, `actor`, `owner`, `key_id`, `key_prefix`,
/// `key_name`, `replaced_prefix`, `client_addr`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAuditSink;

#[async_trait::async_trait]
impl AuditSink for TracingAuditSink {
    async fn record(&self, entry: &AuditEntry) -> Result<(), HookError> {
        let actor = match &entry.actor {
            Actor::User { id } => format!("user:{id}"),
            Actor::Key { prefix } => format!("key:{prefix}"),
            Actor::System => "system".to_owned(),
            Actor::SecretScanner { name } => format!("scanner:{name}"),
        };
        tracing::info!(
            target: "tower_api_key::audit",
            action = entry.action.as_str(),
            actor = %actor,
            owner = %entry.owner,
            key_id = %entry.key_id,
            key_prefix = %entry.key_prefix,
            key_name = %entry.key_name,
            replaced_prefix = entry.replaced_prefix.as_ref().map(|p| p.to_string()).as_deref().unwrap_or(""),
            client_addr = entry.client_addr.map(|a| a.to_string()).as_deref().unwrap_or(""),
            leak_url = entry.leak_url.as_deref().unwrap_or(""),
            "API key {}",
            entry.action,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        manage::{Caller, Keys, NewKey},
        store::InMemoryKeyStore,
    };

    #[tokio::test]
    async fn the_memory_sink_keeps_the_most_recent_entries() {
        let recent = MemoryAuditSink::new(2);
        let keys = Keys::new(InMemoryKeyStore::new()).hook(AuditTrail::new(recent.clone()));
        let caller = Caller::user("u1").from_addr("203.0.113.9".parse().ok());
        let mut prefixes = Vec::new();
        for name in ["a", "b", "c"] {
            let minted = keys
                .named()
                .create(&caller, "u1", NewKey::named(name))
                .await
                .unwrap();
            prefixes.push(minted.view().prefix);
        }
        let entries = recent.entries();
        let kept: Vec<_> = entries.iter().map(|e| e.key_prefix).collect();
        assert_eq!(kept, prefixes[1..], "the oldest entry was dropped");
        let entry = &entries[1];
        assert_eq!(entry.action, KeyAction::Created);
        assert_eq!(entry.key_name, "c");
        assert_eq!(entry.client_addr, Some("203.0.113.9".parse().unwrap()));
        let json = serde_json::to_value(entry).unwrap();
        assert_eq!(json["actor"]["id"], "u1");
        assert_eq!(json["action"], "created");
        assert_eq!(json["client_addr"], "203.0.113.9");
        assert!(json["at"].as_str().unwrap().ends_with('Z'));

        let none = MemoryAuditSink::new(0);
        none.record(entry).await.unwrap();
        assert!(none.entries().is_empty());
    }
}
