//! Re-validation: with `revalidate_every`, a session's refresh token is used every so often
//! to confirm the user is still active at the issuer (and to pick up changed claims). If
//! the issuer refuses it (`invalid_grant`: user disabled, grant revoked), or disowns the
//! refreshed grant ([`OidcError::disowns_grant`]: the new ID token fails its checks,
//! UserInfo refuses the new access token or names someone else), the session ends.
//!
//! Rotating refresh tokens (Pocket ID rotates on every use, with no grace period) make two
//! concurrent refreshes of one session fatal for it, so:
//! - Within an isolate only one refresh per session runs at a time (`refreshing`); other
//!   requests meanwhile are served with the session as it is.
//! - A refresh normally runs after the response (`waitUntil`), so no request waits for the
//!   issuer; only a session older than twice `revalidate_every` is refreshed first.
//! - Before refreshing, the record is re-read from KV: another isolate may have refreshed it
//!   already (then its result is used). On `invalid_grant` it is re-read once more, and the
//!   session is revoked only if nobody else has rotated the token meanwhile.
//! - If the issuer cannot be reached, the session keeps working and this isolate waits a
//!   minute before trying again.
//! - One refresh writes one KV key (the record; the index too only if the email changed),
//!   at most once per `revalidate_every` per session, well under KV's one write per second.

use std::rc::Rc;

use super::sessions::Sessions;
use super::{registry, Session, SessionId};
use crate::context::{audit_line, Env, Io, Task};
use crate::crypto::Random;
use crate::oidc::{ClientError, OidcError};
use crate::store::StoreError;

/// The key-derivation label of the refresh-token encryption key.
const REFRESH_KEY: &str = "portcullis refresh token key v1";
/// A refresh is taken to be running for at most this long (the issuer's timeout is 10 s):
/// one whose `waitUntil` was abandoned no longer counts after it.
pub(crate) const REFRESH_MARKER: u64 = 60;
/// After an unreachable issuer, this isolate waits this long before the next attempt.
pub(crate) const BACKOFF: u64 = 60;

/// When a grant (a session's, an app password's) needs re-validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    No,
    /// After the response.
    Later,
    /// Before the response: too long since the issuer last vouched.
    Now,
}

/// The one rule for both: due once `every` has passed since the issuer last vouched
/// (`validated`), before the response once twice that has; never while a refresh runs or
/// backs off here (`busy`). `busy` is only asked for grants that are due: it may cost a hash.
pub(crate) fn due(every: u64, validated: u64, now: u64, busy: impl FnOnce() -> bool) -> Due {
    let age = now.saturating_sub(validated);
    if age < every || busy() {
        Due::No
    } else if age >= every.saturating_mul(2) {
        Due::Now
    } else {
        Due::Later
    }
}

/// The session being re-validated: its cookie value (the isolate's cache key), ID and hash.
#[derive(Clone, Copy)]
struct Target<'a> {
    cookie: &'a str,
    id: &'a SessionId,
    hash: &'a str,
}

/// What a re-validation came to.
#[derive(Debug)]
pub(super) enum Revalidation {
    Renewed(Rc<Session>),
    /// Left as it was (refresh already running here, issuer unreachable).
    Kept,
    Revoked,
}

impl Sessions {
    pub(super) fn revalidation_due(&self, session: &Session, id: &SessionId, now: u64) -> Due {
        let Some(every) = self.config.settings.revalidate_every else {
            return Due::No;
        };
        // The issuer gave no refresh token at login: nothing to re-validate with, and the
        // session lasts until its lifetime ends (the log said so at login).
        if session.refresh.is_none() {
            return Due::No;
        }
        due(every, session.validated, now, || {
            let hash = id.hash();
            self.refreshing.get(&hash, now).is_some() || self.backoff.get(&hash, now).is_some()
        })
    }

    /// Encrypts a refresh token for storage in the session with this hash.
    pub(super) fn seal_refresh(
        &self,
        hash: &str,
        refresh: &str,
        rng: &impl Random,
    ) -> Option<String> {
        let keys = &self.config.secrets.signing_keys;
        keys.seal(REFRESH_KEY, hash, refresh, rng)
    }

    pub(super) fn open_refresh(&self, hash: &str, sealed: &str) -> Option<String> {
        self.config
            .secrets
            .signing_keys
            .open(REFRESH_KEY, hash, sealed)
    }

    /// Runs work scheduled during a request, after its response.
    pub async fn run<I: Io>(&self, env: &Env<'_, I>, task: &Task) {
        if let Task::Revalidate { cookie } = task {
            let keys = &self.config.secrets.signing_keys;
            if let Some(id) = SessionId::from_cookie_value(cookie.expose(), keys) {
                self.revalidate(env, cookie.expose(), &id).await;
            }
        }
    }

    pub(super) async fn revalidate<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: &str,
        id: &SessionId,
    ) -> Revalidation {
        let hash = id.hash();
        if self.refreshing.get(&hash, env.now).is_some() {
            return Revalidation::Kept;
        }
        self.refreshing
            .insert(&hash, (), env.now + REFRESH_MARKER, env.now);
        let outcome = self
            .refresh(
                env,
                &Target {
                    cookie,
                    id,
                    hash: &hash,
                },
            )
            .await;
        self.refreshing.remove(&hash);
        outcome
    }

    async fn refresh<I: Io>(&self, env: &Env<'_, I>, target: &Target<'_>) -> Revalidation {
        let Target { cookie, id, hash } = *target;
        let now = env.now;
        let every = self.config.settings.revalidate_every.unwrap_or(u64::MAX);
        let back_off = || {
            self.backoff.insert(hash, (), now + BACKOFF, now);
            Revalidation::Kept
        };
        // The freshest copy: another isolate may have refreshed (or revoked) it already.
        let current = match registry::load(env.store(), hash).await {
            Ok(Some(session)) if session.is_live(now) => session,
            Ok(_) => {
                self.cache.remove(id);
                return Revalidation::Revoked;
            }
            Err(_) => return back_off(),
        };
        if now.saturating_sub(current.validated) < every {
            return self.adopt(cookie, id, current, now);
        }
        let Some(refresh) = current
            .refresh
            .as_deref()
            .and_then(|s| self.open_refresh(hash, s))
        else {
            let why = "no refresh token (does the issuer grant offline_access?)";
            return self.end_refused(env, hash, &current, why).await;
        };
        let sub = &current.identity.sub;
        let refreshed = match self
            .client
            .refresh(env.http(), env.signatures(), &refresh, sub, now)
            .await
        {
            Ok(refreshed) => refreshed,
            Err(ClientError::Refused(OidcError::TokenRefused { error, .. }))
                if error == "invalid_grant" =>
            {
                // Someone else may have rotated the token between our read and now.
                if let Ok(Some(again)) = registry::load(env.store(), hash).await {
                    if again.refresh != current.refresh || again.validated != current.validated {
                        return self.adopt(cookie, id, again, now);
                    }
                }
                let why = "the issuer refused the refresh token (invalid_grant)";
                return self.end_refused(env, hash, &current, why).await;
            }
            Err(ClientError::Refused(e)) if e.disowns_grant() => {
                return self
                    .end_refused(env, hash, &current, &format!("after the refresh, {e}"))
                    .await
            }
            Err(ClientError::Refused(e)) => {
                env.log(audit_line(
                    "revalidation_error",
                    &current.host,
                    &[("session", hash), ("detail", &e.to_string())],
                ));
                return back_off();
            }
            Err(ClientError::Unavailable(_)) => return back_off(),
        };

        let mut renewed = current.clone();
        if let Some((claims, id_token)) = refreshed.vouched {
            renewed.identity = claims.identity;
            renewed.id_token = Some(id_token);
        }
        // The issuer may rotate the refresh token; keep whichever is current.
        if let Some(rotated) = &refreshed.refresh_token {
            renewed.refresh = self.seal_refresh(hash, rotated.expose(), env.rng());
        }
        renewed.validated = now;
        // A revoked session is never written back: not when it was revoked while the issuer
        // was being asked (here, or elsewhere — the tombstone says so), and if a revoke
        // lands between this check and the write, the write is undone.
        match self.is_revoked(env, hash).await {
            Ok(false) => {}
            Ok(true) => return Revalidation::Revoked,
            Err(_) => return back_off(),
        }
        let stored = if renewed.identity.email == current.identity.email {
            registry::save_record(env.store(), hash, &renewed, now).await
        } else {
            registry::save(env.store(), hash, &renewed, now).await
        };
        if stored.is_err() {
            return back_off();
        }
        if !matches!(self.is_revoked(env, hash).await, Ok(false)) {
            let _ = registry::remove(env.store(), hash, None).await;
            self.cache.remove(id);
            return Revalidation::Revoked;
        }
        self.adopt(cookie, id, renewed, now)
    }

    /// Revoked here, or anywhere (a tombstone in KV).
    async fn is_revoked<I: Io>(&self, env: &Env<'_, I>, hash: &str) -> Result<bool, StoreError> {
        if self.revoked.get(hash, env.now).is_some() {
            return Ok(true);
        }
        registry::is_revoked(env.store(), hash).await
    }

    /// Uses a re-validated session from now on (in this isolate's cache too).
    fn adopt(&self, cookie: &str, id: &SessionId, session: Session, now: u64) -> Revalidation {
        if self.revoked.get(&id.hash(), now).is_some() {
            return Revalidation::Revoked;
        }
        let session = Rc::new(session);
        self.cache.insert(cookie, id.clone(), session.clone(), now);
        Revalidation::Renewed(session)
    }

    /// Ends a session the issuer no longer vouches for.
    async fn end_refused<I: Io>(
        &self,
        env: &Env<'_, I>,
        hash: &str,
        session: &Session,
        why: &str,
    ) -> Revalidation {
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
        Revalidation::Revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_every_first_after_twice_never_while_busy() {
        assert_eq!(due(60, 1000, 1059, || false), Due::No);
        assert_eq!(due(60, 1000, 1060, || false), Due::Later);
        assert_eq!(due(60, 1000, 1119, || false), Due::Later);
        assert_eq!(due(60, 1000, 1120, || false), Due::Now);
        assert_eq!(due(60, 1000, 5000, || true), Due::No);
        assert_eq!(
            due(60, 1000, 1010, || panic!("not asked when not due")),
            Due::No
        );
    }
}
