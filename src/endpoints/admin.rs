//! The owner's admin API, on only with `ADMIN_TOKEN`: list sessions by user or email, and
//! revoke by user, email, session or all.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Answer, Parts};
use crate::app_password::registry as app_password_registry;
use crate::app_password::{AppPasswordSummary, AppPasswords};
use crate::context::{Ctx, Io};
use crate::crypto::{ct_eq, sha256};
use crate::error::GateError;
use crate::grant;
use crate::http::Reply;
use crate::model::Config;
use crate::oidc::bearer;
use crate::session::index::SessionSummary;
use crate::session::registry;
use crate::store::keys::{AppPasswordId, SessionHash, Subject};

/// Why a `sub` was refused: it cannot be anyone's.
const NOT_A_SUBJECT: &str =
    "sub takes a subject as the issuer sends it: 1 to 255 characters, no control characters";

/// `POST /.portcullis/admin/revoke` body, as sent: exactly one of these, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    sub: Option<String>,
    email: Option<String>,
    session: Option<String>,
    app_password: Option<String>,
    all: Option<bool>,
}

/// What the admin asked to revoke. A session hash and an app-password ID become parts of
/// KV keys, so each is taken only in its own form (their types parse nothing else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RevokeTarget {
    /// A person's sessions and app passwords, by `sub`.
    Sub(Subject),
    /// Everyone's with this email address.
    Email(String),
    Session(SessionHash),
    AppPassword(AppPasswordId),
    /// Every session and app password.
    All,
}

impl RevokeTarget {
    fn parse(body: &str) -> Result<Self, GateError> {
        let body: RevokeBody = serde_json::from_str(body).map_err(|_| {
            GateError::BadRequest(
                "expected JSON: {\"sub\"}, {\"email\"}, {\"session\"}, {\"app_password\"} or {\"all\": true}",
            )
        })?;
        let target = match body {
            RevokeBody {
                sub: Some(sub),
                email: None,
                session: None,
                app_password: None,
                all: None,
            } => RevokeTarget::Sub(Subject::parse(&sub).ok_or(GateError::BadRequest(NOT_A_SUBJECT))?),
            RevokeBody {
                sub: None,
                email: Some(email),
                session: None,
                app_password: None,
                all: None,
            } => RevokeTarget::Email(email),
            RevokeBody {
                sub: None,
                email: None,
                session: Some(hash),
                app_password: None,
                all: None,
            } => RevokeTarget::Session(SessionHash::parse(&hash).ok_or(GateError::BadRequest(
                "session takes a session's hash (43 characters of A-Z, a-z, 0-9, - and _, as the session list shows it)",
            ))?),
            RevokeBody {
                sub: None,
                email: None,
                session: None,
                app_password: Some(id),
                all: None,
            } => RevokeTarget::AppPassword(AppPasswordId::parse(&id).ok_or(GateError::BadRequest(
                "app_password takes an app password's ID (ap_ and 24 lower-case hex digits, as the list shows it)",
            ))?),
            RevokeBody {
                sub: None,
                email: None,
                session: None,
                app_password: None,
                all: Some(true),
            } => RevokeTarget::All,
            RevokeBody {
                sub: None,
                email: None,
                session: None,
                app_password: None,
                all: Some(false),
            } => return Err(GateError::BadRequest("all takes true: {\"all\": true}")),
            _ => {
                return Err(GateError::BadRequest(
                    "give exactly one of sub, email, session, app_password, all",
                ))
            }
        };
        Ok(target)
    }
}

/// The admin API answers a wrong token the same way whatever was asked; the comparison
/// takes the same time for any token.
fn check<I: Io>(ctx: &Ctx<'_, I>, config: &Config) -> Result<(), GateError> {
    let Some(expected) = &config.secrets.admin_token else {
        return Err(GateError::NotFound);
    };
    let given = ctx
        .head
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

/// Listed sessions with their summaries, as revocation targets.
fn known(list: Vec<(SessionHash, SessionSummary)>) -> Vec<(SessionHash, Option<SessionSummary>)> {
    list.into_iter().map(|(h, s)| (h, Some(s))).collect()
}

/// The owner's admin API (`ADMIN_TOKEN`), as one part of the gate: every handler takes
/// the request context and answers an [`Answer`], as every endpoint does.
pub struct Admin(pub Parts);

impl Admin {
    /// `GET /.portcullis/admin/sessions`.
    pub async fn sessions<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        list(ctx, &self.0.config).await.map(Answer::from)
    }

    /// `GET /.portcullis/admin/app-passwords`.
    pub async fn app_passwords<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        list_app_passwords(ctx, &self.0.config, &self.0.app_passwords)
            .await
            .map(Answer::from)
    }

    /// `POST /.portcullis/admin/revoke`.
    pub async fn revoke<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        revoke(ctx, &self.0).await.map(Answer::from)
    }

    /// `GET /.portcullis/jwks.json`: the public keys of `Portcullis-Assertion`.
    pub fn jwks(&self) -> Result<Answer, GateError> {
        match &self.0.config.secrets.assertion_key {
            Some(key) => Ok(Reply::json(200, &key.jwks())
                .with_header("access-control-allow-origin", "*")
                .into()),
            None => Err(GateError::NotFound),
        }
    }
}

/// Whose credentials a listing asks for: `?sub=…`, else `?email=…`.
enum Whom {
    Sub(Subject),
    Email(String),
}

fn whom(ctx: &Ctx<'_, impl Io>) -> Result<Whom, GateError> {
    match (ctx.head.query("sub"), ctx.head.query("email")) {
        (Some(sub), _) => Subject::parse(&sub)
            .map(Whom::Sub)
            .ok_or(GateError::BadRequest(NOT_A_SUBJECT)),
        (None, Some(email)) => Ok(Whom::Email(email)),
        (None, None) => Err(GateError::BadRequest("give ?email= or ?sub=")),
    }
}

/// A listing's answer, `{ "<name>": [ … ] }`: each credential as `show` has it, with whose
/// it is (`owner`: its `sub` and email).
fn listing<T>(
    name: &str,
    listed: &[T],
    show: impl Fn(&T) -> Value,
    owner: impl Fn(&T) -> (String, Option<String>),
) -> Reply {
    let shown: Vec<Value> = listed
        .iter()
        .map(|item| {
            let (sub, email) = owner(item);
            let mut value = show(item);
            value["sub"] = json!(sub);
            value["email"] = json!(email);
            value
        })
        .collect();
    Reply::json(200, &json!({ name: shown }))
}

/// `GET /.portcullis/admin/sessions?email=…` or `?sub=…`.
async fn list<I: Io>(ctx: &Ctx<'_, I>, config: &Config) -> Result<Reply, GateError> {
    check(ctx, config)?;
    let store = ctx.env.store();
    let listed = match whom(ctx)? {
        Whom::Sub(sub) => registry::of_user(store, &sub).await?,
        Whom::Email(email) => registry::with_email(store, &email).await?,
    };
    let shown = |(hash, s): &(SessionHash, SessionSummary)| s.to_json(hash);
    let owner = |(_, s): &(SessionHash, SessionSummary)| (s.sub.clone(), s.email.clone());
    Ok(listing("sessions", &listed, shown, owner))
}

/// `GET /.portcullis/admin/app-passwords?email=…` or `?sub=…` (never a secret).
async fn list_app_passwords<I: Io>(
    ctx: &Ctx<'_, I>,
    config: &Config,
    app_passwords: &AppPasswords,
) -> Result<Reply, GateError> {
    check(ctx, config)?;
    let listed = match whom(ctx)? {
        Whom::Sub(sub) => app_passwords.of_user(&ctx.env, &sub).await?,
        Whom::Email(email) => app_password_registry::with_email(ctx.env.store(), &email).await?,
    };
    let owner = |p: &AppPasswordSummary| (p.sub.clone(), p.email.clone());
    Ok(listing(
        "app_passwords",
        &listed,
        AppPasswordSummary::to_json,
        owner,
    ))
}

/// The app passwords a revocation reaches: by person or all, every one of theirs; or the
/// one named. Returns how many were revoked.
async fn revoke_app_passwords<I: Io>(
    ctx: &Ctx<'_, I>,
    app_passwords: &AppPasswords,
    target: &RevokeTarget,
) -> Result<usize, GateError> {
    let store = ctx.env.store();
    let listed: Vec<AppPasswordSummary> = match target {
        RevokeTarget::Sub(sub) => app_password_registry::of_user(store, sub).await?,
        RevokeTarget::Email(email) => app_password_registry::with_email(store, email).await?,
        RevokeTarget::All => app_password_registry::all(store).await?,
        RevokeTarget::Session(_) | RevokeTarget::AppPassword(_) => Vec::new(),
    };
    let mut revoked = app_passwords
        .revoke_listed(&ctx.env, &listed, "admin")
        .await?;
    if let RevokeTarget::AppPassword(id) = target {
        if app_passwords.revoke(&ctx.env, id, None).await? {
            revoked += 1;
            ctx.audit(
                "app_password_revoked",
                &[("app_password", id), ("by", "admin")],
            );
        }
    }
    Ok(revoked)
}

/// `POST /.portcullis/admin/revoke` with `{"sub"}`, `{"email"}`, `{"session"}`,
/// `{"app_password"}` or `{"all": true}`; by person or all, app passwords go too.
async fn revoke<I: Io>(ctx: &Ctx<'_, I>, parts: &Parts) -> Result<Reply, GateError> {
    check(ctx, &parts.config)?;
    let target = RevokeTarget::parse(ctx.head.body.as_deref().unwrap_or_default())?;
    let revoked = revoke_target(ctx, parts, &target).await?;
    // One count of credentials revoked (sessions and app passwords), as before app
    // passwords existed; the audit lines tell them apart.
    Ok(Reply::json(200, &json!({ "revoked": revoked })))
}

/// Revokes what `target` names, everywhere (the persons' objects first, then KV); returns
/// how many sessions and app passwords were revoked. The admin API and the console both
/// revoke through this.
pub(super) async fn revoke_target<I: Io>(
    ctx: &Ctx<'_, I>,
    parts: &Parts,
    target: &RevokeTarget,
) -> Result<usize, GateError> {
    let (sessions, app_passwords) = (&parts.sessions, &parts.app_passwords);
    let target = target.clone();
    let passwords_revoked = revoke_app_passwords(ctx, app_passwords, &target).await?;
    let store = ctx.env.store();
    let targets = match &target {
        RevokeTarget::Sub(sub) => known(registry::of_user(store, sub).await?),
        RevokeTarget::Email(email) => known(registry::with_email(store, email).await?),
        RevokeTarget::Session(hash) => vec![(hash.clone(), None)],
        RevokeTarget::All => known(registry::all(store).await?),
        RevokeTarget::AppPassword(_) => Vec::new(),
    };
    let mut people: Vec<&str> = match &target {
        RevokeTarget::Sub(sub) => vec![sub.as_str()],
        RevokeTarget::Email(_) | RevokeTarget::All => targets
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| s.sub.as_str())
            .collect(),
        RevokeTarget::Session(_) | RevokeTarget::AppPassword(_) => Vec::new(),
    };
    people.sort_unstable();
    people.dedup();
    for sub in people {
        grant::revoke_everything_of(&ctx.env, sub).await;
    }
    let mut revoked = 0;
    for (hash, summary) in &targets {
        if sessions.revoke(&ctx.env, hash, summary.as_ref()).await? {
            revoked += 1;
            let sub = summary.as_ref().map(|s| s.sub.as_str()).unwrap_or_default();
            ctx.audit(
                "revoke",
                &[("by", "admin"), ("sub", sub), ("session", hash)],
            );
        }
    }
    Ok(revoked + passwords_revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoke_body_names_exactly_one_target() {
        let hash = "A".repeat(43);
        assert_eq!(
            RevokeTarget::parse(r#"{"sub":"u1"}"#),
            Ok(RevokeTarget::Sub(Subject::parse("u1").unwrap()))
        );
        assert_eq!(
            RevokeTarget::parse(r#"{"all":true}"#),
            Ok(RevokeTarget::All)
        );
        assert_eq!(
            RevokeTarget::parse(&format!(r#"{{"session":"{hash}"}}"#)),
            Ok(RevokeTarget::Session(SessionHash::parse(&hash).unwrap()))
        );
        for bad in [
            r#"{"all":false}"#,
            r#"{}"#,
            r#"{"sub":"a","email":"b@example.com"}"#,
            r#"{"sub":"a","admin":true}"#,
            r#"{"session":"short"}"#,
            r#"{"app_password":"ap_XYZ"}"#,
            "not json",
        ] {
            assert!(
                matches!(RevokeTarget::parse(bad), Err(GateError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
