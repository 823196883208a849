//! Re-validation of app passwords, as for sessions (see `session/revalidate.rs` for the
//! reasoning): with `revalidate_every`, each app password's own refresh token is used
//! every so often; a refusal (`invalid_grant`: the person was disabled, the grant
//! revoked; or an answer that disowns the grant, [`OidcError::disowns_grant`]) ends it,
//! so disabling one account at the issuer ends every access. The
//! refresh runs after the response, or first when long overdue; one at a time per app
//! password in an isolate; the record is re-read first and written back only if it was
//! not revoked meanwhile.

use std::rc::Rc;

use super::passwords::{revoked_line, AppPasswords};
use super::record::AppPassword;
use super::registry;
use crate::context::{audit_line, Env, Io};
use crate::oidc::{ClientError, OidcError};
use crate::session::revalidate::{due, Due, BACKOFF, REFRESH_MARKER};

impl AppPasswords {
    pub(super) fn revalidation_due(&self, record: &AppPassword, now: u64) -> Due {
        match (self.config.settings.revalidate_every, &record.refresh) {
            (Some(every), Some(_)) => due(every, record.validated, now, || {
                self.refreshing.get(&record.id, now).is_some()
                    || self.backoff.get(&record.id, now).is_some()
            }),
            _ => Due::No,
        }
    }

    /// Re-validates one app password; `None` when it has ended (refused, revoked, gone),
    /// else the record to use from now on.
    pub(super) async fn revalidate<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &str,
    ) -> Option<Rc<AppPassword>> {
        let now = env.now;
        if self.refreshing.get(id, now).is_some() {
            return self.cache.get(id, now);
        }
        self.refreshing.insert(id, (), now + REFRESH_MARKER, now);
        let outcome = self.refresh(env, id).await;
        self.refreshing.remove(id);
        outcome
    }

    async fn refresh<I: Io>(&self, env: &Env<'_, I>, id: &str) -> Option<Rc<AppPassword>> {
        let now = env.now;
        let every = self.config.settings.revalidate_every.unwrap_or(u64::MAX);
        let keep = |record: AppPassword| Some(Rc::new(record));
        let back_off = |record: AppPassword| {
            self.backoff.insert(id, (), now + BACKOFF, now);
            Some(Rc::new(record))
        };
        // The freshest copy: another isolate may have refreshed (or revoked) it already.
        let current = match registry::load(env.store(), id).await {
            Ok(Some(record)) if record.is_live(now) => record,
            Ok(_) => {
                self.cache.remove(id);
                return None;
            }
            Err(_) => {
                self.backoff.insert(id, (), now + BACKOFF, now);
                return self.cache.get(id, now);
            }
        };
        if now.saturating_sub(current.validated) < every {
            return keep(current);
        }
        let Some(token) = current
            .refresh
            .as_deref()
            .and_then(|sealed| self.open_refresh(id, sealed))
        else {
            return self.end(env, &current, "no refresh token").await;
        };
        let sub = &current.identity.sub;
        let refreshed = match self
            .client
            .refresh(env.http(), env.signatures(), &token, sub, now)
            .await
        {
            Ok(refreshed) => refreshed,
            Err(ClientError::Refused(OidcError::TokenRefused { error, .. }))
                if error == "invalid_grant" =>
            {
                // Someone else may have rotated the token between our read and now.
                if let Ok(Some(again)) = registry::load(env.store(), id).await {
                    if again.refresh != current.refresh || again.validated != current.validated {
                        return keep(again);
                    }
                }
                let why = "the issuer refused the refresh token (invalid_grant)";
                return self.end(env, &current, why).await;
            }
            Err(ClientError::Refused(e)) if e.disowns_grant() => {
                return self
                    .end(env, &current, &format!("after the refresh, {e}"))
                    .await
            }
            Err(ClientError::Refused(e)) => {
                env.log(audit_line(
                    "revalidation_error",
                    &current.app,
                    &[("app_password", id), ("detail", &e.to_string())],
                ));
                return back_off(current);
            }
            Err(ClientError::Unavailable(_)) => return back_off(current),
        };
        let mut renewed = current.clone();
        if let Some((claims, _)) = refreshed.vouched {
            renewed.identity = claims.identity;
        }
        if let Some(rotated) = &refreshed.refresh_token {
            renewed.refresh = self.seal_refresh(id, rotated.expose(), env.rng());
        }
        renewed.validated = now;
        if self.write_back(env, &renewed).await {
            keep(renewed)
        } else if self.revoked.get(id, now).is_some()
            || matches!(registry::is_revoked(env.store(), id).await, Ok(true))
        {
            self.cache.remove(id);
            None
        } else {
            back_off(current)
        }
    }

    /// Ends an app password the issuer no longer vouches for.
    async fn end<I: Io>(
        &self,
        env: &Env<'_, I>,
        record: &AppPassword,
        why: &str,
    ) -> Option<Rc<AppPassword>> {
        if self.revoke(env, &record.id, None).await.is_err() {
            self.cache.remove(&record.id);
            self.revoked
                .insert(&record.id, (), env.now + 3_600, env.now);
        }
        let sub = &record.identity.sub;
        env.log(revoked_line(
            &record.app,
            &record.id,
            sub,
            "revalidation",
            why,
        ));
        None
    }
}
