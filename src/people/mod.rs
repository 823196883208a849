//! The strong record of revocation: one Durable Object per person (class `Person`, bound
//! as `PEOPLE`, named by the subject), consulted by every location.
//!
//! KV stays the session store, but a change to it can take 60 s or more to be seen in
//! another location, and every isolate also caches what it read. A Durable Object is one
//! instance worldwide with strongly consistent storage: what a revocation records there
//! is what the next question anywhere is answered from. So every revoke path records in
//! the person's object before it answers, and every isolate serving a session or app
//! password asks that object at most once per credential per `revocation_check`.
//!
//! This module holds the protocol ([`Ask`], [`Answer`]) and the port the gate asks through
//! ([`People`]); [`record`] is what the object does with a question, over a small storage
//! trait, so the object in `edge` only maps it onto SQLite.

pub mod record;
pub mod relay;

use serde::{Deserialize, Serialize};

/// A question to a person's object (JSON, tagged by the variant's name: an internally
/// tagged enum would cost the wasm serde's buffering deserializer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ask {
    /// These grants are revoked (each until it would have expired anyway).
    Revoke { grants: Vec<RevokedGrant> },
    /// Every grant of the person created at or before `at` (unix seconds) is revoked:
    /// "sign out of everything", by the admin or the issuer (back-channel logout by
    /// `sub`), including grants this location's KV does not list yet.
    RevokeEverything { at: u64 },
    /// Whether this grant, created at `created`, is still live.
    Check { grant: String, created: u64 },
    /// A re-validation of the grant is due (`every`: `revalidate_every`): may the asker
    /// refresh it? One refresh at a time per grant, wherever it runs: the issuer may rotate
    /// the refresh token on every use and treat a reused one as theft (Pocket ID).
    Refresh {
        grant: String,
        created: u64,
        every: u64,
    },
    /// The asker's refresh succeeded: the renewed record (JSON, its refresh token sealed),
    /// for whoever asks next.
    Refreshed {
        grant: String,
        created: u64,
        record: String,
        validated: u64,
        expires: u64,
    },
    /// The asker's refresh did not happen (issuer unreachable, refused): the lease ends.
    RefreshFailed { grant: String },
}

/// One revoked grant: a session's hash or an app password's ID, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedGrant {
    pub grant: String,
    pub expires: u64,
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A revocation (or a refresh's end) was recorded.
    Recorded,
    Live,
    Revoked,
    /// Refresh it; the asker holds the grant's lease for [`record::LEASE`] seconds. The
    /// last renewed record the object holds comes along: its refresh token is the current
    /// one even where KV still shows an older record.
    Go {
        record: Option<String>,
    },
    /// Another refresh of it is running: keep the grant as it is for now.
    Busy,
    /// Refreshed by another within `every`: this is the renewed record.
    Current {
        record: String,
    },
}

/// Why the object could not answer. The gate then falls back to KV alone, and says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    /// No `PEOPLE` binding: revocation rests on KV alone.
    #[error("no PEOPLE binding")]
    NotBound,
    /// The object did not answer, or answered something else.
    #[error("the person's object did not answer: {0}")]
    Unreachable(String),
}

/// The persons' objects, as the core asks them: the Worker's `PEOPLE` namespace, or a
/// test double.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait People {
    /// Whether there are objects to ask at all (the `PEOPLE` binding exists).
    fn bound(&self) -> bool;
    /// Asks the object of the person `sub`.
    async fn ask(&self, sub: &str, ask: &Ask) -> Result<Answer, PeopleError>;
}

/// No objects: the owner's tools, and a Worker deployed without `PEOPLE`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unbound;

impl People for Unbound {
    fn bound(&self) -> bool {
        false
    }

    async fn ask(&self, _sub: &str, _ask: &Ask) -> Result<Answer, PeopleError> {
        Err(PeopleError::NotBound)
    }
}

/// Records revoked grants in their person's object. Grants are grouped by person: one
/// request per person.
pub async fn record_revoked<P: People>(
    people: &P,
    grants: &[(&str, RevokedGrant)],
) -> Result<(), PeopleError> {
    if !people.bound() {
        return Err(PeopleError::NotBound);
    }
    let mut subs: Vec<&str> = grants.iter().map(|(sub, _)| *sub).collect();
    subs.sort_unstable();
    subs.dedup();
    let mut failed = None;
    for sub in subs {
        let grants = grants
            .iter()
            .filter(|(s, _)| *s == sub)
            .map(|(_, g)| g.clone())
            .collect();
        if let Err(e) = expect_recorded(people.ask(sub, &Ask::Revoke { grants }).await) {
            failed = Some(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Records that every grant of `sub` created up to `at` is revoked.
pub async fn record_everything_revoked<P: People>(
    people: &P,
    sub: &str,
    at: u64,
) -> Result<(), PeopleError> {
    if !people.bound() {
        return Err(PeopleError::NotBound);
    }
    expect_recorded(people.ask(sub, &Ask::RevokeEverything { at }).await)
}

fn expect_recorded(answer: Result<Answer, PeopleError>) -> Result<(), PeopleError> {
    match answer? {
        Answer::Recorded => Ok(()),
        other => Err(PeopleError::Unreachable(format!("answered {other:?}"))),
    }
}

/// Whether the person's object holds this grant live.
pub async fn check<P: People>(
    people: &P,
    sub: &str,
    grant: &str,
    created: u64,
) -> Result<bool, PeopleError> {
    let ask = Ask::Check {
        grant: grant.to_string(),
        created,
    };
    match people.ask(sub, &ask).await? {
        Answer::Live => Ok(true),
        Answer::Revoked => Ok(false),
        other => Err(PeopleError::Unreachable(format!("answered {other:?}"))),
    }
}

/// May this refresh run? The object's answer, or why it could not be asked.
pub async fn begin_refresh<P: People>(
    people: &P,
    sub: &str,
    grant: &str,
    created: u64,
    every: u64,
) -> Result<Answer, PeopleError> {
    let ask = Ask::Refresh {
        grant: grant.to_string(),
        created,
        every,
    };
    match people.ask(sub, &ask).await? {
        answer @ (Answer::Go { .. } | Answer::Busy | Answer::Revoked | Answer::Current { .. }) => {
            Ok(answer)
        }
        other => Err(PeopleError::Unreachable(format!("answered {other:?}"))),
    }
}

#[cfg(test)]
pub mod testing {
    //! A native stand-in for the `PEOPLE` namespace: one [`record::Memory`] per person,
    //! shared by every gate that holds a clone (two "locations"), counting questions, and
    //! able to fail.

    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::record::{self, Memory};
    use super::*;

    #[derive(Clone, Default)]
    pub struct FakePeople {
        /// As without a `PEOPLE` binding.
        pub absent: bool,
        objects: Rc<RefCell<HashMap<String, Rc<Memory>>>>,
        pub asked: Rc<Cell<usize>>,
        pub down: Rc<Cell<bool>>,
        /// The time the objects see (they keep their own clock; the gate tests set it to
        /// the time of the request being handled).
        pub now: Rc<Cell<u64>>,
    }

    impl FakePeople {
        /// As a Worker without a `PEOPLE` binding.
        pub fn absent() -> Self {
            Self {
                absent: true,
                ..Self::default()
            }
        }
    }

    impl People for FakePeople {
        fn bound(&self) -> bool {
            !self.absent
        }

        async fn ask(&self, sub: &str, ask: &Ask) -> Result<Answer, PeopleError> {
            if self.absent {
                return Err(PeopleError::NotBound);
            }
            self.asked.set(self.asked.get() + 1);
            if self.down.get() {
                return Err(PeopleError::Unreachable("down".into()));
            }
            let object = self
                .objects
                .borrow_mut()
                .entry(sub.to_string())
                .or_default()
                .clone();
            record::answer(&*object, ask, self.now.get()).map_err(|e| PeopleError::Unreachable(e.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_tagged_json_and_refuses_unknown_fields() {
        let ask = Ask::Check {
            grant: "g".into(),
            created: 5,
        };
        let json = serde_json::to_string(&ask).unwrap();
        assert_eq!(json, r#"{"check":{"grant":"g","created":5}}"#);
        assert_eq!(serde_json::from_str::<Ask>(&json).unwrap(), ask);
        for refused in [
            r#"{"check":{"grant":"g","created":5,"x":1}}"#,
            r#"{"forget":{}}"#,
            r#"{"check":{"grant":"g","created":5},"x":1}"#,
            r#"{"op":"check","grant":"g","created":5}"#,
        ] {
            assert!(serde_json::from_str::<Ask>(refused).is_err(), "{refused}");
        }
        assert_eq!(
            serde_json::to_string(&Answer::Revoked).unwrap(),
            r#""revoked""#
        );
    }

    #[test]
    fn unbound_people_record_nothing_and_say_so() {
        let g = RevokedGrant {
            grant: "g".into(),
            expires: 9,
        };
        let r = pollster::block_on(record_revoked(&Unbound, &[("s", g)]));
        assert_eq!(r, Err(PeopleError::NotBound));
        let r = pollster::block_on(record_everything_revoked(&Unbound, "s", 1));
        assert_eq!(r, Err(PeopleError::NotBound));
    }

    #[test]
    fn revocations_are_grouped_by_person_and_seen_by_every_asker() {
        let people = testing::FakePeople::default();
        let other_location = people.clone();
        let grant = |g: &str| RevokedGrant {
            grant: g.into(),
            expires: 1_000,
        };
        pollster::block_on(record_revoked(
            &people,
            &[
                ("alice", grant("a1")),
                ("bob", grant("b1")),
                ("alice", grant("a2")),
            ],
        ))
        .unwrap();
        assert_eq!(people.asked.get(), 2, "one request per person");
        let live =
            |sub: &str, g: &str| pollster::block_on(check(&other_location, sub, g, 10)).unwrap();
        assert!(!live("alice", "a1") && !live("alice", "a2") && !live("bob", "b1"));
        assert!(live("alice", "b1"), "a revocation is the person's own");
        assert!(live("alice", "a3"));
        people.down.set(true);
        assert!(pollster::block_on(check(&people, "alice", "a3", 10)).is_err());
    }
}
