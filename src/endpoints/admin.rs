//! The owner's admin API, on only with `ADMIN_TOKEN`: list sessions by user or email, and
//! revoke by user, email, session or all.

use serde::Deserialize;
use serde_json::json;

use crate::app_password::credential;
use crate::app_password::registry as app_password_registry;
use crate::app_password::{AppPasswords, Summary as AppPasswordSummary};
use crate::context::{Ctx, Io};
use crate::crypto::{ct_eq, sha256};
use crate::error::GateError;
use crate::http::Reply;
use crate::model::Config;
use crate::oidc::bearer;
use crate::session::index::Summary;
use crate::session::{registry, Sessions};
use crate::store::keys;

/// `POST /.portcullis/admin/revoke` body: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    sub: Option<String>,
    email: Option<String>,
    session: Option<String>,
    app_password: Option<String>,
    all: Option<bool>,
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
fn known(list: Vec<(String, Summary)>) -> Vec<(String, Option<Summary>)> {
    list.into_iter().map(|(h, s)| (h, Some(s))).collect()
}

/// `GET /.portcullis/admin/sessions?email=…` or `?sub=…`.
pub async fn list<I: Io>(ctx: &Ctx<'_, I>, config: &Config) -> Result<Reply, GateError> {
    check(ctx, config)?;
    let store = ctx.env.store();
    let listed = match (ctx.head.query("sub"), ctx.head.query("email")) {
        (Some(sub), _) => registry::of_user(store, &sub).await?,
        (None, Some(email)) => registry::with_email(store, &email).await?,
        (None, None) => return Err(GateError::BadRequest("give ?email= or ?sub=")),
    };
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

/// `GET /.portcullis/admin/app-passwords?email=…` or `?sub=…` (never a secret).
pub async fn list_app_passwords<I: Io>(
    ctx: &Ctx<'_, I>,
    config: &Config,
    app_passwords: &AppPasswords,
) -> Result<Reply, GateError> {
    check(ctx, config)?;
    let store = ctx.env.store();
    let listed = match (ctx.head.query("sub"), ctx.head.query("email")) {
        (Some(sub), _) => app_passwords.of_user(&ctx.env, &sub).await?,
        (None, Some(email)) => app_password_registry::with_email(store, &email).await?,
        (None, None) => return Err(GateError::BadRequest("give ?email= or ?sub=")),
    };
    let list: Vec<_> = listed
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "label": p.label, "app": p.app, "sub": p.sub, "email": p.email,
                "created": p.created, "expires": p.expires, "last_used": p.last_used,
            })
        })
        .collect();
    Ok(Reply::json(200, &json!({ "app_passwords": list })))
}

/// `POST /.portcullis/admin/revoke` with `{"sub"}`, `{"email"}`, `{"session"}`,
/// `{"app_password"}` or `{"all": true}`; by person or all, app passwords go too.
pub async fn revoke<I: Io>(
    ctx: &Ctx<'_, I>,
    config: &Config,
    sessions: &Sessions,
    app_passwords: &AppPasswords,
) -> Result<Reply, GateError> {
    check(ctx, config)?;
    let body = ctx.head.body.as_deref().unwrap_or_default();
    let request: RevokeRequest = serde_json::from_str(body).map_err(|_| {
        GateError::BadRequest(
            "expected JSON: {\"sub\"}, {\"email\"}, {\"session\"}, {\"app_password\"} or {\"all\": true}",
        )
    })?;
    let given = [
        request.sub.is_some(),
        request.email.is_some(),
        request.session.is_some(),
        request.app_password.is_some(),
        request.all.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(GateError::BadRequest(
            "give exactly one of sub, email, session, app_password, all",
        ));
    }
    // Both become parts of KV keys: only their own forms are taken.
    if request
        .session
        .as_deref()
        .is_some_and(|h| !keys::is_session_hash(h))
    {
        return Err(GateError::BadRequest(
            "session takes a session's hash (43 characters of A-Z, a-z, 0-9, - and _, as the session list shows it)",
        ));
    }
    if request
        .app_password
        .as_deref()
        .is_some_and(|id| !credential::is_id(id))
    {
        return Err(GateError::BadRequest(
            "app_password takes an app password's ID (ap_ and 24 lower-case hex digits, as the list shows it)",
        ));
    }
    let store = ctx.env.store();
    let passwords: Vec<AppPasswordSummary> = if let Some(sub) = &request.sub {
        app_password_registry::of_user(store, sub).await?
    } else if let Some(email) = &request.email {
        app_password_registry::with_email(store, email).await?
    } else if request.all == Some(true) {
        app_password_registry::all(store).await?
    } else {
        Vec::new()
    };
    let mut passwords_revoked = app_passwords
        .revoke_listed(&ctx.env, &passwords, "admin")
        .await?;
    if let Some(id) = &request.app_password {
        if app_passwords.revoke(&ctx.env, id, None).await? {
            passwords_revoked += 1;
            ctx.audit(
                "app_password_revoked",
                &[("app_password", id), ("by", "admin")],
            );
        }
    }
    let targets = if let Some(sub) = &request.sub {
        known(registry::of_user(store, sub).await?)
    } else if let Some(email) = &request.email {
        known(registry::with_email(store, email).await?)
    } else if let Some(hash) = &request.session {
        vec![(hash.clone(), None)]
    } else if request.all == Some(true) {
        known(registry::all(store).await?)
    } else {
        Vec::new()
    };
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
    // One count of credentials revoked (sessions and app passwords), as before app
    // passwords existed; the audit lines tell them apart.
    Ok(Reply::json(
        200,
        &json!({ "revoked": revoked + passwords_revoked }),
    ))
}
