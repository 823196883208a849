//! App passwords in KV with their index keys (the layout: [`crate::store::keys`]): the
//! record and its index key expire with the app password.

use super::record::{AppPassword, AppPasswordSummary};
use crate::grant::{Doomed, GrantStore};
use crate::store::keys::{self, ttl_until as ttl, AppPasswordId, Grant};
use crate::store::{both, list_all, Entry, Store, StoreError};

pub use keys::{app_password_key as record_key, user_app_password_key as user_key};
pub use keys::{user_app_password_prefix as user_prefix, USER_APP_PASSWORD_PREFIX as USER_PREFIX};

/// Stores an app password and its index key.
pub async fn save<S: Store>(store: &S, record: &AppPassword, now: u64) -> Result<(), StoreError> {
    let metadata = AppPasswordSummary::of(record).to_metadata();
    let entry = Entry {
        metadata: Some(&metadata),
        ..Entry::new("", ttl(record.expires, now))
    };
    let key = user_key(&record.identity.sub, &record.id);
    // The two writes go out together; both must succeed.
    let (saved, indexed) = both(save_record(store, record, now), store.put(&key, entry)).await;
    saved.and(indexed)
}

/// Rewrites only the record.
pub async fn save_record<S: Store>(
    store: &S,
    record: &AppPassword,
    now: u64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
    store
        .put(
            &record_key(&record.id),
            Entry::new(&json, ttl(record.expires, now)),
        )
        .await
}

/// Reads a record (`None` when gone, revoked or unreadable).
pub async fn load<S: Store>(
    store: &S,
    id: &AppPasswordId,
) -> Result<Option<AppPassword>, StoreError> {
    Ok(store
        .get(&record_key(id))
        .await?
        .and_then(|json| serde_json::from_str(&json).ok()))
}

/// App-password records in the store, as the grant lifecycle reads, writes and revokes
/// them: a record is always written with its index key (which carries "last used" and the
/// label).
pub struct Records<'s, S>(pub &'s S);

impl<S: Store> GrantStore for Records<'_, S> {
    type Record = AppPassword;
    type Id = AppPasswordId;
    type Summary = AppPasswordSummary;
    type Store = S;

    fn grant(id: &AppPasswordId) -> Grant<'_> {
        Grant::AppPassword(id)
    }

    fn store(&self) -> &S {
        self.0
    }

    async fn load(&self, id: &AppPasswordId) -> Result<Option<AppPassword>, StoreError> {
        load(self.0, id).await
    }

    async fn write(
        &self,
        _: &AppPasswordId,
        renewed: &AppPassword,
        _: &AppPassword,
        now: u64,
    ) -> Result<(), StoreError> {
        save(self.0, renewed, now).await
    }

    async fn unwrite(&self, _: &AppPasswordId, record: &AppPassword) -> Result<(), StoreError> {
        remove(self.0, record).await
    }

    fn summary(record: &AppPassword) -> AppPasswordSummary {
        AppPasswordSummary::of(record)
    }

    fn doomed<'a>(
        id: &'a AppPasswordId,
        summary: &'a AppPasswordSummary,
        exists: bool,
    ) -> Doomed<'a> {
        doomed(id, summary, exists)
    }
}

/// What revoking an app password removes, as its summary names it (`record_exists`: whether
/// its record is known to be there).
pub fn doomed<'a>(
    id: &'a AppPasswordId,
    summary: &'a AppPasswordSummary,
    record_exists: bool,
) -> Doomed<'a> {
    Doomed {
        sub: &summary.sub,
        grant: Grant::AppPassword(id),
        record_key: record_key(id),
        record_exists,
        index_keys: vec![user_key(&summary.sub, id)],
        expires: summary.expires,
    }
}

/// Removes what a write put back after a revocation (record and index key).
pub async fn remove<S: Store>(store: &S, record: &AppPassword) -> Result<(), StoreError> {
    store.delete(&record_key(&record.id)).await?;
    store
        .delete(&user_key(&record.identity.sub, &record.id))
        .await
}

async fn listed<S: Store>(store: &S, prefix: &str) -> Result<Vec<AppPasswordSummary>, StoreError> {
    let mut list: Vec<AppPasswordSummary> = list_all(store, prefix)
        .await?
        .into_iter()
        .filter_map(|key| serde_json::from_str(key.metadata.as_deref()?).ok())
        .collect();
    list.sort_by_key(|s| s.created);
    Ok(list)
}

/// A person's app passwords, oldest first.
pub async fn of_user<S: Store>(
    store: &S,
    sub: &str,
) -> Result<Vec<AppPasswordSummary>, StoreError> {
    listed(store, &user_prefix(sub)).await
}

/// The app passwords of everyone with this email address (case-insensitive).
pub async fn with_email<S: Store>(
    store: &S,
    email: &str,
) -> Result<Vec<AppPasswordSummary>, StoreError> {
    let mut list = all(store).await?;
    list.retain(|s| {
        s.email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(email))
    });
    Ok(list)
}

/// Every app password.
pub async fn all<S: Store>(store: &S) -> Result<Vec<AppPasswordSummary>, StoreError> {
    listed(store, USER_PREFIX).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app_password::record::RECORD_FORMAT;
    use crate::grant::tombstone;
    use crate::identity::Identity;
    use crate::people::Unbound;
    use crate::store::MemoryStore;

    /// Revokes through the one revocation every owner uses; returns the record revoked.
    async fn revoke(store: &MemoryStore, id: &AppPasswordId) -> Option<AppPassword> {
        let revoked = tombstone::revoke_stored(&Records(store), &Unbound, id, None, 200).await;
        revoked.unwrap().0
    }

    /// The app password ID ending in the digit `n`.
    fn ap(n: u8) -> AppPasswordId {
        AppPasswordId::parse(&format!("ap_00000000000000000000000{n}")).unwrap()
    }

    fn record(n: u8, sub: &str) -> AppPassword {
        AppPassword {
            v: RECORD_FORMAT,
            id: ap(n),
            label: "Immich on Pixel 8".into(),
            app: "photos.example.com".into(),
            identity: Identity {
                sub: sub.into(),
                email: Some(format!("{sub}@Example.com")),
                ..Default::default()
            },
            created: 100,
            expires: 100 + 86_400,
            secret_sha256: "h".into(),
            last_used: None,
            refresh: None,
            validated: 100,
        }
    }

    #[test]
    fn save_list_revoke() {
        let store = MemoryStore::default();
        pollster::block_on(async {
            save(&store, &record(1, "alice"), 100).await.unwrap();
            save(&store, &record(2, "alice"), 100).await.unwrap();
            save(&store, &record(3, "bob"), 100).await.unwrap();
            assert_eq!(of_user(&store, "alice").await.unwrap().len(), 2);
            assert_eq!(
                with_email(&store, "BOB@example.com").await.unwrap()[0].id,
                ap(3)
            );
            assert_eq!(all(&store).await.unwrap().len(), 3);
            assert!(load(&store, &ap(1)).await.unwrap().is_some());

            assert!(revoke(&store, &ap(1)).await.is_some());
            assert!(load(&store, &ap(1)).await.unwrap().is_none());
            assert!(tombstone::is_revoked(&store, Grant::AppPassword(&ap(1)))
                .await
                .unwrap());
            assert_eq!(of_user(&store, "alice").await.unwrap().len(), 1);
            // Nothing to revoke: nothing written.
            let before = store.records.borrow().len();
            assert!(revoke(&store, &ap(9)).await.is_none());
            assert_eq!(store.records.borrow().len(), before);
        });
    }

    #[test]
    fn revocation_fails_closed_when_deletes_fail() {
        let store = MemoryStore::default();
        pollster::block_on(async {
            save(&store, &record(1, "alice"), 100).await.unwrap();
            store.failing.borrow_mut().push("delete");
            assert!(revoke(&store, &ap(1)).await.is_some());
            assert!(load(&store, &ap(1)).await.unwrap().is_none(), "overwritten");
        });
    }
}
