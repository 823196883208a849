//! The person's own pages: the account page (sessions, app passwords, the creation form)
//! and the one page that shows a new app password's secret.

use std::fmt::Write as _;

use super::{escape, hidden, render, signed_in_page, utc, Action, Page};

/// One row of the sessions page.
pub struct SessionRow<'a> {
    pub hash: &'a str,
    pub device: String,
    pub host: &'a str,
    pub created: u64,
    pub expires: u64,
    pub current: bool,
}

/// One app password on the account page.
pub struct AppPasswordRow<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub app: &'a str,
    pub created: u64,
    pub expires: u64,
    pub last_used: Option<u64>,
}

/// What the account page shows.
pub struct AccountPage<'a> {
    pub host: &'a str,
    pub user: &'a str,
    pub sessions: &'a [SessionRow<'a>],
    pub app_passwords: &'a [AppPasswordRow<'a>],
    /// Hosts of the apps this person may create app passwords for.
    pub creatable: &'a [&'a str],
    /// Why none can be created here, when an app would take them.
    pub cannot_create: Option<&'a str>,
    /// The longest lifetime allowed, e.g. `90d` (also the default).
    pub max_lifetime: &'a str,
    pub csrf: &'a str,
}

/// The account page's app passwords: the list, then the form to create one (or why none
/// can be created here).
fn app_passwords_section(html: &mut String, a: &AccountPage<'_>, csrf: &str) {
    html.push_str("<h2>App passwords</h2><p>For phone and desktop apps that cannot sign in through a browser. Each works for one app only, and stops when you revoke it, when it expires, or when your account is disabled.</p>");
    if a.app_passwords.is_empty() {
        html.push_str("<p class=\"none\">You have no app passwords.</p>");
    } else {
        html.push_str("<table><thead><tr><th>Label</th><th>App</th><th>Created</th><th>Expires</th><th>Last used</th><th></th></tr></thead><tbody>");
        for p in a.app_passwords {
            let last = p.last_used.map_or_else(|| "never".to_string(), utc);
            let _ = write!(
                html,
                "<tr data-app-password=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/.portcullis/app-passwords/revoke\">{csrf}{}<button type=\"submit\">Revoke</button></form></td></tr>",
                escape(p.id),
                escape(p.label),
                escape(p.app),
                utc(p.created),
                utc(p.expires),
                last,
                hidden("id", p.id)
            );
        }
        html.push_str("</tbody></table>");
    }
    if let Some(why) = a.cannot_create {
        let _ = write!(
            html,
            "<p class=\"cannot-create\">{}</p>",
            escape(&capitalised(why))
        );
    }
    if !a.creatable.is_empty() {
        let _ = write!(
            html,
            "<form class=\"create\" method=\"post\" action=\"/.portcullis/app-passwords\">{csrf}<label>App <select name=\"app\">"
        );
        for host in a.creatable {
            let _ = write!(html, "<option value=\"{0}\">{0}</option>", escape(host));
        }
        let _ = write!(
            html,
            "</select></label><label>Label <input name=\"label\" required maxlength=\"64\" placeholder=\"Immich on Pixel 8\"></label><label>Lifetime <input name=\"lifetime\" value=\"{0}\" size=\"6\"> (at most {0})</label><button type=\"submit\">Create app password</button></form>",
            escape(a.max_lifetime)
        );
    }
}

/// The person's page: their sessions, their app passwords, and the form to create one.
pub fn account(a: &AccountPage<'_>) -> String {
    let csrf = hidden("csrf", a.csrf);
    let mut html = String::from(
        "<h2>Sessions</h2><table><thead><tr><th>Device</th><th>Signed in on</th><th>Since</th><th>Until</th><th></th></tr></thead><tbody>",
    );
    for row in a.sessions {
        let action = if row.current {
            "<span class=\"this\">This device</span>".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"/.portcullis/sessions\">{csrf}{}<button type=\"submit\">Sign out</button></form>",
                hidden("revoke", row.hash)
            )
        };
        let _ = write!(
            html,
            "<tr data-session=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(row.hash),
            escape(&row.device),
            escape(row.host),
            utc(row.created),
            utc(row.expires)
        );
    }
    html.push_str("</tbody></table>");
    if a.sessions.iter().any(|r| !r.current) {
        let _ = write!(
            html,
            "<div class=\"actions\"><form method=\"post\" action=\"/.portcullis/sessions\">{csrf}{}<button type=\"submit\">Sign out everywhere else</button></form></div>",
            hidden("others", "1")
        );
    }

    app_passwords_section(&mut html, a, &csrf);
    signed_in_page("Your account", a.host, a.user, &html)
}

/// `text` with its first letter upper-case (messages are written to follow a colon too).
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The one page that shows an app password's secret: as the header pair (the Immich
/// app's custom proxy headers) and as a Basic user name and password.
pub fn app_password_created(host: &str, created: &crate::app_password::Created) -> String {
    let id = escape(&created.credential.id);
    let secret = escape(created.credential.secret.expose());
    let r = &created.record;
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Copy it now: it is shown only this once.</p>\
<h2>As headers</h2><p>For apps with custom headers (Immich: Settings, Advanced, Custom proxy headers).</p>\
<table><tbody><tr><th>Portcullis-Client-Id</th><td><code data-client-id>{id}</code></td></tr>\
<tr><th>Portcullis-Client-Secret</th><td><code data-secret>{secret}</code></td></tr></tbody></table>\
<h2>As a user name and password</h2><p>For apps that speak HTTP Basic authentication (nzb360, many others).</p>\
<table><tbody><tr><th>User name</th><td><code>{id}</code></td></tr><tr><th>Password</th><td><code>{secret}</code></td></tr></tbody></table>\
<p>Valid on {} until {}.</p>",
        escape(&r.app),
        utc(r.expires)
    );
    let title = format!("App password \u{201c}{}\u{201d} created", r.label);
    render(&Page {
        html: Some(&html),
        title: &title,
        host,
        paragraphs: &[],
        details: None,
        actions: &[Action::Link {
            label: "Back to your account",
            href: "/.portcullis/account",
        }],
    })
}
