//! The checks of a store's per-key usage ([`KeyStore::add_usage`] and
//! [`KeyStore::usage`]), run by [`key_store_conformance!`](crate::key_store_conformance)
//! with the rest. A store that does not [keep usage](KeyStore::keeps_usage) must say so
//! by refusing to add any.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    key::{ApiKey, KeyMode},
    store::{
        usage_hour, usage_hour_start, KeyId, KeyRecord, KeyStore, UsageBatch, UsageCounts,
        UsageDelta, UsageOutcome,
    },
};

/// A key id no other check (or earlier run over the same server) uses.
fn fresh_id() -> KeyId {
    let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
    KeyRecord::builder(&key, "usage").build().id
}

/// The hour `back` hours before now.
fn hours_ago(back: u64) -> u64 {
    usage_hour(SystemTime::now()) - back
}

/// Hours kept by the checks: the last thousand.
fn keep_from() -> u64 {
    hours_ago(1000)
}

fn delta(key: &KeyId, hour: u64, counts: UsageCounts) -> UsageDelta {
    UsageDelta {
        key: key.clone(),
        hour,
        counts,
    }
}

async fn add<S: KeyStore + ?Sized>(store: &S, deltas: Vec<UsageDelta>, keep_from: u64) {
    store
        .add_usage(&UsageBatch { deltas, keep_from })
        .await
        .unwrap_or_else(|e| panic!("add_usage failed: {e}"));
}

/// The key's counts by hour over hours `first..end`.
async fn read<S: KeyStore + ?Sized>(
    store: &S,
    key: &KeyId,
    first: u64,
    end: u64,
) -> Vec<(u64, UsageCounts)> {
    store
        .usage(key, usage_hour_start(first), usage_hour_start(end))
        .await
        .unwrap_or_else(|e| panic!("usage failed: {e}"))
        .into_iter()
        .map(|bucket| (usage_hour(bucket.start), bucket.counts))
        .filter(|(_, counts)| !counts.is_empty())
        .collect()
}

/// Counts add up per key and hour, every outcome apart; a read returns exactly the
/// hours that start in its range, oldest first. A store that keeps no usage refuses
/// to add any.
pub async fn usage_adds_up_by_key_and_hour<S: KeyStore>(store: S) {
    let (a, b) = (fresh_id(), fresh_id());
    let (h1, h2) = (hours_ago(5), hours_ago(4));
    let mut every = UsageCounts::default();
    for (n, outcome) in UsageOutcome::ALL.into_iter().enumerate() {
        every.add(outcome, n as u64 + 1);
    }
    let batch = UsageBatch {
        deltas: vec![delta(&a, h1, every)],
        keep_from: keep_from(),
    };
    if !store.keeps_usage() {
        assert!(
            store.add_usage(&batch).await.is_err(),
            "a store that keeps no usage must refuse to add it, not drop it"
        );
        return;
    }
    add(&store, batch.deltas, batch.keep_from).await;
    let admitted = UsageCounts::default().with(UsageOutcome::Admitted, 3);
    add(
        &store,
        vec![
            delta(&a, h1, every),
            delta(&a, h2, admitted),
            delta(&b, h1, admitted),
        ],
        keep_from(),
    )
    .await;
    let mut twice = every;
    twice.add_all(&every);
    assert_eq!(
        read(&store, &a, h1, h2 + 1).await,
        vec![(h1, twice), (h2, admitted)],
        "two adds to one hour sum, every outcome on its own counter; hours apart"
    );
    assert_eq!(
        read(&store, &a, h2, h2 + 1).await,
        vec![(h2, admitted)],
        "from is inclusive"
    );
    assert_eq!(
        read(&store, &a, h1, h2).await,
        vec![(h1, twice)],
        "to is exclusive"
    );
    assert_eq!(
        read(&store, &b, h1, h2 + 1).await,
        vec![(h1, admitted)],
        "keys apart"
    );
    assert!(
        read(&store, &fresh_id(), h1, h2 + 1).await.is_empty(),
        "an unknown key has none"
    );
    // A range that starts within an hour holds the hours that start in it.
    let mid_h1 = usage_hour_start(h1) + Duration::from_secs(60);
    let within = store
        .usage(&a, mid_h1, usage_hour_start(h2 + 1))
        .await
        .expect("usage");
    assert_eq!(
        within.len(),
        1,
        "the hour that started before `from` is not in it"
    );
    assert_eq!(usage_hour(within[0].start), h2);
}

/// Adds from many tasks at once (each on a connection of its own where the store has
/// a pool) to the same key and hour all land: nothing is lost to a race.
pub async fn usage_adds_from_concurrent_writers_all_land<S: KeyStore>(store: S) {
    let store: Arc<dyn KeyStore> = Arc::new(store);
    concurrent_adds(vec![store.clone(), store]).await;
}

/// [`usage_adds_from_concurrent_writers_all_land`] over two handles of one store (two
/// pools, two clients: as two instances write), half the writers on each. Not in
/// [`key_store_conformance!`](crate::key_store_conformance), which makes one handle
/// per check: call it with two.
pub async fn usage_adds_from_two_handles_all_land<S: KeyStore>(a: S, b: S) {
    concurrent_adds(vec![Arc::new(a), Arc::new(b)]).await;
}

async fn concurrent_adds(handles: Vec<Arc<dyn KeyStore>>) {
    const TASKS: u64 = 8;
    const EACH: u64 = 20;
    if !handles[0].keeps_usage() {
        return;
    }
    let key = fresh_id();
    let hour = hours_ago(2);
    let one = UsageCounts::default()
        .with(UsageOutcome::Admitted, 1)
        .with(UsageOutcome::RateLimited, 2);
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let (store, key) = (handles[n as usize % handles.len()].clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..EACH {
                    add(&*store, vec![delta(&key, hour, one)], keep_from()).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a concurrent writer failed");
    }
    let expected = UsageCounts::default()
        .with(UsageOutcome::Admitted, TASKS * EACH)
        .with(UsageOutcome::RateLimited, 2 * TASKS * EACH);
    for store in &handles {
        assert_eq!(
            read(&**store, &key, hour, hour + 1).await,
            vec![(hour, expected)],
            "every concurrent add landed, and every handle reads them all"
        );
    }
}

/// Hours before a batch's `keep_from` are gone once it is added, and never read
/// back; later hours stay.
///
/// This shortens the retention of the whole store to 29 hours: run it where no other
/// data needs older hours (the suite's other checks use the last few hours), and, for
/// a store that remembers the retention (the Redis store's `keep_from`, only ever
/// raised), in a namespace of its own per run.
pub async fn usage_past_retention_is_dropped<S: KeyStore>(store: S) {
    if !store.keeps_usage() {
        return;
    }
    let key = fresh_id();
    let (old, recent) = (hours_ago(30), hours_ago(3));
    let admitted = UsageCounts::default().with(UsageOutcome::Admitted, 1);
    add(
        &store,
        vec![delta(&key, old, admitted), delta(&key, recent, admitted)],
        keep_from(),
    )
    .await;
    assert_eq!(read(&store, &key, old, recent + 1).await.len(), 2);
    // Another key's batch with a retention that ends between the two hours.
    add(&store, vec![delta(&fresh_id(), recent, admitted)], old + 1).await;
    assert_eq!(
        read(&store, &key, old, recent + 1).await,
        vec![(recent, admitted)],
        "the hour past the retention is dropped, the recent one stays"
    );
    // A delta for an hour already past the retention is not kept either.
    add(&store, vec![delta(&key, old, admitted)], old + 1).await;
    assert_eq!(
        read(&store, &key, old, old + 1).await,
        vec![],
        "not added back"
    );
}
