//! The in-memory store against the conformance suites (records and quotas).

use tower_api_key::store::InMemoryKeyStore;

tower_api_key::key_store_conformance!(in_memory, async { InMemoryKeyStore::new() });
tower_api_key::quota_store_conformance!(in_memory_quotas, async { InMemoryKeyStore::new() });
