//! The key-value store sessions live in. The Worker implements it on Workers KV;
//! [`MemoryStore`] serves the native tests.

/// Raw string records with a time to live. Callers own the serialization.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// `ttl` in seconds (Workers KV accepts 60 or more).
    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
pub use memory::MemoryStore;

#[cfg(test)]
mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// An in-memory store that counts operations, for tests.
    #[derive(Default)]
    pub struct MemoryStore {
        pub records: RefCell<HashMap<String, (String, u64)>>,
        pub reads: RefCell<u32>,
        pub writes: RefCell<u32>,
        pub deletes: RefCell<u32>,
    }

    impl Store for MemoryStore {
        async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
            *self.reads.borrow_mut() += 1;
            Ok(self.records.borrow().get(key).map(|(v, _)| v.clone()))
        }

        async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError> {
            *self.writes.borrow_mut() += 1;
            self.records
                .borrow_mut()
                .insert(key.into(), (value.into(), ttl));
            Ok(())
        }

        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            *self.deletes.borrow_mut() += 1;
            self.records.borrow_mut().remove(key);
            Ok(())
        }
    }
}
