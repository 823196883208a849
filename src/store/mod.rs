//! The key-value store sessions live in. The Worker implements it on Workers KV;
//! `MemoryStore` serves the native tests.

pub mod keys;

use std::future::Future;
use std::task::Poll;

/// Raw string records with a time to live and optional metadata (returned by `list`
/// without reading the values). Callers own the serialization.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put(&self, key: &str, entry: Entry<'_>) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// One page of the keys starting with `prefix`, with their metadata.
    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, StoreError>;

    /// Writes several keys, in order, stopping at the first failure. A store with a bulk
    /// operation (the owner's tools over `wrangler kv bulk`) writes them in one.
    async fn put_many(&self, entries: &[(String, Entry<'_>)]) -> Result<(), StoreError> {
        for (key, entry) in entries {
            self.put(key, *entry).await?;
        }
        Ok(())
    }

    /// Deletes several keys, in order, stopping at the first failure.
    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
}

/// A value to store: it expires after `ttl` seconds (Workers KV accepts 60 or more);
/// `metadata` is JSON of at most 1024 bytes, returned by `list`.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub value: &'a str,
    pub ttl: u64,
    pub metadata: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub fn new(value: &'a str, ttl: u64) -> Self {
        Self {
            value,
            ttl,
            metadata: None,
        }
    }
}

/// KV refuses metadata over this many bytes.
pub const MAX_METADATA: usize = 1024;

/// The JSON of a listing summary within KV's metadata limit: while it is too long,
/// `shorten` is applied (at most 64 times; each call must shorten something, e.g. with
/// [`halve_longest`]). `None` if it still does not fit.
pub fn fit_metadata<T: serde::Serialize>(
    summary: &mut T,
    mut shorten: impl FnMut(&mut T),
) -> Option<String> {
    for _ in 0..64 {
        match serde_json::to_string(summary) {
            Ok(json) if json.len() <= MAX_METADATA => return Some(json),
            Ok(_) => shorten(summary),
            Err(_) => return None,
        }
    }
    None
}

/// Halves the longest of these texts (by characters).
pub fn halve_longest<const N: usize>(texts: [&mut String; N]) {
    if let Some(text) = texts.into_iter().max_by_key(|s| s.len()) {
        let keep = text.chars().count() / 2;
        *text = text.chars().take(keep).collect();
    }
}

/// A page of listed keys; `cursor` continues the listing when there are more.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ListPage {
    pub keys: Vec<Listed>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Listed {
    pub name: String,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Waits for two store operations at once, both to the end: writes that do not depend on
/// each other cost one round trip instead of two (a KV write takes milliseconds).
pub async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(move |cx| {
        if done_a.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                done_a = Some(out);
            }
        }
        if done_b.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                done_b = Some(out);
            }
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (done_a, done_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// Every key under `prefix`, following cursors (bounded: at most 100 pages).
pub async fn list_all<S: Store>(store: &S, prefix: &str) -> Result<Vec<Listed>, StoreError> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = store.list(prefix, cursor.as_deref()).await?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(keys)
}

#[cfg(test)]
pub use memory::MemoryStore;

#[cfg(test)]
mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A stored value: (value, ttl, metadata).
    pub type Record = (String, u64, Option<String>);

    /// An in-memory store that counts operations, for tests. Lists two keys a page, so
    /// cursors are exercised.
    #[derive(Default)]
    pub struct MemoryStore {
        pub records: RefCell<BTreeMap<String, Record>>,
        pub reads: RefCell<u32>,
        pub writes: RefCell<u32>,
        pub deletes: RefCell<u32>,
        pub lists: RefCell<u32>,
        /// Operations that fail, as KV does when it is down or a quota is spent:
        /// `"get"`, `"put"`, `"delete"`, `"list"`.
        pub failing: RefCell<Vec<&'static str>>,
    }

    impl MemoryStore {
        pub fn reads(&self) -> u32 {
            *self.reads.borrow()
        }

        pub fn writes(&self) -> u32 {
            *self.writes.borrow()
        }

        pub fn deletes(&self) -> u32 {
            *self.deletes.borrow()
        }

        pub fn lists(&self) -> u32 {
            *self.lists.borrow()
        }

        /// Whether any stored key starts with `prefix`.
        pub fn holds_any(&self, prefix: &str) -> bool {
            self.records.borrow().keys().any(|k| k.starts_with(prefix))
        }

        fn check(&self, op: &str) -> Result<(), StoreError> {
            if self.failing.borrow().contains(&op) {
                Err(StoreError(format!("KV {op} failed (simulated)")))
            } else {
                Ok(())
            }
        }
    }

    impl Store for MemoryStore {
        async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
            *self.reads.borrow_mut() += 1;
            self.check("get")?;
            Ok(self.records.borrow().get(key).map(|(v, _, _)| v.clone()))
        }

        async fn put(&self, key: &str, entry: Entry<'_>) -> Result<(), StoreError> {
            *self.writes.borrow_mut() += 1;
            self.check("put")?;
            self.records.borrow_mut().insert(
                key.into(),
                (
                    entry.value.into(),
                    entry.ttl,
                    entry.metadata.map(String::from),
                ),
            );
            Ok(())
        }

        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            *self.deletes.borrow_mut() += 1;
            self.check("delete")?;
            self.records.borrow_mut().remove(key);
            Ok(())
        }

        async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, StoreError> {
            *self.lists.borrow_mut() += 1;
            self.check("list")?;
            let records = self.records.borrow();
            let after = cursor.unwrap_or_default();
            let mut matching = records
                .iter()
                .filter(|(k, _)| k.starts_with(prefix) && k.as_str() > after)
                .map(|(k, (_, _, m))| Listed {
                    name: k.clone(),
                    metadata: m.clone(),
                });
            let keys: Vec<Listed> = matching.by_ref().take(2).collect();
            let cursor = matching.next().and(keys.last().map(|k| k.name.clone()));
            Ok(ListPage { keys, cursor })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::both;
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Pending once, then ready: a stand-in for a KV round trip.
    struct RoundTrip(bool);

    impl Future for RoundTrip {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn both_runs_the_two_at_once_and_waits_for_each() {
        let log = RefCell::new(Vec::new());
        let step = |name: &'static str, result: Result<u8, &'static str>| {
            let log = &log;
            async move {
                log.borrow_mut().push(format!("{name} sent"));
                RoundTrip(false).await;
                log.borrow_mut().push(format!("{name} done"));
                result
            }
        };
        let (a, b) = pollster::block_on(both(step("a", Ok(1)), step("b", Err("down"))));
        assert_eq!((a, b), (Ok(1), Err("down")));
        assert_eq!(*log.borrow(), ["a sent", "b sent", "a done", "b done"]);
    }
}
