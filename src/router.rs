//! What is this request? One of Portcullis's own endpoints, a request for a protected app,
//! or a host that is not configured (which is never proxied).

use crate::model::{App, Settings};
use crate::request::RequestHead;

/// Every path below this belongs to Portcullis on every host it serves.
pub const PREFIX: &str = "/.portcullis/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Callback,
    Logout,
    SignedOut,
    Me,
    /// The public keys of `Portcullis-Assertion`.
    Jwks,
    /// The person's page: their sessions and app passwords (GET: page or JSON).
    Account,
    /// The former sessions page (GET: redirect to the account page, POST: sign out some).
    Sessions,
    /// Create an app password (POST).
    AppPasswords,
    /// Revoke one of the person's app passwords (POST).
    AppPasswordsRevoke,
    /// The admin console, for members of `admin_groups` (GET: page or JSON; POST: an
    /// action, confirmed first).
    Console,
    /// Admin API: list app passwords.
    AdminAppPasswords,
    /// Admin API: list sessions.
    AdminSessions,
    /// Admin API: revoke sessions.
    AdminRevoke,
    /// OpenID Connect Back-Channel Logout.
    BackchannelLogout,
    /// Under the prefix but not an endpoint: 404, never proxied.
    Unknown,
}

/// How an endpoint may be called. `HEAD` is answered as `GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// The method of a request, if it is one an endpoint can take.
    pub fn of(method: &str) -> Option<Self> {
        match method {
            "GET" | "HEAD" => Some(Method::Get),
            "POST" => Some(Method::Post),
            _ => None,
        }
    }
}

/// What an endpoint answers, its errors included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// Pages for people (or JSON when the client asks for it).
    Html,
    /// JSON, for programs.
    Json,
}

/// Which hosts serve an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// Every host Portcullis serves: each app's, and the auth host.
    Every,
    /// Self-service: only the auth host when one is set (an app host answers a GET with a
    /// redirect there and anything else with 404), so no app's scripts share its origin;
    /// every host without one.
    AuthHost,
}

/// One endpoint's facts.
#[derive(Debug)]
pub struct Spec {
    pub endpoint: Endpoint,
    /// Its path, under [`PREFIX`].
    pub path: &'static str,
    pub methods: &'static [Method],
    /// Whether a `POST` to it carries a body the edge must read (a form, JSON, a token).
    pub body: bool,
    pub answers: Answers,
    pub hosts: Hosts,
}

const fn spec(
    endpoint: Endpoint,
    path: &'static str,
    methods: &'static [Method],
    body: bool,
    answers: Answers,
) -> Spec {
    Spec {
        endpoint,
        path,
        methods,
        body,
        answers,
        hosts: Hosts::Every,
    }
}

/// [`spec`] of a self-service endpoint ([`Hosts::AuthHost`]).
const fn self_service(
    endpoint: Endpoint,
    path: &'static str,
    methods: &'static [Method],
    body: bool,
) -> Spec {
    Spec {
        hosts: Hosts::AuthHost,
        ..spec(endpoint, path, methods, body, Html)
    }
}

use Answers::{Html, Json};
use Method::{Get, Post};

/// Every endpoint of Portcullis, in one table.
pub const ENDPOINTS: [Spec; 15] = [
    spec(Endpoint::Login, "/.portcullis/login", &[Get], false, Html),
    spec(
        Endpoint::Callback,
        "/.portcullis/callback",
        &[Get],
        false,
        Html,
    ),
    spec(
        Endpoint::Logout,
        "/.portcullis/logout",
        &[Get, Post],
        true,
        Html,
    ),
    spec(
        Endpoint::SignedOut,
        "/.portcullis/signed-out",
        &[Get],
        false,
        Html,
    ),
    spec(Endpoint::Me, "/.portcullis/me", &[Get], false, Json),
    spec(
        Endpoint::Jwks,
        "/.portcullis/jwks.json",
        &[Get],
        false,
        Json,
    ),
    self_service(Endpoint::Account, "/.portcullis/account", &[Get], false),
    self_service(
        Endpoint::Sessions,
        "/.portcullis/sessions",
        &[Get, Post],
        true,
    ),
    self_service(
        Endpoint::AppPasswords,
        "/.portcullis/app-passwords",
        &[Post],
        true,
    ),
    self_service(
        Endpoint::AppPasswordsRevoke,
        "/.portcullis/app-passwords/revoke",
        &[Post],
        true,
    ),
    self_service(Endpoint::Console, "/.portcullis/admin", &[Get, Post], true),
    spec(
        Endpoint::AdminAppPasswords,
        "/.portcullis/admin/app-passwords",
        &[Get],
        false,
        Json,
    ),
    spec(
        Endpoint::AdminSessions,
        "/.portcullis/admin/sessions",
        &[Get],
        false,
        Json,
    ),
    spec(
        Endpoint::AdminRevoke,
        "/.portcullis/admin/revoke",
        &[Post],
        true,
        Json,
    ),
    spec(
        Endpoint::BackchannelLogout,
        "/.portcullis/backchannel-logout",
        &[Post],
        true,
        Json,
    ),
];

/// What a path under [`PREFIX`] that names no endpoint is: 404 for any method.
const UNKNOWN: Spec = Spec {
    endpoint: Endpoint::Unknown,
    path: PREFIX,
    methods: &[],
    body: false,
    answers: Html,
    hosts: Hosts::Every,
};

impl Endpoint {
    /// Its row of [`ENDPOINTS`].
    pub fn spec(self) -> &'static Spec {
        ENDPOINTS
            .iter()
            .find(|s| s.endpoint == self)
            .unwrap_or(&UNKNOWN)
    }

    /// Endpoints for programs rather than people: errors are answered in JSON.
    pub fn is_api(self) -> bool {
        self.spec().answers == Json
    }

    /// The method, if this endpoint takes it.
    pub fn takes(self, method: &str) -> Option<Method> {
        Method::of(method).filter(|m| self.spec().methods.contains(m))
    }

    /// Whether the edge reads the body of a request to it with this method.
    pub fn reads_body(self, method: &str) -> bool {
        self.spec().body && self.takes(method) == Some(Post)
    }

    pub fn path(self) -> &'static str {
        self.spec().path
    }

    /// Where this endpoint is served instead of the request's host: the auth host, for a
    /// self-service endpoint asked on another host.
    pub fn served_elsewhere<'s>(self, settings: &'s Settings, host: &str) -> Option<&'s str> {
        let auth = settings.auth_host.as_deref()?;
        (self.spec().hosts == Hosts::AuthHost && auth != host).then_some(auth)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'c> {
    Endpoint(Endpoint),
    /// A protected app (any path outside the prefix).
    App(&'c App),
    /// A host Portcullis was not configured for: fail closed.
    UnknownHost,
}

impl Route<'_> {
    /// Whether errors on this route are answered in JSON whatever the client accepts.
    pub fn is_api(&self) -> bool {
        matches!(self, Route::Endpoint(e) if e.is_api())
    }
}

pub fn route<'c>(settings: &'c Settings, head: &RequestHead) -> Route<'c> {
    let host = head.host();
    if !settings.serves_host(host) {
        return Route::UnknownHost;
    }
    let path = head.url.path();
    if path == PREFIX.trim_end_matches('/') || path.starts_with(PREFIX) {
        let endpoint = ENDPOINTS
            .iter()
            .find(|s| s.path == path)
            .map_or(Endpoint::Unknown, |s| s.endpoint);
        return Route::Endpoint(endpoint);
    }
    match settings.app(host) {
        Some(app) => Route::App(app),
        // The auth host serves only Portcullis's endpoints.
        None => Route::UnknownHost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inputs;
    use crate::model::Config;
    use url::Url;

    fn config() -> Config {
        Config::from_inputs(&Inputs {
            portcullis: Some(serde_json::json!({
                "issuer": "https://id.example.com",
                "client_id": "c",
                "cookie_domain": "example.com",
                "auth_host": "auth.example.com",
                "apps": [{ "host": "photos.example.com" }]
            })),
            oidc_client_secret: None,
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap()
    }

    fn at(url: &str) -> RequestHead {
        RequestHead::new("GET", Url::parse(url).unwrap(), vec![])
    }

    #[test]
    fn the_table_names_each_endpoint_once_under_the_prefix() {
        for (i, row) in ENDPOINTS.iter().enumerate() {
            assert!(row.path.starts_with(PREFIX), "{row:?}");
            assert!(!row.methods.is_empty(), "{row:?}");
            assert_eq!(row.endpoint.spec().path, row.path);
            for other in &ENDPOINTS[i + 1..] {
                assert!(other.endpoint != row.endpoint && other.path != row.path);
            }
            // A body is read only for a POST.
            assert!(!row.body || row.methods.contains(&Method::Post), "{row:?}");
        }
        assert!(Endpoint::Logout.reads_body("POST"));
        assert!(!Endpoint::Logout.reads_body("GET"));
        assert!(!Endpoint::Me.reads_body("POST"), "not a method it takes");
        assert_eq!(Endpoint::Me.takes("HEAD"), Some(Method::Get));
        assert_eq!(Endpoint::Me.takes("PUT"), None);
        assert_eq!(Endpoint::Unknown.takes("GET"), None);
        assert_eq!(Endpoint::Unknown.path(), PREFIX);
    }

    #[test]
    fn routes() {
        let c = config();
        let r = |u| route(&c.settings, &at(u));
        use Endpoint::{Callback, Login, Logout, Me, Unknown};
        let endpoints = [
            ("https://photos.example.com/.portcullis/login", Login),
            (
                "https://photos.example.com:8787/.portcullis/callback?code=x",
                Callback,
            ),
            ("https://photos.example.com/.portcullis/me", Me),
            ("https://photos.example.com/.portcullis/logout", Logout),
            ("https://photos.example.com/.portcullis/nope", Unknown),
            ("https://photos.example.com/.portcullis/me/x", Unknown),
            ("https://photos.example.com/.portcullis", Unknown),
            // Dot segments are resolved by the URL parser before routing, as for forwarding.
            ("https://photos.example.com/x/../.portcullis/me", Me),
            ("https://photos.example.com/x/%2e%2e/.portcullis/me", Me),
            ("https://auth.example.com/.portcullis/callback", Callback),
        ];
        for (url, endpoint) in endpoints {
            assert_eq!(r(url), Route::Endpoint(endpoint), "{url}");
        }
        assert!(
            matches!(r("https://photos.example.com/"), Route::App(a) if a.host == "photos.example.com")
        );
        assert!(matches!(
            r("https://PHOTOS.example.com/.portcullisX"),
            Route::App(_)
        ));
        for url in [
            "https://auth.example.com/",
            "https://other.example.com/.portcullis/login",
            "https://example.com/",
        ] {
            assert_eq!(r(url), Route::UnknownHost, "{url}");
        }
    }
}
