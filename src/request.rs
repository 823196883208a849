//! The plain view of an incoming request that the core decides on.

use url::Url;

use crate::cookies;
use crate::path::{self, AmbiguousPath};

#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Upper-case method.
    pub method: String,
    /// The URL as the runtime parsed it (WHATWG rules: dot segments resolved, backslashes
    /// turned into slashes), with its path normalised further by [`path::normalize`]: this
    /// is what rules are matched on and what is forwarded.
    pub url: Url,
    /// Set when the path is ambiguous and must be refused (400).
    pub ambiguous_path: Option<AmbiguousPath>,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body of a form POST to one of Portcullis's own endpoints (read only there).
    pub body: Option<String>,
}

impl RequestHead {
    pub fn new(method: &str, mut url: Url, headers: Vec<(String, String)>) -> Self {
        let ambiguous_path = match path::normalize(url.path()) {
            Ok(normalized) => {
                if normalized != url.path() {
                    url.set_path(&normalized);
                }
                None
            }
            Err(e) => Some(e),
        };
        Self {
            method: method.to_ascii_uppercase(),
            url,
            ambiguous_path,
            headers,
            body: None,
        }
    }

    /// First value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Host name without port, lower-case.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// `scheme://host[:port]` of this request.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The value of the first cookie called `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookie_pairs()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// All cookies sent, as `(name, value)`.
    pub fn cookie_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| cookies::pairs(v))
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A form field from the POST body.
    pub fn form_field(&self, name: &str) -> Option<String> {
        let body = self.body.as_deref()?;
        url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A top-level browser navigation, which may be answered with a redirect to the issuer.
    /// Anything else (fetch/XHR, API clients, non-GET) gets a 401 instead: following a
    /// redirect to a login page would only break them.
    pub fn is_browser_navigation(&self) -> bool {
        if self.method != "GET" && self.method != "HEAD" {
            return false;
        }
        if let Some(mode) = self.header("sec-fetch-mode") {
            if mode != "navigate" {
                return false;
            }
        }
        if self
            .header("x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
        {
            return false;
        }
        self.header("accept").is_some_and(|accept| {
            accept
                .as_bytes()
                .windows(b"text/html".len())
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        })
    }

    pub fn is_websocket(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::new(
            method,
            Url::parse("https://photos.example.com/a?rd=%2Fx&rd=y").unwrap(),
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn navigation_is_told_from_api_calls() {
        let html = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";
        assert!(head("GET", &[("accept", html)]).is_browser_navigation());
        assert!(
            head("GET", &[("accept", html), ("sec-fetch-mode", "navigate")])
                .is_browser_navigation()
        );
        assert!(head("HEAD", &[("accept", "text/html")]).is_browser_navigation());
        // Media types are case-insensitive.
        assert!(head("GET", &[("accept", "Text/HTML;q=1")]).is_browser_navigation());
        assert!(!head("GET", &[("accept", "text/htm")]).is_browser_navigation());
        assert!(!head("GET", &[("accept", "application/json")]).is_browser_navigation());
        assert!(!head("GET", &[]).is_browser_navigation());
        assert!(!head("POST", &[("accept", html)]).is_browser_navigation());
        assert!(
            !head("GET", &[("accept", html), ("sec-fetch-mode", "cors")]).is_browser_navigation()
        );
        assert!(!head(
            "GET",
            &[("accept", html), ("x-requested-with", "XMLHttpRequest")]
        )
        .is_browser_navigation());
    }

    #[test]
    fn the_path_is_normalised_once_for_everyone() {
        let h = RequestHead::new(
            "GET",
            Url::parse("https://h.example.com//sh%61re/./x?q=%2F").unwrap(),
            vec![],
        );
        assert_eq!(h.url.as_str(), "https://h.example.com/share/x?q=%2F");
        assert!(h.ambiguous_path.is_none());
        let h = RequestHead::new(
            "GET",
            Url::parse("https://h.example.com/share/..;/admin").unwrap(),
            vec![],
        );
        assert!(h.ambiguous_path.is_some());
    }

    #[test]
    fn reads_cookies_query_and_host() {
        let h = head("GET", &[("cookie", "a=1; b=2"), ("cookie", "c=3")]);
        assert_eq!(h.cookie("b"), Some("2"));
        assert_eq!(h.cookie("c"), Some("3"));
        assert_eq!(h.cookie("d"), None);
        assert_eq!(h.query("rd").as_deref(), Some("/x"));
        assert_eq!(h.host(), "photos.example.com");
        assert_eq!(h.origin(), "https://photos.example.com");
    }
}
