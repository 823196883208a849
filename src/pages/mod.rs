//! Portcullis's own HTML pages: small, self-contained (inline CSS, no scripts, no external
//! assets), usable without JavaScript. Every dynamic value is HTML-escaped here.

use std::fmt::Write as _;

mod account;
pub mod console;

pub use account::{account, app_password_created, AccountPage, AppPasswordRow, SessionRow};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A next step offered on a page.
pub enum Action<'a> {
    Link {
        label: &'a str,
        href: &'a str,
    },
    /// A POST form with hidden fields (for state-changing actions).
    Post {
        label: &'a str,
        action: &'a str,
        fields: &'a [(&'a str, &'a str)],
    },
}

pub struct Page<'a> {
    /// Markup built in this module from escaped values (e.g. the sessions table).
    pub html: Option<&'a str>,
    pub title: &'a str,
    /// Shown small above the title: which app this is about.
    pub host: &'a str,
    /// Plain-text paragraphs (escaped on rendering).
    pub paragraphs: &'a [&'a str],
    /// Preformatted details, e.g. a list of configuration problems.
    pub details: Option<&'a str>,
    pub actions: &'a [Action<'a>],
}

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2433;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;max-width:44rem;margin:1rem;padding:2rem 2.25rem;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
.host{color:#6b7385;font-size:.85rem;margin:0 0 .25rem}h1{font-size:1.35rem;margin:0 0 1rem}\
pre{background:#f4f5f7;padding:.75rem;border-radius:6px;white-space:pre-wrap;font-size:.85rem}\
.actions{display:flex;gap:.75rem;flex-wrap:wrap;margin-top:1.5rem}form{margin:0}\
a.button,button{font:inherit;display:inline-block;padding:.5rem 1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;text-decoration:none;cursor:pointer}\
.actions>*:not(:first-child) a.button,.actions>a.button:not(:first-child),.actions>form:not(:first-child) button{background:#fff;color:#2f5bd3}\
footer{margin-top:1.5rem;color:#9aa1b1;font-size:.75rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:middle}\
td form button{padding:.25rem .6rem;font-size:.85rem;background:#fff;color:#b42318;border-color:#b42318}.this{color:#067647;font-weight:600}\
h2{font-size:1.05rem;margin:1.5rem 0 .5rem}code{font:.85rem ui-monospace,monospace;word-break:break-all;user-select:all}\
form.create{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end;margin-top:1rem}form.create label{display:flex;flex-direction:column;font-size:.85rem}\
input,select{font:inherit;padding:.35rem;border:1px solid #c5cad3;border-radius:6px;max-width:100%;box-sizing:border-box}\
main{box-sizing:border-box;max-width:min(44rem,calc(100% - 2rem));min-width:0}td,th{overflow-wrap:break-word}\
@media (max-width:30rem){main{padding:1.25rem 1rem;margin:.5rem;max-width:calc(100% - 1rem)}\
thead{display:none}table,tbody,tr,td,th{display:block}tr{padding:.5rem 0;border-bottom:1px solid #e5e7eb}\
td,th{border:0;padding:.1rem 0}form.create label{flex:1 1 100%}}";

/// A page of someone signed in (`user`), with markup built in this module.
pub(crate) fn signed_in_page(title: &str, host: &str, user: &str, html: &str) -> String {
    let line = format!("Signed in as {user}.");
    render(&Page {
        html: Some(html),
        title,
        host,
        paragraphs: &[&line],
        details: None,
        actions: &[],
    })
}

pub fn render(page: &Page<'_>) -> String {
    let mut html = String::with_capacity(2048);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style></head><body><main>",
        escape(page.title)
    );
    if !page.host.is_empty() {
        let _ = write!(html, "<p class=\"host\">{}</p>", escape(page.host));
    }
    let _ = write!(html, "<h1>{}</h1>", escape(page.title));
    for p in page.paragraphs {
        let _ = write!(html, "<p>{}</p>", escape(p));
    }
    if let Some(details) = page.details {
        let _ = write!(html, "<pre>{}</pre>", escape(details));
    }
    if let Some(block) = page.html {
        html.push_str(block);
    }
    if !page.actions.is_empty() {
        html.push_str("<div class=\"actions\">");
        for action in page.actions {
            match action {
                Action::Link { label, href } => {
                    let _ = write!(
                        html,
                        "<a class=\"button\" href=\"{}\">{}</a>",
                        escape(href),
                        escape(label)
                    );
                }
                Action::Post {
                    label,
                    action,
                    fields,
                } => {
                    let _ = write!(html, "<form method=\"post\" action=\"{}\">", escape(action));
                    for (name, value) in *fields {
                        let _ = write!(
                            html,
                            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                            escape(name),
                            escape(value)
                        );
                    }
                    let _ = write!(
                        html,
                        "<button type=\"submit\">{}</button></form>",
                        escape(label)
                    );
                }
            }
        }
        html.push_str("</div>");
    }
    html.push_str("<footer>Portcullis</footer></main></body></html>");
    html
}

/// What an error page is about.
pub struct ErrorPage<'a> {
    pub host: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    /// Where "Try again" leads.
    pub retry: &'a str,
}

/// The step an error page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Retry,
    /// Back to the app's start page.
    Home,
    Nothing,
}

pub fn error(page: &ErrorPage<'_>, next: Next) -> String {
    let action = match next {
        Next::Retry => Some(Action::Link {
            label: "Try again",
            href: page.retry,
        }),
        Next::Home => Some(Action::Link {
            label: "Back to the app",
            href: "/",
        }),
        Next::Nothing => None,
    };
    render(&Page {
        html: None,
        title: page.title,
        host: page.host,
        paragraphs: &[page.message],
        details: None,
        actions: action.as_slice(),
    })
}

/// Every request gets this while the configuration is invalid; `problems` names the keys.
pub fn misconfigured(host: &str, problems: &str) -> String {
    render(&Page {
        html: None,
        title: "Portcullis is misconfigured",
        host,
        paragraphs: &["Portcullis is misconfigured: the owner of this site needs to fix its configuration before anyone can sign in. The problems found:"],
        details: Some(problems),
        actions: &[],
    })
}

/// The issuer sent the browser back with an OAuth error.
pub fn issuer_said(page: &ErrorPage<'_>, error: &str, description: Option<&str>) -> String {
    let said = match description {
        Some(d) => format!("The identity provider said: {error} ({d})."),
        None => format!("The identity provider said: {error}."),
    };
    render(&Page {
        html: None,
        title: page.title,
        host: page.host,
        paragraphs: &[&said, page.message],
        details: None,
        actions: &[Action::Link {
            label: "Try again",
            href: page.retry,
        }],
    })
}

/// Signed in as someone the app's rules do not admit: sign in as someone else (the
/// retry link with `switch=1`), or sign out.
pub fn forbidden(page: &ErrorPage<'_>, user: &str, csrf: &str) -> String {
    let line = format!("You are signed in as {user}, who is not allowed to use this app.");
    let switch = format!("{}&switch=1", page.retry);
    render(&Page {
        html: None,
        title: page.title,
        host: page.host,
        paragraphs: &[&line, "Sign in with an account that has access, or sign out. The owner can grant access in Portcullis's configuration or with a group at the identity provider."],
        details: None,
        actions: &[
            Action::Link { label: "Sign in as someone else", href: &switch },
            Action::Post { label: "Sign out", action: "/.portcullis/logout", fields: &[("csrf", csrf)] },
        ],
    })
}

/// After logout.
pub fn signed_out(host: &str, login_href: &str) -> String {
    render(&Page {
        html: None,
        title: "You are signed out",
        host,
        paragraphs: &["Your session has ended. Sign in again to continue."],
        details: None,
        actions: &[Action::Link {
            label: "Sign in",
            href: login_href,
        }],
    })
}

/// A unix time as `2026-11-23 14:05 UTC` (proleptic Gregorian, from days since the epoch).
pub fn utc(ts: u64) -> String {
    let days = (ts / 86_400) as i64;
    let secs = ts % 86_400;
    // Civil-from-days (H. Hinnant): shift the era to start on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60
    )
}

/// "Firefox on Linux"-style summary of a User-Agent header.
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.is_empty()) else {
        return "Unknown device".into();
    };
    let has = |needle: &str| ua.contains(needle);
    let browser = if has("Immich") {
        "Immich app"
    } else if has("Edg/") {
        "Edge"
    } else if has("OPR/") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        ua.split('/').next().unwrap_or("Unknown").trim()
    };
    let os = if has("iPhone") || has("iPad") {
        Some("iOS")
    } else if has("Android") {
        Some("Android")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    let browser: String = browser.chars().take(40).collect();
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser,
    }
}

pub(crate) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

pub fn logout_confirm(host: &str, csrf: &str, user: &str) -> String {
    let line = format!("You are signed in as {user}.");
    render(&Page {
        html: None,
        title: "Sign out?",
        host,
        paragraphs: &[&line],
        details: None,
        actions: &[
            Action::Post {
                label: "Sign out",
                action: "/.portcullis/logout",
                fields: &[("csrf", csrf)],
            },
            Action::Link {
                label: "Cancel",
                href: "/",
            },
        ],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Asserts that `html` holds every one of `fragments`, naming the first it lacks.
    pub(crate) fn assert_holds(html: &str, fragments: &[&str]) {
        for fragment in fragments {
            assert!(html.contains(fragment), "{fragment:?} missing from {html}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_442_700), "2026-11-23 14:05 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59 UTC");
    }

    #[test]
    fn devices() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(safari)), "Safari on iOS");
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"
            )),
            "Firefox on Windows"
        );
        assert_eq!(device(Some("curl/8.5.0")), "curl");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn sessions_page_escapes_and_offers_actions() {
        let rows = [
            SessionRow {
                hash: "h1",
                device: "<b>x</b>".into(),
                host: "photos.example.com",
                created: 0,
                expires: 60,
                current: true,
            },
            SessionRow {
                hash: "h2",
                device: "Firefox on Linux".into(),
                host: "photos.example.com",
                created: 0,
                expires: 60,
                current: false,
            },
        ];
        let passwords = [AppPasswordRow {
            id: "ap_1",
            label: "<i>Pixel</i>",
            app: "photos.example.com",
            created: 0,
            expires: 60,
            last_used: None,
        }];
        let html = account(&AccountPage {
            host: "photos.example.com",
            user: "alice",
            sessions: &rows,
            app_passwords: &passwords,
            creatable: &["photos.example.com"],
            cannot_create: None,
            max_lifetime: "90d",
            csrf: "tok",
        });
        assert_holds(
            &html,
            &[
                "&lt;i&gt;Pixel",
                "name=\"id\" value=\"ap_1\"",
                "<option value=\"photos.example.com\">",
                "never",
                "&lt;b&gt;x",
                "This device",
                "name=\"revoke\" value=\"h2\"",
            ],
        );
        assert!(
            !html.contains("name=\"revoke\" value=\"h1\""),
            "no button for this device"
        );
        assert!(html.contains("Sign out everywhere else"));
    }

    #[test]
    fn escapes_everything_dynamic() {
        let html = render(&Page {
            html: None,
            title: "<script>alert(1)</script>",
            host: "a\"b",
            paragraphs: &["x & y"],
            details: Some("<b>"),
            actions: &[
                Action::Link {
                    label: "go",
                    href: "/p?a=1&b=\"2\"",
                },
                Action::Post {
                    label: "out",
                    action: "/o",
                    fields: &[("csrf", "v\"'<")],
                },
            ],
        });
        assert!(!html.contains("<script>"));
        assert_holds(
            &html,
            &[
                "&lt;script&gt;",
                "a&quot;b",
                "x &amp; y",
                "href=\"/p?a=1&amp;b=&quot;2&quot;\"",
                "value=\"v&quot;&#39;&lt;\"",
                "method=\"post\"",
            ],
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
    }
}
