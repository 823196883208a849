//! Seeing and ending sessions: the user's sessions page, the owner's admin API, and
//! logout driven by the issuer (OpenID Connect Back-Channel Logout 1.0).

use serde::Deserialize;
use serde_json::json;

use super::{audit, Gate, Io};
use crate::crypto::{b64url, ct_eq, sha256, Random};
use crate::error::GateError;
use crate::http::{HttpClient, Reply};
use crate::oidc::bearer;
use crate::oidc::claims::LEEWAY;
use crate::oidc::logout_token::{self, MAX_AGE};
use crate::oidc::provider::{Source, VerifyError};
use crate::pages::{self, SessionRow};
use crate::request::RequestHead;
use crate::router::Endpoint;
use crate::session::index::Summary;
use crate::session::{registry, Store};

const SESSIONS_CSRF: &str = "portcullis sessions csrf v1";
/// KV keys remembering back-channel logout token IDs (replay protection).
const JTI_PREFIX: &str = "jti:";

/// `POST /.portcullis/admin/revoke` body: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    sub: Option<String>,
    email: Option<String>,
    session: Option<String>,
    all: Option<bool>,
}

impl Gate {
    /// Removes a session (record, index keys, this isolate's cache entry).
    pub(super) async fn revoke<S: Store>(
        &self,
        store: &S,
        hash: &str,
        known: Option<&Summary>,
    ) -> Result<bool, GateError> {
        let removed = registry::remove(store, hash, known)
            .await
            .map_err(GateError::Store)?;
        self.sessions.remove_hash(hash);
        Ok(removed.is_some() || known.is_some())
    }

    /// `GET /.portcullis/sessions`: the signed-in user's sessions.
    pub(super) async fn sessions_page<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
    ) -> Result<Reply, GateError> {
        let mut log = Vec::new();
        let Some(found) = self.find_valid_session(head, io, now, &mut log).await? else {
            if head.is_browser_navigation() {
                let back = format!("{}{}", head.origin(), Endpoint::Sessions.path());
                return self.start_login(head, back, None, io, now).await;
            }
            return Err(GateError::Unauthenticated);
        };
        let current = found.id.hash();
        let mut listed = registry::of_user(io.store, &found.session.identity.sub)
            .await
            .map_err(GateError::Store)?;
        if !listed.iter().any(|(h, _)| *h == current) {
            // The index may lag behind (KV listings are eventually consistent).
            listed.push((current.clone(), Summary::of(&found.session)));
        }
        let rows: Vec<SessionRow<'_>> = listed
            .iter()
            .map(|(hash, s)| SessionRow {
                hash,
                device: pages::device(s.user_agent.as_deref()),
                host: &s.host,
                created: s.created,
                expires: s.expires,
                current: *hash == current,
            })
            .collect();
        let csrf = found
            .id
            .derive(&self.config.secrets.signing_keys, SESSIONS_CSRF);
        let page = pages::sessions(head.host(), found.session.identity.user(), &rows, &csrf);
        Ok(Reply::html(200, page))
    }

    /// `POST /.portcullis/sessions`: sign out one other session, or all others.
    pub(super) async fn sessions_action<S: Store>(
        &self,
        head: &RequestHead,
        store: &S,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        let found = self
            .find_session(head, store, now)
            .await?
            .ok_or(GateError::Unauthenticated)?;
        let expected = found
            .id
            .derive(&self.config.secrets.signing_keys, SESSIONS_CSRF);
        let given = head.form_field("csrf").unwrap_or_default();
        if !ct_eq(expected.as_bytes(), given.as_bytes()) {
            return Err(GateError::Csrf);
        }
        let sub = &found.session.identity.sub;
        let current = found.id.hash();
        let listed = registry::of_user(store, sub)
            .await
            .map_err(GateError::Store)?;
        let targets: Vec<&(String, Summary)> =
            match (head.form_field("revoke"), head.form_field("others")) {
                (Some(one), _) => listed.iter().filter(|(h, _)| *h == one).collect(),
                (None, Some(_)) => listed.iter().filter(|(h, _)| *h != current).collect(),
                (None, None) => return Err(GateError::BadRequest("nothing to sign out")),
            };
        for (hash, summary) in targets {
            self.revoke(store, hash, Some(summary)).await?;
            log.push(audit(
                head,
                "revoke",
                &[("by", "user"), ("sub", sub), ("session", hash)],
            ));
        }
        Ok(Reply::redirect(Endpoint::Sessions.path()))
    }

    /// The admin API is on only with `ADMIN_TOKEN`, and answers a wrong token the same way
    /// whatever was asked; the comparison takes the same time for any token.
    fn check_admin(&self, head: &RequestHead) -> Result<(), GateError> {
        let Some(expected) = &self.config.secrets.admin_token else {
            return Err(GateError::NotFound);
        };
        let given = head
            .header("authorization")
            .and_then(bearer::from_header)
            .unwrap_or_default();
        if ct_eq(
            &sha256(given.as_bytes()),
            &sha256(expected.expose().as_bytes()),
        ) {
            Ok(())
        } else {
            Err(GateError::AdminUnauthorized)
        }
    }

    /// `GET /.portcullis/admin/sessions?email=…` or `?sub=…`.
    pub(super) async fn admin_sessions<S: Store>(
        &self,
        head: &RequestHead,
        store: &S,
    ) -> Result<Reply, GateError> {
        self.check_admin(head)?;
        let listed = match (head.query("sub"), head.query("email")) {
            (Some(sub), _) => registry::of_user(store, &sub).await,
            (None, Some(email)) => registry::with_email(store, &email).await,
            (None, None) => return Err(GateError::BadRequest("give ?email= or ?sub=")),
        }
        .map_err(GateError::Store)?;
        let sessions: Vec<_> = listed
            .iter()
            .map(|(hash, s)| {
                json!({
                    "session_id_hash": hash, "sub": s.sub, "email": s.email, "host": s.host,
                    "created": s.created, "expires": s.expires, "user_agent": s.user_agent,
                })
            })
            .collect();
        Ok(Reply::json(200, &json!({ "sessions": sessions })))
    }

    /// `POST /.portcullis/admin/revoke` with `{"sub"}`, `{"email"}`, `{"session"}` or `{"all": true}`.
    pub(super) async fn admin_revoke<S: Store>(
        &self,
        head: &RequestHead,
        store: &S,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        self.check_admin(head)?;
        let body = head.body.as_deref().unwrap_or_default();
        let request: RevokeRequest = serde_json::from_str(body).map_err(|_| {
            GateError::BadRequest(
                "expected JSON: {\"sub\"}, {\"email\"}, {\"session\"} or {\"all\": true}",
            )
        })?;
        let given = [
            request.sub.is_some(),
            request.email.is_some(),
            request.session.is_some(),
            request.all.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(GateError::BadRequest(
                "give exactly one of sub, email, session, all",
            ));
        }
        let targets: Vec<(String, Option<Summary>)> = if let Some(sub) = &request.sub {
            registry::of_user(store, sub)
                .await
                .map_err(GateError::Store)?
                .into_iter()
                .map(|(h, s)| (h, Some(s)))
                .collect()
        } else if let Some(email) = &request.email {
            registry::with_email(store, email)
                .await
                .map_err(GateError::Store)?
                .into_iter()
                .map(|(h, s)| (h, Some(s)))
                .collect()
        } else if let Some(hash) = &request.session {
            vec![(hash.clone(), None)]
        } else if request.all == Some(true) {
            registry::all(store)
                .await
                .map_err(GateError::Store)?
                .into_iter()
                .map(|(h, s)| (h, Some(s)))
                .collect()
        } else {
            Vec::new()
        };
        let mut revoked = 0;
        for (hash, summary) in &targets {
            if self.revoke(store, hash, summary.as_ref()).await? {
                revoked += 1;
                let sub = summary.as_ref().map(|s| s.sub.as_str()).unwrap_or_default();
                log.push(audit(
                    head,
                    "revoke",
                    &[("by", "admin"), ("sub", sub), ("session", hash)],
                ));
            }
        }
        Ok(Reply::json(200, &json!({ "revoked": revoked })))
    }

    /// `POST /.portcullis/backchannel-logout` with a `logout_token` from the issuer.
    pub(super) async fn backchannel_logout<S: Store, H: HttpClient, R>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        let invalid = |why: String| GateError::InvalidLogoutToken(why);
        let token = head
            .form_field("logout_token")
            .ok_or_else(|| invalid("no logout_token".into()))?;
        let jws = self
            .provider
            .verify(io.http, &token, Source::Client, now)
            .await
            .map_err(|e| match e {
                VerifyError::Issuer(e) => GateError::IssuerUnavailable(e),
                VerifyError::Token(e) => invalid(e.to_string()),
            })?;
        let claims = logout_token::validate(
            &jws,
            &self.config.settings.issuer,
            &self.config.settings.client_id,
            now,
        )
        .map_err(|e| invalid(e.to_string()))?;

        // A replayed token is refused (in this isolate at once; elsewhere once KV has it).
        let jti_key = format!("{JTI_PREFIX}{}", b64url(&sha256(claims.jti.as_bytes())));
        let seen = self.logout_jtis.get(&jti_key, now).is_some()
            || io
                .store
                .get(&jti_key)
                .await
                .map_err(GateError::Store)?
                .is_some();
        if seen {
            return Err(invalid("jti was already used".into()));
        }
        let remember = MAX_AGE + LEEWAY;
        io.store
            .put(&jti_key, "1", remember, None)
            .await
            .map_err(GateError::Store)?;
        self.logout_jtis.insert(&jti_key, (), now + remember, now);

        // By sid when given (that issuer session only), else every session of sub.
        let targets: Vec<(String, Option<Summary>)> = match (&claims.sid, &claims.sub) {
            (Some(sid), _) => registry::with_sid(io.store, sid)
                .await
                .map_err(GateError::Store)?
                .into_iter()
                .map(|h| (h, None))
                .collect(),
            (None, Some(sub)) => registry::of_user(io.store, sub)
                .await
                .map_err(GateError::Store)?
                .into_iter()
                .map(|(h, s)| (h, Some(s)))
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut revoked = 0usize;
        for (hash, summary) in &targets {
            if let (Some(sub), None) = (&claims.sub, summary) {
                // With both sid and sub, the session must belong to sub.
                let session = registry::load(io.store, hash)
                    .await
                    .map_err(GateError::Store)?;
                if session.is_some_and(|s| s.identity.sub != *sub) {
                    continue;
                }
            }
            if self.revoke(io.store, hash, summary.as_ref()).await? {
                revoked += 1;
            }
        }
        log.push(audit(
            head,
            "backchannel_logout",
            &[
                ("sub", claims.sub.as_deref().unwrap_or_default()),
                (
                    "sid_hash",
                    &claims
                        .sid
                        .as_deref()
                        .map(|s| b64url(&sha256(s.as_bytes())))
                        .unwrap_or_default(),
                ),
                ("revoked", &revoked.to_string()),
            ],
        ));
        Ok(Reply::json(200, &json!({})))
    }
}
