//! Re-validation of sessions, through the one grant lifecycle ([`crate::grant`]): what is
//! the session's own is its record layout, its cache entry and its audit line.
//!
//! A refresh normally runs after the response (`waitUntil`), so no request waits for the
//! issuer; only a session older than twice `revalidate_every` is refreshed first. One
//! refresh writes one KV key (the record; the index too only if the email changed), at
//! most once per `revalidate_every` per session, well under KV's one write per second.

use std::rc::Rc;

use super::registry::Records;
use super::sessions::Sessions;
use super::{Session, SessionId};
use crate::context::{audit_line, Env, Io, SessionTask};
use crate::grant::refresh::grant_record;
use crate::grant::{self, Due, Revalidation};
use crate::store::keys::SessionHash;

/// The key-derivation label of the refresh-token encryption key.
pub(super) const REFRESH_KEY: &str = "portcullis refresh token key v1";

grant_record!(Session, "session", host);

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
        let (keys, every) = (&self.settings.keys, self.settings.revalidate_every);
        let with = self.grant.refresher(&self.client, keys, every);
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
