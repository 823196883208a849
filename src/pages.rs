//! Portcullis's own HTML pages: small, self-contained (inline CSS, no scripts, no external
//! assets), usable without JavaScript. Every dynamic value is HTML-escaped here.

use std::fmt::Write as _;

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
main{background:#fff;max-width:34rem;margin:1rem;padding:2rem 2.25rem;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
.host{color:#6b7385;font-size:.85rem;margin:0 0 .25rem}h1{font-size:1.35rem;margin:0 0 1rem}\
pre{background:#f4f5f7;padding:.75rem;border-radius:6px;white-space:pre-wrap;font-size:.85rem}\
.actions{display:flex;gap:.75rem;flex-wrap:wrap;margin-top:1.5rem}form{margin:0}\
a.button,button{font:inherit;display:inline-block;padding:.5rem 1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;text-decoration:none;cursor:pointer}\
.actions>*:not(:first-child) a.button,.actions>a.button:not(:first-child),.actions>form:not(:first-child) button{background:#fff;color:#2f5bd3}\
footer{margin-top:1.5rem;color:#9aa1b1;font-size:.75rem}";

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

/// After logout.
pub fn signed_out(host: &str, login_href: &str) -> String {
    render(&Page {
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

/// Asks before signing out when the request could have come from another site.
pub fn logout_confirm(host: &str, csrf: &str, user: &str) -> String {
    let line = format!("You are signed in as {user}.");
    render(&Page {
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
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dynamic() {
        let html = render(&Page {
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
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("a&quot;b"));
        assert!(html.contains("x &amp; y"));
        assert!(html.contains("href=\"/p?a=1&amp;b=&quot;2&quot;\""));
        assert!(html.contains("value=\"v&quot;&#39;&lt;\""));
        assert!(html.contains("method=\"post\""));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
    }
}
