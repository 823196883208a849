//! What a person's object keeps and how it answers: the grants revoked (each until it
//! would have expired anyway, then forgotten), and the time before which every grant of
//! the person is revoked. Storage is a small trait: SQLite in the object, a map natively.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{Answer, Ask};

/// How long a refresh may hold a grant's lease (seconds): longer than an issuer's answer
/// takes, short enough that a refresh that died with its isolate does not block the next.
pub const LEASE: u64 = 30;

/// A grant's refresh state in its person's object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefreshState {
    /// A refresh holds the lease until then.
    pub lease_until: u64,
    /// The last renewed record (JSON) and when the issuer vouched for it.
    pub record: Option<(String, u64)>,
}

/// A renewed record (JSON), when the issuer vouched for it, and when it expires.
#[derive(Debug, Clone, Copy)]
pub struct Renewed<'a> {
    pub record: &'a str,
    pub validated: u64,
    pub expires: u64,
}

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
    /// Forgets revoked grants, and refresh states, that have expired by `now`.
    fn forget_expired(&self, now: u64) -> Result<(), DbError>;
    fn refresh_state(&self, grant: &str) -> Result<Option<RefreshState>, DbError>;
    /// Sets (or, with 0, ends) the grant's lease; the state lasts until `expires`.
    fn set_lease(&self, grant: &str, until: u64, expires: u64) -> Result<(), DbError>;
    /// Keeps a renewed record and ends the lease.
    fn set_current(&self, grant: &str, renewed: Renewed<'_>) -> Result<(), DbError>;
    /// Forgets a grant's refresh state (it was revoked: its refresh token goes too).
    fn forget_refresh(&self, grant: &str) -> Result<(), DbError>;
}

/// Answers a question. Revocations only ever add: a later "everything before" never
/// moves the time back, and a grant once revoked stays so until it would have expired.
/// A storage failure is an error, never a "live".
pub fn answer<D: PersonDb + ?Sized>(db: &D, ask: &Ask, now: u64) -> Result<Answer, DbError> {
    match ask {
        Ask::Revoke { grants } => {
            db.forget_expired(now)?;
            for g in grants {
                db.forget_refresh(&g.grant)?;
                if g.expires > now {
                    db.add_revoked(&g.grant, g.expires)?;
                }
            }
            Ok(Answer::Recorded)
        }
        Ask::RevokeEverything { at } => {
            if db.everything_before()?.is_none_or(|before| before < *at) {
                db.set_everything_before(*at)?;
            }
            Ok(Answer::Recorded)
        }
        Ask::Check { grant, created } => Ok(if is_revoked(db, grant, *created)? {
            Answer::Revoked
        } else {
            Answer::Live
        }),
        Ask::Refresh {
            grant,
            created,
            every,
        } => refresh(db, grant, *created, *every, now),
        Ask::Refreshed {
            grant,
            created,
            record,
            validated,
            expires,
        } => {
            if !is_revoked(db, grant, *created)? {
                let renewed = Renewed {
                    record,
                    validated: *validated,
                    expires: *expires,
                };
                db.set_current(grant, renewed)?;
            }
            Ok(Answer::Recorded)
        }
        Ask::RefreshFailed { grant } => {
            if db.refresh_state(grant)?.is_some() {
                db.set_lease(grant, 0, now + LEASE)?;
            }
            Ok(Answer::Recorded)
        }
    }
}

/// Revoked by name, or by "everything up to" covering `created`.
fn is_revoked<D: PersonDb + ?Sized>(db: &D, grant: &str, created: u64) -> Result<bool, DbError> {
    let all_ended = db
        .everything_before()?
        .is_some_and(|before| created <= before);
    Ok(all_ended || db.is_revoked(grant)?)
}

/// One refresh at a time: a record renewed within `every` is handed out; a running
/// refresh makes the asker wait; else the asker takes the lease.
fn refresh<D: PersonDb + ?Sized>(
    db: &D,
    grant: &str,
    created: u64,
    every: u64,
    now: u64,
) -> Result<Answer, DbError> {
    if is_revoked(db, grant, created)? {
        return Ok(Answer::Revoked);
    }
    let state = db.refresh_state(grant)?.unwrap_or_default();
    if let Some((record, validated)) = &state.record {
        if now.saturating_sub(*validated) < every {
            return Ok(Answer::Current {
                record: record.clone(),
            });
        }
    }
    if state.lease_until > now {
        return Ok(Answer::Busy);
    }
    // The state outlives the lease by a day at least (the record lives in KV anyway).
    db.set_lease(grant, now + LEASE, now + 86_400)?;
    Ok(Answer::Go {
        record: state.record.map(|(record, _)| record),
    })
}

/// [`PersonDb`] in memory, for native tests.
#[derive(Debug, Default)]
pub struct Memory {
    revoked: RefCell<HashMap<String, u64>>,
    before: Cell<Option<u64>>,
    refreshes: RefCell<HashMap<String, (RefreshState, u64)>>,
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
        self.refreshes
            .borrow_mut()
            .retain(|_, (_, expires)| *expires > now);
        Ok(())
    }

    fn refresh_state(&self, grant: &str) -> Result<Option<RefreshState>, DbError> {
        Ok(self.refreshes.borrow().get(grant).map(|(s, _)| s.clone()))
    }

    fn set_lease(&self, grant: &str, until: u64, expires: u64) -> Result<(), DbError> {
        let mut all = self.refreshes.borrow_mut();
        let entry = all.entry(grant.to_string()).or_default();
        entry.0.lease_until = until;
        entry.1 = entry.1.max(expires);
        Ok(())
    }

    fn set_current(&self, grant: &str, renewed: Renewed<'_>) -> Result<(), DbError> {
        let state = RefreshState {
            lease_until: 0,
            record: Some((renewed.record.to_string(), renewed.validated)),
        };
        self.refreshes
            .borrow_mut()
            .insert(grant.to_string(), (state, renewed.expires));
        Ok(())
    }

    fn forget_refresh(&self, grant: &str) -> Result<(), DbError> {
        self.refreshes.borrow_mut().remove(grant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::RevokedGrant;

    /// The person signs out of everything created up to `at` (asked at 100).
    fn sign_out_of_everything(db: &Memory, at: u64) {
        answer(db, &Ask::RevokeEverything { at }, 100).unwrap();
    }

    /// Whether a refresh token is kept for the grant "g".
    fn refresh_kept(db: &Memory) -> bool {
        db.refresh_state("g").unwrap().is_some()
    }

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
    fn one_refresh_at_a_time_and_its_result_for_the_others() {
        let db = Memory::default();
        let ask = |now| {
            let refresh = Ask::Refresh {
                grant: "g".into(),
                created: 10,
                every: 900,
            };
            answer(&db, &refresh, now).unwrap()
        };
        let go = Answer::Go { record: None };
        assert_eq!(ask(100), go, "the first takes the lease");
        assert_eq!(ask(101), Answer::Busy, "the second waits");
        assert_eq!(ask(100 + LEASE), go, "a lease that died lapses");
        let done = Ask::Refreshed {
            grant: "g".into(),
            created: 10,
            record: "{renewed}".into(),
            validated: 131,
            expires: 5_000,
        };
        answer(&db, &done, 131).unwrap();
        assert_eq!(
            ask(132),
            Answer::Current {
                record: "{renewed}".into()
            }
        );
        let go_from = Answer::Go {
            record: Some("{renewed}".into()),
        };
        assert_eq!(
            ask(131 + 900),
            go_from,
            "due again after every: refresh from the last renewed record"
        );
        answer(&db, &Ask::RefreshFailed { grant: "g".into() }, 1_032).unwrap();
        assert_eq!(ask(1_033), go_from, "a failed refresh ends its lease");
        let revoke = Ask::Revoke {
            grants: vec![RevokedGrant {
                grant: "g".into(),
                expires: 5_000,
            }],
        };
        answer(&db, &revoke, 1_040).unwrap();
        assert_eq!(ask(1_041), Answer::Revoked);
        assert!(!refresh_kept(&db), "its refresh token is forgotten");
    }

    #[test]
    fn a_refresh_that_ends_after_a_sign_out_of_everything_keeps_nothing() {
        let db = Memory::default();
        sign_out_of_everything(&db, 100);
        let done = Ask::Refreshed {
            grant: "g".into(),
            created: 50,
            record: "{renewed}".into(),
            validated: 101,
            expires: 5_000,
        };
        answer(&db, &done, 101).unwrap();
        assert!(!refresh_kept(&db), "no refresh token kept for it");
    }

    #[test]
    fn everything_before_ends_older_grants_only_and_never_moves_back() {
        let db = Memory::default();
        sign_out_of_everything(&db, 90);
        assert_eq!(check(&db, "old", 90), Answer::Revoked);
        assert_eq!(check(&db, "new", 91), Answer::Live);
        sign_out_of_everything(&db, 50);
        assert_eq!(
            check(&db, "old", 60),
            Answer::Revoked,
            "an older time does not undo"
        );
    }
}
