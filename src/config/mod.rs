//! Configuration: the `PORTCULLIS` variable from `wrangler.toml` plus the secrets, parsed
//! once per isolate into typed values. Every problem is reported with the key it concerns
//! and how to fix it; all problems are collected, not just the first.

mod app;
mod duration;
mod names;
mod secrets;

use std::fmt;

use serde::Deserialize;
use url::Url;

use crate::model::{App, Config, Scopes, Secrets, Settings, UserClaim};
use app::{validate_app, validate_service_tokens, RawApp, RawServiceToken, Shared};
pub use duration::{format_duration, parse_duration};
pub use names::{is_loopback, is_within, plain_authority};

/// Shortest session lifetime accepted: Workers KV refuses an `expirationTtl` under 60 s,
/// and a session that short would only produce login loops.
const MIN_SESSION_LIFETIME: u64 = 5 * 60;
/// Browsers cap cookie lifetimes at 400 days.
pub const MAX_SESSION_LIFETIME: u64 = 400 * 86_400;
/// Shortest `revalidate_every`: more often would spend the issuer's and KV's budgets.
const MIN_REVALIDATE: u64 = 30;
/// Longest in-isolate trust of a session read from KV (it bounds revocation latency).
const MAX_SESSION_CACHE: u64 = 5 * 60;
/// `revocation_check`: every location refuses a revoked credential within this bound.
const DEFAULT_REVOCATION_CHECK: u64 = 5;
const MIN_REVOCATION_CHECK: u64 = 1;
const MAX_REVOCATION_CHECK: u64 = 60;
/// `app_password_lifetime`: 90 days unless set; at least a day, at most 400 days.
const DEFAULT_APP_PASSWORD_LIFETIME: u64 = 90 * 86_400;
const MIN_APP_PASSWORD_LIFETIME: u64 = 86_400;
pub const MAX_APP_PASSWORD_LIFETIME: u64 = 400 * 86_400;
/// `max_app_passwords`: per person.
const DEFAULT_MAX_APP_PASSWORDS: usize = 10;
const MAX_MAX_APP_PASSWORDS: usize = 100;

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

/// Every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigError {
    /// Whether the problem's text may reveal what visitors must not see: anything about a
    /// secret (its length, say) or an app's internal origin URL.
    fn is_private(&self) -> bool {
        matches!(
            self.key.as_str(),
            "SESSION_SECRET" | "OIDC_CLIENT_SECRET" | "ASSERTION_KEY" | "ADMIN_TOKEN"
        ) || self.key.ends_with(".origin")
    }
}

impl ConfigErrors {
    /// The problems as the misconfiguration page shows them to any visitor: every key,
    /// but no secret's length and no internal origin URL (the log and
    /// `scripts/check-config` keep the whole text).
    pub fn for_page(&self) -> String {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|e| {
                if e.is_private() {
                    format!(
                        "{}: is not valid (the worker log and scripts/check-config say why)",
                        e.key
                    )
                } else {
                    e.to_string()
                }
            })
            .collect();
        lines.join("\n")
    }
}

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

/// What the settings ask of the Worker's bindings: `websockets = "relay"` needs the
/// persons' objects (`PEOPLE`), which alone can close a socket later.
pub fn binding_problems(settings: &Settings, people_bound: bool) -> Vec<ConfigError> {
    if people_bound {
        return Vec::new();
    }
    settings
        .apps
        .iter()
        .enumerate()
        .filter(|(_, app)| app.websockets == Some(crate::model::WebSockets::Relay))
        .map(|(i, _)| ConfigError {
            key: format!("PORTCULLIS.apps[{i}].websockets"),
            problem: "\"relay\" needs the PEOPLE binding (a Durable Object per person; scripts/setup --instant-revocation); bind it, or use \"pass\"".into(),
        })
        .collect()
}

/// The non-secret settings, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    issuer: Option<String>,
    client_id: Option<String>,
    id_token_audiences: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    session_lifetime: Option<String>,
    session_cache: Option<String>,
    revocation_check: Option<String>,
    revalidate_every: Option<String>,
    groups_claim: Option<String>,
    user_claim: Option<String>,
    cookie_domain: Option<String>,
    auth_host: Option<String>,
    apps: Option<Vec<RawApp>>,
    service_tokens: Option<Vec<RawServiceToken>>,
    app_password_lifetime: Option<String>,
    max_app_passwords: Option<i64>,
    admin_groups: Option<Vec<String>>,
}

impl Config {
    /// Parses and validates everything; the errors name every problem found.
    pub fn from_inputs(inputs: &Inputs) -> Result<Config, ConfigErrors> {
        let settings = Settings::parse(inputs.portcullis.as_ref());
        let secrets = Secrets::parse(inputs);
        match (settings, secrets) {
            (Ok(settings), Ok(secrets)) => Ok(Config { settings, secrets }),
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
            // A JSON string is parsed first, so both forms share one (large, generic)
            // deserializer and report problems alike, by key.
            Some(serde_json::Value::String(text)) => {
                serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| ConfigError {
                        key: "PORTCULLIS".into(),
                        problem: format!("is not valid JSON: {e}"),
                    })
                    .and_then(|value| {
                        serde_path_to_error::deserialize::<_, RawSettings>(value)
                            .map_err(|e| path_error(&e))
                    })
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

/// The whole configuration, as a table of small checks: each reads its keys, adds what is
/// wrong to `p`, and gives its part of the settings. Every problem is reported, not just
/// the first.
fn validate(mut raw: RawSettings, p: &mut Problems) -> Option<Settings> {
    let issuer = issuer(p, &raw.issuer);
    let discovery_url = issuer.as_deref().and_then(discovery_url);
    let client_id = required(p, &raw.client_id, "client_id", "\"portcullis\"").map(str::to_string);
    // OpenID Connect Core §3.1.3.7 step 3: an ID token naming an audience the client does
    // not trust is refused; some issuers add their own (Zitadel: the project's ID).
    let id_token_audiences = app::non_empty_list(
        p,
        "PORTCULLIS.id_token_audiences",
        raw.id_token_audiences.take(),
        "\"170086774599581953\"",
    );
    let scopes = match raw.scopes.as_deref() {
        Some(given) => Scopes::Configured(scopes(p, given)),
        None => Scopes::Defaults(scopes(p, &["profile", "email", "groups"].map(String::from))),
    };
    let lifetimes = lifetimes(p, &raw);
    let max_app_passwords = max_app_passwords(p, raw.max_app_passwords);
    let user_claim =
        user_claim(p, "PORTCULLIS.user_claim", raw.user_claim.as_deref()).unwrap_or_default();
    let groups_claim = groups_claim(p, raw.groups_claim.as_deref());
    let cookie_domain = cookie_domain(p, raw.cookie_domain.as_deref());
    let auth_host = auth_host(p, &raw, cookie_domain.as_deref());
    let admin_groups = admin_groups(p, raw.admin_groups.take(), &raw);
    let service_tokens = validate_service_tokens(p, raw.service_tokens.take().unwrap_or_default());
    let shared = Shared {
        cookie_domain: cookie_domain.as_deref(),
        service_tokens: &service_tokens,
        user_claim,
    };
    let apps = apps(p, raw.apps.take(), &shared);
    let Lifetimes {
        session_lifetime,
        session_cache,
        revocation_check,
        revalidate_every,
        app_password_lifetime,
    } = lifetimes;
    Some(Settings {
        issuer: issuer?,
        discovery_url: discovery_url?,
        client_id: client_id?,
        id_token_audiences,
        scopes,
        session_lifetime: session_lifetime?,
        session_cache: session_cache?,
        revocation_check: revocation_check?,
        revalidate_every,
        groups_claim,
        cookie_domain,
        auth_host,
        apps,
        service_tokens,
        app_password_lifetime: app_password_lifetime?,
        max_app_passwords: max_app_passwords?,
        admin_groups,
    })
}

/// `issuer`: required, an https URL (http only for loopback).
fn issuer(p: &mut Problems, raw: &Option<String>) -> Option<String> {
    let text = required(p, raw, "issuer", "\"https://id.example.com\"")?;
    match names::web_url(text, "https://id.example.com") {
        Ok(_) => Some(text.to_string()),
        Err(e) => {
            p.add("PORTCULLIS.issuer", e);
            None
        }
    }
}

/// OpenID Connect Discovery §4: the document's URL is the issuer's with
/// `/.well-known/openid-configuration` appended, keeping any path it has.
fn discovery_url(issuer: &str) -> Option<Url> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&url).ok()
}

/// `scopes`: `openid` first, then the given ones, each once.
fn scopes(p: &mut Problems, given: &[String]) -> Vec<String> {
    let mut scopes = vec!["openid".to_string()];
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
    scopes
}

/// The duration settings (seconds), each `None` where it is invalid (or, for
/// `revalidate_every`, not set).
struct Lifetimes {
    session_lifetime: Option<u64>,
    session_cache: Option<u64>,
    revocation_check: Option<u64>,
    revalidate_every: Option<u64>,
    app_password_lifetime: Option<u64>,
}

fn lifetimes(p: &mut Problems, raw: &RawSettings) -> Lifetimes {
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
    let revocation_check = duration_setting(
        p,
        raw.revocation_check.as_deref(),
        "revocation_check",
        DEFAULT_REVOCATION_CHECK,
        MIN_REVOCATION_CHECK,
        MAX_REVOCATION_CHECK,
    );
    // Re-validation uses refresh tokens; `offline_access` is added to the request at login
    // when the issuer lists it (see `PendingLogin::authorize_url`).
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
    let app_password_lifetime = duration_setting(
        p,
        raw.app_password_lifetime.as_deref(),
        "app_password_lifetime",
        DEFAULT_APP_PASSWORD_LIFETIME,
        MIN_APP_PASSWORD_LIFETIME,
        MAX_APP_PASSWORD_LIFETIME,
    );
    Lifetimes {
        session_lifetime,
        session_cache,
        revocation_check,
        revalidate_every,
        app_password_lifetime,
    }
}

/// `max_app_passwords`: per person, 1 to [`MAX_MAX_APP_PASSWORDS`].
fn max_app_passwords(p: &mut Problems, raw: Option<i64>) -> Option<usize> {
    match raw {
        None => Some(DEFAULT_MAX_APP_PASSWORDS),
        Some(n) if (1..=MAX_MAX_APP_PASSWORDS as i64).contains(&n) => usize::try_from(n).ok(),
        Some(n) => {
            p.add(
                "PORTCULLIS.max_app_passwords",
                format!("{n} is out of range; give a number from 1 to {MAX_MAX_APP_PASSWORDS} (app passwords per person)"),
            );
            None
        }
    }
}

/// `groups_claim`: the ID-token claim that lists groups (default `groups`).
fn groups_claim(p: &mut Problems, raw: Option<&str>) -> String {
    let groups_claim = raw.unwrap_or("groups").to_string();
    if groups_claim.trim().is_empty() {
        p.add(
            "PORTCULLIS.groups_claim",
            "is empty; name the ID-token claim that lists groups, e.g. \"groups\"",
        );
    }
    groups_claim
}

/// `cookie_domain`: a host name, written without a leading dot.
fn cookie_domain(p: &mut Problems, raw: Option<&str>) -> Option<String> {
    let d = raw?;
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
}

/// `admin_groups`: who may open the admin console. It is served on the auth host alone (an
/// origin no app's scripts share), so it needs one.
fn admin_groups(p: &mut Problems, list: Option<Vec<String>>, raw: &RawSettings) -> Vec<String> {
    let groups = app::non_empty_list(p, "PORTCULLIS.admin_groups", list, "\"admins\"");
    if !groups.is_empty() && raw.auth_host.is_none() {
        p.add(
            "PORTCULLIS.admin_groups",
            "needs auth_host: the admin console is served only there, on an origin no \
             app shares; set auth_host = \"auth.example.com\" (with cookie_domain) or \
             remove admin_groups",
        );
    }
    groups
}

/// `auth_host`: a host within `cookie_domain`, which it needs.
fn auth_host(p: &mut Problems, raw: &RawSettings, cookie_domain: Option<&str>) -> Option<String> {
    let host = names::host_name(raw.auth_host.as_deref()?)
        .map_err(|e| p.add("PORTCULLIS.auth_host", e))
        .ok()?;
    match cookie_domain {
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
                format!("{host} is not within cookie_domain {domain}; use a host under {domain}"),
            );
            None
        }
        Some(_) => Some(host),
    }
}

/// `apps`: at least one, each checked against the ones before it.
fn apps(p: &mut Problems, raw: Option<Vec<RawApp>>, shared: &Shared) -> Vec<App> {
    let mut apps: Vec<App> = Vec::new();
    match raw {
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
                if let Some(app) = validate_app(p, i, app, shared, &apps) {
                    apps.push(app);
                }
            }
        }
    }
    apps
}

/// `user_claim` (top level, or per app).
fn user_claim(p: &mut Problems, key: &str, text: Option<&str>) -> Option<UserClaim> {
    let text = text?;
    let claim = UserClaim::parse(text);
    if claim.is_none() {
        p.add(
            key,
            format!("\"{text}\" is not a user claim; use \"email\" (the verified email, else sub), \"sub\" or \"preferred_username\""),
        );
    }
    claim
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

#[cfg(test)]
mod tests;
