//! Configuration: the `PORTCULLIS` variable from `wrangler.toml` plus the secrets, parsed
//! once per isolate into typed values. Every problem is reported with the key it concerns
//! and how to fix it; all problems are collected, not just the first.

mod duration;
mod names;

use std::fmt;

use serde::Deserialize;
use url::Url;

use crate::assertion::AssertionKey;
use crate::path::PathPattern;
use crate::policy::Access;
use crate::secret::{Secret, SigningKeys};
use crate::service::ServiceToken;
pub use duration::{format_duration, parse_duration};
pub use names::{is_loopback, is_within};

/// Shortest session lifetime accepted: Workers KV refuses an `expirationTtl` under 60 s,
/// and a session that short would only produce login loops.
const MIN_SESSION_LIFETIME: u64 = 5 * 60;
/// Browsers cap cookie lifetimes at 400 days.
const MAX_SESSION_LIFETIME: u64 = 400 * 86_400;
/// Shortest `revalidate_every`: more often would spend the issuer's and KV's budgets.
const MIN_REVALIDATE: u64 = 30;
/// Longest in-isolate trust of a session read from KV (it bounds revocation latency).
const MAX_SESSION_CACHE: u64 = 5 * 60;
/// Each `SESSION_SECRET` key must carry at least 256 bits.
const MIN_SECRET_BYTES: usize = 32;
/// `ADMIN_TOKEN` guards revocation of every session: no short ones.
const MIN_ADMIN_TOKEN: usize = 32;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier exactly as configured (and as the ID token's `iss` must be).
    pub issuer: String,
    pub discovery_url: Url,
    pub client_id: String,
    /// `None`: a public client that authenticates with PKCE alone.
    pub client_secret: Option<Secret>,
    /// Always begins with `openid`.
    pub scopes: Vec<String>,
    pub session_lifetime: u64,
    pub session_cache: u64,
    /// Re-validate sessions against the issuer (refresh token) this often; `None`: never.
    pub revalidate_every: Option<u64>,
    pub groups_claim: String,
    pub cookie_domain: Option<String>,
    pub auth_host: Option<String>,
    pub apps: Vec<App>,
    pub service_tokens: Vec<ServiceToken>,
    pub signing_keys: SigningKeys,
    /// Signs `Portcullis-Assertion`; `None`: no assertion header is sent.
    pub assertion_key: Option<AssertionKey>,
    /// Enables the admin API; `None`: it answers 404.
    pub admin_token: Option<Secret>,
}

/// One protected application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct App {
    /// Lower-case host name, without port.
    pub host: String,
    /// Where requests go; `None` fetches the request's own URL (the zone's origin).
    pub origin: Option<Url>,
    /// Who may use it (`allow_groups`, `allow_emails`, `allow_email_domains`).
    pub access: Access,
    /// Paths served without authentication.
    pub public_paths: Vec<PathPattern>,
    /// Paths that are never answered with a login redirect.
    pub api_paths: Vec<PathPattern>,
    /// Names of the service tokens valid here.
    pub service_tokens: Vec<String>,
    /// Accept `Authorization: Bearer` JWTs from the issuer.
    pub accept_bearer: bool,
    /// Audiences accepted in bearer tokens besides `client_id`.
    pub bearer_audiences: Vec<String>,
}

impl Config {
    /// The app served on `host` (any port).
    pub fn app(&self, host: &str) -> Option<&App> {
        self.apps.iter().find(|app| app.host == host)
    }

    /// Hosts on which Portcullis's own endpoints answer.
    pub fn serves_host(&self, host: &str) -> bool {
        self.app(host).is_some() || self.auth_host.as_deref() == Some(host)
    }
}

/// What the configuration is read from.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// `PORTCULLIS`: a JSON object (a `[vars.PORTCULLIS]` table), or a string holding one.
    pub portcullis: Option<serde_json::Value>,
    pub oidc_client_secret: Option<String>,
    pub session_secret: Option<String>,
    pub assertion_key: Option<String>,
    pub admin_token: Option<String>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// Every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.into(),
            problem: problem.into(),
        });
    }
}

/// The non-secret settings, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    issuer: Option<String>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    session_lifetime: Option<String>,
    session_cache: Option<String>,
    revalidate_every: Option<String>,
    groups_claim: Option<String>,
    cookie_domain: Option<String>,
    auth_host: Option<String>,
    apps: Option<Vec<RawApp>>,
    service_tokens: Option<Vec<RawServiceToken>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    host: Option<String>,
    origin: Option<String>,
    allow_groups: Option<Vec<String>>,
    allow_emails: Option<Vec<String>>,
    allow_email_domains: Option<Vec<String>>,
    public_paths: Option<Vec<String>>,
    api_paths: Option<Vec<String>>,
    service_tokens: Option<Vec<String>>,
    accept_bearer: Option<bool>,
    bearer_audiences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceToken {
    name: Option<String>,
    client_id: Option<String>,
    secret_sha256: Option<String>,
}

/// The settings part of [`Config`]: everything but the secrets, which `check-config` may
/// not have.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub discovery_url: Url,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub session_lifetime: u64,
    pub session_cache: u64,
    /// Re-validate sessions against the issuer (refresh token) this often; `None`: never.
    pub revalidate_every: Option<u64>,
    pub groups_claim: String,
    pub cookie_domain: Option<String>,
    pub auth_host: Option<String>,
    pub apps: Vec<App>,
    pub service_tokens: Vec<ServiceToken>,
}

/// The secrets part of [`Config`].
#[derive(Debug, Clone)]
pub struct Secrets {
    pub client_secret: Option<Secret>,
    pub signing_keys: SigningKeys,
    pub assertion_key: Option<AssertionKey>,
    pub admin_token: Option<Secret>,
}

impl Config {
    /// Parses and validates everything; the errors name every problem found.
    pub fn from_inputs(inputs: &Inputs) -> Result<Config, ConfigErrors> {
        let settings = Settings::parse(inputs.portcullis.as_ref());
        let secrets = Secrets::parse(inputs);
        match (settings, secrets) {
            (Ok(s), Ok(k)) => Ok(Config {
                issuer: s.issuer,
                discovery_url: s.discovery_url,
                client_id: s.client_id,
                client_secret: k.client_secret,
                scopes: s.scopes,
                session_lifetime: s.session_lifetime,
                session_cache: s.session_cache,
                revalidate_every: s.revalidate_every,
                groups_claim: s.groups_claim,
                cookie_domain: s.cookie_domain,
                auth_host: s.auth_host,
                apps: s.apps,
                service_tokens: s.service_tokens,
                signing_keys: k.signing_keys,
                assertion_key: k.assertion_key,
                admin_token: k.admin_token,
            }),
            (s, k) => {
                let mut all = s.err().map(|e| e.0).unwrap_or_default();
                all.extend(k.err().map(|e| e.0).unwrap_or_default());
                Err(ConfigErrors(all))
            }
        }
    }
}

impl Settings {
    pub fn parse(value: Option<&serde_json::Value>) -> Result<Settings, ConfigErrors> {
        let mut p = Problems::default();
        let raw = match value {
            None => {
                p.add(
                    "PORTCULLIS",
                    "is not set; add a [vars.PORTCULLIS] table to wrangler.toml (see the README)",
                );
                return Err(ConfigErrors(p.0));
            }
            Some(serde_json::Value::String(text)) => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize::<_, RawSettings>(&mut de)
                    .map_err(|e| path_error(&e))
            }
            Some(value) => serde_path_to_error::deserialize::<_, RawSettings>(value.clone())
                .map_err(|e| path_error(&e)),
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                p.0.push(e);
                return Err(ConfigErrors(p.0));
            }
        };
        let settings = validate(raw, &mut p);
        match settings {
            Some(s) if p.0.is_empty() => Ok(s),
            _ => Err(ConfigErrors(p.0)),
        }
    }
}

fn path_error<E: fmt::Display>(e: &serde_path_to_error::Error<E>) -> ConfigError {
    let path = e.path().to_string();
    let key = if path == "." || path.is_empty() {
        "PORTCULLIS".to_string()
    } else {
        format!("PORTCULLIS.{path}")
    };
    let inner = e.inner().to_string();
    let problem = if inner.starts_with("unknown field") {
        format!("{inner}; remove it or fix its spelling")
    } else {
        inner
    };
    ConfigError { key, problem }
}

fn required<'a>(
    p: &mut Problems,
    value: &'a Option<String>,
    key: &str,
    example: &str,
) -> Option<&'a str> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            p.add(
                format!("PORTCULLIS.{key}"),
                format!("is required; e.g. {key} = {example}"),
            );
            None
        }
    }
}

fn validate(raw: RawSettings, p: &mut Problems) -> Option<Settings> {
    let issuer =
        required(p, &raw.issuer, "issuer", "\"https://id.example.com\"").and_then(|text| {
            match names::web_url(text, "https://id.example.com") {
                Ok(_) => Some(text.to_string()),
                Err(e) => {
                    p.add("PORTCULLIS.issuer", e);
                    None
                }
            }
        });
    let discovery_url = issuer.as_deref().and_then(|issuer| {
        // OpenID Connect Discovery §4: append to the issuer, keeping any path it has.
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        Url::parse(&url).ok()
    });
    let client_id = required(p, &raw.client_id, "client_id", "\"portcullis\"").map(str::to_string);

    let mut scopes = vec!["openid".to_string()];
    let given = raw
        .scopes
        .unwrap_or_else(|| ["profile", "email", "groups"].map(String::from).to_vec());
    for (i, scope) in given.iter().enumerate() {
        if scope.is_empty()
            || scope
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            p.add(
                format!("PORTCULLIS.scopes[{i}]"),
                format!("\"{scope}\" is not a scope; write one scope per string, e.g. [\"openid\", \"email\"]"),
            );
        } else if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }

    let session_lifetime = duration_setting(
        p,
        raw.session_lifetime.as_deref(),
        "session_lifetime",
        7 * 86_400,
        MIN_SESSION_LIFETIME,
        MAX_SESSION_LIFETIME,
    );
    let session_cache = duration_setting(
        p,
        raw.session_cache.as_deref(),
        "session_cache",
        30,
        0,
        MAX_SESSION_CACHE,
    );

    // Re-validation uses refresh tokens, which issuers give with offline_access.
    let revalidate_every = raw.revalidate_every.as_deref().and_then(|text| {
        duration_setting(
            p,
            Some(text),
            "revalidate_every",
            0,
            MIN_REVALIDATE,
            MAX_SESSION_LIFETIME,
        )
    });
    if revalidate_every.is_some() && !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }

    let groups_claim = raw.groups_claim.unwrap_or_else(|| "groups".into());
    if groups_claim.trim().is_empty() {
        p.add(
            "PORTCULLIS.groups_claim",
            "is empty; name the ID-token claim that lists groups, e.g. \"groups\"",
        );
    }

    let cookie_domain = raw.cookie_domain.as_deref().and_then(|d| {
        if d.starts_with('.') {
            p.add(
                "PORTCULLIS.cookie_domain",
                format!(
                    "\"{d}\" starts with a dot; write \"{}\"",
                    d.trim_start_matches('.')
                ),
            );
            return None;
        }
        names::host_name(d)
            .map_err(|e| p.add("PORTCULLIS.cookie_domain", e))
            .ok()
    });

    let auth_host = raw.auth_host.as_deref().and_then(|h| {
        let host = names::host_name(h)
            .map_err(|e| p.add("PORTCULLIS.auth_host", e))
            .ok()?;
        match &cookie_domain {
            None => {
                if raw.cookie_domain.is_none() {
                    p.add(
                        "PORTCULLIS.auth_host",
                        "needs cookie_domain: the session made on the auth host must be shared \
                         with the apps; set cookie_domain = \"example.com\" or remove auth_host",
                    );
                }
                None
            }
            Some(domain) if !names::is_within(&host, domain) => {
                p.add(
                    "PORTCULLIS.auth_host",
                    format!(
                        "{host} is not within cookie_domain {domain}; use a host under {domain}"
                    ),
                );
                None
            }
            Some(_) => Some(host),
        }
    });

    let service_tokens = validate_service_tokens(p, raw.service_tokens.unwrap_or_default());
    let mut apps: Vec<App> = Vec::new();
    match raw.apps {
        None => p.add(
            "PORTCULLIS.apps",
            "is required: add at least one [[vars.PORTCULLIS.apps]] with host = \"photos.example.com\"",
        ),
        Some(list) if list.is_empty() => p.add(
            "PORTCULLIS.apps",
            "is empty: add at least one [[vars.PORTCULLIS.apps]] with host = \"photos.example.com\"",
        ),
        Some(list) => {
            for (i, app) in list.into_iter().enumerate() {
                if let Some(app) = validate_app(p, i, app, cookie_domain.as_deref(), &apps, &service_tokens) {
                    apps.push(app);
                }
            }
        }
    }

    Some(Settings {
        issuer: issuer?,
        discovery_url: discovery_url?,
        client_id: client_id?,
        scopes,
        session_lifetime: session_lifetime?,
        session_cache: session_cache?,
        revalidate_every,
        groups_claim,
        cookie_domain,
        auth_host,
        apps,
        service_tokens,
    })
}

fn validate_service_tokens(p: &mut Problems, raw: Vec<RawServiceToken>) -> Vec<ServiceToken> {
    let mut tokens: Vec<ServiceToken> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("PORTCULLIS.service_tokens[{i}].{field}");
        let generate = "generate one with `scripts/service-token <name>`";
        let name = t.name.unwrap_or_default();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            p.add(key("name"), format!("\"{name}\" is not a token name; use letters, digits, -, _ or . (e.g. \"immich-mobile\")"));
            continue;
        }
        if tokens.iter().any(|x| x.name == name) {
            p.add(
                key("name"),
                format!("\"{name}\" is defined twice; names must be unique"),
            );
            continue;
        }
        let client_id = t.client_id.unwrap_or_default();
        if client_id.is_empty()
            || client_id.contains(':')
            || client_id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            p.add(
                key("client_id"),
                format!("must be a non-empty ID without spaces or ':'; {generate}"),
            );
            continue;
        }
        if tokens.iter().any(|x| x.client_id == client_id) {
            p.add(
                key("client_id"),
                "is used by another token; client IDs must be unique",
            );
            continue;
        }
        let hash = t.secret_sha256.unwrap_or_default();
        let Some(secret_sha256) = parse_sha256_hex(&hash) else {
            p.add(
                key("secret_sha256"),
                format!("must be the 64 hex digits of the secret's SHA-256 (never the secret itself); {generate}"),
            );
            continue;
        };
        tokens.push(ServiceToken {
            name,
            client_id,
            secret_sha256,
        });
    }
    tokens
}

fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

fn non_empty_list(
    p: &mut Problems,
    key: &str,
    list: Option<Vec<String>>,
    example: &str,
) -> Vec<String> {
    let list = list.unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let item = item.trim().to_string();
        if item.is_empty() {
            p.add(format!("{key}[{i}]"), format!("is empty; e.g. {example}"));
        } else if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn patterns(p: &mut Problems, key: &str, list: Option<Vec<String>>) -> Vec<PathPattern> {
    let mut out = Vec::new();
    for (i, text) in list.unwrap_or_default().into_iter().enumerate() {
        match PathPattern::parse(&text) {
            Ok(pattern) => out.push(pattern),
            Err(e) => p.add(format!("{key}[{i}]"), e),
        }
    }
    out
}

fn validate_app(
    p: &mut Problems,
    i: usize,
    raw: RawApp,
    cookie_domain: Option<&str>,
    earlier: &[App],
    service_tokens: &[ServiceToken],
) -> Option<App> {
    let key = |field: &str| format!("PORTCULLIS.apps[{i}].{field}");
    let Some(host_text) = raw.host.as_deref().filter(|h| !h.trim().is_empty()) else {
        p.add(
            key("host"),
            "is required: every app needs host = \"photos.example.com\"",
        );
        return None;
    };
    let host = names::host_name(host_text.trim())
        .map_err(|e| p.add(key("host"), e))
        .ok()?;
    if let Some(j) = earlier.iter().position(|a| a.host == host) {
        p.add(
            key("host"),
            format!("{host} is configured twice (also apps[{j}]); keep one entry per host"),
        );
        return None;
    }
    if let Some(domain) = cookie_domain {
        if !names::is_within(&host, domain) {
            p.add(
                key("host"),
                format!("{host} is not within cookie_domain {domain}; its browsers could not receive the shared session cookie"),
            );
        }
    }
    let origin = match raw.origin.as_deref() {
        None => None,
        Some(text) => {
            let url = names::web_url(text, "https://photos-origin.example.com")
                .map_err(|e| p.add(key("origin"), e))
                .ok()?;
            if url.path() != "/" {
                p.add(
                    key("origin"),
                    format!("\"{text}\" has a path; give only scheme, host and port: requests keep their own path"),
                );
                return None;
            }
            Some(url)
        }
    };

    let groups = non_empty_list(
        p,
        &key("allow_groups"),
        raw.allow_groups,
        "allow_groups = [\"family\"]",
    );
    let mut emails = Vec::new();
    for (j, e) in non_empty_list(
        p,
        &key("allow_emails"),
        raw.allow_emails,
        "\"grandma@example.org\"",
    )
    .into_iter()
    .enumerate()
    {
        match e.split_once('@') {
            Some((local, domain)) if !local.is_empty() && names::host_name(domain).is_ok() => {
                emails.push(e.to_ascii_lowercase())
            }
            _ => p.add(
                format!("{}[{j}]", key("allow_emails")),
                format!("\"{e}\" is not an email address"),
            ),
        }
    }
    let mut email_domains = Vec::new();
    for (j, d) in non_empty_list(
        p,
        &key("allow_email_domains"),
        raw.allow_email_domains,
        "\"example.com\"",
    )
    .into_iter()
    .enumerate()
    {
        match names::host_name(d.trim_start_matches('@')) {
            Ok(domain) if !d.starts_with('@') => email_domains.push(domain),
            Ok(domain) => p.add(
                format!("{}[{j}]", key("allow_email_domains")),
                format!("write \"{domain}\" without the @"),
            ),
            Err(e) => p.add(format!("{}[{j}]", key("allow_email_domains")), e),
        }
    }
    let public_paths = patterns(p, &key("public_paths"), raw.public_paths);
    let api_paths = patterns(p, &key("api_paths"), raw.api_paths);
    let mut tokens = Vec::new();
    for (j, name) in raw
        .service_tokens
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if service_tokens.iter().any(|t| t.name == name) {
            tokens.push(name);
        } else {
            p.add(
                format!("{}[{j}]", key("service_tokens")),
                format!("no service token named \"{name}\"; define it under [[vars.PORTCULLIS.service_tokens]] (`scripts/service-token {name}` prints one)"),
            );
        }
    }
    let accept_bearer = raw.accept_bearer.unwrap_or(false);
    let bearer_audiences = non_empty_list(
        p,
        &key("bearer_audiences"),
        raw.bearer_audiences,
        "\"https://api.example.com\"",
    );
    if !bearer_audiences.is_empty() && !accept_bearer {
        p.add(
            key("bearer_audiences"),
            "has no effect without accept_bearer = true; set it or remove bearer_audiences",
        );
    }
    Some(App {
        host,
        origin,
        access: Access {
            groups,
            emails,
            email_domains,
        },
        public_paths,
        api_paths,
        service_tokens: tokens,
        accept_bearer,
        bearer_audiences,
    })
}

fn duration_setting(
    p: &mut Problems,
    text: Option<&str>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Option<u64> {
    let Some(text) = text else {
        return Some(default);
    };
    let key = format!("PORTCULLIS.{key}");
    match parse_duration(text) {
        Err(e) => {
            p.add(key, e);
            None
        }
        Ok(v) if v < min => {
            p.add(
                key,
                format!(
                    "\"{text}\" is shorter than the minimum {}",
                    format_duration(min)
                ),
            );
            None
        }
        Ok(v) if v > max => {
            p.add(
                key,
                format!(
                    "\"{text}\" is longer than the maximum {}",
                    format_duration(max)
                ),
            );
            None
        }
        Ok(v) => Some(v),
    }
}

impl Secrets {
    /// The secrets of `inputs` (its `portcullis` value is not looked at).
    pub fn parse(inputs: &Inputs) -> Result<Secrets, ConfigErrors> {
        let mut p = Problems::default();
        let client_secret = match inputs.oidc_client_secret.as_deref() {
            None => None,
            Some("") => {
                p.add(
                    "OIDC_CLIENT_SECRET",
                    "is set but empty; delete it (`wrangler secret delete OIDC_CLIENT_SECRET`) for a public client",
                );
                None
            }
            Some(s) => Some(Secret::new(s)),
        };
        let put = "`wrangler secret put SESSION_SECRET` (locally: a line in .dev.vars), e.g. the output of `openssl rand -base64 48`";
        let signing_keys = match inputs.session_secret.as_deref() {
            None => {
                p.add(
                    "SESSION_SECRET",
                    format!("is not set; set at least {MIN_SECRET_BYTES} random bytes with {put}"),
                );
                None
            }
            Some(text) => {
                let parts: Vec<&str> = text.split(',').map(str::trim).collect();
                let mut keys = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    if part.len() < MIN_SECRET_BYTES {
                        let which = if parts.len() == 1 {
                            "the secret".to_string()
                        } else {
                            format!("key {} of {}", i + 1, parts.len())
                        };
                        p.add(
                            "SESSION_SECRET",
                            format!(
                                "{which} is {} bytes; each key needs at least {MIN_SECRET_BYTES}; replace it with {put}",
                                part.len()
                            ),
                        );
                    } else {
                        keys.push(part.as_bytes().to_vec());
                    }
                }
                SigningKeys::new(keys)
            }
        };
        let assertion_key = inputs.assertion_key.as_deref().and_then(|text| {
            AssertionKey::from_jwk(text)
                .map_err(|e| p.add("ASSERTION_KEY", e))
                .ok()
        });
        let admin_token = match inputs.admin_token.as_deref().map(str::trim) {
            None => None,
            Some(token) if token.len() < MIN_ADMIN_TOKEN => {
                p.add(
                    "ADMIN_TOKEN",
                    format!(
                        "is {} characters; use at least {MIN_ADMIN_TOKEN} random ones (e.g. `openssl rand -base64 32`), or delete it to turn the admin API off",
                        token.len()
                    ),
                );
                None
            }
            Some(token) => Some(Secret::new(token)),
        };
        match signing_keys {
            Some(signing_keys) if p.0.is_empty() => Ok(Secrets {
                client_secret,
                signing_keys,
                assertion_key,
                admin_token,
            }),
            _ => Err(ConfigErrors(p.0)),
        }
    }
}

#[cfg(test)]
mod tests;
