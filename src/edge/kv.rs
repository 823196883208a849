//! The session store on Workers KV.

use std::cell::OnceCell;

use worker::kv::KvStore;
use worker::Env;

use crate::store::{Entry, ListPage, Listed, Store, StoreError};

pub const BINDING: &str = "SESSIONS";

/// KV reads may be served from the edge cache for this long (the minimum KV allows):
/// it bounds how long a revoked session can still be read elsewhere.
const READ_CACHE_TTL: u64 = 30;

/// The namespace, bound on first use: most signed-in requests are answered from the
/// isolate's session cache and never touch KV.
pub struct KvSessions<'a> {
    env: &'a Env,
    store: OnceCell<KvStore>,
}

impl<'a> KvSessions<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self {
            env,
            store: OnceCell::new(),
        }
    }

    fn kv(&self) -> Result<&KvStore, StoreError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = self
            .env
            .kv(BINDING)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(self.store.get_or_init(|| store))
    }
}

impl Store for KvSessions<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.kv()?
            .get(key)
            .cache_ttl(READ_CACHE_TTL)
            .text()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn put(&self, key: &str, entry: Entry<'_>) -> Result<(), StoreError> {
        let error = |e: worker::kv::KvError| StoreError(e.to_string());
        let mut put = self
            .kv()?
            .put(key, entry.value)
            .map_err(error)?
            .expiration_ttl(entry.ttl.max(60));
        if let Some(metadata) = entry.metadata {
            let value: serde_json::Value =
                serde_json::from_str(metadata).map_err(|e| StoreError(e.to_string()))?;
            put = put.metadata(value).map_err(error)?;
        }
        put.execute().await.map_err(error)
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, StoreError> {
        let mut list = self.kv()?.list().prefix(prefix.to_string());
        if let Some(cursor) = cursor {
            list = list.cursor(cursor.to_string());
        }
        let response = list
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(ListPage {
            keys: response
                .keys
                .into_iter()
                .map(|k| Listed {
                    name: k.name,
                    metadata: k.metadata.map(|m| m.to_string()),
                })
                .collect(),
            cursor: if response.list_complete {
                None
            } else {
                response.cursor
            },
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.kv()?
            .delete(key)
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}
