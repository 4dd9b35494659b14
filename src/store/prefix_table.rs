use std::sync::Arc;

use super::KeyRecord;
use crate::key::KeyPrefix;

/// The in-memory store's index: records by prefix, in an open-addressing table
/// (linear probing, at most half full, no removal — records are never deleted).
///
/// It exists for one property a general hash map lacks: a lookup does the same memory
/// work whether the prefix is stored or not. A hit reads the slots up to the record,
/// then the record (its prefix, to confirm; its reference count, to hand it out). A
/// miss reads the slots up to an empty one, then the next stored record after it —
/// a *decoy*, a random record as cold in the cache as the one a hit would read — in
/// the same way, and the verifier compares the presented key's digest with the
/// decoy's. An unknown prefix and a wrong secret then cost the same.
pub(crate) struct PrefixTable {
    slots: Box<[Slot]>,
    len: usize,
}

#[derive(Clone, Default)]
struct Slot {
    fingerprint: u64,
    record: Option<Arc<KeyRecord>>,
}

/// What a lookup found: the record, or else a decoy to compare against.
pub(crate) struct Found {
    pub(crate) record: Option<Arc<KeyRecord>>,
    pub(crate) decoy: Option<Arc<KeyRecord>>,
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl PrefixTable {
    /// Room for `capacity` records before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(4) * 2).next_power_of_two();
        PrefixTable {
            slots: vec![Slot::default(); slots].into_boxed_slice(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn start(&self, fingerprint: u64) -> usize {
        // Fingerprints of minted prefixes are uniform already; mixing spreads made-up
        // ones too.
        (fingerprint.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 17) as usize & (self.slots.len() - 1)
    }

    /// The slot holding `prefix`, or the empty slot where it would go.
    fn position(&self, prefix: &KeyPrefix) -> (usize, bool) {
        let fingerprint = prefix.fingerprint();
        let mask = self.slots.len() - 1;
        let mut at = self.start(fingerprint);
        loop {
            match &self.slots[at].record {
                None => return (at, false),
                Some(record)
                    if self.slots[at].fingerprint == fingerprint && record.prefix == *prefix =>
                {
                    return (at, true)
                }
                Some(_) => at = (at + 1) & mask,
            }
        }
    }

    pub(crate) fn get(&self, prefix: &KeyPrefix) -> Option<&Arc<KeyRecord>> {
        match self.position(prefix) {
            (at, true) => self.slots[at].record.as_ref(),
            (_, false) => None,
        }
    }

    /// The record with `prefix`; when there is none, a decoy read the way a hit is.
    pub(crate) fn find(&self, prefix: &KeyPrefix) -> Found {
        let (at, hit) = self.position(prefix);
        if hit {
            return Found {
                record: self.slots[at].record.clone(),
                decoy: None,
            };
        }
        let mask = self.slots.len() - 1;
        let decoy = (1..self.slots.len())
            .map(|step| &self.slots[(at + step) & mask])
            .find_map(|slot| slot.record.as_ref())
            // Compared like a hit's prefix (it never matches: `prefix` is not stored).
            .filter(|record| record.prefix != *prefix)
            .cloned();
        Found {
            record: None,
            decoy,
        }
    }

    /// Stores `record` under its prefix, replacing the one there.
    pub(crate) fn insert(&mut self, record: Arc<KeyRecord>) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (at, hit) = self.position(&record.prefix);
        if !hit {
            self.len += 1;
        }
        self.slots[at] = Slot {
            fingerprint: record.prefix.fingerprint(),
            record: Some(record),
        };
    }

    fn grow(&mut self) {
        let doubled = vec![Slot::default(); self.slots.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.slots, doubled);
        self.len = 0;
        for record in old.into_vec().into_iter().filter_map(|slot| slot.record) {
            self.insert(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ApiKey, KeyMode};

    fn record() -> Arc<KeyRecord> {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        Arc::new(KeyRecord::builder(&key, "o").build())
    }

    #[test]
    fn finds_what_it_holds_and_a_decoy_otherwise() {
        let mut table = PrefixTable::default();
        let unknown = ApiKey::generate(KeyMode::Live).unwrap().prefix();
        let empty = table.find(&unknown);
        assert!(empty.record.is_none() && empty.decoy.is_none());

        let records: Vec<_> = (0..1000).map(|_| record()).collect();
        for r in &records {
            table.insert(r.clone());
        }
        assert_eq!(table.len(), 1000);
        for r in &records {
            let found = table.find(&r.prefix);
            assert_eq!(found.record.as_deref(), Some(&**r));
            assert!(found.decoy.is_none());
            assert!(table.get(&r.prefix).is_some());
        }
        let miss = table.find(&unknown);
        assert!(miss.record.is_none());
        let decoy = miss.decoy.expect("a stored record as decoy");
        assert_ne!(decoy.prefix, unknown);
        assert!(table.get(&unknown).is_none());

        // Replacing keeps the count.
        let mut revoked = KeyRecord::clone(&records[0]);
        revoked.revoked_at = Some(std::time::SystemTime::now());
        table.insert(Arc::new(revoked.clone()));
        assert_eq!(table.len(), 1000);
        assert_eq!(table.get(&revoked.prefix).map(|r| &**r), Some(&revoked));
    }
}
