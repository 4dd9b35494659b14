use crate::key::KeyPrefix;

/// A change to the records a store holds, as a cache needs to hear of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The record with this prefix was inserted, revoked or replaced (by this or
    /// another instance).
    Key(KeyPrefix),
    /// The feed is (again) listening, and changes may have been missed before: forget
    /// everything. Reported once the feed is subscribed, at first and after every
    /// reconnection.
    All,
    /// The feed lost its connection: until the next [`Change::All`], changes made
    /// elsewhere go unheard, so nothing cached may be trusted.
    Disconnected,
}

/// Hears of changes a store reports through [`KeyStore::watch`]: a cache drops what
/// it holds for the key. Called from the store's background task; must not block.
///
/// [`KeyStore::watch`]: super::KeyStore::watch
pub trait ChangeListener: Send + Sync + 'static {
    /// One change.
    fn changed(&self, change: Change);
}

/// Whether a store can report changes made elsewhere; see [`KeyStore::watch`].
///
/// [`KeyStore::watch`]: super::KeyStore::watch
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watching {
    /// Changes from every instance sharing the store reach the listener.
    Started,
    /// The store cannot tell (no change feed): caches rely on their TTL alone.
    Unsupported,
}
