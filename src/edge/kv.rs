//! The session store on Workers KV.

use worker::kv::KvStore;

use crate::session::{Store, StoreError};

pub const BINDING: &str = "SESSIONS";

/// KV reads may be served from the edge cache for this long (the minimum KV allows):
/// it bounds how long a revoked session can still be read elsewhere.
const READ_CACHE_TTL: u64 = 30;

pub struct KvSessions(pub KvStore);

impl Store for KvSessions {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0
            .get(key)
            .cache_ttl(READ_CACHE_TTL)
            .text()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError> {
        self.0
            .put(key, value)
            .map_err(|e| StoreError(e.to_string()))?
            .expiration_ttl(ttl.max(60))
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}
