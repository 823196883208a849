//! The plain view of an incoming request that the core decides on.

use std::ops::Range;

use url::Url;

use crate::cookies;
use crate::path::{self, AmbiguousPath};

/// The name under which the edge passes where Cloudflare placed a login's visitor (city,
/// country, from `request.cf`): one no client can send, since `:` cannot be in a header
/// name (`src/edge/entry.js`).
pub const LOCATION: &str = ":location";

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
    /// The text holding the headers' names and values (for a head from
    /// [`RequestHead::from_packed`], the whole packed request); [`RequestHead::headers`]
    /// reads them through `header_spans`. One string rather than two per header: this is
    /// what the edge hands over, and a browser sends a dozen or more headers per request.
    header_text: String,
    /// `(name, value)` byte ranges in `header_text`, in arrival order.
    header_spans: Vec<(Range<usize>, Range<usize>)>,
    /// Body of a form POST to one of Portcullis's own endpoints (read only there).
    pub body: Option<String>,
}

impl RequestHead {
    /// A head from literals, for tests: `headers` as `(name, value)` pairs.
    #[cfg(test)]
    pub fn of(method: &str, url: &str, headers: &[(&str, &str)]) -> Self {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let pairs = headers.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        RequestHead::new(method, url, pairs.collect())
    }

    /// `headers`: lower-case names, in arrival order.
    pub fn new(method: &str, url: Url, headers: Vec<(String, String)>) -> Self {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            let name_start = text.len();
            text.push_str(name);
            let value_start = text.len() + 1;
            text.push('\n');
            text.push_str(value);
            spans.push((name_start..value_start - 1, value_start..text.len()));
            text.push('\n');
        }
        Self::with_headers(method.to_ascii_uppercase(), url, text, spans)
    }

    /// The head from the edge's packed form: `method\nurl\n` followed by `name\nvalue\n`
    /// for each header (names lower-case, as `Headers` iterates them). Header names and
    /// values never contain a line feed (the Fetch standard forbids CR, LF and NUL in
    /// them; the URL is percent-encoded), so the fields are unambiguous. `None` when the
    /// URL does not parse.
    pub fn from_packed(packed: String) -> Option<Self> {
        let (method, rest) = packed.split_once('\n')?;
        let (url, headers) = rest.split_once('\n').unwrap_or((rest, ""));
        let url = Url::parse(url).ok()?;
        let method = method.to_ascii_uppercase();
        let base = packed.len() - headers.len();
        // Room for a browser's headers without growing.
        let mut spans = Vec::with_capacity(24);
        // Fields are `\n`-separated (ASCII, so every span falls on a character boundary),
        // read in one pass over the bytes; a last name without its value (never sent by
        // the edge) is dropped.
        let mut field_start = 0;
        let mut name: Option<Range<usize>> = None;
        for (i, &byte) in headers.as_bytes().iter().enumerate() {
            if byte != b'\n' {
                continue;
            }
            match name.take() {
                None => name = Some(base + field_start..base + i),
                Some(name) => spans.push((name, base + field_start..base + i)),
            }
            field_start = i + 1;
        }
        if let Some(name) = name {
            spans.push((name, base + field_start..packed.len()));
        }
        Some(Self::with_headers(method, url, packed, spans))
    }

    fn with_headers(
        method: String,
        mut url: Url,
        header_text: String,
        header_spans: Vec<(Range<usize>, Range<usize>)>,
    ) -> Self {
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
            method,
            url,
            ambiguous_path,
            header_text,
            header_spans,
            body: None,
        }
    }

    /// Every header as `(name, value)`, names lower-case, in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header_spans
            .iter()
            .map(|(name, value)| (self.text(name), self.text(value)))
    }

    fn text(&self, span: &Range<usize>) -> &str {
        self.header_text.get(span.clone()).unwrap_or_default()
    }

    /// First value of the header whose lower-case name is `name` (the names held are
    /// lower-case, as `Headers` iterates them). Lengths are compared first: this runs
    /// several times per request over every header.
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name}");
        self.header_spans
            .iter()
            .find(|(n, _)| n.len() == name.len() && self.text(n) == name)
            .map(|(_, value)| self.text(value))
    }

    /// Every value of a header whose lower-case name is `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.header_spans
            .iter()
            .filter(move |(n, _)| n.len() == name.len() && self.text(n) == name)
            .map(|(_, value)| self.text(value))
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
        self.all("cookie").flat_map(cookies::pairs)
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

    /// A WebSocket opening handshake (RFC 6455 §4.1: a GET with `Upgrade: websocket`).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self
                .header("upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    }

    /// Whether the client asks for JSON rather than a page (`Accept` names JSON and not
    /// HTML).
    pub fn prefers_json(&self) -> bool {
        let accept = self.header("accept").unwrap_or_default();
        accept.contains("application/json") && !accept.contains("text/html")
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::of(method, "https://photos.example.com/a?rd=%2Fx&rd=y", headers)
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

    /// The edge's packed form, as `packRequest` in `src/edge/entry.js` writes it.
    fn pack(method: &str, url: &str, headers: &[(&str, &str)]) -> String {
        let mut packed = format!("{method}\n{url}\n");
        for (name, value) in headers {
            packed.push_str(&format!("{name}\n{value}\n"));
        }
        packed
    }

    #[test]
    fn the_packed_head_reads_as_the_head_built_from_its_parts() {
        let headers = [
            ("accept", "text/html"),
            ("cookie", "a=1; b=\"ä ö\""),
            ("x-empty", ""),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Ünïcode/1"),
            ("cookie", "c=3"),
        ];
        let url = "https://photos.example.com/a/./b?rd=%2Fx";
        let packed = RequestHead::from_packed(pack("get", url, &headers)).unwrap();
        let built = RequestHead::of("get", url, &headers);
        for h in [&packed, &built] {
            assert_eq!(h.method, "GET");
            assert_eq!(h.url.as_str(), "https://photos.example.com/a/b?rd=%2Fx");
            assert_eq!(h.headers().collect::<Vec<_>>(), headers);
            assert_eq!(h.header("cookie"), Some("a=1; b=\"ä ö\""));
            assert_eq!(h.cookie("c"), Some("3"));
            assert_eq!(h.header("x-empty"), Some(""));
        }
    }

    #[test]
    fn a_packed_head_without_headers_or_a_url_is_handled() {
        let h = RequestHead::from_packed("GET\nhttps://h.example.com/\n".into()).unwrap();
        assert_eq!(h.headers().count(), 0);
        let h = RequestHead::from_packed("GET\nhttps://h.example.com/".into()).unwrap();
        assert_eq!(h.headers().count(), 0);
        // A name without its value is dropped, not read as a header.
        let h = RequestHead::from_packed("GET\nhttps://h.example.com/\na\n1\nb".into()).unwrap();
        assert_eq!(h.headers().collect::<Vec<_>>(), [("a", "1")]);
        assert!(RequestHead::from_packed("GET\nnot a url\n".into()).is_none());
        assert!(RequestHead::from_packed("GET".into()).is_none());
        assert!(RequestHead::from_packed(String::new()).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the headers (any text without a line feed), the packed head reads
            /// back exactly the names and values packed, in order.
            #[test]
            fn packed_headers_read_back_exactly(
                headers in proptest::collection::vec(("[a-z0-9-]{1,20}", "[^\n]{0,40}"), 0..20)
            ) {
                let refs: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let h = RequestHead::from_packed(pack("GET", "https://h.example.com/x", &refs)).unwrap();
                prop_assert_eq!(h.headers().collect::<Vec<_>>(), refs);
            }

            /// Any text after the URL (line feeds anywhere, a missing last value) reads as
            /// its `\n`-separated fields taken two by two.
            #[test]
            fn packed_fields_are_read_two_by_two(rest in "[ab\n\u{e9}]{0,24}") {
                let h = RequestHead::from_packed(format!("GET\nhttps://h.example.com/\n{rest}"))
                    .unwrap();
                let fields: Vec<&str> = rest.split('\n').collect();
                let pairs: Vec<(&str, &str)> =
                    fields.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                prop_assert_eq!(h.headers().collect::<Vec<_>>(), pairs);
            }
        }
    }
}
