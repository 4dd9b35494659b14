//! The in-memory store against the conformance suite.

use tower_api_key::store::InMemoryKeyStore;

tower_api_key::key_store_conformance!(in_memory, async { InMemoryKeyStore::new() });
