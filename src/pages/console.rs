//! The admin console's pages: everyone with something live, the issuer's state, and the
//! page that confirms an action. Every dynamic value is escaped here.

use std::fmt::Write as _;

use super::{device, escape, hidden, render, signed_in_page, utc, Action, Page};
use crate::app_password::AppPasswordSummary;
use crate::oidc::IssuerState;
use crate::session::index::SessionSummary;
use crate::store::keys::{AppPasswordId, SessionHash, Subject};

/// Where the console's forms post.
const CONSOLE: &str = "/.portcullis/admin";

/// One person with something live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub sessions: Vec<(SessionHash, SessionSummary)>,
    pub app_passwords: Vec<AppPasswordSummary>,
}

impl Person {
    pub fn new(sub: &str) -> Self {
        Person {
            sub: sub.to_string(),
            ..Person::default()
        }
    }

    /// The name, else the email address, else the `sub`.
    pub fn shown_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(&self.sub)
    }
}

/// What an admin asks the console to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAction {
    EndSession(SessionHash),
    RevokeAppPassword(AppPasswordId),
    /// Every session and app password of this `sub`.
    SignOut(Subject),
}

impl ConsoleAction {
    /// Its form field (and its name in the audit log).
    pub fn name(&self) -> &'static str {
        match self {
            ConsoleAction::EndSession(_) => "end_session",
            ConsoleAction::RevokeAppPassword(_) => "revoke_app_password",
            ConsoleAction::SignOut(_) => "sign_out",
        }
    }

    pub fn target(&self) -> &str {
        match self {
            ConsoleAction::EndSession(hash) => hash,
            ConsoleAction::RevokeAppPassword(id) => id,
            ConsoleAction::SignOut(sub) => sub,
        }
    }

    fn question(&self) -> (&'static str, String) {
        match self {
            ConsoleAction::EndSession(hash) => (
                "End this session?",
                format!("The browser holding session {} is signed out at once, wherever it is.", short(hash)),
            ),
            ConsoleAction::RevokeAppPassword(id) => (
                "Revoke this app password?",
                format!("App password {id} stops working at once; the app using it must be given a new one."),
            ),
            ConsoleAction::SignOut(sub) => (
                "Sign this person out of everything?",
                format!("Every session and every app password of {sub} ends at once. They can sign in again if the identity provider still lets them."),
            ),
        }
    }
}

/// The start of a session hash: enough to tell sessions apart on a page.
fn short(hash: &str) -> &str {
    hash.get(..10).unwrap_or(hash)
}

/// What the console shows.
pub struct ConsolePage<'a> {
    pub host: &'a str,
    /// Who is looking.
    pub admin: &'a str,
    pub people: &'a [Person],
    pub issuer: &'a IssuerState,
    pub csrf: &'a str,
}

/// A button that posts one action (the next page asks to confirm it).
fn button(csrf: &str, action: &ConsoleAction, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{CONSOLE}\">{}{}<button type=\"submit\">{}</button></form>",
        hidden("csrf", csrf),
        hidden(action.name(), action.target()),
        escape(label)
    )
}

fn issuer_table(issuer: &IssuerState) -> String {
    let discovery = match &issuer.discovery {
        Ok(()) => "reachable".to_string(),
        Err(e) => format!("not reachable: {e}"),
    };
    let keys = match &issuer.key_ids {
        Ok(ids) => ids.join(", "),
        Err(e) => format!("not available: {e}"),
    };
    let last = issuer
        .last_refresh_error
        .as_ref()
        .map_or("none seen by this instance".to_string(), |(at, e)| {
            format!("{}: {e}", utc(*at))
        });
    format!(
        "<h2>Identity provider</h2><table class=\"issuer\"><tbody><tr><th>Discovery</th><td>{}</td></tr><tr><th>Signing key IDs</th><td>{}</td></tr><tr><th>Last re-validation error</th><td>{}</td></tr></tbody></table>",
        escape(&discovery),
        escape(&keys),
        escape(&last)
    )
}

fn sessions_table(html: &mut String, csrf: &str, person: &Person) {
    if person.sessions.is_empty() {
        return;
    }
    html.push_str("<table><thead><tr><th>Device</th><th>Location</th><th>Signed in on</th><th>Since</th><th>Until</th><th></th></tr></thead><tbody>");
    for (hash, s) in &person.sessions {
        let end = button(
            csrf,
            &ConsoleAction::EndSession(hash.clone()),
            "End session",
        );
        let _ = write!(
            html,
            "<tr data-session=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{end}</td></tr>",
            escape(hash),
            escape(&device(s.user_agent.as_deref())),
            escape(s.location.as_deref().unwrap_or("unknown")),
            escape(&s.host),
            utc(s.created),
            utc(s.expires)
        );
    }
    html.push_str("</tbody></table>");
}

fn app_passwords_table(html: &mut String, csrf: &str, person: &Person) {
    if person.app_passwords.is_empty() {
        return;
    }
    html.push_str("<table><thead><tr><th>App password</th><th>App</th><th>Created</th><th>Expires</th><th>Last used</th><th></th></tr></thead><tbody>");
    for p in &person.app_passwords {
        let revoke = button(
            csrf,
            &ConsoleAction::RevokeAppPassword(p.id.clone()),
            "Revoke",
        );
        let last = p.last_used.map_or_else(|| "never".to_string(), utc);
        let _ = write!(
            html,
            "<tr data-app-password=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            escape(&p.id),
            escape(&p.label),
            escape(&p.app),
            utc(p.created),
            utc(p.expires),
            last
        );
    }
    html.push_str("</tbody></table>");
}

/// The console: the issuer, then each person with their sessions and app passwords.
pub fn console(c: &ConsolePage<'_>) -> String {
    let mut html = issuer_table(c.issuer);
    html.push_str("<h2>People signed in</h2>");
    if c.people.is_empty() {
        html.push_str("<p class=\"none\">Nobody has a live session or app password.</p>");
    }
    for person in c.people {
        let email = person.email.as_deref().unwrap_or("no email");
        let _ = write!(
            html,
            "<section class=\"person\" data-sub=\"{}\"><h3>{}</h3><p class=\"who\">{} · <code>{}</code></p>",
            escape(&person.sub),
            escape(person.shown_name()),
            escape(email),
            escape(&person.sub)
        );
        sessions_table(&mut html, c.csrf, person);
        app_passwords_table(&mut html, c.csrf, person);
        // (A summary's `sub` is always a subject; the index keeps it as written.)
        let sign_out = Subject::parse(&person.sub).map(ConsoleAction::SignOut);
        let _ = write!(
            html,
            "<div class=\"actions\">{}</div></section>",
            sign_out.map_or_else(String::new, |a| button(
                c.csrf,
                &a,
                "Sign out of everything"
            ))
        );
    }
    signed_in_page("Admin console", c.host, c.admin, &html)
}

/// Asks the admin to confirm an action: the same form again, with `confirm=yes`.
pub fn confirm(host: &str, action: &ConsoleAction, csrf: &str) -> String {
    let (title, what) = action.question();
    render(&Page {
        html: None,
        title,
        host,
        paragraphs: &[&what],
        details: None,
        actions: &[
            Action::Post {
                label: "Yes, do it",
                action: CONSOLE,
                fields: &[
                    ("csrf", csrf),
                    (action.name(), action.target()),
                    ("confirm", "yes"),
                ],
            },
            Action::Link {
                label: "Cancel",
                href: CONSOLE,
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::tests::assert_holds;

    fn state() -> IssuerState {
        IssuerState {
            discovery: Err("<down>".into()),
            key_ids: Ok(vec!["k1".into(), "k2".into()]),
            last_refresh_error: Some((0, "invalid_grant".into())),
        }
    }

    #[test]
    fn the_console_escapes_what_people_and_the_issuer_say() {
        let mut person = Person::new("u-<1>");
        person.name = Some("<script>x</script>".into());
        let html = console(&ConsolePage {
            host: "auth.example.com",
            admin: "alice",
            people: &[person],
            issuer: &state(),
            csrf: "tok\"",
        });
        assert!(!html.contains("<script>x"));
        assert_holds(
            &html,
            &["&lt;script&gt;x", "not reachable: &lt;down&gt;", "k1, k2"],
        );
        assert!(html.contains("1970-01-01"), "{html}");
        assert!(html.contains("name=\"sign_out\" value=\"u-&lt;1&gt;\""));
        assert!(html.contains("value=\"tok&quot;\""));
    }

    #[test]
    fn a_confirmation_repeats_the_action_with_confirm() {
        let html = confirm(
            "auth.example.com",
            &ConsoleAction::SignOut(Subject::parse("u1").unwrap()),
            "t",
        );
        assert_holds(
            &html,
            &[
                "Sign this person out of everything?",
                "name=\"sign_out\" value=\"u1\"",
                "name=\"confirm\" value=\"yes\"",
            ],
        );
        assert!(html.contains("href=\"/.portcullis/admin\""), "cancel");
    }
}
