//! The conformance suite every [`KeyStore`] runs: one set of checks for the contract
//! in the [module docs](super), shared by the in-memory, SQLite, PostgreSQL and Redis
//! stores and the cache — and by yours.
//!
//! Each check is a public `async fn` taking the store; [`key_store_conformance!`]
//! turns all of them into `#[test]` functions in a module of your test crate:
//!
//! ```
//! use tower_api_key::store::InMemoryKeyStore;
//!
//! tower_api_key::key_store_conformance!(in_memory, async { InMemoryKeyStore::new() });
//! # fn main() {}
//! ```
//!
//! The expression is evaluated once per check, inside a multi-threaded tokio runtime,
//! and may build a fresh store or connect to a shared database: every check works
//! under owners and keys of its own (random), so checks can run in parallel over one
//! database and leave other data alone. A check panics, with a message that says which
//! part of the contract failed, when the store breaks it.
//!
//! Stores that also keep shared rate-limit quotas run the [`quota`] checks too, with
//! [`quota_store_conformance!`](crate::quota_store_conformance).
//!
//! Behind the `test-util` feature.
//!
//! [`key_store_conformance!`]: crate::key_store_conformance

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime},
};

pub mod quota;
mod usage;

pub use usage::{
    usage_adds_from_concurrent_writers_all_land, usage_adds_from_two_handles_all_land,
    usage_adds_up_by_key_and_hour, usage_past_retention_is_dropped,
};

use crate::{
    key::{ApiKey, KeyHash, KeyMode},
    policy::{RateLimit, Restrictions},
    store::{InsertRule, KeyId, KeyRecord, KeyStore, StoreError},
};

/// Runs a check on a fresh multi-threaded tokio runtime (two workers), as the
/// generated tests do.
pub fn run<F: Future>(check: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance suite")
        .block_on(check)
}

/// What the store expression of [`key_store_conformance!`] may yield: a store, or
/// `Option` of one — `None` skips the check (a backend server that is not there on a
/// laptop; print why when you return it).
///
/// [`key_store_conformance!`]: crate::key_store_conformance
pub trait Available {
    /// The store under test.
    type Store: KeyStore;
    /// The store, or `None` to skip.
    fn available(self) -> Option<Self::Store>;
}

impl<S: KeyStore> Available for S {
    type Store = S;
    fn available(self) -> Option<S> {
        Some(self)
    }
}

impl<S: KeyStore> Available for Option<S> {
    type Store = S;
    fn available(self) -> Option<S> {
        self
    }
}

/// Generates one `#[test]` per conformance check, in a module named `$name`, over the
/// store that `$make` builds: an expression of type `impl Future<Output = S>` where
/// `S` is a [`KeyStore`] or an `Option` of one ([`Available`]). See the
/// [`conformance`](crate::store::conformance) module.
///
/// `key_store_conformance!(run: $make)` instead runs every check at once, one after
/// the other, where it is written (in `main`, an example, a doc-test), each on a
/// runtime of its own as [`run`] makes; it panics at the first check the store fails.
#[macro_export]
macro_rules! key_store_conformance {
    (run: $make:expr) => {
        $crate::key_store_conformance!(@checks inline $make)
    };
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::key_store_conformance!(@checks tests $make);
        }
    };
    (@checks $how:ident $make:expr) => {
        $crate::key_store_conformance! {@$how $make;
            insert_then_find_round_trips_every_field,
            unknown_prefix_is_none,
            duplicate_id_or_prefix_is_refused,
            revoke_is_immediate_and_keeps_the_earliest_time,
            revoke_unknown_id_is_none,
            list_by_owner_is_oldest_first_and_complete,
            last_use_keeps_the_latest,
            metadata_entries_are_set_and_removed_one_by_one,
            metadata_writes_to_different_entries_all_land,
            one_active_key_rule,
            one_active_key_is_atomic_under_concurrency,
            replace_rotates_atomically,
            replace_is_atomic_under_concurrency,
            concurrent_inserts_and_lookups,
            usage_adds_up_by_key_and_hour,
            usage_adds_from_concurrent_writers_all_land,
            usage_past_retention_is_dropped,
        }
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::key_store_conformance!(@one $make; $check);
            }
        )*
    };
    (@inline $make:expr; $($check:ident),* $(,)?) => {{
        $( $crate::key_store_conformance!(@one $make; $check); )*
    }};
    (@one $make:expr; $check:ident) => {
        $crate::store::conformance::run(async {
            let made = $make.await;
            if let Some(store) = $crate::store::conformance::Available::available(made) {
                $crate::store::conformance::$check(store).await;
            }
        })
    };
}

/// An owner no other check (or earlier run over the same database) uses.
fn fresh_owner() -> String {
    let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
    format!("conformance-{}", &key.prefix().as_str()[8..])
}

fn fresh_key(mode: KeyMode) -> ApiKey {
    ApiKey::generate(mode).expect("OS random source")
}

/// A record as a store gets it: timestamps with nanoseconds, which must come back
/// exactly.
fn record(owner: &str) -> KeyRecord {
    KeyRecord::builder(&fresh_key(KeyMode::Live), owner)
        .created_at(at(0))
        .build()
}

/// A fixed instant with a nanosecond part, `offset_secs` after it.
fn at(offset_secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000 + offset_secs, 123_456_789)
}

async fn insert(store: &impl KeyStore, record: &KeyRecord) {
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .unwrap_or_else(|e| panic!("insert failed: {e}"));
}

async fn find(store: &impl KeyStore, record: &KeyRecord) -> KeyRecord {
    let found = store
        .find_by_prefix(&record.prefix)
        .await
        .unwrap_or_else(|e| panic!("find_by_prefix failed: {e}"))
        .unwrap_or_else(|| panic!("find_by_prefix: an inserted record was not found"));
    KeyRecord::clone(&found)
}

/// A record with every field set comes back equal, by prefix and in its owner's list;
/// `lookup_now`, when the store answers it, agrees.
pub async fn insert_then_find_round_trips_every_field<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let key = fresh_key(KeyMode::Test);
    let full = KeyRecord::builder(&key, &owner)
        .name("ci – deploys ✓")
        .scopes(["leads:read", "signals:write"])
        .created_at(at(0))
        .expires_at(at(86_400))
        .restrictions(
            Restrictions::default()
                .allow_ip("10.0.0.0/8".parse().expect("cidr"))
                .allow_ip("2001:db8::/32".parse().expect("cidr"))
                .allow_origin("https://*.example.com".parse().expect("origin"))
                .allow_route("GET /api/leads/*".parse().expect("route")),
        )
        .rate_limit("100/10s".parse::<RateLimit>().expect("rate"))
        .last_used_at(at(60))
        .metadata("hook.webhook.error", "The \"app\" could not be made ✗")
        .metadata("order", "ord_42")
        .build();
    insert(&store, &full).await;
    assert_eq!(find(&store, &full).await, full, "find_by_prefix round trip");
    if let Some(now) = store.lookup_now(&full.prefix) {
        let now = now
            .expect("lookup_now failed")
            .into_found()
            .expect("found now");
        assert_eq!(*now, full, "lookup_now agrees with find_by_prefix");
    }
    let listed = store.list_by_owner(&owner).await.expect("list_by_owner");
    assert_eq!(listed, vec![full.clone()], "list_by_owner round trip");
    assert_eq!(listed[0].hash, key.hash(), "the hash is stored, exactly");

    // The plainest record round-trips too.
    let plain = KeyRecord::builder(&fresh_key(KeyMode::Live), fresh_owner()).build();
    insert(&store, &plain).await;
    assert_eq!(
        find(&store, &plain).await,
        plain,
        "a record with no options"
    );
}

/// A prefix never inserted is `Ok(None)`, never an error.
pub async fn unknown_prefix_is_none<S: KeyStore>(store: S) {
    let prefix = fresh_key(KeyMode::Live).prefix();
    let found = store.find_by_prefix(&prefix).await.expect("find_by_prefix");
    assert!(found.is_none(), "an unknown prefix must be Ok(None)");
}

/// The same id, or the same prefix under another id, is `StoreError::Duplicate`, and
/// the first record is untouched.
pub async fn duplicate_id_or_prefix_is_refused<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let first = record(&owner);
    insert(&store, &first).await;
    let again = store.insert(first.clone(), InsertRule::Unconditional).await;
    assert!(
        matches!(again, Err(StoreError::Duplicate)),
        "the same record twice must be Duplicate, got {again:?}"
    );
    let same_prefix = KeyRecord::from_parts(
        KeyId::new(format!("{}-other", first.id)),
        first.prefix,
        KeyHash::from_bytes([7; 32]),
        &owner,
    )
    .build();
    let clash = store.insert(same_prefix, InsertRule::Unconditional).await;
    assert!(
        matches!(clash, Err(StoreError::Duplicate)),
        "a taken prefix must be Duplicate, got {clash:?}"
    );
    let other = fresh_key(KeyMode::Live);
    let same_id =
        KeyRecord::from_parts(first.id.clone(), other.prefix(), other.hash(), &owner).build();
    let clash = store.insert(same_id, InsertRule::Unconditional).await;
    assert!(
        matches!(clash, Err(StoreError::Duplicate)),
        "a taken id must be Duplicate, got {clash:?}"
    );
    assert_eq!(
        find(&store, &first).await,
        first,
        "the first record is untouched"
    );
    assert_eq!(
        store.list_by_owner(&owner).await.expect("list").len(),
        1,
        "refused inserts leave nothing behind"
    );
}

/// Revoking returns the record as stored and shows at once in lookups; revoking again
/// keeps the earliest time; a future time schedules it.
pub async fn revoke_is_immediate_and_keeps_the_earliest_time<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let now_key = record(&owner);
    insert(&store, &now_key).await;
    let revoked = store
        .revoke(&now_key.id, at(10))
        .await
        .expect("revoke")
        .expect("revoke returns the record");
    assert_eq!(
        revoked.revoked_at,
        Some(at(10)),
        "revoke returns the record as stored"
    );
    assert_eq!(
        find(&store, &now_key).await.revoked_at,
        Some(at(10)),
        "a revocation shows in the next lookup"
    );
    let later = store
        .revoke(&now_key.id, at(20))
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(
        later.revoked_at,
        Some(at(10)),
        "a later revoke keeps the earlier time"
    );
    let earlier = store
        .revoke(&now_key.id, at(5))
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(
        earlier.revoked_at,
        Some(at(5)),
        "an earlier revoke moves it earlier"
    );

    let scheduled = record(&owner);
    insert(&store, &scheduled).await;
    store
        .revoke(&scheduled.id, at(3600))
        .await
        .expect("revoke")
        .expect("found");
    let found = find(&store, &scheduled).await;
    assert!(
        found.works_at(at(3599)) && !found.works_at(at(3600)),
        "a scheduled revocation takes effect at its time"
    );
}

/// Revoking an id that does not exist is `Ok(None)`.
pub async fn revoke_unknown_id_is_none<S: KeyStore>(store: S) {
    let missing = KeyId::new(format!("key_missing_{}", fresh_owner()));
    let outcome = store.revoke(&missing, at(0)).await.expect("revoke");
    assert!(outcome.is_none(), "revoking an unknown id must be Ok(None)");
}

/// An owner's list holds all of its records (revoked and expired too), oldest first,
/// and nobody else's.
pub async fn list_by_owner_is_oldest_first_and_complete<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let mut expected = Vec::new();
    // Inserted out of order.
    for offset in [30, 10, 20] {
        let record = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
            .created_at(at(offset))
            .expires_at((offset == 20).then(|| at(21)))
            .build();
        insert(&store, &record).await;
        expected.push(record);
    }
    let revoked = store
        .revoke(&expected[0].id, at(40))
        .await
        .expect("revoke")
        .expect("found");
    expected[0] = revoked;
    insert(&store, &record(&fresh_owner())).await;
    expected.sort_by_key(|r| r.created_at);
    let listed = store.list_by_owner(&owner).await.expect("list_by_owner");
    assert_eq!(listed, expected, "all of the owner's records, oldest first");
    let nobody = store.list_by_owner(&fresh_owner()).await.expect("list");
    assert!(nobody.is_empty(), "an owner without keys has an empty list");
}

/// The latest last use wins, whatever order the writes come in, as
/// `list_by_owner` shows (lookups by prefix may lag behind: a cache serves the record
/// it holds); an unknown id is not an error.
pub async fn last_use_keeps_the_latest<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let record = record(&owner);
    insert(&store, &record).await;
    for at_secs in [50, 40] {
        store
            .record_last_use(&record.id, at(at_secs))
            .await
            .expect("record_last_use");
    }
    assert_eq!(last_used(&store, &owner).await, Some(at(50)), "later wins");
    store
        .record_last_use(&record.id, at(70))
        .await
        .expect("record_last_use");
    assert_eq!(last_used(&store, &owner).await, Some(at(70)));
    store
        .record_last_use(&KeyId::new(format!("key_missing_{}", fresh_owner())), at(1))
        .await
        .expect("a last use for an unknown id is not an error");
}

/// The stored last use of the owner's (only) key.
async fn last_used(store: &impl KeyStore, owner: &str) -> Option<SystemTime> {
    let listed = store.list_by_owner(owner).await.expect("list_by_owner");
    listed.first().and_then(|r| r.last_used_at)
}

/// The owner's (only) key's stored metadata.
async fn metadata(store: &impl KeyStore, owner: &str) -> BTreeMap<String, String> {
    let listed = store.list_by_owner(owner).await.expect("list_by_owner");
    listed
        .first()
        .map(|r| r.metadata.clone())
        .unwrap_or_default()
}

/// `set_metadata` sets, overwrites and removes one entry and leaves the rest of the
/// record alone, as `list_by_owner` shows at once; any text round-trips (quotes, JSON
/// look-alikes, non-ASCII); removing an absent entry is fine; an unknown id is
/// `NotFound`.
pub async fn metadata_entries_are_set_and_removed_one_by_one<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let record = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
        .created_at(at(0))
        .metadata("kept", "as inserted")
        .build();
    insert(&store, &record).await;
    let set = |name: &'static str, value: Option<&'static str>| {
        let store = &store;
        let id = record.id.clone();
        async move {
            store
                .set_metadata(&id, name, value)
                .await
                .unwrap_or_else(|e| panic!("set_metadata({name:?}, {value:?}) failed: {e}"));
        }
    };
    set("hook.webhook.error", Some("first")).await;
    set(
        "hook.webhook.error",
        Some(r#"second: "quoted" \ {"a":null} ✓"#),
    )
    .await;
    set("1", Some("")).await;
    set("absent", None).await;
    let expected = BTreeMap::from([
        ("1".to_owned(), String::new()),
        (
            "hook.webhook.error".to_owned(),
            r#"second: "quoted" \ {"a":null} ✓"#.to_owned(),
        ),
        ("kept".to_owned(), "as inserted".to_owned()),
    ]);
    assert_eq!(
        metadata(&store, &owner).await,
        expected,
        "set and overwritten"
    );
    set("hook.webhook.error", None).await;
    set("1", None).await;
    let stored = store.list_by_owner(&owner).await.expect("list_by_owner");
    assert_eq!(
        stored,
        vec![record.clone()],
        "removed again; no other field or entry changed"
    );
    let unknown = KeyId::new(format!("key_missing_{}", fresh_owner()));
    assert!(
        matches!(
            store.set_metadata(&unknown, "a", Some("b")).await,
            Err(StoreError::NotFound)
        ),
        "metadata for an unknown id is NotFound"
    );
}

/// Concurrent writes to different entries of one record, and a revocation among
/// them, all take effect: no write is lost to another's read-modify-write.
pub async fn metadata_writes_to_different_entries_all_land<S: KeyStore>(store: S) {
    const WRITERS: usize = 16;
    let store = Arc::new(store);
    let owner = fresh_owner();
    let record = record(&owner);
    insert(&*store, &record).await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            let id = record.id.clone();
            tokio::spawn(async move {
                let value = i.to_string();
                store
                    .set_metadata(&id, &format!("entry.{i}"), Some(&value))
                    .await
            })
        })
        .collect();
    store
        .revoke(&record.id, at(10))
        .await
        .expect("revoke")
        .expect("the record exists");
    for writer in writers {
        writer
            .await
            .expect("a writer panicked")
            .expect("set_metadata failed");
    }
    let stored = store.list_by_owner(&owner).await.expect("list_by_owner");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].revoked_at, Some(at(10)), "the revocation is kept");
    let expected: BTreeMap<String, String> = (0..WRITERS)
        .map(|i| (format!("entry.{i}"), i.to_string()))
        .collect();
    assert_eq!(stored[0].metadata, expected, "every entry landed");
}

/// `NoOtherActiveKey`: refused while the owner has an active key; other owners,
/// expired keys and scheduled revocations do not count.
pub async fn one_active_key_rule<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let first = record(&owner);
    store
        .insert(first.clone(), InsertRule::NoOtherActiveKey)
        .await
        .expect("the first key");
    let second = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
        .created_at(at(100))
        .build();
    let refused = store
        .insert(second.clone(), InsertRule::NoOtherActiveKey)
        .await;
    assert!(
        matches!(refused, Err(StoreError::ActiveKeyExists)),
        "a second active key must be ActiveKeyExists, got {refused:?}"
    );
    assert!(
        store
            .find_by_prefix(&second.prefix)
            .await
            .expect("find")
            .is_none(),
        "a refused insert leaves nothing behind"
    );
    store
        .insert(record(&fresh_owner()), InsertRule::NoOtherActiveKey)
        .await
        .expect("another owner is unaffected");

    // A revocation scheduled in the future frees the slot.
    store.revoke(&first.id, at(3600)).await.expect("revoke");
    store
        .insert(second.clone(), InsertRule::NoOtherActiveKey)
        .await
        .expect("a scheduled revocation frees the slot");

    // An expired key does not count either.
    let owner = fresh_owner();
    let expiring = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
        .created_at(at(0))
        .expires_at(at(50))
        .build();
    insert(&store, &expiring).await;
    let before = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
        .created_at(at(49))
        .build();
    assert!(
        matches!(
            store.insert(before, InsertRule::NoOtherActiveKey).await,
            Err(StoreError::ActiveKeyExists)
        ),
        "a key not yet expired still counts"
    );
    let after = KeyRecord::builder(&fresh_key(KeyMode::Live), &owner)
        .created_at(at(50))
        .build();
    store
        .insert(after, InsertRule::NoOtherActiveKey)
        .await
        .expect("an expired key does not count");
}

/// Many concurrent `NoOtherActiveKey` inserts for one owner: exactly one succeeds,
/// every other one is `ActiveKeyExists`.
pub async fn one_active_key_is_atomic_under_concurrency<S: KeyStore>(store: S) {
    const RACERS: usize = 16;
    let store = Arc::new(store);
    let owner = fresh_owner();
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let record = record(&owner);
            tokio::spawn(async move { store.insert(record, InsertRule::NoOtherActiveKey).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("insert task") {
            Ok(()) => won += 1,
            Err(StoreError::ActiveKeyExists) => {}
            Err(other) => panic!("a racing insert must win or be ActiveKeyExists, got {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one of {RACERS} racing inserts wins");
    let listed = store.list_by_owner(&owner).await.expect("list");
    assert_eq!(listed.len(), 1, "and only its record is stored");
}

/// `Replace`: schedules the old key's revocation and inserts the new one in one step;
/// refuses another owner's key, an unknown key and a revoked one, leaving nothing
/// behind.
pub async fn replace_rotates_atomically<S: KeyStore>(store: S) {
    let owner = fresh_owner();
    let old = record(&owner);
    insert(&store, &old).await;
    let rule = |revoke_at| InsertRule::Replace {
        old: old.id.clone(),
        revoke_at,
    };

    let stranger = record(&fresh_owner());
    let refused = store.insert(stranger.clone(), rule(at(10))).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound)),
        "replacing another owner's key must be NotFound, got {refused:?}"
    );
    let unknown = store
        .insert(
            record(&owner),
            InsertRule::Replace {
                old: KeyId::new(format!("key_missing_{}", fresh_owner())),
                revoke_at: at(10),
            },
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound)),
        "replacing an unknown key must be NotFound, got {unknown:?}"
    );
    assert!(
        store
            .find_by_prefix(&stranger.prefix)
            .await
            .expect("find")
            .is_none(),
        "a refused replace leaves nothing behind"
    );
    assert_eq!(
        find(&store, &old).await.revoked_at,
        None,
        "nor touches the old key"
    );

    let new = record(&owner);
    store
        .insert(new.clone(), rule(at(600)))
        .await
        .expect("rotate");
    assert_eq!(
        find(&store, &old).await.revoked_at,
        Some(at(600)),
        "old key scheduled"
    );
    assert_eq!(find(&store, &new).await, new, "new key stored");

    let again = store.insert(record(&owner), rule(at(700))).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyRevoked)),
        "replacing a key already being replaced must be AlreadyRevoked, got {again:?}"
    );
    assert_eq!(
        find(&store, &old).await.revoked_at,
        Some(at(600)),
        "first rotation kept"
    );
    assert_eq!(store.list_by_owner(&owner).await.expect("list").len(), 2);
}

/// Concurrent rotations of one key: exactly one succeeds.
pub async fn replace_is_atomic_under_concurrency<S: KeyStore>(store: S) {
    const RACERS: usize = 8;
    let store = Arc::new(store);
    let owner = fresh_owner();
    let old = record(&owner);
    insert(&*store, &old).await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let record = record(&owner);
            let rule = InsertRule::Replace {
                old: old.id.clone(),
                revoke_at: at(600),
            };
            tokio::spawn(async move { store.insert(record, rule).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("rotate task") {
            Ok(()) => won += 1,
            Err(StoreError::AlreadyRevoked) => {}
            Err(other) => {
                panic!("a racing rotation must win or be AlreadyRevoked, got {other:?}")
            }
        }
    }
    assert_eq!(won, 1, "exactly one of {RACERS} racing rotations wins");
    assert_eq!(store.list_by_owner(&owner).await.expect("list").len(), 2);
}

/// Inserts and lookups from many tasks at once all land and all find their record.
pub async fn concurrent_inserts_and_lookups<S: KeyStore>(store: S) {
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let store = Arc::new(store);
    let owner = fresh_owner();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let record = record(&owner);
                    insert(&*store, &record).await;
                    assert_eq!(find(&*store, &record).await, record);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a concurrent task failed");
    }
    let listed = store.list_by_owner(&owner).await.expect("list");
    assert_eq!(listed.len(), TASKS * EACH, "every insert landed");
}
