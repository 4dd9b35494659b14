use std::{future::Future, time::Duration};

use super::{Result, StoreError};

/// How long a durable store or a cache waits for its backend by default.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one backend call, bounded: past `limit` it is abandoned and the answer is
/// [`StoreError::Timeout`] (the layer then answers 503). A timeout or a backend
/// failure is counted (`tower_api_key_store_errors_total`).
pub(crate) async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let answer = tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(StoreError::Timeout));
    match &answer {
        Err(StoreError::Timeout) => crate::telemetry::store_error("timeout"),
        Err(StoreError::Backend(_)) => crate::telemetry::store_error("backend"),
        _ => {}
    }
    answer
}
