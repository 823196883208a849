//! The signed-in person's own view: `/.portcullis/me` (who am I, as JSON) and
//! `/.portcullis/sessions` (their sessions, and signing some of them out).

use serde_json::json;

use super::Answer;
use crate::context::{Ctx, Io};
use crate::crypto::ct_eq;
use crate::error::GateError;
use crate::http::Reply;
use crate::pages::{self, SessionRow};
use crate::router::Endpoint;
use crate::session::index::Summary;
use crate::session::{registry, Found, Sessions};

const SESSIONS_CSRF: &str = "portcullis sessions csrf v1";

async fn signed_in<I: Io>(
    ctx: &Ctx<'_, I>,
    sessions: &Sessions,
) -> Result<Option<Found>, GateError> {
    Ok(sessions
        .find_valid(&ctx.env, sessions.cookie(ctx.head))
        .await?)
}

/// `GET /.portcullis/me`: the current identity as JSON.
pub async fn me<I: Io>(ctx: &Ctx<'_, I>, sessions: &Sessions) -> Result<Reply, GateError> {
    let found = signed_in(ctx, sessions)
        .await?
        .ok_or(GateError::Unauthenticated)?;
    let s = &found.session;
    let i = &s.identity;
    Ok(Reply::json(
        200,
        &json!({
            "sub": i.sub,
            "email": i.email,
            "email_verified": i.email_verified,
            "name": i.name,
            "preferred_username": i.preferred_username,
            "groups": i.groups,
            "created": s.created,
            "expires": s.expires,
            "session_id_hash": found.id.hash(),
        }),
    ))
}

/// `GET /.portcullis/sessions`: the signed-in user's sessions.
pub async fn page<I: Io>(ctx: &Ctx<'_, I>, sessions: &Sessions) -> Result<Answer, GateError> {
    let head = ctx.head;
    let Some(found) = signed_in(ctx, sessions).await? else {
        if head.is_browser_navigation() {
            let back = format!("{}{}", head.origin(), Endpoint::Sessions.path());
            return Ok(Answer::Login(back));
        }
        return Err(GateError::Unauthenticated);
    };
    let current = found.id.hash();
    let mut listed = registry::of_user(ctx.env.store(), &found.session.identity.sub).await?;
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
    let csrf = sessions.derive(&found.id, SESSIONS_CSRF);
    let page = pages::sessions(head.host(), found.session.identity.user(), &rows, &csrf);
    Ok(Reply::html(200, page).into())
}

/// `POST /.portcullis/sessions`: sign out one other session, or all others.
pub async fn act<I: Io>(ctx: &Ctx<'_, I>, sessions: &Sessions) -> Result<Reply, GateError> {
    let head = ctx.head;
    let found = sessions
        .find(&ctx.env, sessions.cookie(head))
        .await?
        .ok_or(GateError::Unauthenticated)?;
    let expected = sessions.derive(&found.id, SESSIONS_CSRF);
    let given = head.form_field("csrf").unwrap_or_default();
    if !ct_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(GateError::Csrf);
    }
    let sub = &found.session.identity.sub;
    let current = found.id.hash();
    let listed = registry::of_user(ctx.env.store(), sub).await?;
    let targets: Vec<&(String, Summary)> =
        match (head.form_field("revoke"), head.form_field("others")) {
            (Some(one), _) => listed.iter().filter(|(h, _)| *h == one).collect(),
            (None, Some(_)) => listed.iter().filter(|(h, _)| *h != current).collect(),
            (None, None) => return Err(GateError::BadRequest("nothing to sign out")),
        };
    for (hash, summary) in targets {
        sessions.revoke(&ctx.env, hash, Some(summary)).await?;
        ctx.audit("revoke", &[("by", "user"), ("sub", sub), ("session", hash)]);
    }
    Ok(Reply::redirect(Endpoint::Sessions.path()))
}
