//! Re-validation: with `revalidate_every`, a session's refresh token is used every so often
//! to confirm the user is still active at the issuer (and to pick up changed claims). If
//! the issuer refuses it (`invalid_grant`: user disabled, grant revoked), the session ends.
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

use super::{audit_fields, Gate, Io};
use crate::crypto::{self, Random};
use crate::http::HttpClient;
use crate::oidc::id_token::{self, Expected};
use crate::oidc::provider::{Source, VerifyError};
use crate::oidc::{token, OidcError};
use crate::secret::Secret;
use crate::session::{registry, Session, SessionId, Store};

/// The key-derivation label of the refresh-token encryption key.
const REFRESH_KEY: &str = "portcullis refresh token key v1";
/// After an unreachable issuer, this isolate waits this long before the next attempt.
const BACKOFF: u64 = 60;

/// Work to do after the response has been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Revalidate { cookie: String, id: SessionId },
}

/// When a session needs re-validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    No,
    /// After the response.
    Later,
    /// Before the response: too long since the issuer last vouched.
    Now,
}

/// What a re-validation came to.
#[derive(Debug)]
pub(super) enum Revalidation {
    Renewed(Rc<Session>),
    /// Left as it was (refresh already running here, issuer unreachable).
    Kept,
    Revoked,
}

impl Gate {
    pub(super) fn revalidation_due(&self, session: &Session, id: &SessionId, now: u64) -> Due {
        let Some(every) = self.config.settings.revalidate_every else {
            return Due::No;
        };
        let age = now.saturating_sub(session.validated);
        if age < every {
            return Due::No;
        }
        // Hashing the ID costs a SHA-256: only for sessions that are due anyway.
        let hash = id.hash();
        if self.refreshing.borrow().contains(&hash)
            || self.refresh_backoff.get(&hash, now).is_some()
        {
            Due::No
        } else if age >= every.saturating_mul(2) {
            Due::Now
        } else {
            Due::Later
        }
    }

    /// Encrypts a refresh token for storage in the session with this hash.
    pub(super) fn seal_refresh(
        &self,
        hash: &str,
        refresh: &str,
        rng: &impl Random,
    ) -> Option<String> {
        let key = self
            .config
            .secrets
            .signing_keys
            .derived(REFRESH_KEY)
            .next()?;
        crypto::seal(&key, hash.as_bytes(), refresh.as_bytes(), rng).ok()
    }

    fn open_refresh(&self, hash: &str, sealed: &str) -> Option<String> {
        self.config
            .secrets
            .signing_keys
            .derived(REFRESH_KEY)
            .find_map(|key| crypto::open(&key, hash.as_bytes(), sealed))
            .and_then(|plain| String::from_utf8(plain).ok())
    }

    /// Runs a task scheduled by [`Gate::handle`]; returns its log lines.
    pub async fn run<S: Store, H: HttpClient, R: Random>(
        &self,
        task: Task,
        io: &Io<'_, S, H, R>,
        now: u64,
    ) -> Vec<String> {
        let mut log = Vec::new();
        match task {
            Task::Revalidate { cookie, id } => {
                self.revalidate(&cookie, &id, io, now, &mut log).await;
            }
        }
        log
    }

    pub(super) async fn revalidate<S: Store, H: HttpClient, R: Random>(
        &self,
        cookie: &str,
        id: &SessionId,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Revalidation {
        let hash = id.hash();
        if !self.refreshing.borrow_mut().insert(hash.clone()) {
            return Revalidation::Kept;
        }
        let outcome = self.refresh(cookie, id, &hash, io, now, log).await;
        self.refreshing.borrow_mut().remove(&hash);
        outcome
    }

    async fn refresh<S: Store, H: HttpClient, R: Random>(
        &self,
        cookie: &str,
        id: &SessionId,
        hash: &str,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Revalidation {
        let every = self.config.settings.revalidate_every.unwrap_or(u64::MAX);
        let back_off = || {
            self.refresh_backoff.insert(hash, (), now + BACKOFF, now);
            Revalidation::Kept
        };
        // The freshest copy: another isolate may have refreshed (or revoked) it already.
        let current = match registry::load(io.store, hash).await {
            Ok(Some(session)) if session.is_live(now) => session,
            Ok(_) => {
                self.sessions.remove(id);
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
            return self
                .end(
                    io,
                    id,
                    &current,
                    "no refresh token (does the issuer grant offline_access?)",
                    log,
                )
                .await;
        };
        let Ok(metadata) = self.provider.metadata(io.http, now).await else {
            return back_off();
        };
        let request = token::refresh_request(&metadata, &self.config, &refresh);
        let Ok(response) = io.http.send(request).await else {
            return back_off();
        };
        let tokens = match token::parse_refresh_response(&response) {
            Ok(tokens) => tokens,
            Err(OidcError::TokenRefused { error, .. }) if error == "invalid_grant" => {
                // Someone else may have rotated the token between our read and now.
                if let Ok(Some(again)) = registry::load(io.store, hash).await {
                    if again.refresh != current.refresh || again.validated != current.validated {
                        return self.adopt(cookie, id, again, now);
                    }
                }
                return self
                    .end(
                        io,
                        id,
                        &current,
                        "the issuer refused the refresh token (invalid_grant)",
                        log,
                    )
                    .await;
            }
            Err(e) => {
                log.push(audit_fields(
                    "revalidation_error",
                    &current.host,
                    &[("session", hash), ("detail", &e.to_string())],
                ));
                return back_off();
            }
        };

        let mut renewed = current.clone();
        if let Some(id_token) = tokens.id_token.as_deref() {
            let claims = match self
                .provider
                .verify(io.http, id_token, Source::Issuer, now)
                .await
            {
                Err(VerifyError::Issuer(_)) => return back_off(),
                Err(VerifyError::Token(e)) => {
                    return self
                        .end(io, id, &current, &format!("refreshed ID token: {e}"), log)
                        .await
                }
                Ok(jws) => id_token::validate(
                    &jws,
                    &Expected {
                        issuer: &self.config.settings.issuer,
                        client_id: &self.config.settings.client_id,
                        nonce: None,
                        subject: Some(&current.identity.sub),
                        groups_claim: &self.config.settings.groups_claim,
                        now,
                    },
                ),
            };
            match claims {
                Ok(claims) => {
                    renewed.identity = claims.identity;
                    renewed.id_token = Some(Secret::new(id_token));
                }
                Err(e) => {
                    return self
                        .end(io, id, &current, &format!("refreshed ID token: {e}"), log)
                        .await
                }
            }
        }
        // The issuer may rotate the refresh token; keep whichever is current.
        if let Some(rotated) = tokens.refresh_token.as_deref() {
            renewed.refresh = self.seal_refresh(hash, rotated, io.rng);
        }
        renewed.validated = now;
        let stored = if renewed.identity.email == current.identity.email {
            registry::save_record(io.store, hash, &renewed, now).await
        } else {
            registry::save(io.store, hash, &renewed, now).await
        };
        if stored.is_err() {
            return back_off();
        }
        self.adopt(cookie, id, renewed, now)
    }

    /// Uses a re-validated session from now on (in this isolate's cache too).
    fn adopt(&self, cookie: &str, id: &SessionId, session: Session, now: u64) -> Revalidation {
        let session = Rc::new(session);
        self.sessions
            .insert(cookie, id.clone(), session.clone(), now);
        Revalidation::Renewed(session)
    }

    /// Ends a session the issuer no longer vouches for.
    async fn end<S: Store, H, R>(
        &self,
        io: &Io<'_, S, H, R>,
        id: &SessionId,
        session: &Session,
        why: &str,
        log: &mut Vec<String>,
    ) -> Revalidation {
        let hash = id.hash();
        if self.revoke(io.store, &hash, None).await.is_err() {
            // Could not delete it: at least stop trusting it here.
            self.sessions.remove(id);
        }
        log.push(audit_fields(
            "revalidation_failed",
            &session.host,
            &[
                ("by", "revalidation"),
                ("sub", &session.identity.sub),
                ("session", &hash),
                ("reason", why),
            ],
        ));
        Revalidation::Revoked
    }
}
