//! The upstream request made from the client's: where it goes, which headers are stripped
//! (Portcullis's cookies, anything that could pose as an identity) and which are set (the
//! session's identity, `X-Forwarded-*`). Also what is changed on the way back.

use url::{Position, Url};

use crate::cookies;
use crate::identity::Identity;
use crate::model::{is_service_name, App};
use crate::people::relay::Standing;
use crate::request::RequestHead;

/// Identity headers Portcullis sets (oauth2-proxy's and Authelia/tinyauth's names).
pub const IDENTITY_HEADERS: [&str; 9] = [
    "x-auth-request-user",
    "x-auth-request-credential",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
];

/// The signed assertion header.
pub const ASSERTION_HEADER: &str = "portcullis-assertion";

/// Further headers an origin might trust — as identity (other gates' names), as the
/// client's address, or to rewrite the path — and the service-token header pair that
/// Portcullis consumes: never passed on from a client. Compared after mapping `_` to `-`
/// (CGI, WSGI and PHP read both alike). `X-Forwarded-*` and `X-Real-IP` are then set by
/// Portcullis from what Cloudflare saw.
const STRIPPED_HEADERS: [&str; 21] = [
    "x-auth-request-access-token",
    "x-forwarded-access-token",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-method",
    "x-original-method",
    "x-real-ip",
    "forwarded",
    "portcullis-assertion",
    "portcullis-client-id",
    "portcullis-client-secret",
];

/// Whole families of identity headers, whatever follows the prefix: `Remote-*` (Authelia,
/// tinyauth), `X-Remote-*`, `X-authentik-*`, `Cf-Access-*` (Cloudflare Access),
/// `X-WebAuth-*` (Grafana, Gitea) and `Tailscale-User-*` (Tailscale's serve and funnel).
const STRIPPED_PREFIXES: [&str; 6] = [
    "remote-",
    "x-remote-",
    "x-authentik-",
    "cf-access-",
    "x-webauth-",
    "tailscale-user-",
];

/// Per-request choices for forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// `Authorization` carried a credential Portcullis consumed (service token via Basic,
    /// an accepted bearer token): do not pass it on.
    pub strip_authorization: bool,
    /// The signed `Portcullis-Assertion`, when an assertion key is configured.
    pub assertion: Option<String>,
    /// The user name for `X-Auth-Request-User` and `Remote-User` (the app's `user_claim`
    /// for a person, `service:<name>` for a service token); `None`: not sent.
    pub user: Option<String>,
    /// The label of the app password used (`X-Auth-Request-Credential`), so the app can
    /// tell a person's devices apart.
    pub credential: Option<String>,
}

/// What the edge must do to forward a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    /// The upstream URL.
    pub url: String,
    /// Header names to delete from the client's headers (exact names as received).
    pub remove: Vec<String>,
    /// Headers to set (replacing any value).
    pub set: Vec<(&'static str, String)>,
    /// A WebSocket upgrade to hand to the person's object, which relays it and closes it
    /// when this standing ends (`websockets = "relay"`); `None`: straight to the origin.
    pub relay: Option<Standing>,
}

impl ProxyPlan {
    /// The value this plan sets for `name` (as spelled in [`ProxyPlan::set`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `name` starts with `lower` (a lower-case name with `-`) as servers that map `-`
/// and `_` alike (CGI, WSGI, PHP) would see it, case-insensitively. Compared byte by byte:
/// this runs for every header of every proxied request.
fn canonical_starts_with(name: &str, lower: &str) -> bool {
    name.len() >= lower.len()
        && name.bytes().zip(lower.bytes()).all(|(n, l)| {
            let n = n.to_ascii_lowercase();
            n == l || (n == b'_' && l == b'-')
        })
}

/// The first bytes (lower-case) of every stripped name and prefix: most of a browser's
/// headers (`Accept-*`, `Sec-*`, `User-Agent`, `Host`) are passed on after this one lookup
/// instead of a comparison with each listed name.
const STRIPPED_FIRST_BYTES: [bool; 256] = {
    const fn mark(table: &mut [bool; 256], names: &[&str]) {
        let mut i = 0;
        while i < names.len() {
            table[names[i].as_bytes()[0] as usize] = true;
            i += 1;
        }
    }
    let mut table = [false; 256];
    mark(&mut table, &IDENTITY_HEADERS);
    mark(&mut table, &STRIPPED_HEADERS);
    mark(&mut table, &STRIPPED_PREFIXES);
    table
};

fn is_stripped(name: &str) -> bool {
    let first = name.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
    if !STRIPPED_FIRST_BYTES[usize::from(first)] {
        return false;
    }
    let is = |listed: &&str| listed.len() == name.len() && canonical_starts_with(name, listed);
    IDENTITY_HEADERS.iter().any(is)
        || STRIPPED_HEADERS.iter().any(is)
        || STRIPPED_PREFIXES
            .iter()
            .any(|prefix| canonical_starts_with(name, prefix))
}

/// Header values must be visible ASCII; anything else (non-ASCII names, control characters)
/// is percent-encoded as UTF-8, and `%` itself too, so the encoding is unambiguous.
pub fn header_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_header_value(&mut out, text, false);
    out
}

/// Appends `text` encoded as [`header_value`] encodes it; with `escape_comma`, `,` is
/// encoded too (`%2C`), so one group name cannot split a comma-separated list.
fn push_header_value(out: &mut String, text: &str, escape_comma: bool) {
    let plain =
        |byte: u8| (0x20..0x7f).contains(&byte) && byte != b'%' && !(escape_comma && byte == b',');
    if text.bytes().all(plain) {
        out.push_str(text);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// The groups as one header value: each encoded as by [`header_value`] and with its commas
/// encoded, joined by `,`.
fn groups_value(groups: &[String]) -> String {
    let mut value = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            value.push(',');
        }
        push_header_value(&mut value, group, true);
    }
    value
}

/// The upstream URL: the app's origin with the request's path and query, or the request's
/// own URL (the zone's origin, e.g. a tunnel) when no origin is configured.
pub fn upstream_url(url: &Url, app: &App) -> String {
    match &app.origin {
        Some(origin) => {
            let rest = &url[Position::BeforePath..Position::AfterQuery];
            let mut upstream = String::with_capacity(origin.as_str().len() + rest.len());
            upstream.push_str(origin.as_str());
            upstream.push_str(rest);
            upstream
        }
        None => url[..Position::AfterQuery].to_string(),
    }
}

/// Plans the upstream request. `identity` is `None` for requests that pass without one.
pub fn plan(
    head: &RequestHead,
    app: &App,
    identity: Option<&Identity>,
    forward: &Forward,
) -> ProxyPlan {
    let mut remove = removed(head, forward);
    let mut set: Vec<(&'static str, String)> = Vec::with_capacity(12);
    let mut kept_cookies = String::new();
    for value in head.all("cookie") {
        cookies::strip_own(value, &mut kept_cookies);
    }
    if !kept_cookies.is_empty() {
        set.push(("cookie", kept_cookies));
    }
    if let Some(id) = identity {
        push_identity(&mut set, id, forward.user.as_deref());
    }
    if let Some(label) = &forward.credential {
        set.push(("x-auth-request-credential", header_value(label)));
    }
    if let Some(assertion) = &forward.assertion {
        set.push((ASSERTION_HEADER, assertion.clone()));
    }
    push_forwarded(&mut set, head);
    // `Headers.set` replaces every value of a name, so a header that is set need not be
    // deleted first: one call fewer per request (e.g. `Cookie` when app cookies remain).
    remove.retain(|name| !set.iter().any(|(set_name, _)| name == set_name));
    ProxyPlan {
        url: upstream_url(&head.url, app),
        relay: None,
        remove,
        set,
    }
}

/// The client's headers that must not reach the app: every spoofable identity or
/// forwarding header, the `Cookie` (re-set without Portcullis's cookies), and the
/// `Authorization` that carried a Portcullis credential.
fn removed(head: &RequestHead, forward: &Forward) -> Vec<String> {
    let mut remove: Vec<String> = head
        .headers()
        .map(|(name, _)| name)
        .filter(|name| {
            is_stripped(name)
                || *name == "cookie"
                || (forward.strip_authorization && *name == "authorization")
        })
        .map(String::from)
        .collect();
    remove.dedup();
    remove
}

/// The identity headers, each value encoded by [`header_value`].
fn push_identity(set: &mut Vec<(&'static str, String)>, id: &Identity, user: Option<&str>) {
    let groups = groups_value(&id.groups);
    let user = user.map(header_value).unwrap_or_default();
    // Only what the issuer vouches for: an email it has verified, and never a name in
    // the form reserved for service tokens.
    let email = id
        .email
        .as_deref()
        .filter(|_| id.email_verified)
        .map(header_value)
        .unwrap_or_default();
    let username = id
        .preferred_username
        .as_deref()
        .filter(|name| !is_service_name(name))
        .map(header_value)
        .unwrap_or_default();
    let name = id.name.as_deref().map(header_value).unwrap_or_default();
    // Most values go under two names: the second takes the value itself, not a copy.
    for (header, second, value) in [
        ("x-auth-request-user", Some("remote-user"), user),
        ("x-auth-request-email", Some("remote-email"), email),
        ("x-auth-request-groups", Some("remote-groups"), groups),
        ("x-auth-request-preferred-username", None, username),
        ("remote-name", None, name),
    ] {
        if value.is_empty() {
            continue;
        }
        match second {
            Some(second) => {
                set.push((header, value.clone()));
                set.push((second, value));
            }
            None => set.push((header, value)),
        }
    }
}

/// Where the request came from: the client address as Cloudflare saw it (never a
/// client-supplied chain), the scheme and the host.
fn push_forwarded(set: &mut Vec<(&'static str, String)>, head: &RequestHead) {
    if let Some(ip) = head.header("cf-connecting-ip") {
        let ip = header_value(ip);
        set.push(("x-forwarded-for", ip.clone()));
        set.push(("x-real-ip", ip));
    }
    set.push(("x-forwarded-proto", head.url.scheme().into()));
    set.push((
        "x-forwarded-host",
        head.url[Position::BeforeHost..Position::AfterPort].to_string(),
    ));
}

/// The origin's `Set-Cookie` values without any for a Portcullis cookie name (an app must
/// not be able to plant or overwrite a session); `None` when there is nothing to drop.
pub fn without_own_cookies(set_cookies: &[String]) -> Option<Vec<String>> {
    let own = |c: &String| cookies::is_own(c.split('=').next().unwrap_or_default());
    set_cookies
        .iter()
        .any(own)
        .then(|| set_cookies.iter().filter(|c| !own(c)).cloned().collect())
}

/// The `Cache-Control` to put on a proxied response the origin marked as storable by shared
/// caches (`public`, `s-maxage` or `max-age`), so none keeps one user's page for another:
/// `private` is added and `public`/`s-maxage` dropped. `None` leaves the response as it is:
/// already `private`/`no-store`, or without explicit freshness. (Cloudflare never stores a
/// Worker's response, and the origin is fetched with `cache: no-store`; re-wrapping every
/// response to add a header would also cost workerd's native body pass-through.)
pub fn response_cache_control(origin: Option<&str>) -> Option<String> {
    let value = origin?;
    let directives: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let name = |d: &str| {
        d.split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    if directives
        .iter()
        .any(|d| matches!(name(d).as_str(), "private" | "no-store"))
    {
        return None;
    }
    let shareable = directives
        .iter()
        .any(|d| matches!(name(d).as_str(), "public" | "s-maxage" | "max-age"));
    if !shareable {
        return None;
    }
    let mut kept: Vec<&str> = directives
        .into_iter()
        .filter(|d| !matches!(name(d).as_str(), "public" | "s-maxage" | "proxy-revalidate"))
        .collect();
    kept.insert(0, "private");
    Some(kept.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;

    fn app(origin: Option<&str>) -> App {
        App {
            host: "photos.example.com".into(),
            origin: origin.map(|o| Origin::of(&Url::parse(o).unwrap())),
            ..Default::default()
        }
    }

    fn head(url: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::of("GET", url, headers)
    }

    fn alice() -> Identity {
        Identity {
            sub: "sub-1".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            name: Some("Alice Ärger".into()),
            preferred_username: Some("alice".into()),
            groups: vec!["family".into(), "admins".into()],
        }
    }

    /// The headers the origin receives: the client's, with `remove` deleted and then
    /// `set` applied, as the edge does with a `Headers` (names case-insensitive; `set`
    /// replaces every value of its name).
    fn upstream(h: &RequestHead, p: &ProxyPlan) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = h
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for name in &p.remove {
            out.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        }
        for (name, value) in &p.set {
            out.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            out.push((name.to_string(), value.clone()));
        }
        out
    }

    fn set<'a>(p: &'a ProxyPlan, name: &str) -> Option<&'a str> {
        p.header(name)
    }

    #[test]
    fn upstream_urls() {
        let u = Url::parse("https://photos.example.com:8443/a/b?x=1&y=%20").unwrap();
        assert_eq!(
            upstream_url(&u, &app(None)),
            "https://photos.example.com:8443/a/b?x=1&y=%20"
        );
        assert_eq!(
            upstream_url(&u, &app(Some("http://127.0.0.1:2283"))),
            "http://127.0.0.1:2283/a/b?x=1&y=%20"
        );
    }

    #[test]
    fn identity_is_injected_and_spoofs_removed() {
        let h = head(
            "https://photos.example.com/x",
            &[
                ("x-auth-request-user", "mallory"),
                ("remote-user", "mallory"),
                ("X_Auth_Request_Email", "mallory@evil"),
                ("x-forwarded-user", "mallory"),
                ("x-forwarded-for", "1.2.3.4"),
                ("cf-connecting-ip", "203.0.113.9"),
                ("accept", "text/html"),
                ("cookie", "app=1; __Host-portcullis-session=secret"),
            ],
        );
        let forward = Forward {
            user: Some("alice".into()),
            ..Forward::default()
        };
        let p = plan(&h, &app(None), Some(&alice()), &forward);
        // Removed, or replaced by Portcullis's own value.
        for spoof in ["X_Auth_Request_Email", "x-forwarded-user"] {
            assert!(p.remove.iter().any(|r| r == spoof), "{spoof} not removed");
        }
        for replaced in [
            "x-auth-request-user",
            "remote-user",
            "x-forwarded-for",
            "cookie",
        ] {
            assert!(set(&p, replaced).is_some(), "{replaced} not set");
            assert!(
                !p.remove.iter().any(|r| r == replaced),
                "{replaced} is set, so not deleted first"
            );
        }
        let sent = upstream(&h, &p);
        assert!(
            sent.iter()
                .all(|(_, v)| !v.contains("mallory") && !v.contains("secret")),
            "{sent:?}"
        );
        assert!(!p.remove.iter().any(|r| r == "accept"));
        assert!(sent.contains(&("accept".into(), "text/html".into())));
        for (name, value) in [
            ("x-auth-request-user", "alice"),
            ("remote-user", "alice"),
            ("x-auth-request-email", "alice@example.com"),
            ("x-auth-request-groups", "family,admins"),
            ("remote-groups", "family,admins"),
            ("x-auth-request-preferred-username", "alice"),
            ("remote-name", "Alice %C3%84rger"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "photos.example.com"),
            ("cookie", "app=1"),
        ] {
            assert_eq!(set(&p, name), Some(value), "{name}");
        }
    }

    #[test]
    fn without_identity_nothing_is_injected_but_spoofs_still_go() {
        let h = head(
            "http://photos.localhost:8787/share/x",
            &[
                ("remote-user", "mallory"),
                ("cookie", "__Host-portcullis-session=s"),
            ],
        );
        let p = plan(&h, &app(None), None, &Forward::default());
        assert!(p.remove.iter().any(|r| r == "remote-user"));
        assert!(p.set.iter().all(|(k, _)| !IDENTITY_HEADERS.contains(k)));
        assert_eq!(
            set(&p, "cookie"),
            None,
            "only Portcullis cookies: no Cookie header upstream"
        );
        assert_eq!(set(&p, "x-forwarded-host"), Some("photos.localhost:8787"));
        assert_eq!(set(&p, "x-forwarded-for"), None);
    }

    #[test]
    fn hostile_claim_values_cannot_break_headers() {
        let mut id = alice();
        id.preferred_username = Some("x\r\nX-Auth-Request-User: admin".into());
        id.groups = vec!["a,b".into(), "c%d".into()];
        let forward = Forward {
            user: id.preferred_username.clone(),
            ..Forward::default()
        };
        let p = plan(
            &head("https://photos.example.com/", &[]),
            &app(None),
            Some(&id),
            &forward,
        );
        let user = set(&p, "x-auth-request-user").unwrap();
        assert_eq!(user, "x%0D%0AX-Auth-Request-User: admin");
        assert_eq!(set(&p, "x-auth-request-groups"), Some("a%2Cb,c%25d"));
    }

    #[test]
    fn consumed_credentials_are_removed_and_the_assertion_added() {
        let h = head(
            "https://photos.example.com/",
            &[
                ("authorization", "Basic abc"),
                ("portcullis-client-id", "id"),
                ("Portcullis-Client-Secret", "s"),
                ("portcullis-assertion", "forged"),
            ],
        );
        let keep = plan(&h, &app(None), None, &Forward::default());
        assert!(
            !keep.remove.iter().any(|r| r == "authorization"),
            "not ours: passes untouched"
        );
        for consumed in [
            "portcullis-client-id",
            "Portcullis-Client-Secret",
            "portcullis-assertion",
        ] {
            assert!(
                keep.remove.iter().any(|r| r == consumed),
                "{consumed} always removed"
            );
        }
        let strip = plan(
            &h,
            &app(None),
            None,
            &Forward {
                strip_authorization: true,
                assertion: Some("jwt".into()),
                user: None,
                credential: None,
            },
        );
        assert!(strip.remove.iter().any(|r| r == "authorization"));
        assert_eq!(set(&strip, ASSERTION_HEADER), Some("jwt"));
    }

    #[test]
    fn cache_control_is_made_private() {
        assert_eq!(
            response_cache_control(None),
            None,
            "nothing shareable to undo"
        );
        assert_eq!(response_cache_control(Some("no-cache")), None);
        assert_eq!(
            response_cache_control(Some("public, max-age=3600, s-maxage=86400")).as_deref(),
            Some("private, max-age=3600")
        );
        assert_eq!(response_cache_control(Some("no-store")), None);
        assert_eq!(response_cache_control(Some("private, max-age=60")), None);
        assert_eq!(
            response_cache_control(Some("max-age=60")).as_deref(),
            Some("private, max-age=60")
        );
    }

    #[test]
    fn every_header_an_origin_might_trust_is_stripped() {
        let spoofs = [
            "X-Original-URL",
            "X-Rewrite-URL",
            "X-Forwarded-Uri",
            "X-Forwarded-Prefix",
            "X-Forwarded-Host",
            "X-WebAuth-User",
            "X-WebAuth-Email",
            "X-WebAuth-Groups",
            "Tailscale-User-Login",
            "Tailscale-User-Name",
            "X-Forwarded-Access-Token",
            "X-Original-URI",
            "X-Forwarded-Method",
            "X-Original-Method",
            "X-Remote-Email",
            "X-Remote-Anything",
            "Remote-Preferred-Username",
            "Remote-Whatever",
            "X-authentik-username",
            "X-Authentik-Groups",
            "Cf-Access-Authenticated-User-Email",
            "Cf-Access-Jwt-Assertion",
            "X-Real-IP",
        ];
        let mut headers: Vec<(String, String)> = Vec::new();
        for name in spoofs {
            headers.push((name.to_string(), "mallory".into()));
            headers.push((name.replace('-', "_"), "mallory".into()));
            // As workerd hands them over: lower-case.
            headers.push((name.to_ascii_lowercase(), "mallory".into()));
        }
        headers.push(("cf-connecting-ip".into(), "203.0.113.9".into()));
        headers.push(("x-remotely-harmless".into(), "kept".into()));
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let h = head("https://photos.example.com:8443/x", &refs);
        let p = plan(&h, &app(None), None, &Forward::default());
        for (name, _) in &headers[..headers.len() - 2] {
            let replaced = p.set.iter().any(|(s, _)| s == name);
            assert!(
                p.remove.contains(name) || replaced,
                "{name} must be stripped"
            );
        }
        let sent = upstream(&h, &p);
        assert!(sent.iter().all(|(_, v)| v != "mallory"), "{sent:?}");
        assert!(!p.remove.iter().any(|r| r == "x-remotely-harmless"));
        assert_eq!(set(&p, "x-real-ip"), Some("203.0.113.9"));
        assert_eq!(set(&p, "x-forwarded-host"), Some("photos.example.com:8443"));
    }

    #[test]
    fn only_verified_emails_and_never_reserved_names_reach_the_app() {
        let h = head("https://photos.example.com/x", &[]);
        let mut person = alice();
        person.email_verified = false;
        person.preferred_username = Some("service:backup".into());
        let forward = Forward {
            user: Some("sub-1".into()),
            ..Forward::default()
        };
        let p = plan(&h, &app(None), Some(&person), &forward);
        assert_eq!(set(&p, "x-auth-request-email"), None);
        assert_eq!(set(&p, "remote-email"), None);
        assert_eq!(set(&p, "x-auth-request-preferred-username"), None);
        assert_eq!(set(&p, "x-auth-request-user"), Some("sub-1"));
    }

    #[test]
    fn an_origin_cannot_set_portcullis_cookies() {
        let from_origin =
            |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            without_own_cookies(&from_origin(&[
                "a=1; Path=/",
                "__Host-portcullis-session=evil; Path=/; Secure",
                " __secure-PORTCULLIS-session=x; Domain=example.com",
            ])),
            Some(vec!["a=1; Path=/".to_string()])
        );
        assert_eq!(
            without_own_cookies(&from_origin(&["a=1", "portcullis=ok"])),
            None
        );
    }

    /// The byte-wise checks on the hot path mean exactly their plain definitions.
    mod same_as_plain_definitions {
        use super::super::*;
        use proptest::prelude::*;

        fn stripped_plainly(name: &str) -> bool {
            let name = name.to_ascii_lowercase().replace('_', "-");
            IDENTITY_HEADERS.contains(&name.as_str())
                || STRIPPED_HEADERS.contains(&name.as_str())
                || STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
        }

        fn listed_name() -> impl Strategy<Value = String> {
            let listed: Vec<&str> = IDENTITY_HEADERS
                .iter()
                .chain(&STRIPPED_HEADERS)
                .chain(&STRIPPED_PREFIXES)
                .copied()
                .collect();
            (
                prop::sample::select(listed),
                "[a-zA-Z_-]{0,3}",
                any::<bool>(),
            )
                .prop_map(|(name, tail, cut)| {
                    // Near misses too: one character short, or something appended.
                    let name = if cut { &name[..name.len() - 1] } else { name };
                    let mixed: String = name
                        .chars()
                        .enumerate()
                        .map(|(i, c)| match (c, i % 3) {
                            ('-', 0) => '_',
                            (c, 1) => c.to_ascii_uppercase(),
                            (c, _) => c,
                        })
                        .collect();
                    format!("{mixed}{tail}")
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            #[test]
            fn is_stripped_as_defined(name in prop_oneof![listed_name(), "[a-zA-Z_-]{0,30}"]) {
                prop_assert_eq!(is_stripped(&name), stripped_plainly(&name));
            }

            #[test]
            fn groups_encode_as_defined(groups in prop::collection::vec("[a-zA-Z\u{e9}\u{20ac},% \t\x7f]{0,12}", 0..5)) {
                let plain = groups
                    .iter()
                    .map(|g| header_value(g).replace(',', "%2C"))
                    .collect::<Vec<_>>()
                    .join(",");
                prop_assert_eq!(groups_value(&groups), plain);
            }

            #[test]
            fn header_values_encode_as_defined(text in "\\PC{0,40}") {
                let plain: String = text
                    .bytes()
                    .map(|b| if (0x20..0x7f).contains(&b) && b != b'%' {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    })
                    .collect();
                prop_assert_eq!(header_value(&text), plain);
            }

            #[test]
            fn own_cookie_names_as_defined(name in prop_oneof![
                "(__|_)?(host|Host|HOST|secure|Secure)-?[pP]ortcullis[a-z-]{0,8}",
                "[ -~]{0,24}",
            ]) {
                let lower = name.trim().to_ascii_lowercase();
                let plainly = ["__host-portcullis", "__secure-portcullis"]
                    .iter()
                    .any(|p| lower.starts_with(p));
                prop_assert_eq!(cookies::is_own(&name), plainly);
            }
        }
    }
}
