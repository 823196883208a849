//! One lifecycle for every credential backed by a refresh-token grant — sessions and app
//! passwords today, whatever comes next. Each owner keeps only what is its own (its
//! records, key layout, cache and audit lines); this module holds the rest, written once:
//!
//! - [`mod@due`]: when a grant needs re-validation (after the response, or before it);
//! - [`lock`]: one refresh at a time per grant in an isolate, and the back-off after an
//!   unreachable issuer;
//! - [`tombstone`]: revocation (a tombstone, then the record and its index keys), the
//!   tombstone check, and the write-back that never resurrects a revoked grant;
//! - [`refresh`]: the re-validation itself, generic over the owner's [`GrantRecord`].
//!
//! [`Lifecycle`] is what an owner holds per isolate: the grants revoked here, the locks,
//! and the key that encrypts this kind's refresh tokens. [`Lifecycle::revoke`] is the one
//! revocation both owners go through.

pub mod due;
pub mod lock;
pub mod refresh;
pub mod tombstone;

pub use due::{due, Due};
pub use lock::Locks;
pub use refresh::{revalidate, GrantRecord, GrantStore, Revalidation};
pub use tombstone::{Doomed, Recorded, Tombstoned, WriteBack};

use std::cell::Cell;

use crate::context::{Env, Io};
use crate::crypto::Random;
use crate::oidc::Client;
use crate::people::{self, People, PeopleError};
use crate::secret::SigningKeys;
use crate::store::keys::Grant;
use crate::store::StoreError;
use crate::ttl_cache::TtlCache;

/// What one owner keeps per isolate for its kind of grant.
pub struct Lifecycle {
    /// Revoked in this isolate: refused at once, and never written back.
    revoked: TtlCache<()>,
    /// Whether this isolate has said that refreshes cannot show changed claims.
    said_claims_unseen: std::cell::Cell<bool>,
    pub locks: Locks,
    /// The key-derivation label of the key that encrypts this kind's refresh tokens.
    seal_label: &'static str,
    /// Credentials the person's object confirmed live, until `revocation_check` has passed.
    confirmed: TtlCache<()>,
    /// Grants whose refresh asked the person's object in this request (its answer says
    /// whether the grant is revoked, so it stands in for the check).
    consulted: TtlCache<()>,
    revocation_check: u64,
    /// When this isolate last said that a person's object could not be reached.
    said_unreachable: Cell<Option<u64>>,
}

/// "Sign out of everything" in the person's object (when `PEOPLE` is bound): every grant
/// of theirs created up to now is refused everywhere within `revocation_check`, including
/// grants this location's KV does not list yet. The caller revokes what KV lists as well.
/// Said in the log when the object cannot be reached.
pub async fn revoke_everything_of<I: Io>(env: &Env<'_, I>, sub: &str) {
    match people::record_everything_revoked(env.people(), sub, env.now).await {
        Ok(()) | Err(PeopleError::NotBound) => {}
        Err(e) => env.log(
            serde_json::json!({
                "level": "warn",
                "event": "revoked_without_person_object",
                "sub": sub,
                "detail": format!("{e}: other locations learn of this revocation through KV alone"),
            })
            .to_string(),
        ),
    }
}

/// Tells a person's object what a deferred [`Task::Person`](crate::context::Task) carries
/// (a lost message costs nothing lasting: a refresh's lease lapses by itself).
pub async fn tell<I: Io>(env: &Env<'_, I>, sub: &str, ask: &people::Ask) {
    let _ = env.people().ask(sub, ask).await;
}

/// Who asks the person's object whether a credential is still live, on this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckBy {
    /// The gate, when a check is due.
    Gate,
    /// The object itself: the request is a WebSocket upgrade it relays, and it checks its
    /// own record before it opens the socket (one object request, not two).
    Relay,
}

/// A credential being served, as the person's object is asked about it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// What this isolate knows the credential by (a session's cookie value, an app
    /// password's ID).
    pub key: &'a str,
    pub sub: &'a str,
    pub grant: Grant<'a>,
    pub created: u64,
    pub expires: u64,
}

/// The person's object is said to be unreachable at most this often (seconds).
const SAY_UNREACHABLE_EVERY: u64 = 60;

impl Lifecycle {
    pub fn new(seal_label: &'static str, revocation_check: u64) -> Self {
        Self {
            revoked: TtlCache::new(1024),
            said_claims_unseen: Cell::new(false),
            locks: Locks::new(),
            seal_label,
            confirmed: TtlCache::new(1024),
            consulted: TtlCache::new(64),
            revocation_check,
            said_unreachable: Cell::new(None),
        }
    }

    /// Whether the person's object is to be asked about this credential (known to this
    /// isolate by `key`) now: `PEOPLE` is bound and it was not confirmed within
    /// `revocation_check`. A request within that time costs this one map lookup.
    pub fn check_due<I: Io>(&self, env: &Env<'_, I>, key: &str) -> bool {
        env.people().bound() && self.confirmed.get(key, env.now).is_none()
    }

    /// Whether the person's object still holds this credential live (asked when
    /// [`Lifecycle::check_due`]). When the object cannot be reached, KV's word stands (said
    /// in the log, at most once a minute) until the next check.
    pub async fn still_live<I: Io>(&self, env: &Env<'_, I>, held: Held<'_>) -> bool {
        let people = env.people();
        let now = env.now;
        if !self.check_due(env, held.key) {
            return true;
        }
        let grant = held.grant.as_str();
        let answer = people::check(people, held.sub, grant, held.created).await;
        let until = now.saturating_add(self.revocation_check);
        match answer {
            Ok(true) => self.confirmed.insert(held.key, (), until, now),
            Ok(false) => {
                self.mark_revoked(grant, held.expires.max(now + 1), now);
                return false;
            }
            Err(e) => {
                // Asked again after `revocation_check`, not on every request meanwhile.
                self.confirmed.insert(held.key, (), until, now);
                self.say_unreachable(env, &e);
            }
        }
        true
    }

    fn say_unreachable<I: Io>(&self, env: &Env<'_, I>, error: &PeopleError) {
        let now = env.now;
        if self
            .said_unreachable
            .get()
            .is_some_and(|at| now < at + SAY_UNREACHABLE_EVERY)
        {
            return;
        }
        self.said_unreachable.set(Some(now));
        env.log(
            serde_json::json!({
                "level": "warn",
                "event": "person_object_unreachable",
                "detail": format!("{error}; revocation falls back to KV alone (up to session_cache plus KV's propagation) until it answers again"),
            })
            .to_string(),
        );
    }

    /// Whether the grant was revoked in this isolate.
    pub fn revoked_here(&self, grant: &str, now: u64) -> bool {
        self.revoked.get(grant, now).is_some()
    }

    /// Refuses the grant in this isolate from now until `until`.
    pub fn mark_revoked(&self, grant: &str, until: u64, now: u64) {
        self.revoked.insert(grant, (), until, now);
    }

    /// Notes that the person's object answered a refresh of this grant without seeing it
    /// revoked.
    pub fn note_consulted(&self, grant: &str, now: u64) {
        self.consulted.insert(grant, (), now + 1, now);
    }

    /// Whether the object was consulted about this grant's refresh (since the last call):
    /// then the credential (known here by `key`) counts as checked.
    pub fn consulted(&self, grant: &str, key: &str, now: u64) -> bool {
        let consulted = self.consulted.get(grant, now).is_some();
        if consulted {
            self.consulted.remove(grant);
            let until = now.saturating_add(self.revocation_check);
            self.confirmed.insert(key, (), until, now);
        }
        consulted
    }

    /// Revoked here, or anywhere: asked of the person's object when `ask` names the grant's
    /// person and creation (strongly consistent, so the check after a write-back is never
    /// answered from what the check before it cached), else of the tombstone. A refresh
    /// holding the object's lease does not ask: the object refuses its result if the grant
    /// was revoked meanwhile, and every reader asks the object anyway.
    pub async fn is_revoked<I: Io>(
        &self,
        env: &Env<'_, I>,
        grant: Grant<'_>,
        ask: Option<(&str, u64)>,
    ) -> Result<bool, StoreError> {
        if self.revoked_here(grant.as_str(), env.now) {
            return Ok(true);
        }
        if let (Some((sub, created)), true) = (ask, env.people().bound()) {
            match people::check(env.people(), sub, grant.as_str(), created).await {
                Ok(live) => return Ok(!live),
                Err(e) => self.say_unreachable(env, &e),
            }
        }
        tombstone::is_revoked(env.store(), grant).await
    }

    /// Encrypts a refresh token for storage with the grant it belongs to.
    pub fn seal(
        &self,
        keys: &SigningKeys,
        grant: &str,
        token: &str,
        rng: &impl Random,
    ) -> Option<String> {
        keys.seal(self.seal_label, grant, token, rng)
    }

    /// Decrypts a stored refresh token of this grant.
    pub fn open(&self, keys: &SigningKeys, grant: &str, sealed: &str) -> Option<String> {
        keys.open(self.seal_label, grant, sealed)
    }

    /// Says once per isolate that the issuer's refreshes carry no ID token and it has no
    /// UserInfo endpoint: a group removed at the issuer is not seen until the person signs
    /// in again (the refresh itself still confirms the grant is alive).
    pub fn say_claims_unseen<I: Io>(&self, env: &Env<'_, I>) {
        if !self.said_claims_unseen.replace(true) {
            env.log(
                serde_json::json!({
                    "level": "warn",
                    "event": "claims_not_refreshed",
                    "detail": "the issuer's refresh answers carry no ID token and it has no UserInfo endpoint: changes to a person's claims (groups, email) are not seen until they sign in again",
                })
                .to_string(),
            );
        }
    }

    /// Says in the log what a revocation could not record: the tombstone (the Free plan's
    /// daily writes spent, say: the grant is gone, but a re-validation that read it before
    /// could write it back), the person's object (other locations then learn through KV
    /// alone), or KV's removal (only the person's object holds it).
    pub fn report<I: Io>(&self, env: &Env<'_, I>, grant: Grant<'_>, recorded: &Recorded) {
        let kind = match grant {
            Grant::Session(_) => "session",
            Grant::AppPassword(_) => "app_password",
        };
        let warn = |event: &str, detail: String| {
            env.log(
                serde_json::json!({
                    "level": "warn", "event": event, kind: grant.as_str(), "detail": detail,
                })
                .to_string(),
            );
        };
        if recorded.tombstoned == Tombstoned::No {
            warn("revoked_without_tombstone", "the record and index keys were removed, but the tombstone could not be written (KV writes failing or the daily quota spent)".into());
        }
        if let Err(e @ PeopleError::Unreachable(_)) = &recorded.person {
            warn(
                "revoked_without_person_object",
                format!("{e}: other locations learn of this revocation through KV alone"),
            );
        }
        if !recorded.removed {
            warn(
                "revoked_in_person_object_only",
                "KV could not remove the record; the person's object holds the revocation".into(),
            );
        }
    }

    /// The one revocation every owner goes through: refused in this isolate at once (until
    /// `until`), recorded for good ([`tombstone::revoke_stored`]), then what it could not
    /// record said and the grant ended at the issuer (`Lifecycle::revoked`). `known`: the
    /// grant's summary when the caller listed it. Returns the record that was revoked.
    pub async fn revoke<I: Io, G: GrantStore>(
        &self,
        env: &Env<'_, I>,
        records: &G,
        (id, known): (&G::Id, Option<&G::Summary>),
        until: u64,
        issuer: (&Client, &SigningKeys),
    ) -> Result<Option<G::Record>, StoreError> {
        self.mark_revoked(id, until, env.now);
        let (removed, recorded) =
            tombstone::revoke_stored(records, env.people(), id, known, env.now).await?;
        let revoked = (G::grant(id), removed.as_ref());
        self.revoked(env, revoked, &recorded, issuer).await;
        Ok(removed)
    }

    /// After a revocation: says what it could not record ([`Lifecycle::report`]), and ends
    /// the removed record's grant at the issuer (RFC 7009, when it offers revocation).
    async fn revoked<I: Io, R: GrantRecord>(
        &self,
        env: &Env<'_, I>,
        (grant, removed): (Grant<'_>, Option<&R>),
        recorded: &Recorded,
        (client, keys): (&Client, &SigningKeys),
    ) {
        self.report(env, grant, recorded);
        let sealed = removed.and_then(GrantRecord::sealed_refresh);
        if let Some(token) = sealed.and_then(|sealed| self.open(keys, grant.as_str(), sealed)) {
            client
                .revoke_refresh_token(env.http(), &token, env.now)
                .await;
        }
    }
}
