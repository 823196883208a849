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

impl Endpoint {
    /// Endpoints for programs rather than people: errors are answered in JSON.
    pub fn is_api(self) -> bool {
        matches!(
            self,
            Endpoint::AdminSessions
                | Endpoint::AdminAppPasswords
                | Endpoint::AdminRevoke
                | Endpoint::BackchannelLogout
                | Endpoint::Me
                | Endpoint::Jwks
        )
    }

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Login => "/.portcullis/login",
            Endpoint::Callback => "/.portcullis/callback",
            Endpoint::Logout => "/.portcullis/logout",
            Endpoint::SignedOut => "/.portcullis/signed-out",
            Endpoint::Me => "/.portcullis/me",
            Endpoint::Jwks => "/.portcullis/jwks.json",
            Endpoint::Account => "/.portcullis/account",
            Endpoint::Sessions => "/.portcullis/sessions",
            Endpoint::AppPasswords => "/.portcullis/app-passwords",
            Endpoint::AppPasswordsRevoke => "/.portcullis/app-passwords/revoke",
            Endpoint::AdminAppPasswords => "/.portcullis/admin/app-passwords",
            Endpoint::AdminSessions => "/.portcullis/admin/sessions",
            Endpoint::AdminRevoke => "/.portcullis/admin/revoke",
            Endpoint::BackchannelLogout => "/.portcullis/backchannel-logout",
            Endpoint::Unknown => PREFIX,
        }
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

pub fn route<'c>(settings: &'c Settings, head: &RequestHead) -> Route<'c> {
    let host = head.host();
    if !settings.serves_host(host) {
        return Route::UnknownHost;
    }
    let path = head.url.path();
    if path == PREFIX.trim_end_matches('/') || path.starts_with(PREFIX) {
        let endpoint = match &path[PREFIX.len().min(path.len())..] {
            "login" => Endpoint::Login,
            "callback" => Endpoint::Callback,
            "logout" => Endpoint::Logout,
            "signed-out" => Endpoint::SignedOut,
            "me" => Endpoint::Me,
            "jwks.json" => Endpoint::Jwks,
            "account" => Endpoint::Account,
            "sessions" => Endpoint::Sessions,
            "app-passwords" => Endpoint::AppPasswords,
            "app-passwords/revoke" => Endpoint::AppPasswordsRevoke,
            "admin/app-passwords" => Endpoint::AdminAppPasswords,
            "admin/sessions" => Endpoint::AdminSessions,
            "admin/revoke" => Endpoint::AdminRevoke,
            "backchannel-logout" => Endpoint::BackchannelLogout,
            _ => Endpoint::Unknown,
        };
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
    fn routes() {
        let c = config();
        let r = |u| route(&c.settings, &at(u));
        assert_eq!(
            r("https://photos.example.com/.portcullis/login"),
            Route::Endpoint(Endpoint::Login)
        );
        assert_eq!(
            r("https://photos.example.com:8787/.portcullis/callback?code=x"),
            Route::Endpoint(Endpoint::Callback)
        );
        assert_eq!(
            r("https://photos.example.com/.portcullis/me"),
            Route::Endpoint(Endpoint::Me)
        );
        assert_eq!(
            r("https://photos.example.com/.portcullis/logout"),
            Route::Endpoint(Endpoint::Logout)
        );
        assert_eq!(
            r("https://photos.example.com/.portcullis/nope"),
            Route::Endpoint(Endpoint::Unknown)
        );
        assert_eq!(
            r("https://photos.example.com/.portcullis/me/x"),
            Route::Endpoint(Endpoint::Unknown)
        );
        assert_eq!(
            r("https://photos.example.com/.portcullis"),
            Route::Endpoint(Endpoint::Unknown)
        );
        // Dot segments are resolved by the URL parser before routing, as for forwarding.
        assert_eq!(
            r("https://photos.example.com/x/../.portcullis/me"),
            Route::Endpoint(Endpoint::Me)
        );
        assert_eq!(
            r("https://photos.example.com/x/%2e%2e/.portcullis/me"),
            Route::Endpoint(Endpoint::Me)
        );
        assert!(
            matches!(r("https://photos.example.com/"), Route::App(a) if a.host == "photos.example.com")
        );
        assert!(matches!(
            r("https://PHOTOS.example.com/.portcullisX"),
            Route::App(_)
        ));
        assert_eq!(
            r("https://auth.example.com/.portcullis/callback"),
            Route::Endpoint(Endpoint::Callback)
        );
        assert_eq!(r("https://auth.example.com/"), Route::UnknownHost);
        assert_eq!(
            r("https://other.example.com/.portcullis/login"),
            Route::UnknownHost
        );
        assert_eq!(r("https://example.com/"), Route::UnknownHost);
    }
}
