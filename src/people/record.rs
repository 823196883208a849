//! What a person's object keeps and how it answers: the grants revoked (each until it
//! would have expired anyway, then forgotten), and the time before which every grant of
//! the person is revoked. Storage is a small trait: SQLite in the object, a map natively.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{Answer, Ask};

/// Why the storage failed (the object then answers 500, and the gate falls back to KV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

/// A person's object's storage (synchronous, as Durable Object SQLite is).
pub trait PersonDb {
    fn is_revoked(&self, grant: &str) -> Result<bool, DbError>;
    fn add_revoked(&self, grant: &str, expires: u64) -> Result<(), DbError>;
    /// Every grant created at or before this time is revoked.
    fn everything_before(&self) -> Result<Option<u64>, DbError>;
    fn set_everything_before(&self, at: u64) -> Result<(), DbError>;
    /// Forgets revoked grants that have expired by `now`.
    fn forget_expired(&self, now: u64) -> Result<(), DbError>;
}

/// Answers a question. Revocations only ever add: a later "everything before" never
/// moves the time back, and a grant once revoked stays so until it would have expired.
/// A storage failure is an error, never a "live".
pub fn answer<D: PersonDb + ?Sized>(db: &D, ask: &Ask, now: u64) -> Result<Answer, DbError> {
    match ask {
        Ask::Revoke { grants } => {
            db.forget_expired(now)?;
            for g in grants.iter().filter(|g| g.expires > now) {
                db.add_revoked(&g.grant, g.expires)?;
            }
            Ok(Answer::Recorded)
        }
        Ask::RevokeEverything { at } => {
            if db.everything_before()?.is_none_or(|before| before < *at) {
                db.set_everything_before(*at)?;
            }
            Ok(Answer::Recorded)
        }
        Ask::Check { grant, created } => {
            let all_ended = db
                .everything_before()?
                .is_some_and(|before| *created <= before);
            Ok(if all_ended || db.is_revoked(grant)? {
                Answer::Revoked
            } else {
                Answer::Live
            })
        }
    }
}

/// [`PersonDb`] in memory, for native tests.
#[derive(Debug, Default)]
pub struct Memory {
    revoked: RefCell<HashMap<String, u64>>,
    before: Cell<Option<u64>>,
}

impl PersonDb for Memory {
    fn is_revoked(&self, grant: &str) -> Result<bool, DbError> {
        Ok(self.revoked.borrow().contains_key(grant))
    }

    fn add_revoked(&self, grant: &str, expires: u64) -> Result<(), DbError> {
        let mut revoked = self.revoked.borrow_mut();
        let until = revoked.entry(grant.to_string()).or_insert(expires);
        *until = (*until).max(expires);
        Ok(())
    }

    fn everything_before(&self) -> Result<Option<u64>, DbError> {
        Ok(self.before.get())
    }

    fn set_everything_before(&self, at: u64) -> Result<(), DbError> {
        self.before.set(Some(at));
        Ok(())
    }

    fn forget_expired(&self, now: u64) -> Result<(), DbError> {
        self.revoked
            .borrow_mut()
            .retain(|_, expires| *expires > now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::RevokedGrant;

    fn check(db: &Memory, grant: &str, created: u64) -> Answer {
        let ask = Ask::Check {
            grant: grant.into(),
            created,
        };
        answer(db, &ask, 100).unwrap()
    }

    #[test]
    fn a_revoked_grant_stays_revoked_until_it_would_have_expired() {
        let db = Memory::default();
        let revoke = Ask::Revoke {
            grants: vec![RevokedGrant {
                grant: "g".into(),
                expires: 200,
            }],
        };
        assert_eq!(answer(&db, &revoke, 100), Ok(Answer::Recorded));
        assert_eq!(check(&db, "g", 50), Answer::Revoked);
        assert_eq!(check(&db, "h", 50), Answer::Live);
        let later = Ask::Revoke { grants: vec![] };
        answer(&db, &later, 201).unwrap();
        assert!(
            !db.is_revoked("g").unwrap(),
            "forgotten once it would have expired"
        );
    }

    #[test]
    fn everything_before_ends_older_grants_only_and_never_moves_back() {
        let db = Memory::default();
        answer(&db, &Ask::RevokeEverything { at: 90 }, 100).unwrap();
        assert_eq!(check(&db, "old", 90), Answer::Revoked);
        assert_eq!(check(&db, "new", 91), Answer::Live);
        answer(&db, &Ask::RevokeEverything { at: 50 }, 100).unwrap();
        assert_eq!(
            check(&db, "old", 60),
            Answer::Revoked,
            "an older time does not undo"
        );
    }
}
