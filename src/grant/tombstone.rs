//! Revocation that holds: a tombstone first, so a re-validation that read the record
//! before cannot write it back unnoticed; then the record and its index keys. And the
//! write-back every re-validation and "last used" update goes through, which checks the
//! tombstone before and after it writes.

use std::future::Future;

use super::GrantStore;
use crate::people::{self, People, PeopleError, RevokedGrant};
use crate::store::keys::{revoked_key, ttl_until, Grant, TOMBSTONE};
use crate::store::{Entry, Store, StoreError};

/// What a revocation removes: whose grant it is, the grant's tombstone name (session
/// hash, app-password ID), its record's key (and whether the record exists), its index
/// keys, and when it would have expired (the tombstone lasts that long).
#[derive(Debug, Clone)]
pub struct Doomed<'a> {
    pub sub: &'a str,
    pub grant: Grant<'a>,
    pub record_key: String,
    pub record_exists: bool,
    pub index_keys: Vec<String>,
    pub expires: u64,
}

/// Revokes a grant for good: in its person's object (when `PEOPLE` is bound), then its
/// tombstone, then its record and index keys. Where the deletes fail (KV down, or the
/// Free plan's 1,000 deletes a day spent), the record is overwritten with the tombstone's
/// value, which no reader accepts. Where the tombstone cannot be written (the Free plan's
/// 1,000 writes a day spent), the record and index keys are deleted all the same:
/// revocation fails closed, and the answer says the tombstone is missing. A dead grant's
/// missing record costs no delete.
pub async fn revoke<S: Store, P: People>(
    store: &S,
    people: &P,
    doomed: &Doomed<'_>,
    now: u64,
) -> Result<Recorded, StoreError> {
    revoke_all(store, people, std::slice::from_ref(doomed), now).await
}

/// Revokes one stored grant for good ([`revoke`]), named by its record or else by what a
/// listing knew of it (`known`): a record already gone is still tombstoned and its index
/// keys removed. Nothing is written for a grant neither names. Returns the record that was
/// revoked, and where the revocation was recorded.
pub async fn revoke_stored<G: GrantStore, P: People>(
    records: &G,
    people: &P,
    id: &G::Id,
    known: Option<&G::Summary>,
    now: u64,
) -> Result<(Option<G::Record>, Recorded), StoreError> {
    let record = records.load(id).await?;
    let summary = record.as_ref().map(G::summary).or_else(|| known.cloned());
    let Some(summary) = summary else {
        return Ok((None, Recorded::nothing()));
    };
    let doomed = G::doomed(id, &summary, record.is_some());
    let recorded = revoke(records.store(), people, &doomed, now).await?;
    Ok((record, recorded))
}

/// Whether a revocation's tombstones were written. Without them the grants are gone all
/// the same, but a re-validation that read a record before it went could write it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Tombstoned {
    Yes,
    /// Not written; the records and index keys were removed (or made unreadable).
    No,
}

/// Where a revocation was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Recorded {
    /// In the persons' objects: every location refuses the grants within
    /// `revocation_check`. `Err(NotBound)` without `PEOPLE`.
    pub person: Result<(), PeopleError>,
    pub tombstoned: Tombstoned,
    /// False when KV could neither delete the records nor overwrite them: only the
    /// persons' objects hold the revocation.
    pub removed: bool,
}

impl Recorded {
    /// Nothing existed to revoke.
    pub fn nothing() -> Self {
        Self {
            person: Ok(()),
            tombstoned: Tombstoned::Yes,
            removed: true,
        }
    }
}

/// [`revoke`] for several grants at once (the owner's tools write them in two bulk
/// operations): the persons' objects, every tombstone, then every record and index key.
/// It fails only when a record may still be honoured: KV kept it readable, and no
/// person's object has the revocation.
pub async fn revoke_all<S: Store, P: People>(
    store: &S,
    people: &P,
    doomed: &[Doomed<'_>],
    now: u64,
) -> Result<Recorded, StoreError> {
    let in_objects: Vec<(&str, RevokedGrant)> = doomed
        .iter()
        .map(|d| {
            let grant = RevokedGrant {
                grant: d.grant.as_str().to_string(),
                expires: d.expires,
            };
            (d.sub, grant)
        })
        .collect();
    let person = people::record_revoked(people, &in_objects).await;
    let ttl = |d: &Doomed| ttl_until(d.expires, now);
    let tombstones: Vec<(String, Entry)> = doomed
        .iter()
        .map(|d| (revoked_key(d.grant), Entry::new(TOMBSTONE, ttl(d))))
        .collect();
    let tombstoned = match store.put_many(&tombstones).await {
        Ok(()) => Tombstoned::Yes,
        Err(_) => Tombstoned::No,
    };
    let removed = remove(store, doomed, now).await;
    match (removed, person) {
        (Err(e), Err(_)) => Err(e),
        (removed, person) => Ok(Recorded {
            person,
            tombstoned,
            removed: removed.is_ok(),
        }),
    }
}

/// Deletes the records and index keys, or else overwrites the records with the
/// tombstone's value.
async fn remove<S: Store>(store: &S, doomed: &[Doomed<'_>], now: u64) -> Result<(), StoreError> {
    let keys: Vec<String> = doomed
        .iter()
        .flat_map(|d| {
            let record = d.record_exists.then(|| d.record_key.clone());
            record.into_iter().chain(d.index_keys.iter().cloned())
        })
        .collect();
    if let Err(e) = store.delete_many(&keys).await {
        let overwrite: Vec<(String, Entry)> = doomed
            .iter()
            .map(|d| {
                let ttl = ttl_until(d.expires, now);
                (d.record_key.clone(), Entry::new(TOMBSTONE, ttl))
            })
            .collect();
        store.put_many(&overwrite).await.map_err(|_| e)?;
    }
    Ok(())
}

/// Whether a grant has a tombstone.
pub async fn is_revoked<S: Store>(store: &S, grant: Grant<'_>) -> Result<bool, StoreError> {
    Ok(store.get(&revoked_key(grant)).await?.is_some())
}

/// What a write-back came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBack {
    Written,
    /// Revoked before the write (nothing written; the record that was read, live next to
    /// its tombstone, removed), or during it (what was written undone).
    Revoked,
    /// The store failed; nothing is known to have been written.
    Failed,
}

/// Writes an updated grant unless it was revoked meanwhile; a revocation that lands
/// during the write undoes it. `revoked` asks (this isolate, then the tombstone or the
/// person's object); `write` writes; `undo` removes the grant's record and index keys. A
/// grant found revoked before the write had a live record all the same (written back by
/// a race elsewhere, which nothing else would remove): `undo` removes it too.
pub async fn write_back<R, W, U>(
    revoked: impl Fn() -> R,
    write: W,
    undo: impl FnOnce() -> U,
) -> WriteBack
where
    R: Future<Output = Result<bool, StoreError>>,
    W: Future<Output = Result<(), StoreError>>,
    U: Future<Output = Result<(), StoreError>>,
{
    match revoked().await {
        Ok(false) => {}
        Ok(true) => {
            let _ = undo().await;
            return WriteBack::Revoked;
        }
        Err(_) => return WriteBack::Failed,
    }
    if write.await.is_err() {
        return WriteBack::Failed;
    }
    if !matches!(revoked().await, Ok(false)) {
        let _ = undo().await;
        return WriteBack::Revoked;
    }
    WriteBack::Written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::testing::FakePeople;
    use crate::people::Unbound;
    use crate::store::keys::AppPasswordId;
    use crate::store::MemoryStore;

    const ID: &str = "ap_0123456789abcdef01234567";

    fn id() -> &'static AppPasswordId {
        Box::leak(Box::new(AppPasswordId::parse(ID).unwrap()))
    }

    fn doomed(exists: bool) -> Doomed<'static> {
        Doomed {
            sub: "alice",
            grant: Grant::AppPassword(id()),
            record_key: "record:g1".into(),
            record_exists: exists,
            index_keys: vec!["index:a:g1".into()],
            expires: 1_000,
        }
    }

    fn put(store: &MemoryStore, key: &str) {
        pollster::block_on(store.put(key, Entry::new("x", 60))).unwrap();
    }

    #[test]
    fn tombstone_then_record_and_index_keys() {
        let store = MemoryStore::default();
        put(&store, "record:g1");
        put(&store, "index:a:g1");
        let done = pollster::block_on(revoke(&store, &Unbound, &doomed(true), 100)).unwrap();
        assert_eq!(done.tombstoned, Tombstoned::Yes);
        assert_eq!(done.person, Err(PeopleError::NotBound));
        let records = store.records.borrow();
        let tombstone = format!("revoked:{ID}");
        assert_eq!(records.keys().collect::<Vec<_>>(), [&tombstone]);
        assert_eq!(
            records[&tombstone].1, 900,
            "kept as long as the grant could live"
        );
    }

    #[test]
    fn fails_closed_when_deletes_fail() {
        let store = MemoryStore::default();
        put(&store, "record:g1");
        store.failing.borrow_mut().push("delete");
        let _ = pollster::block_on(revoke(&store, &Unbound, &doomed(true), 100)).unwrap();
        assert_eq!(store.records.borrow()["record:g1"].0, TOMBSTONE);
    }

    #[test]
    fn deletes_all_the_same_when_the_tombstone_cannot_be_written() {
        let store = MemoryStore::default();
        put(&store, "record:g1");
        put(&store, "index:a:g1");
        store.failing.borrow_mut().push("put");
        let done = pollster::block_on(revoke(&store, &Unbound, &doomed(true), 100)).unwrap();
        assert_eq!(done.tombstoned, Tombstoned::No, "said");
        assert!(
            store.records.borrow().is_empty(),
            "{:?}",
            store.records.borrow()
        );
        // Neither a tombstone nor the deletes: an error, the record may still be read.
        let store = MemoryStore::default();
        put(&store, "record:g1");
        store.failing.borrow_mut().extend(["put", "delete"]);
        assert!(pollster::block_on(revoke(&store, &Unbound, &doomed(true), 100)).is_err());
    }

    #[test]
    fn with_people_the_objects_record_suffices_when_kv_fails() {
        let store = MemoryStore::default();
        put(&store, "record:g1");
        store.failing.borrow_mut().extend(["put", "delete"]);
        let people = FakePeople::default();
        let done = pollster::block_on(revoke(&store, &people, &doomed(true), 100)).unwrap();
        assert_eq!(done.person, Ok(()));
        assert!(!done.removed && done.tombstoned == Tombstoned::No);
        let live = crate::people::check(&people, "alice", ID, 50);
        assert_eq!(pollster::block_on(live), Ok(false), "the object has it");
    }

    #[test]
    fn a_missing_record_costs_no_delete() {
        let store = MemoryStore::default();
        let _ = pollster::block_on(revoke(&store, &Unbound, &doomed(false), 100)).unwrap();
        assert_eq!(*store.deletes.borrow(), 1, "the index key only");
    }

    #[test]
    fn write_back_checks_before_and_after() {
        use std::cell::Cell;
        let answers = [Ok(false), Ok(true)];
        let asked = Cell::new(0);
        let undone = Cell::new(false);
        let outcome = pollster::block_on(write_back(
            || {
                let answer = answers[asked.get()].clone();
                asked.set(asked.get() + 1);
                async move { answer }
            },
            async { Ok(()) },
            || {
                undone.set(true);
                async { Ok(()) }
            },
        ));
        assert_eq!(outcome, WriteBack::Revoked);
        assert!(undone.get(), "a revocation during the write undoes it");
        let removed = Cell::new(false);
        let before = pollster::block_on(write_back(
            || async { Ok(true) },
            // Were it written, the outcome would be `Failed`.
            async { Err(StoreError("nothing is written for a revoked grant".into())) },
            || {
                removed.set(true);
                async { Ok(()) }
            },
        ));
        assert_eq!(before, WriteBack::Revoked);
        assert!(
            removed.get(),
            "a live record next to its tombstone is removed"
        );
        let failed = pollster::block_on(write_back(
            || async { Ok(false) },
            async { Err(StoreError("down".into())) },
            || async { Ok(()) },
        ));
        assert_eq!(failed, WriteBack::Failed);
    }
}
