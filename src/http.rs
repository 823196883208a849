//! Plain HTTP values the core speaks in: the outbound requests it needs made (to the issuer),
//! the client trait that makes them, and the replies it wants sent to the browser.

use serde::Serialize;

/// An outbound request to the issuer. Bodies are small forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl HttpRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
        }
    }

    /// A `application/x-www-form-urlencoded` POST.
    pub fn post_form(url: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        Self {
            method: Method::Post,
            url: url.into(),
            headers: vec![
                ("accept".into(), "application/json".into()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Some(body),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The issuer's answer: status and (size-limited) body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Why an outbound request produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// Makes outbound requests for the core. The Worker implements it with `fetch`
/// (redirects not followed, bounded time and size); tests implement it in memory.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait HttpClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// A response the core wants sent as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The standard header set this reply carries (the edge copies it from a per-isolate
    /// template instead of building it header by header).
    pub standard: Option<Standard>,
    /// Further headers; a name may repeat (several `set-cookie`).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Headers on every page and JSON answer of Portcullis's own: never cached, never framed,
/// no referrer (a callback URL carries a code). The content security policy comes with
/// them, from [`content_security_policy`].
const OWN_HEADERS: [(&str, &str); 4] = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// The policy for Portcullis's pages: no scripts or external resources, not framable.
/// Forms may post to this site, to the auth host (where app passwords are created, on
/// any port), and, since the sign-out form's answer redirects there, to `issuer_origin`
/// (browsers apply `form-action` to the redirect too).
pub fn content_security_policy(issuer_origin: Option<&str>) -> String {
    content_security_policy_with(issuer_origin, None)
}

pub fn content_security_policy_with(
    issuer_origin: Option<&str>,
    auth_host: Option<&str>,
) -> String {
    let mut form_action = String::from("'self'");
    for source in [
        issuer_origin.map(String::from),
        auth_host.map(|h| format!("{h}:*")),
    ]
    .into_iter()
    .flatten()
    {
        form_action.push(' ');
        form_action.push_str(&source);
    }
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The standard header sets of Portcullis's own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    Html,
    Json,
    /// A redirect: no body, no content type.
    Redirect,
}

impl Standard {
    pub fn headers(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        let content_type = match self {
            Standard::Html => Some(("content-type", "text/html; charset=utf-8")),
            Standard::Json => Some(("content-type", "application/json")),
            Standard::Redirect => None,
        };
        OWN_HEADERS.into_iter().chain(content_type)
    }
}

impl Reply {
    fn standard(status: u16, standard: Standard, body: String) -> Self {
        Self {
            status,
            standard: Some(standard),
            headers: Vec::new(),
            body,
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self::standard(status, Standard::Html, body)
    }

    pub fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
        Self::standard(status, Standard::Json, body)
    }

    /// `303 See Other`: the browser follows with a GET whatever the original method.
    pub fn redirect(location: &str) -> Self {
        Self::standard(303, Standard::Redirect, String::new()).with_header("location", location)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_cookies(mut self, set_cookies: impl IntoIterator<Item = String>) -> Self {
        for c in set_cookies {
            self.headers.push(("set-cookie".into(), c));
        }
        self
    }

    /// Every header, standard ones first.
    pub fn all_headers<'a>(&'a self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let standard = self
            .standard
            .into_iter()
            .flat_map(Standard::headers)
            .map(|(k, v)| -> (&'a str, &'a str) { (k, v) });
        let own = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        standard.chain(own)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_lets_forms_reach_the_issuer_and_nothing_else_load() {
        let csp = content_security_policy(Some("https://id.example.com"));
        assert!(
            csp.contains("form-action 'self' https://id.example.com;"),
            "{csp}"
        );
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(content_security_policy(None).contains("form-action 'self';"));
    }

    #[test]
    fn standard_headers_are_listed_with_the_reply() {
        let r = Reply::redirect("/x").with_cookies(["a=1".to_string()]);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("location"), Some("/x"));
        assert_eq!(r.header("content-type"), None);
        assert_eq!(
            Reply::json(200, &1).header("content-type"),
            Some("application/json")
        );
    }
}
