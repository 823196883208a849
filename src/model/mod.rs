//! The configured model: what the owner configured, as typed values. `config/` parses and
//! validates `PORTCULLIS` and the secrets into these; everything else only reads them.

mod app;

use url::Url;

use crate::assertion::AssertionKey;
use crate::secret::{AdminToken, ClientSecret, SigningKeys};
pub use app::{
    classify, is_service_name, AllowRules, App, Origin, PathClass, ServiceToken, UserClaim,
    WebSockets, SERVICE_PREFIX,
};

/// The validated configuration: the settings from `wrangler.toml` and the secrets.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub secrets: Secrets,
}

/// Everything but the secrets (which `scripts/check-config` may not have).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier exactly as configured (and as tokens' `iss` must be).
    pub issuer: String,
    pub discovery_url: Url,
    pub client_id: String,
    /// Audiences besides `client_id` an ID token may also name (`id_token_audiences`).
    pub id_token_audiences: Vec<String>,
    pub scopes: Scopes,
    pub session_lifetime: u64,
    pub session_cache: u64,
    /// With `PEOPLE` bound: how long an isolate serves a session or app password before it
    /// asks the person's object again whether it is still live (`revocation_check`).
    pub revocation_check: u64,
    /// Re-validate sessions against the issuer (refresh token) this often; `None`: never.
    pub revalidate_every: Option<u64>,
    pub groups_claim: String,
    pub cookie_domain: Option<String>,
    pub auth_host: Option<String>,
    pub apps: Vec<App>,
    pub service_tokens: Vec<ServiceToken>,
    /// The longest lifetime a person may give an app password (`app_password_lifetime`).
    pub app_password_lifetime: u64,
    /// App passwords per person (`max_app_passwords`).
    pub max_app_passwords: usize,
    /// Members of any of these groups may open the admin console (`admin_groups`); empty:
    /// there is no console.
    pub admin_groups: Vec<String>,
}

/// The secrets (`wrangler secret put`).
#[derive(Debug, Clone)]
pub struct Secrets {
    /// `None`: a public client that authenticates with PKCE alone.
    pub client_secret: Option<ClientSecret>,
    pub signing_keys: SigningKeys,
    /// Signs `Portcullis-Assertion`; `None`: no assertion header is sent.
    pub assertion_key: Option<AssertionKey>,
    /// Enables the admin API; `None`: it answers 404.
    pub admin_token: Option<AdminToken>,
}

impl Settings {
    /// The app served on `host` (any port).
    pub fn app(&self, host: &str) -> Option<&App> {
        self.apps.iter().find(|app| app.host == host)
    }

    /// Whether this identity may open the admin console.
    pub fn is_admin(&self, identity: &crate::identity::Identity) -> bool {
        identity
            .groups
            .iter()
            .any(|g| self.admin_groups.contains(g))
    }

    /// Hosts on which Portcullis's own endpoints answer.
    pub fn serves_host(&self, host: &str) -> bool {
        self.app(host).is_some() || self.auth_host.as_deref() == Some(host)
    }
}

/// The scopes a login asks for; either way the list begins with `openid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    /// `scopes` was configured: sent as it is.
    Configured(Vec<String>),
    /// Not configured: the defaults, each sent only to an issuer that lists it (or lists
    /// no scopes).
    Defaults(Vec<String>),
}

impl Scopes {
    pub fn all(&self) -> &[String] {
        match self {
            Scopes::Configured(list) | Scopes::Defaults(list) => list,
        }
    }

    pub fn is_configured(&self) -> bool {
        matches!(self, Scopes::Configured(_))
    }
}
