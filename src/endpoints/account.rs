//! The signed-in person's own view: `/.portcullis/me` (who am I, as JSON) and
//! `/.portcullis/account` (their sessions and app passwords: signing sessions out,
//! creating and revoking app passwords). `/.portcullis/sessions`, the former page,
//! redirects there and still takes its form.

use serde_json::json;

use super::{form_session, not_from_a_script, signed_in, Answer, Parts};
use crate::app_password::{record, AppPasswordSummary, AppPasswords, NewAppPassword};
use crate::config::{format_duration, parse_duration};
use crate::context::{Ctx, Io};
use crate::error::{Challenge, FormError, GateError};
use crate::http::Reply;
use crate::login::RECENT_LOGIN;
use crate::model::{App, Config};
use crate::pages::{self, AccountPage, AppPasswordRow, SessionRow};
use crate::router::Endpoint;
use crate::session::index::SessionSummary;
use crate::session::{registry, Found, Sessions};
use crate::store::keys::SessionHash;

/// The CSRF token of every form on the account page.
const ACCOUNT_CSRF: &str = "portcullis sessions csrf v1";
/// Why no app password can be created without `auth_host`.
const NEEDS_AUTH_HOST: &str = "new app passwords can be created only on a sign-in host of their own, which this site does not have yet: the site owner can set auth_host (with cookie_domain). Existing app passwords keep working.";
/// The shortest lifetime a person may give an app password.
const MIN_APP_PASSWORD_LIFETIME: u64 = 3_600;

/// The person's own endpoints, as one part of the gate: every handler takes the request
/// context and answers an [`Answer`], as every endpoint does.
pub struct Account(pub Parts);

impl Account {
    /// `GET /.portcullis/me`.
    pub async fn me<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        me(ctx, &self.0.sessions).await.map(Answer::from)
    }

    /// `GET /.portcullis/account`.
    pub async fn page<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        page(ctx, &self.0).await
    }

    /// `POST /.portcullis/sessions`.
    pub async fn act<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        act(ctx, &self.0.sessions).await.map(Answer::from)
    }

    /// `POST /.portcullis/app-passwords`.
    pub async fn create<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        create(ctx, &self.0).await
    }

    /// `POST /.portcullis/app-passwords/revoke`.
    pub async fn revoke_app_password<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        revoke_app_password(ctx, &self.0.sessions, &self.0.app_passwords)
            .await
            .map(Answer::from)
    }
}

/// `GET /.portcullis/me`: the current identity as JSON.
async fn me<I: Io>(ctx: &Ctx<'_, I>, sessions: &Sessions) -> Result<Reply, GateError> {
    let found = signed_in(ctx, sessions)
        .await?
        .ok_or(GateError::unauthenticated(Challenge::NONE))?;
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

/// `GET /.portcullis/account`: the person's sessions and app passwords, as a page, or as
/// JSON for a client that asks for it.
async fn page<I: Io>(ctx: &Ctx<'_, I>, parts: &Parts) -> Result<Answer, GateError> {
    let (config, sessions, app_passwords) = (&parts.config, &parts.sessions, &parts.app_passwords);
    let head = ctx.head;
    not_from_a_script(head)?;
    let Some(found) = signed_in(ctx, sessions).await? else {
        if head.is_browser_navigation() {
            let back = format!("{}{}", head.origin(), Endpoint::Account.path());
            return Ok(Answer::Login(back));
        }
        return Err(GateError::unauthenticated(Challenge::NONE));
    };
    let identity = &found.session.identity;
    let current = found.id.hash();
    let mut listed = registry::of_user(ctx.env.store(), &identity.sub).await?;
    if !listed.iter().any(|(h, _)| *h == current) {
        // The index may lag behind (KV listings are eventually consistent).
        listed.push((current.clone(), SessionSummary::of(&found.session)));
    }
    // Only what the page needs: without an app that takes app passwords, none can be used,
    // and their listing (a KV list: the Free plan has 1,000 a day) is left out.
    let passwords = if config.settings.apps.iter().any(|a| a.app_passwords) {
        app_passwords.of_user(&ctx.env, &identity.sub).await?
    } else {
        Vec::new()
    };
    if head.prefers_json() {
        return Ok(account_json(&listed, &passwords, &current).into());
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
    let password_rows: Vec<AppPasswordRow<'_>> = passwords
        .iter()
        .map(|p| AppPasswordRow {
            id: &p.id,
            label: &p.label,
            app: &p.app,
            created: p.created,
            expires: p.expires,
            last_used: p.last_used,
        })
        .collect();
    // Without an auth host none can be created: the page says why instead of the form.
    let creatable: Vec<&str> = creatable(config, &found)
        .map(|app| app.host.as_str())
        .collect();
    let (creatable, cannot_create) = match &config.settings.auth_host {
        Some(_) => (creatable, None),
        None if creatable.is_empty() => (creatable, None),
        None => (Vec::new(), Some(NEEDS_AUTH_HOST)),
    };
    let csrf = sessions.derive(&found.id, ACCOUNT_CSRF);
    let page = pages::account(&AccountPage {
        host: head.host(),
        user: identity.user(),
        sessions: &rows,
        app_passwords: &password_rows,
        creatable: &creatable,
        cannot_create,
        max_lifetime: &format_duration(config.settings.app_password_lifetime),
        csrf: &csrf,
    });
    Ok(Reply::html(200, page).into())
}

/// The account page as JSON: the person's sessions (which one is this) and app passwords.
fn account_json(
    listed: &[(SessionHash, SessionSummary)],
    passwords: &[AppPasswordSummary],
    current: &SessionHash,
) -> Reply {
    let sessions: Vec<_> = listed
        .iter()
        .map(|(hash, s)| {
            let mut session = s.to_json(hash);
            session["current"] = json!(*hash == *current);
            session
        })
        .collect();
    let passwords: Vec<_> = passwords.iter().map(AppPasswordSummary::to_json).collect();
    Reply::json(
        200,
        &json!({ "sessions": sessions, "app_passwords": passwords }),
    )
}

/// The apps this person may create app passwords for.
fn creatable<'c>(config: &'c Config, found: &Found) -> impl Iterator<Item = &'c App> {
    let identity = found.session.identity.clone();
    config
        .settings
        .apps
        .iter()
        .filter(move |app| app.app_passwords && app.allow.admits(&identity))
}

/// `POST /.portcullis/app-passwords` with `app`, `label`, `lifetime` and `csrf`. Created at
/// once after a recent login (the secret is shown); otherwise — a login older than 10
/// minutes, or `revalidate_every`, which needs a grant of its own — through the issuer.
async fn create<I: Io>(ctx: &Ctx<'_, I>, parts: &Parts) -> Result<Answer, GateError> {
    let (config, sessions, app_passwords) = (&parts.config, &parts.sessions, &parts.app_passwords);
    let found = form_session(ctx, sessions, ACCOUNT_CSRF).await?;
    let head = ctx.head;
    let settings = &config.settings;
    // Only where no app's script can reach the form (an XSS in any app could otherwise
    // mint a credential that outlives the session).
    if settings.auth_host.is_none() {
        return Err(GateError::app_password_form(NEEDS_AUTH_HOST));
    }
    let chosen = head.form_field("app").unwrap_or_default();
    let Some(app) = creatable(config, &found).find(|app| app.host == chosen) else {
        return Err(GateError::app_password_form(
            "choose one of the apps offered: only apps that take app passwords and admit you",
        ));
    };
    let label = record::label(&head.form_field("label").unwrap_or_default())
        .map_err(GateError::app_password_form)?;
    let lifetime = match head.form_field("lifetime").filter(|l| !l.trim().is_empty()) {
        None => settings.app_password_lifetime,
        Some(text) => match parse_duration(&text) {
            Ok(l) if l > settings.app_password_lifetime => {
                return Err(GateError::app_password_form(
                    "the lifetime is longer than this site allows",
                ))
            }
            Ok(l) if l < MIN_APP_PASSWORD_LIFETIME => {
                return Err(GateError::app_password_form(
                    "the lifetime is shorter than one hour",
                ))
            }
            Ok(l) => l,
            Err(_) => {
                return Err(GateError::app_password_form(
                    "write the lifetime as a number and a unit, e.g. 90d",
                ))
            }
        },
    };
    let identity = &found.session.identity;
    if app_passwords.of_user(&ctx.env, &identity.sub).await?.len() >= settings.max_app_passwords {
        return Err(GateError::Form(FormError::TooManyAppPasswords));
    }
    let request = NewAppPassword {
        sub: identity.sub.clone(),
        app: app.host.clone(),
        label,
        lifetime,
    };
    let now = ctx.now();
    let recent = found.session.logged_in_within(RECENT_LOGIN, now);
    if settings.revalidate_every.is_some() || !recent {
        return Ok(Answer::AppPasswordLogin {
            request,
            reauthenticate: !recent,
        });
    }
    let created = app_passwords
        .create(&ctx.env, identity, &request, None)
        .await?;
    ctx.audit(
        "app_password_created",
        &[
            ("app_password", &created.record.id),
            ("sub", &identity.sub),
            ("app", &app.host),
        ],
    );
    Ok(Reply::html(200, pages::app_password_created(head.host(), &created)).into())
}

/// `POST /.portcullis/app-passwords/revoke` with `id` and `csrf`: one of the person's own.
async fn revoke_app_password<I: Io>(
    ctx: &Ctx<'_, I>,
    sessions: &Sessions,
    app_passwords: &AppPasswords,
) -> Result<Reply, GateError> {
    let found = form_session(ctx, sessions, ACCOUNT_CSRF).await?;
    let sub = &found.session.identity.sub;
    let id = ctx.head.form_field("id").unwrap_or_default();
    let listed = app_passwords.of_user(&ctx.env, sub).await?;
    let Some(summary) = listed.iter().find(|s| *s.id == *id) else {
        return Err(GateError::app_password_form(
            "you have no app password with that ID",
        ));
    };
    app_passwords
        .revoke(&ctx.env, &summary.id, Some(summary))
        .await?;
    ctx.audit(
        "app_password_revoked",
        &[("app_password", &summary.id), ("sub", sub), ("by", "user")],
    );
    Ok(Reply::redirect(Endpoint::Account.path()))
}

/// `POST /.portcullis/sessions`: sign out one other session, or all others.
async fn act<I: Io>(ctx: &Ctx<'_, I>, sessions: &Sessions) -> Result<Reply, GateError> {
    let head = ctx.head;
    let found = form_session(ctx, sessions, ACCOUNT_CSRF).await?;
    let sub = &found.session.identity.sub;
    let current = found.id.hash();
    let listed = registry::of_user(ctx.env.store(), sub).await?;
    let targets: Vec<&(SessionHash, SessionSummary)> =
        match (head.form_field("revoke"), head.form_field("others")) {
            (Some(one), _) => listed.iter().filter(|(h, _)| **h == *one).collect(),
            (None, Some(_)) => listed.iter().filter(|(h, _)| *h != current).collect(),
            (None, None) => return Err(GateError::BadRequest("nothing to sign out")),
        };
    for (hash, summary) in targets {
        sessions.revoke(&ctx.env, hash, Some(summary)).await?;
        ctx.audit("revoke", &[("by", "user"), ("sub", sub), ("session", hash)]);
    }
    Ok(Reply::redirect(Endpoint::Account.path()))
}
