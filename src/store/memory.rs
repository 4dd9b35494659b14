use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::SystemTime,
};

use super::{
    prefix_table::PrefixTable, InsertRule, KeyId, KeyRecord, KeyStore, Lease, LeaseRequest, Lookup,
    QuotaBucket, QuotaStore, Result, StoreError, UsageBatch, UsageBucket, UsageCounts,
};
use crate::key::KeyPrefix;

/// The embedded store: records in a hash table behind a read-write lock.
///
/// Lookup by prefix reads two buckets of a cuckoo table under a shared lock, so its
/// cost does not grow with the number of keys, and concurrent requests do not block
/// each other. An unknown prefix does the same work as a stored one, without a branch
/// on which it is (it reads a stored record as a decoy; see [`KeyStore::lookup_now`]),
/// so the time a request takes does not tell whether its prefix exists.
/// Cloning is cheap and clones share the same records, so one clone can go to the
/// layer and another to key management. Records live as long as the process.
///
/// ```
/// use tower_api_key::store::InMemoryKeyStore;
///
/// let store = InMemoryKeyStore::new();
/// let for_the_layer = store.clone();
/// assert!(for_the_layer.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct InMemoryKeyStore {
    maps: Arc<RwLock<Maps>>,
    /// Rate-limit buckets ([`QuotaStore`]), apart from the records: leases never wait
    /// for the records' lock.
    quotas: Arc<Mutex<HashMap<String, QuotaBucket>>>,
    /// Usage counts by key, then hour (hours since the epoch).
    usage: Arc<Mutex<HashMap<KeyId, BTreeMap<u64, UsageCounts>>>>,
}

#[derive(Default)]
struct Maps {
    by_prefix: PrefixTable,
    prefix_by_id: HashMap<KeyId, KeyPrefix>,
    by_owner: HashMap<String, Vec<KeyPrefix>>,
}

impl InMemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with room for `capacity` records before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        InMemoryKeyStore {
            maps: Arc::new(RwLock::new(Maps {
                by_prefix: PrefixTable::with_capacity(capacity),
                prefix_by_id: HashMap::with_capacity(capacity),
                by_owner: HashMap::new(),
            })),
            quotas: Arc::default(),
            usage: Arc::default(),
        }
    }

    /// Number of records, revoked ones included.
    pub fn len(&self) -> usize {
        self.read().by_prefix.len()
    }

    /// No records at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, prefix: &KeyPrefix) -> Option<Arc<KeyRecord>> {
        self.read().by_prefix.get(prefix).cloned()
    }

    // No code path panics while holding the lock, so poisoning cannot leave the maps
    // half-updated; recovering the guard is safe.
    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Maps {
    /// The owner's records.
    fn owned<'a>(&'a self, owner: &str) -> impl Iterator<Item = &'a Arc<KeyRecord>> + 'a {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|prefix| self.by_prefix.get(prefix))
    }

    /// Replaces the record with this id by `update(record)`.
    fn update(&mut self, id: &KeyId, update: impl FnOnce(&mut KeyRecord)) -> Option<KeyRecord> {
        let prefix = self.prefix_by_id.get(id)?;
        let mut record = KeyRecord::clone(self.by_prefix.get(prefix)?);
        update(&mut record);
        self.by_prefix.insert(Arc::new(record.clone()));
        Some(record)
    }
}

impl std::fmt::Debug for InMemoryKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryKeyStore")
            .field("records", &self.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyStore for InMemoryKeyStore {
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
        Ok(self.lookup(prefix))
    }

    fn lookup_now(&self, prefix: &KeyPrefix) -> Option<Result<Lookup>> {
        let lookup = match self.read().by_prefix.find(prefix) {
            Some(found) => Lookup::candidate(found.record, found.hit),
            None => Lookup::default(),
        };
        Some(Ok(lookup))
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
        let mut maps = self.write();
        if maps.by_prefix.get(&record.prefix).is_some()
            || maps.prefix_by_id.contains_key(&record.id)
        {
            return Err(StoreError::Duplicate);
        }
        match rule {
            InsertRule::NoOtherActiveKey => {
                let now = record.created_at;
                if maps.owned(&record.owner).any(|r| r.is_active_key_at(now)) {
                    return Err(StoreError::ActiveKeyExists);
                }
            }
            InsertRule::Replace { old, revoke_at } => {
                let current = maps
                    .prefix_by_id
                    .get(&old)
                    .and_then(|prefix| maps.by_prefix.get(prefix))
                    .filter(|r| r.owner == record.owner)
                    .ok_or(StoreError::NotFound)?;
                if current.revoked_at.is_some() {
                    return Err(StoreError::AlreadyRevoked);
                }
                maps.update(&old, |r| r.revoked_at = Some(revoke_at));
            }
            InsertRule::Unconditional => {}
        }
        maps.prefix_by_id.insert(record.id.clone(), record.prefix);
        maps.by_owner
            .entry(record.owner.clone())
            .or_default()
            .push(record.prefix);
        maps.by_prefix.insert(Arc::new(record));
        Ok(())
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
        Ok(self.write().update(id, |r| {
            r.revoked_at = Some(r.revoked_at.map_or(at, |earlier| earlier.min(at)));
        }))
    }

    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>> {
        let mut records: Vec<KeyRecord> = self
            .read()
            .owned(owner)
            .map(|r| KeyRecord::clone(r))
            .collect();
        records.sort_by_key(|r| r.created_at);
        Ok(records)
    }

    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()> {
        self.write().update(id, |r| {
            if r.last_used_at.is_none_or(|seen| seen < at) {
                r.last_used_at = Some(at);
            }
        });
        Ok(())
    }

    async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()> {
        self.write()
            .update(id, |r| match value {
                Some(value) => drop(r.metadata.insert(name.to_owned(), value.to_owned())),
                None => drop(r.metadata.remove(name)),
            })
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    fn keeps_usage(&self) -> bool {
        true
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<()> {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        for delta in &batch.deltas {
            if delta.hour >= batch.keep_from {
                let hours = usage.entry(delta.key.clone()).or_default();
                hours.entry(delta.hour).or_default().add_all(&delta.counts);
            }
        }
        usage.retain(|_, hours| {
            *hours = hours.split_off(&batch.keep_from);
            !hours.is_empty()
        });
        Ok(())
    }

    async fn usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        let (from, to) = (super::usage_hour_after(from), super::usage_hour_after(to));
        let usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(usage
            .get(id)
            .into_iter()
            .flat_map(|hours| hours.range(from..to.max(from)))
            .map(|(hour, counts)| UsageBucket {
                start: super::usage_hour_start(*hour),
                counts: *counts,
            })
            .collect())
    }
}

/// Buckets for the limiters of one process (several authenticators, or tests of the
/// shared limiter); idle buckets are dropped as others are leased.
#[async_trait::async_trait]
impl QuotaStore for InMemoryKeyStore {
    async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease> {
        let now = SystemTime::now();
        let mut quotas = self.quotas.lock().unwrap_or_else(PoisonError::into_inner);
        // Every 64th bucket made, drop the idle ones: the map holds active keys only.
        if !quotas.contains_key(request.bucket()) && quotas.len() % 64 == 63 {
            quotas.retain(|_, bucket| bucket.idle_at(request.rate()) > now);
        }
        let bucket = quotas.entry(request.bucket().to_owned()).or_default();
        Ok(bucket.lease(now, request))
    }
}
