//! A small bounded map whose entries expire, for the per-isolate caches (sessions read from
//! KV, signed assertions, verified bearer tokens). Isolates are single-threaded; borrows
//! never span an `await`.

use std::cell::RefCell;
use std::collections::HashMap;

pub struct TtlCache<V> {
    max: usize,
    entries: RefCell<HashMap<String, (V, u64)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            entries: RefCell::new(HashMap::new()),
        }
    }

    /// The value, if inserted with an expiry after `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<V> {
        let entries = self.entries.borrow();
        let (value, expires) = entries.get(key)?;
        (now < *expires).then(|| value.clone())
    }

    /// Keeps `value` until `expires` (unix seconds). When full, expired entries go first,
    /// then those closest to expiry.
    pub fn insert(&self, key: &str, value: V, expires: u64, now: u64) {
        if expires <= now || self.max == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.max && !entries.contains_key(key) {
            entries.retain(|_, (_, e)| *e > now);
            if entries.len() >= self.max {
                let mut expiries: Vec<u64> = entries.values().map(|(_, e)| *e).collect();
                expiries.sort_unstable();
                let cutoff = expiries[expiries.len() / 2];
                entries.retain(|_, (_, e)| *e > cutoff);
            }
        }
        entries.insert(key.to_string(), (value, expires));
    }

    pub fn remove(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }

    /// Drops every entry whose value fails `keep`.
    pub fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        self.entries.borrow_mut().retain(|_, (v, _)| keep(v));
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(8);
        c.insert("a", 1, 110, 100);
        assert_eq!(c.get("a", 109), Some(1));
        assert_eq!(c.get("a", 110), None);
        c.insert("gone", 2, 100, 100);
        assert!(c.get("gone", 100).is_none(), "already expired: not kept");
        c.remove("a");
        assert!(c.is_empty());
    }

    #[test]
    fn stays_bounded_and_keeps_the_longest_lived() {
        let c = TtlCache::new(100);
        for i in 0..1_000u64 {
            c.insert(&format!("k{i}"), i, 1_000 + i, 0);
        }
        assert!(c.len() <= 100);
        assert_eq!(c.get("k999", 0), Some(999));
    }
}
