//! The admin console, `/.portcullis/admin` on the auth host: for members of `admin_groups`
//! whose login is at most 10 minutes old. It lists everyone with something live (their
//! sessions and app passwords) and the issuer's state, and ends a session, revokes an app
//! password or signs a person out of everything — each confirmed first, each carrying a
//! CSRF token, each written to the audit log with the admin's name. `Accept:
//! application/json` gives the same data.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::admin::{revoke_target, RevokeTarget};
use super::{form_session, not_from_a_script, signed_in, Answer, Parts};
use crate::app_password::registry as app_password_registry;
use crate::app_password::AppPasswordSummary;
use crate::context::{Ctx, Io};
use crate::error::{Challenge, ConsoleRefused, GateError};
use crate::http::Reply;
use crate::login::RECENT_LOGIN;
use crate::oidc::IssuerState;
use crate::pages::console::{self as page, ConsoleAction, Person};
use crate::request::RequestHead;
use crate::router::Endpoint;
use crate::session::index::SessionSummary;
use crate::session::{registry, Found};
use crate::store::keys::{AppPasswordId, SessionHash, Subject};

/// The CSRF token of the console's forms.
const CONSOLE_CSRF: &str = "portcullis admin console csrf v1";

/// The console, as one part of the gate.
pub struct Console(pub Parts);

impl Console {
    /// `GET /.portcullis/admin`: the page, or its data as JSON.
    pub async fn page<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        let found = match self.admin(ctx).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        let people = people(ctx, &self.0).await?;
        let issuer = self.0.client.issuer_state(ctx.env.http(), ctx.now()).await;
        let csrf = self.0.sessions.derive(&found.id, CONSOLE_CSRF);
        if ctx.head.prefers_json() {
            // The token lets a program holding the admin's session post an action too.
            let mut data = console_json(&people, &issuer);
            data["csrf"] = json!(csrf);
            return Ok(Reply::json(200, &data).into());
        }
        let html = page::console(&page::ConsolePage {
            host: ctx.head.host(),
            admin: found.session.identity.user(),
            people: &people,
            issuer: &issuer,
            csrf: &csrf,
        });
        Ok(Reply::html(200, html).into())
    }

    /// `POST /.portcullis/admin`: one action. Without `confirm=yes`, the page that asks
    /// for it; with it, the action, then back to the console (or `{"revoked": n}`).
    pub async fn act<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        let found = form_session(ctx, &self.0.sessions, CONSOLE_CSRF).await?;
        if let Some(answer) = self.admitted(ctx, &found)? {
            return Ok(answer);
        }
        let head = ctx.head;
        let action = ConsoleAction::from_form(head)?;
        if head.form_field("confirm").as_deref() != Some("yes") {
            let csrf = self.0.sessions.derive(&found.id, CONSOLE_CSRF);
            return Ok(Reply::html(200, page::confirm(head.host(), &action, &csrf)).into());
        }
        let target = match &action {
            ConsoleAction::EndSession(hash) => RevokeTarget::Session(hash.clone()),
            ConsoleAction::RevokeAppPassword(id) => RevokeTarget::AppPassword(id.clone()),
            ConsoleAction::SignOut(sub) => RevokeTarget::Sub(sub.clone()),
        };
        let revoked = revoke_target(ctx, &self.0, &target).await?;
        let admin = &found.session.identity;
        let count = revoked.to_string();
        ctx.audit(
            "admin_action",
            &[
                ("admin", &admin.sub),
                ("admin_name", admin.user()),
                ("action", action.name()),
                ("target", action.target()),
                ("revoked", &count),
            ],
        );
        if head.prefers_json() {
            return Ok(Reply::json(200, &json!({ "revoked": revoked })).into());
        }
        Ok(Reply::redirect(Endpoint::Console.path()).into())
    }

    /// The signed-in admin with a recent login, or what to answer instead: a login (not
    /// signed in, from a browser), the issuer again (a login too old), or a refusal.
    async fn admin<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Result<Found, Answer>, GateError> {
        let head = ctx.head;
        not_from_a_script(head)?;
        if self.0.config.settings.admin_groups.is_empty() {
            return Err(GateError::NotFound);
        }
        let Some(found) = signed_in(ctx, &self.0.sessions).await? else {
            if head.is_browser_navigation() {
                let back = format!("{}{}", head.origin(), Endpoint::Console.path());
                return Ok(Err(Answer::Login(back)));
            }
            return Err(GateError::unauthenticated(Challenge::NONE));
        };
        Ok(match self.admitted(ctx, &found)? {
            None => Ok(found),
            Some(answer) => Err(answer),
        })
    }

    /// `None` for a member of `admin_groups` whose login is recent enough; a browser with
    /// an older one goes through the issuer again; anything else is refused. Without
    /// `admin_groups` there is no console, for a form as for the page.
    fn admitted<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        found: &Found,
    ) -> Result<Option<Answer>, GateError> {
        let settings = &self.0.config.settings;
        let identity = &found.session.identity;
        if settings.admin_groups.is_empty() {
            return Err(GateError::NotFound);
        }
        if !settings.is_admin(identity) {
            let hash = found.id.hash();
            ctx.audit(
                "denied",
                &[
                    ("sub", &identity.sub),
                    ("session", &hash),
                    ("via", "console"),
                ],
            );
            return Err(GateError::Console(ConsoleRefused::NotAdmin));
        }
        if found.session.logged_in_within(RECENT_LOGIN, ctx.now()) {
            return Ok(None);
        }
        let head = ctx.head;
        // A browser (a navigation, or a form posted from the console) signs in again.
        if head.is_browser_navigation() || (head.method == "POST" && !head.prefers_json()) {
            Ok(Some(Answer::ConsoleLogin))
        } else {
            Err(GateError::Console(ConsoleRefused::NotRecentLogin))
        }
    }
}

/// Everyone with a live session or app password, by `sub`: two KV lists (app passwords
/// only when an app takes them).
async fn people<I: Io>(ctx: &Ctx<'_, I>, parts: &Parts) -> Result<Vec<Person>, GateError> {
    let store = ctx.env.store();
    let sessions = registry::all(store).await?;
    let passwords = if parts.config.settings.apps.iter().any(|a| a.app_passwords) {
        app_password_registry::all(store).await?
    } else {
        Vec::new()
    };
    Ok(group(sessions, passwords, ctx.now()))
}

/// Sessions and app passwords gathered by person, live ones only, people in order of
/// name; each person's newest first.
fn group(
    sessions: Vec<(SessionHash, SessionSummary)>,
    passwords: Vec<AppPasswordSummary>,
    now: u64,
) -> Vec<Person> {
    let mut by_sub: BTreeMap<String, Person> = BTreeMap::new();
    for (hash, s) in sessions.into_iter().filter(|(_, s)| s.expires > now) {
        let person = by_sub
            .entry(s.sub.clone())
            .or_insert_with(|| Person::new(&s.sub));
        person.name = person.name.take().or_else(|| s.name.clone());
        person.email = person.email.take().or_else(|| s.email.clone());
        person.sessions.push((hash, s));
    }
    for p in passwords.into_iter().filter(|p| p.expires > now) {
        let person = by_sub
            .entry(p.sub.clone())
            .or_insert_with(|| Person::new(&p.sub));
        person.email = person.email.take().or_else(|| p.email.clone());
        person.app_passwords.push(p);
    }
    let mut people: Vec<Person> = by_sub.into_values().collect();
    for person in &mut people {
        person
            .sessions
            .sort_by_key(|(_, s)| std::cmp::Reverse(s.created));
        person
            .app_passwords
            .sort_by_key(|p| std::cmp::Reverse(p.created));
    }
    people.sort_by(|a, b| a.shown_name().cmp(b.shown_name()));
    people
}

/// The console's data as JSON (what the page shows).
fn console_json(people: &[Person], issuer: &IssuerState) -> Value {
    let people: Vec<Value> = people
        .iter()
        .map(|p| {
            let sessions: Vec<Value> = p
                .sessions
                .iter()
                .map(|(hash, s)| {
                    let mut session = s.to_json(hash);
                    session["device"] = json!(crate::pages::device(s.user_agent.as_deref()));
                    session["location"] = json!(s.location);
                    session
                })
                .collect();
            let passwords: Vec<Value> = p
                .app_passwords
                .iter()
                .map(AppPasswordSummary::to_json)
                .collect();
            json!({
                "sub": p.sub, "name": p.name, "email": p.email,
                "sessions": sessions, "app_passwords": passwords,
            })
        })
        .collect();
    json!({ "people": people, "issuer": issuer_json(issuer) })
}

fn issuer_json(issuer: &IssuerState) -> Value {
    json!({
        "discovery": match &issuer.discovery {
            Ok(()) => json!({ "reachable": true }),
            Err(e) => json!({ "reachable": false, "error": e }),
        },
        "key_ids": issuer.key_ids.as_ref().ok(),
        "keys_error": issuer.key_ids.as_ref().err(),
        "last_revalidation_error": issuer.last_refresh_error.as_ref().map(|(at, e)| {
            json!({ "at": at, "error": e })
        }),
    })
}

impl ConsoleAction {
    /// The one action a form names: `end_session`, `revoke_app_password` or `sign_out`,
    /// each taken only in its own form.
    fn from_form(head: &RequestHead) -> Result<Self, GateError> {
        let fields = [
            head.form_field("end_session"),
            head.form_field("revoke_app_password"),
            head.form_field("sign_out"),
        ];
        match fields {
            [Some(hash), None, None] => SessionHash::parse(&hash)
                .map(ConsoleAction::EndSession)
                .ok_or(GateError::BadRequest("end_session takes a session's hash")),
            [None, Some(id), None] => AppPasswordId::parse(&id)
                .map(ConsoleAction::RevokeAppPassword)
                .ok_or(GateError::BadRequest(
                    "revoke_app_password takes an app password's ID",
                )),
            [None, None, Some(sub)] => Subject::parse(&sub)
                .map(ConsoleAction::SignOut)
                .ok_or(GateError::BadRequest("sign_out takes a person's sub")),
            _ => Err(GateError::BadRequest(
                "give exactly one of end_session, revoke_app_password, sign_out",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary as the index keeps it (its metadata).
    fn summary(sub: &str, name: Option<&str>, created: u64, expires: u64) -> SessionSummary {
        let metadata = json!({
            "sub": sub, "email": format!("{sub}@example.com"), "host": "photos.example.com",
            "created": created, "expires": expires, "name": name,
        });
        SessionSummary::from_metadata(Some(&metadata.to_string())).unwrap()
    }

    fn hash(n: u8) -> SessionHash {
        SessionHash::parse(&format!("{n:0>43}")).unwrap()
    }

    #[test]
    fn people_are_grouped_by_sub_with_live_credentials_only() {
        let sessions = vec![
            (hash(1), summary("u-bob", Some("Bob"), 10, 500)),
            (hash(2), summary("u-alice", Some("Alice"), 20, 500)),
            (hash(3), summary("u-alice", None, 30, 500)),
            (hash(4), summary("u-carol", Some("Carol"), 5, 99)),
        ];
        let people = group(sessions, Vec::new(), 100);
        let names: Vec<&str> = people.iter().map(Person::shown_name).collect();
        assert_eq!(names, ["Alice", "Bob"], "Carol's only session has expired");
        let alice = &people[0];
        assert_eq!(alice.sub, "u-alice");
        assert_eq!(
            alice
                .sessions
                .iter()
                .map(|(h, _)| h.clone())
                .collect::<Vec<_>>(),
            [hash(3), hash(2)],
            "newest first"
        );
    }
}
