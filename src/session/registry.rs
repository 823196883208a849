//! Sessions together with their index keys: created, updated and removed as one, and
//! found by user, by issuer session ID, or all at once.

use super::index::SessionSummary;
use super::Session;
use crate::grant::{Doomed, GrantStore};
use crate::store::keys::{self, Grant, SessionHash};
use crate::store::{both, list_all, Entry, Store, StoreError};

/// Whether a write rewrites the session's index keys too (a new session, or one whose
/// email changed: the index carries it) or only its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Rewrite,
    Keep,
}

/// Stores a session, with its index keys when `index` says so, all expiring with it. The
/// writes go out together (a login waits for one KV round trip, not three), and all must
/// succeed: a session that a revocation by user or by issuer session could not find is
/// never handed out.
pub async fn save<S: Store>(
    store: &S,
    hash: &SessionHash,
    session: &Session,
    now: u64,
    index: Index,
) -> Result<(), StoreError> {
    let ttl = keys::ttl_until(session.expires, now);
    let json = serde_json::to_string(session).map_err(|e| StoreError(e.to_string()))?;
    let record_key = keys::session_key(hash);
    let record = store.put(&record_key, Entry::new(&json, ttl));
    if index == Index::Keep {
        return record.await;
    }
    let metadata = SessionSummary::of(session).to_metadata();
    let entry = Entry {
        metadata: Some(&metadata),
        ..Entry::new("", ttl)
    };
    let user_key = keys::user_key(&session.identity.sub, hash);
    let sid_key = session.sid.as_ref().map(|sid| keys::sid_key(sid, hash));
    let by_sid = async {
        match &sid_key {
            Some(key) => store.put(key, Entry::new("", ttl)).await,
            None => Ok(()),
        }
    };
    let by_user = store.put(&user_key, entry);
    let (record, (by_user, by_sid)) = both(record, both(by_user, by_sid)).await;
    record.and(by_user).and(by_sid)
}

/// Removes a session and its index keys. `known` describes the session when the caller
/// has it (from an index listing), so the index keys go even if the record is gone.
/// Returns the record that was removed, if there was one.
pub async fn remove<S: Store>(
    store: &S,
    hash: &SessionHash,
    known: Option<&SessionSummary>,
) -> Result<Option<Session>, StoreError> {
    let record = load(store, hash).await?;
    delete_keys(store, hash, record.as_ref(), known).await?;
    Ok(record)
}

/// Deletes what exists of a session: a dead cookie must not cost a KV delete (the Free
/// plan has 1,000 a day, and anyone holding an old cookie could spend them).
async fn delete_keys<S: Store>(
    store: &S,
    hash: &SessionHash,
    record: Option<&Session>,
    known: Option<&SessionSummary>,
) -> Result<(), StoreError> {
    let summary = record.map(SessionSummary::of).or_else(|| known.cloned());
    if record.is_some() {
        store.delete(&keys::session_key(hash)).await?;
    }
    for key in summary.iter().flat_map(|s| index_keys(hash, s)) {
        store.delete(&key).await?;
    }
    Ok(())
}

/// Session records in the store, as the grant lifecycle reads, writes and revokes them.
pub struct Records<'s, S>(pub &'s S);

impl<S: Store> GrantStore for Records<'_, S> {
    type Record = Session;
    type Id = SessionHash;
    type Summary = SessionSummary;
    type Store = S;

    fn grant(hash: &SessionHash) -> Grant<'_> {
        Grant::Session(hash)
    }

    fn store(&self) -> &S {
        self.0
    }

    async fn load(&self, hash: &SessionHash) -> Result<Option<Session>, StoreError> {
        load(self.0, hash).await
    }

    async fn write(
        &self,
        hash: &SessionHash,
        renewed: &Session,
        before: &Session,
        now: u64,
    ) -> Result<(), StoreError> {
        // The index keys carry the email: rewritten only when it changed.
        let index = if renewed.identity.email == before.identity.email {
            Index::Keep
        } else {
            Index::Rewrite
        };
        save(self.0, hash, renewed, now, index).await
    }

    async fn unwrite(&self, hash: &SessionHash, _: &Session) -> Result<(), StoreError> {
        remove(self.0, hash, None).await.map(|_| ())
    }

    fn summary(session: &Session) -> SessionSummary {
        SessionSummary::of(session)
    }

    fn doomed<'a>(hash: &'a SessionHash, summary: &'a SessionSummary, exists: bool) -> Doomed<'a> {
        doomed(hash, summary, exists)
    }
}

/// What revoking a session removes, as its summary names it (`record_exists`: whether its
/// record is known to be there; deleting a missing one would cost a delete for nothing).
pub fn doomed<'a>(
    hash: &'a SessionHash,
    summary: &'a SessionSummary,
    record_exists: bool,
) -> Doomed<'a> {
    Doomed {
        sub: &summary.sub,
        grant: Grant::Session(hash),
        record_key: keys::session_key(hash),
        record_exists,
        index_keys: index_keys(hash, summary),
        expires: summary.expires,
    }
}

/// A session's index keys, as its summary names them.
fn index_keys(hash: &SessionHash, summary: &SessionSummary) -> Vec<String> {
    let mut keys = vec![keys::user_key(&summary.sub, hash)];
    if let Some(sid) = &summary.sid {
        keys.push(keys::sid_key(sid, hash));
    }
    keys
}

/// Reads a session record (`None` when gone or unreadable).
pub async fn load<S: Store>(store: &S, hash: &SessionHash) -> Result<Option<Session>, StoreError> {
    Ok(store
        .get(&keys::session_key(hash))
        .await?
        .and_then(|record| serde_json::from_str(&record).ok()))
}

/// The sessions of one user: `(session hash, summary)`, oldest first.
pub async fn of_user<S: Store>(
    store: &S,
    sub: &str,
) -> Result<Vec<(SessionHash, SessionSummary)>, StoreError> {
    listed(store, &keys::user_prefix(sub))
        .await
        .map(|mut list| {
            list.retain(|(_, s)| s.is_of(sub));
            list
        })
}

/// The sessions whose user's email is `email` (case-insensitive). Emails are not indexed,
/// so this lists every session; it serves the admin API, not requests.
pub async fn with_email<S: Store>(
    store: &S,
    email: &str,
) -> Result<Vec<(SessionHash, SessionSummary)>, StoreError> {
    all(store).await.map(|mut list| {
        list.retain(|(_, s)| {
            s.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
        list
    })
}

/// Every session in the index.
pub async fn all<S: Store>(store: &S) -> Result<Vec<(SessionHash, SessionSummary)>, StoreError> {
    listed(store, keys::USER_PREFIX).await
}

/// The sessions carrying an issuer session ID.
pub async fn with_sid<S: Store>(store: &S, sid: &str) -> Result<Vec<SessionHash>, StoreError> {
    Ok(list_all(store, &keys::sid_prefix(sid))
        .await?
        .iter()
        .filter_map(|k| keys::session_hash_of(&k.name))
        .collect())
}

async fn listed<S: Store>(
    store: &S,
    prefix: &str,
) -> Result<Vec<(SessionHash, SessionSummary)>, StoreError> {
    let mut out: Vec<(SessionHash, SessionSummary)> = list_all(store, prefix)
        .await?
        .into_iter()
        .filter_map(|k| {
            let hash = keys::session_hash_of(&k.name)?;
            Some((hash, SessionSummary::from_metadata(k.metadata.as_deref())?))
        })
        .collect();
    out.sort_by_key(|(_, s)| s.created);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::session::model::SESSION_FORMAT;
    use crate::store::MemoryStore;

    fn session(sub: &str, sid: Option<&str>, created: u64) -> Session {
        Session {
            v: SESSION_FORMAT,
            identity: Identity {
                sub: sub.into(),
                email: Some(format!("{sub}@example.com")),
                ..Default::default()
            },
            created,
            expires: created + 3600,
            host: "photos.example.com".into(),
            sid: sid.map(String::from),
            id_token: None,
            user_agent: Some("Mozilla/5.0".into()),
            location: None,
            refresh: None,
            validated: created,
            auth_time: None,
        }
    }

    fn h(n: u8) -> SessionHash {
        SessionHash::parse(&format!("{n:0>43}")).unwrap()
    }

    #[test]
    fn save_list_and_remove_with_indexes() {
        let store = MemoryStore::default();
        pollster::block_on(async {
            let people = [
                (1, "alice", Some("op-1")),
                (2, "alice", Some("op-2")),
                (3, "alice", None),
                (4, "bob", Some("op-1")),
            ];
            for (n, sub, sid) in people {
                let at = 100 * u64::from(n);
                let (hash, record) = (h(n), session(sub, sid, at));
                let saved = save(&store, &hash, &record, at, Index::Rewrite);
                saved.await.unwrap();
            }
            let alice = of_user(&store, "alice").await.unwrap();
            assert_eq!(
                alice.iter().map(|(x, _)| x.clone()).collect::<Vec<_>>(),
                [h(1), h(2), h(3)]
            );
            assert_eq!(alice[0].1.user_agent.as_deref(), Some("Mozilla/5.0"));
            assert_eq!(
                all(&store).await.unwrap().len(),
                4,
                "listing follows cursors"
            );
            assert_eq!(with_sid(&store, "op-1").await.unwrap(), [h(1), h(4)]);

            assert!(remove(&store, &h(1), None).await.unwrap().is_some());
            assert!(load(&store, &h(1)).await.unwrap().is_none());
            assert_eq!(of_user(&store, "alice").await.unwrap().len(), 2);
            assert_eq!(with_sid(&store, "op-1").await.unwrap(), [h(4)]);
            assert!(
                remove(&store, &h(1), None).await.unwrap().is_none(),
                "already gone"
            );
        });
    }

    #[test]
    fn index_keys_go_even_when_the_record_is_already_gone() {
        let store = MemoryStore::default();
        pollster::block_on(async {
            let s = session("alice", Some("op"), 1);
            save(&store, &h(9), &s, 1, Index::Rewrite).await.unwrap();
            store.delete(&keys::session_key(&h(9))).await.unwrap();
            let listed = of_user(&store, "alice").await.unwrap();
            assert!(remove(&store, &h(9), Some(&listed[0].1))
                .await
                .unwrap()
                .is_none());
            assert!(
                store.records.borrow().is_empty(),
                "{:?}",
                store.records.borrow().keys()
            );
        });
    }
}
