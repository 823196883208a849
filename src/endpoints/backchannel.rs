//! Logout driven by the issuer: OpenID Connect Back-Channel Logout 1.0. The issuer posts a
//! signed `logout_token`; its sessions (by `sid`) or the user's (by `sub`) end. It owns the
//! memory of token IDs already honoured, so a replay is refused.

use std::rc::Rc;

use serde_json::json;

use super::Answer;
use crate::app_password::AppPasswords;
use crate::context::{Ctx, Io};
use crate::crypto::{b64url, sha256};
use crate::error::GateError;
use crate::grant;
use crate::http::Reply;
use crate::identity::Subject;
use crate::oidc::claims::LEEWAY;
use crate::oidc::logout_token::{LogoutSubject, MAX_AGE};
use crate::oidc::{Client, PresentedError};
use crate::session::index::SessionSummary;
use crate::session::{registry, Sessions};
use crate::store::keys::{jti_key, SessionHash};
use crate::store::{Entry, Store};
use crate::ttl_cache::TtlCache;

pub struct Backchannel {
    client: Rc<Client>,
    sessions: Rc<Sessions>,
    app_passwords: Rc<AppPasswords>,
    /// Logout token IDs already honoured in this isolate.
    seen: TtlCache<()>,
}

impl Backchannel {
    pub fn new(
        client: Rc<Client>,
        sessions: Rc<Sessions>,
        app_passwords: Rc<AppPasswords>,
    ) -> Self {
        Self {
            client,
            sessions,
            app_passwords,
            seen: TtlCache::new(1024),
        }
    }

    /// `POST /.portcullis/backchannel-logout` with a `logout_token` from the issuer.
    pub async fn logout<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        self.end(ctx).await.map(Answer::from)
    }

    async fn end<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Reply, GateError> {
        let invalid = GateError::InvalidLogoutToken;
        let token = ctx
            .head
            .form_field("logout_token")
            .ok_or_else(|| invalid("no logout_token".into()))?;
        let claims = self
            .client
            .logout_token(ctx.env.http(), ctx.env.signatures(), &token, ctx.now())
            .await
            .map_err(|e| match e {
                PresentedError::Unavailable(e) => GateError::IssuerUnavailable(e),
                PresentedError::Invalid(why) => invalid(why),
            })?;
        self.refuse_replay(ctx, &claims.jti).await?;
        let subject = &claims.subject;
        let revoked = self.end_sessions(ctx, subject).await?;
        // By `sub` alone (the person's every session at the issuer), their app passwords
        // end too; by `sid` they do not: they belong to no one browser session.
        let app_passwords = match subject {
            LogoutSubject::Person { sub } => {
                self.app_passwords
                    .revoke_of_user(&ctx.env, sub, "backchannel")
                    .await?
            }
            LogoutSubject::Session { .. } | LogoutSubject::SessionOf { .. } => 0,
        };
        let sid_hash = subject
            .sid()
            .map(|s| b64url(&sha256(s.as_bytes())))
            .unwrap_or_default();
        ctx.audit(
            "backchannel_logout",
            &[
                ("sub", subject.sub().map_or("", Subject::as_str)),
                ("sid_hash", &sid_hash),
                ("revoked", &revoked.to_string()),
                ("app_passwords_revoked", &app_passwords.to_string()),
            ],
        );
        Ok(Reply::json(200, &json!({})))
    }

    /// A replayed token is refused (in this isolate at once; elsewhere once KV has it).
    async fn refuse_replay<I: Io>(&self, ctx: &Ctx<'_, I>, jti: &str) -> Result<(), GateError> {
        let (now, store) = (ctx.now(), ctx.env.store());
        let key = jti_key(jti);
        if self.seen.get(&key, now).is_some() || store.get(&key).await?.is_some() {
            return Err(GateError::InvalidLogoutToken("jti was already used".into()));
        }
        let remember = MAX_AGE + LEEWAY;
        store.put(&key, Entry::new("1", remember)).await?;
        self.seen.insert(&key, (), now + remember, now);
        Ok(())
    }

    /// Ends the sessions the token names: by `sid` that issuer session only (and only if
    /// it is the named person's), else every session of `sub`. Returns how many ended.
    async fn end_sessions<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        subject: &LogoutSubject,
    ) -> Result<usize, GateError> {
        let store = ctx.env.store();
        let targets: Vec<(SessionHash, Option<SessionSummary>)> = match subject {
            LogoutSubject::Session { sid } | LogoutSubject::SessionOf { sid, .. } => {
                let hashes = registry::with_sid(store, sid).await?;
                hashes.into_iter().map(|h| (h, None)).collect()
            }
            LogoutSubject::Person { sub } => {
                grant::revoke_everything_of(&ctx.env, sub).await;
                let listed = registry::of_user(store, sub).await?;
                listed.into_iter().map(|(h, s)| (h, Some(s))).collect()
            }
        };
        let mut revoked = 0usize;
        for (hash, summary) in &targets {
            if let LogoutSubject::SessionOf { sub, .. } = subject {
                // With both sid and sub, the session must belong to sub.
                let session = registry::load(store, hash).await?;
                if session.is_some_and(|s| s.identity.sub != *sub) {
                    continue;
                }
            }
            if self
                .sessions
                .revoke(&ctx.env, hash, summary.as_ref())
                .await?
            {
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}
