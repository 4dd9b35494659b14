//! The checks every [`QuotaStore`] runs: the lease operation of
//! [`QuotaBucket`](crate::store::QuotaBucket), done atomically in the store. Turned
//! into tests by [`quota_store_conformance!`](crate::quota_store_conformance).

use std::time::Duration;

use crate::{
    key::{ApiKey, KeyMode},
    policy::RateLimit,
    store::{LeaseRequest, QuotaStore},
};

/// A bucket no other check (or earlier run over the same server) uses.
fn fresh_bucket() -> String {
    let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
    format!("key:{}", key.prefix())
}

fn rate(text: &str) -> RateLimit {
    text.parse().expect("a rate")
}

async fn lease<Q: QuotaStore>(store: &Q, request: LeaseRequest<'_>) -> crate::store::Lease {
    store
        .lease(&request)
        .await
        .unwrap_or_else(|e| panic!("lease failed: {e}"))
}

/// Slices come out of one bucket: what one holder takes, the next does not get; an
/// empty bucket grants nothing and says when it has a token again.
pub async fn slices_come_out_of_one_bucket<Q: QuotaStore>(store: Q) {
    let bucket = fresh_bucket();
    let rate = rate("10/h");
    let first = lease(&store, LeaseRequest::new(&bucket, rate, 1).want(4)).await;
    assert_eq!(
        (first.granted(), first.remaining(), first.holders()),
        (4, 6, 1),
        "a fresh bucket is full and grants the slice asked for"
    );
    let second = lease(&store, LeaseRequest::new(&bucket, rate, 2).want(10)).await;
    assert_eq!(
        (second.granted(), second.remaining(), second.holders()),
        (6, 0, 2),
        "a second holder gets only what is left"
    );
    let third = lease(&store, LeaseRequest::new(&bucket, rate, 3).want(1)).await;
    assert_eq!(third.granted(), 0, "an empty bucket grants nothing");
    // Every token is held (by leases of a minute): the first lease's end, then one
    // token's refill.
    let token = Duration::from_secs(360);
    assert!(
        third.retry_after() > token && third.retry_after() <= token + Duration::from_secs(60),
        "retry_after waits for the first lease to end, then a token: {:?}",
        third.retry_after()
    );
    assert!(third.ask_after() >= third.retry_after());
    let other = lease(&store, LeaseRequest::new(&fresh_bucket(), rate, 3).want(1)).await;
    assert_eq!(other.granted(), 1, "buckets are apart");
}

/// A holder that renews gives back what it did not spend (never more than it was
/// granted), and the tokens it holds keep the bucket from refilling past them.
pub async fn unspent_tokens_go_back<Q: QuotaStore>(store: Q) {
    let bucket = fresh_bucket();
    let rate = rate("10/h");
    let held = Duration::from_secs(60);
    let take = |holder, want, unspent| {
        LeaseRequest::new(&bucket, rate, holder)
            .want(want)
            .unspent(unspent)
            .lease_for(held)
    };
    assert_eq!(lease(&store, take(1, 10, 0)).await.granted(), 10);
    let renewed = lease(&store, take(1, 3, 7)).await;
    assert_eq!(
        (renewed.granted(), renewed.remaining()),
        (3, 4),
        "7 unspent went back and 3 were granted again"
    );
    let greedy = lease(&store, take(1, 10, 99)).await;
    assert_eq!(
        greedy.granted(),
        7,
        "giving back more than was granted counts only what was granted"
    );
}

/// A lease holds its tokens until it ends; an expired one stops holding them.
pub async fn expired_leases_stop_holding<Q: QuotaStore>(store: Q) {
    let rate = rate("10/s");
    let (long, short) = (fresh_bucket(), fresh_bucket());
    let hold = |bucket, holder, ms| {
        LeaseRequest::new(bucket, rate, holder)
            .want(10)
            .lease_for(Duration::from_millis(ms))
    };
    assert_eq!(lease(&store, hold(&long, 1, 60_000)).await.granted(), 10);
    assert_eq!(lease(&store, hold(&short, 1, 150)).await.granted(), 10);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        lease(&store, hold(&long, 2, 1_000)).await.granted(),
        0,
        "a running lease keeps the bucket from refilling past it"
    );
    assert!(
        lease(&store, hold(&short, 2, 1_000)).await.granted() >= 2,
        "once the lease ended, the bucket refills"
    );
}

/// Leases at once from many holders grant no more than the bucket holds.
pub async fn concurrent_leases_grant_no_more_than_the_bucket<Q: QuotaStore>(store: Q) {
    let store = std::sync::Arc::new(store);
    let bucket = std::sync::Arc::new(fresh_bucket());
    let rate = rate("20/h");
    let tasks: Vec<_> = (0..50u64)
        .map(|holder| {
            let (store, bucket) = (store.clone(), bucket.clone());
            tokio::spawn(async move {
                lease(&*store, LeaseRequest::new(&bucket, rate, holder).want(1))
                    .await
                    .granted()
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.expect("lease task");
    }
    assert_eq!(granted, 20, "50 holders at once share a bucket of 20");
}

/// Generates one `#[test]` per quota check, in a module named `$name`, over the
/// [`QuotaStore`] that `$make` builds (an `impl Future` of the store, or of an
/// `Option` of it: `None` skips the check, as in `key_store_conformance!`).
#[macro_export]
macro_rules! quota_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::quota_store_conformance!(@tests $make;
                slices_come_out_of_one_bucket,
                unspent_tokens_go_back,
                expired_leases_stop_holding,
                concurrent_leases_grant_no_more_than_the_bucket,
            );
        }
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::store::conformance::run(async {
                    let made = $make.await;
                    if let Some(store) = $crate::store::conformance::Available::available(made) {
                        $crate::store::conformance::quota::$check(store).await;
                    }
                })
            }
        )*
    };
}
