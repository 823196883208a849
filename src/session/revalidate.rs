//! Re-validation of sessions, through the one grant lifecycle ([`crate::grant`]): what is
//! the session's own is its record layout, its cache entry and its audit line.
//!
//! A refresh normally runs after the response (`waitUntil`), so no request waits for the
//! issuer; only a session older than twice `revalidate_every` is refreshed first. One
//! refresh writes one KV key (the record; the index too only if the email changed), at
//! most once per `revalidate_every` per session, well under KV's one write per second.

use std::rc::Rc;

use super::registry::{self, Index};
use super::sessions::Sessions;
use super::{Session, SessionId};
use crate::context::{audit_line, Env, Io, SessionTask};
use crate::grant::refresh::{grant_record, Refresher};
use crate::grant::{self, Due, GrantStore, Revalidation};
use crate::identity::Identity;
use crate::store::keys::{Grant, SessionHash};
use crate::store::{Store, StoreError};

/// The key-derivation label of the refresh-token encryption key.
pub(super) const REFRESH_KEY: &str = "portcullis refresh token key v1";

grant_record!(Session, "session", host);

/// Session records in the store, as the lifecycle reads and writes them.
struct Records<'s, S>(&'s S);

impl<S: Store> GrantStore for Records<'_, S> {
    type Record = Session;
    type Id = SessionHash;

    fn grant(hash: &SessionHash) -> Grant<'_> {
        Grant::Session(hash)
    }

    async fn load(&self, hash: &SessionHash) -> Result<Option<Session>, StoreError> {
        registry::load(self.0, hash).await
    }

    async fn write(
        &self,
        hash: &SessionHash,
        renewed: &Session,
        before: &Session,
        now: u64,
    ) -> Result<(), StoreError> {
        // The index keys carry the email: rewritten only when it changed.
        let index = if email_of(&renewed.identity) == email_of(&before.identity) {
            Index::Keep
        } else {
            Index::Rewrite
        };
        registry::save(self.0, hash, renewed, now, index).await
    }

    async fn unwrite(&self, hash: &SessionHash, _: &Session) -> Result<(), StoreError> {
        registry::remove(self.0, hash, None).await.map(|_| ())
    }
}

fn email_of(identity: &Identity) -> Option<&str> {
    identity.email.as_deref()
}

/// What a session's re-validation came to.
#[derive(Debug)]
pub(super) enum Outcome {
    Renewed(Rc<Session>),
    /// Left as it was (refresh already running here, issuer unreachable).
    Kept,
    Revoked,
}

impl Sessions {
    pub(super) fn revalidation_due(&self, session: &Session, id: &SessionId, now: u64) -> Due {
        let Some(every) = self.settings.revalidate_every else {
            return Due::No;
        };
        // The issuer gave no refresh token at login: nothing to re-validate with, and the
        // session lasts until its lifetime ends (the log said so at login).
        if session.refresh.is_none() {
            return Due::No;
        }
        grant::due(every, session.validated, now, || {
            self.grant.locks.busy(&id.hash(), now)
        })
    }

    /// Runs work scheduled during a request, after its response.
    pub async fn run<I: Io>(&self, env: &Env<'_, I>, task: &SessionTask) {
        let SessionTask::Revalidate { cookie } = task;
        let keys = &self.settings.keys;
        if let Some(id) = SessionId::from_cookie_value(cookie.expose(), keys) {
            self.revalidate(env, cookie.expose(), &id).await;
        }
    }

    pub(super) async fn revalidate<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: &str,
        id: &SessionId,
    ) -> Outcome {
        let hash = id.hash();
        let with = Refresher {
            life: &self.grant,
            client: &self.client,
            keys: &self.settings.keys,
            every: self.settings.revalidate_every.unwrap_or(u64::MAX),
        };
        match grant::revalidate(&with, env, &Records(env.store()), &hash).await {
            Revalidation::Renewed(session) => {
                let session = Rc::new(session);
                self.cache
                    .insert(cookie, id.clone(), session.clone(), env.now);
                Outcome::Renewed(session)
            }
            Revalidation::Kept => Outcome::Kept,
            Revalidation::Gone => {
                self.cache.remove(id);
                Outcome::Revoked
            }
            Revalidation::Refused { record, why } => {
                self.end_refused(env, &hash, &record, &why).await
            }
        }
    }

    /// Ends a session the issuer no longer vouches for.
    async fn end_refused<I: Io>(
        &self,
        env: &Env<'_, I>,
        hash: &SessionHash,
        session: &Session,
        why: &str,
    ) -> Outcome {
        if self.revoke(env, hash, None).await.is_err() {
            // Could not delete it: at least stop trusting it here.
            self.cache.remove_hash(hash);
        }
        env.log(audit_line(
            "revalidation_failed",
            &session.host,
            &[
                ("by", "revalidation"),
                ("sub", &session.identity.sub),
                ("session", hash),
                ("reason", why),
            ],
        ));
        Outcome::Revoked
    }
}
