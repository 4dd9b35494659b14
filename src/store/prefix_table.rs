use std::sync::Arc;

use subtle::Choice;

use super::KeyRecord;
use crate::key::{is_zero, KeyPrefix};

/// Slots per bucket: a bucket's fingerprints and record numbers fill one cache line.
const WAYS: usize = 4;
/// A free slot's record number.
const FREE: u32 = u32::MAX;
/// Displacements tried before an insert grows the table instead.
const MAX_KICKS: usize = 500;

/// The in-memory store's index: records by prefix, in a cuckoo table of 4-slot buckets
/// (at most half full; records are never removed, only replaced).
///
/// It exists for one property a general hash map lacks: a lookup does the same work,
/// instruction for instruction and cache line for cache line, whether the prefix is
/// stored or not. It reads the prefix's two candidate buckets (two lines, always both),
/// picks without branching either the matching slot's record number or, when no slot
/// matches, a *decoy*'s (a stored record chosen by the prefix, as cold in the cache as
/// the one a hit reads), then reads that record and compares its prefix in constant
/// time. The verifier compares the presented key's digest with whichever record came
/// back, so an unknown prefix and a wrong secret cost the same.
pub(crate) struct PrefixTable {
    buckets: Box<[Bucket]>,
    /// Every record, by record number (the slot values).
    records: Vec<Arc<KeyRecord>>,
    /// Record numbers of prefixes whose table fingerprint another stored prefix already
    /// has (across namespaces, or by a 2^-63 chance for two minted prefixes, whose
    /// fingerprints may differ in their lowest bit only); searched after a miss, when
    /// present.
    spilled: Vec<u32>,
    /// The state of the generator that picks which slot an insert displaces.
    kicks: u64,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// A free slot's fingerprint is 0, which no stored one is ([`table_fingerprint`]).
    fingerprints: [u64; WAYS],
    slots: [u32; WAYS],
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            fingerprints: [0; WAYS],
            slots: [FREE; WAYS],
        }
    }
}

impl Bucket {
    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|&slot| slot == FREE)
    }
}

/// What a lookup read: the record with the prefix, or a decoy; `hit` tells which.
pub(crate) struct Candidate {
    pub(crate) record: Arc<KeyRecord>,
    pub(crate) hit: Choice,
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl PrefixTable {
    /// Room for `capacity` records before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        PrefixTable {
            buckets: empty_buckets(capacity),
            records: Vec::with_capacity(capacity),
            spilled: Vec::new(),
            kicks: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The two buckets a fingerprint may sit in (they may coincide).
    fn homes(&self, fingerprint: u64) -> [usize; 2] {
        // Fingerprints of minted prefixes are uniform already; mixing spreads made-up
        // ones too. Two odd multipliers, top bits: two independent-looking choices.
        let mask = self.buckets.len() - 1;
        [
            (fingerprint.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask,
            (fingerprint.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) >> 32) as usize & mask,
        ]
    }

    /// The decoy's record number for a fingerprint: a stored record, chosen by a
    /// multiply-shift (no division, whose time can depend on its operands).
    fn decoy(&self, fingerprint: u64) -> u32 {
        let mixed = fingerprint.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ (fingerprint >> 31);
        ((u128::from(mixed) * self.records.len() as u128) >> 64) as u32
    }

    /// The record number of `prefix`, if stored. Not constant-time: for management
    /// and inserts, never for verifying.
    fn number_of(&self, prefix: &KeyPrefix) -> Option<u32> {
        let fingerprint = table_fingerprint(prefix);
        let in_buckets = self.homes(fingerprint).into_iter().find_map(|home| {
            let bucket = &self.buckets[home];
            (0..WAYS)
                .map(|way| bucket.slots[way])
                .find(|&slot| slot != FREE && self.records[slot as usize].prefix == *prefix)
        });
        in_buckets.or_else(|| {
            self.spilled
                .iter()
                .copied()
                .find(|&slot| self.records[slot as usize].prefix == *prefix)
        })
    }

    pub(crate) fn get(&self, prefix: &KeyPrefix) -> Option<&Arc<KeyRecord>> {
        self.number_of(prefix)
            .map(|slot| &self.records[slot as usize])
    }

    /// The record with `prefix`, else a decoy, found the same way (see the type's
    /// docs); `None` only when the table is empty.
    pub(crate) fn find(&self, prefix: &KeyPrefix) -> Option<Candidate> {
        if self.records.is_empty() {
            return None;
        }
        let fingerprint = table_fingerprint(prefix);
        let [first, second] = self.homes(fingerprint);
        // The record number of the slot holding this fingerprint (at most one does; a
        // bucket that is both homes shows it twice, which OR keeps whole), else the
        // decoy's: masks and ORs over all eight slots, no early exit, no branch.
        let (mut number, mut found) = (0u32, 0u64);
        for bucket in [&self.buckets[first], &self.buckets[second]] {
            for way in 0..WAYS {
                let same = is_zero(bucket.fingerprints[way] ^ fingerprint);
                number |= bucket.slots[way] & (same as u32).wrapping_neg();
                found |= same;
            }
        }
        number |= self.decoy(fingerprint) & ((found ^ 1) as u32).wrapping_neg();
        let record = &self.records[number as usize];
        let candidate = Candidate {
            record: record.clone(),
            hit: Choice::from(record.prefix.same_as(prefix) as u8),
        };
        if self.spilled.is_empty() {
            return Some(candidate);
        }
        Some(self.spilled_or(prefix, candidate))
    }

    /// With spilled records (never, with minted keys): the spilled record with
    /// `prefix` if the buckets held none. Only this rare case branches.
    #[cold]
    fn spilled_or(&self, prefix: &KeyPrefix, candidate: Candidate) -> Candidate {
        match self.get(prefix) {
            Some(record) if !bool::from(candidate.hit) => Candidate {
                record: record.clone(),
                hit: Choice::from(1),
            },
            _ => candidate,
        }
    }

    /// Stores `record` under its prefix, replacing the one there.
    pub(crate) fn insert(&mut self, record: Arc<KeyRecord>) {
        if let Some(slot) = self.number_of(&record.prefix) {
            self.records[slot as usize] = record;
            return;
        }
        let fingerprint = table_fingerprint(&record.prefix);
        let number = u32::try_from(self.records.len()).expect("fewer than 2^32 - 1 records");
        let taken = self.homes(fingerprint).into_iter().any(|home| {
            let bucket = &self.buckets[home];
            (0..WAYS)
                .any(|way| bucket.slots[way] != FREE && bucket.fingerprints[way] == fingerprint)
        });
        self.records.push(record);
        if taken {
            self.spilled.push(number);
        } else if self.records.len() * 2 > self.buckets.len() * WAYS
            || !self.place(fingerprint, number)
        {
            self.rebuild(self.buckets.len() * 2);
        }
    }

    /// Puts a record number in one of its buckets, displacing others to their other
    /// bucket as needed; `false` (with some entry left out) if that takes too long.
    fn place(&mut self, fingerprint: u64, number: u32) -> bool {
        let (mut fingerprint, mut number) = (fingerprint, number);
        let mut home = self.homes(fingerprint)[0];
        for _ in 0..MAX_KICKS {
            for candidate in self.homes(fingerprint) {
                if let Some(way) = self.buckets[candidate].free_slot() {
                    let bucket = &mut self.buckets[candidate];
                    bucket.fingerprints[way] = fingerprint;
                    bucket.slots[way] = number;
                    return true;
                }
            }
            // Both full: take a slot of one, and move its entry to its other bucket.
            self.kicks ^= self.kicks << 13;
            self.kicks ^= self.kicks >> 7;
            self.kicks ^= self.kicks << 17;
            let way = (self.kicks % WAYS as u64) as usize;
            let bucket = &mut self.buckets[home];
            std::mem::swap(&mut bucket.fingerprints[way], &mut fingerprint);
            std::mem::swap(&mut bucket.slots[way], &mut number);
            let [a, b] = self.homes(fingerprint);
            home = if a == home { b } else { a };
        }
        false
    }

    /// Places every record again in `buckets` buckets (more, until all fit).
    fn rebuild(&mut self, buckets: usize) {
        let mut count = buckets;
        'sizes: loop {
            self.buckets = vec![Bucket::default(); count].into_boxed_slice();
            for number in 0..self.records.len() as u32 {
                if self.spilled.contains(&number) {
                    continue;
                }
                let fingerprint = table_fingerprint(&self.records[number as usize].prefix);
                if !self.place(fingerprint, number) {
                    count *= 2;
                    continue 'sizes;
                }
            }
            return;
        }
    }
}

/// A prefix's fingerprint as the table stores it: never 0, which is a free slot's, so
/// a lookup needs no check that a slot whose fingerprint matches is in use.
fn table_fingerprint(prefix: &KeyPrefix) -> u64 {
    prefix.fingerprint() | 1
}

fn empty_buckets(capacity: usize) -> Box<[Bucket]> {
    // At most half the slots in use.
    let buckets = (capacity.max(4) * 2).div_ceil(WAYS).next_power_of_two();
    vec![Bucket::default(); buckets].into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ApiKey, KeyFormat, KeyMode};

    fn record() -> Arc<KeyRecord> {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        Arc::new(KeyRecord::builder(&key, "o").build())
    }

    #[test]
    fn finds_what_it_holds_and_a_decoy_otherwise() {
        let mut table = PrefixTable::default();
        let unknown = ApiKey::generate(KeyMode::Live).unwrap().prefix();
        assert!(table.find(&unknown).is_none());

        // Enough records to grow the table several times from its smallest size.
        let records: Vec<_> = (0..10_000).map(|_| record()).collect();
        for r in &records {
            table.insert(r.clone());
        }
        assert_eq!(table.len(), 10_000);
        for r in &records {
            let found = table.find(&r.prefix).expect("a candidate");
            assert!(bool::from(found.hit));
            assert_eq!(*found.record, **r);
            assert!(table.get(&r.prefix).is_some());
        }
        let miss = table.find(&unknown).expect("a decoy");
        assert!(!bool::from(miss.hit));
        assert_ne!(miss.record.prefix, unknown);
        assert!(table.get(&unknown).is_none());

        // Replacing keeps the count.
        let mut revoked = KeyRecord::clone(&records[0]);
        revoked.revoked_at = Some(std::time::SystemTime::now());
        table.insert(Arc::new(revoked.clone()));
        assert_eq!(table.len(), 10_000);
        assert_eq!(table.get(&revoked.prefix).map(|r| &**r), Some(&revoked));
    }

    #[test]
    fn a_prefix_whose_fingerprint_is_a_free_slots_gets_a_decoy() {
        // Digits 5000000060000000 and `e` fold to fingerprint 0, a free slot's.
        let zero: KeyPrefix = "pk_live_5000000060000000".parse().unwrap();
        assert_eq!(zero.fingerprint(), 0);
        let mut table = PrefixTable::default();
        let stored = record();
        table.insert(stored.clone());
        let found = table.find(&zero).expect("a decoy");
        assert!(!bool::from(found.hit));
        assert_eq!(found.record.prefix, stored.prefix);
    }

    #[test]
    fn prefixes_with_the_same_fingerprint_are_both_found() {
        // Another namespace, same mode and hex digits: the same fingerprint.
        let live = ApiKey::generate(KeyMode::Live).unwrap();
        let other = KeyFormat::new("sk").unwrap();
        let twin_text = format!("sk{}", &live.expose_secret()[2..]);
        let twin = ApiKey::parse(&twin_text, &other).unwrap();
        assert_eq!(live.prefix().fingerprint(), twin.prefix().fingerprint());

        let mut table = PrefixTable::default();
        let (a, b) = (
            Arc::new(KeyRecord::builder(&live, "o").build()),
            Arc::new(KeyRecord::builder(&twin, "o").build()),
        );
        table.insert(a.clone());
        table.insert(b.clone());
        for r in [&a, &b] {
            let found = table.find(&r.prefix).unwrap();
            assert!(bool::from(found.hit));
            assert_eq!(found.record.prefix, r.prefix);
            assert_eq!(table.get(&r.prefix).unwrap().prefix, r.prefix);
        }
        // Growing keeps the spilled record findable.
        for _ in 0..100 {
            table.insert(record());
        }
        assert!(bool::from(table.find(&b.prefix).unwrap().hit));
    }
}
