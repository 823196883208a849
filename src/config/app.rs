//! The apps and service tokens of `PORTCULLIS`, validated into [`App`]s and
//! [`ServiceToken`]s.

use serde::Deserialize;

use super::{names, Problems};
use crate::model::{AllowRules, App, Origin, ServiceToken, UserClaim, WebSockets};
use crate::path::PathPattern;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
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
    user_claim: Option<String>,
    app_passwords: Option<bool>,
    app_password_paths: Option<Vec<String>>,
    websockets: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServiceToken {
    name: Option<String>,
    client_id: Option<String>,
    secret_sha256: Option<String>,
}

pub(super) fn validate_service_tokens(
    p: &mut Problems,
    raw: Vec<RawServiceToken>,
) -> Vec<ServiceToken> {
    let mut tokens: Vec<ServiceToken> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("PORTCULLIS.service_tokens[{i}].{field}");
        let generate = "generate one with `scripts/service-token <name>`";
        let name = t.name.unwrap_or_default();
        if !ServiceToken::valid_name(&name) {
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

pub(super) fn non_empty_list(
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

/// The entries of a list that `check` accepts (in the form it returns); each refused
/// entry is reported under its index.
fn checked_list(
    p: &mut Problems,
    key: &str,
    list: Option<Vec<String>>,
    example: &str,
    check: impl Fn(&str) -> Result<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, item) in non_empty_list(p, key, list, example)
        .into_iter()
        .enumerate()
    {
        match check(&item) {
            Ok(value) => out.push(value),
            Err(problem) => p.add(format!("{key}[{i}]"), problem),
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

/// What every app's validation needs from the top level.
#[derive(Clone, Copy)]
pub(super) struct Shared<'a> {
    pub cookie_domain: Option<&'a str>,
    pub service_tokens: &'a [ServiceToken],
    /// The top-level `user_claim` (or its default), for apps that set none.
    pub user_claim: UserClaim,
}

/// One `[[vars.PORTCULLIS.apps]]` entry, checked against the ones before it.
pub(super) fn validate_app(
    p: &mut Problems,
    i: usize,
    raw: RawApp,
    shared: &Shared<'_>,
    earlier: &[App],
) -> Option<App> {
    let key = |field: &str| format!("PORTCULLIS.apps[{i}].{field}");
    let host = app_host(p, &key, raw.host.as_deref(), shared.cookie_domain, earlier)?;
    let origin = match raw.origin.as_deref() {
        None => None,
        Some(text) => Some(origin(p, &key, text)?),
    };
    let allow = allow_rules(
        p,
        &key,
        raw.allow_groups,
        raw.allow_emails,
        raw.allow_email_domains,
    );
    let public_paths = patterns(p, &key("public_paths"), raw.public_paths);
    let api_paths = patterns(p, &key("api_paths"), raw.api_paths);
    let service_tokens = app_service_tokens(p, &key, raw.service_tokens, shared.service_tokens);
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
    let app_passwords = raw.app_passwords.unwrap_or(false);
    let app_password_paths = patterns(p, &key("app_password_paths"), raw.app_password_paths);
    if !app_password_paths.is_empty() && !app_passwords {
        p.add(
            key("app_password_paths"),
            "has no effect without app_passwords = true; set it or remove app_password_paths",
        );
    }
    let user_claim = super::user_claim(p, &key("user_claim"), raw.user_claim.as_deref())
        .unwrap_or(shared.user_claim);
    let websockets = raw.websockets.as_deref().and_then(|text| {
        let mode = WebSockets::parse(text);
        if mode.is_none() {
            p.add(key("websockets"), format!("\"{text}\" is not a mode; give \"relay\" (closed on revocation; needs the PEOPLE binding) or \"pass\""));
        }
        mode
    });
    Some(App {
        host,
        origin,
        allow,
        public_paths,
        api_paths,
        service_tokens,
        accept_bearer,
        bearer_audiences,
        user_claim,
        app_passwords,
        app_password_paths,
        websockets,
    })
}

/// `host`: required, a host name, once per configuration, within `cookie_domain`.
fn app_host(
    p: &mut Problems,
    key: &impl Fn(&str) -> String,
    raw: Option<&str>,
    cookie_domain: Option<&str>,
    earlier: &[App],
) -> Option<String> {
    let Some(host_text) = raw.filter(|h| !h.trim().is_empty()) else {
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
    Some(host)
}

/// `origin`: scheme, host and port only.
fn origin(p: &mut Problems, key: &impl Fn(&str) -> String, text: &str) -> Option<Origin> {
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
    Some(Origin::of(&url))
}

/// `allow_groups`, `allow_emails` and `allow_email_domains`.
fn allow_rules(
    p: &mut Problems,
    key: &impl Fn(&str) -> String,
    groups: Option<Vec<String>>,
    emails: Option<Vec<String>>,
    email_domains: Option<Vec<String>>,
) -> AllowRules {
    let groups = non_empty_list(
        p,
        &key("allow_groups"),
        groups,
        "allow_groups = [\"family\"]",
    );
    let emails = checked_list(
        p,
        &key("allow_emails"),
        emails,
        "\"grandma@example.org\"",
        |e| match e.split_once('@') {
            Some((local, domain)) if !local.is_empty() && names::host_name(domain).is_ok() => {
                Ok(e.to_ascii_lowercase())
            }
            _ => Err(format!("\"{e}\" is not an email address")),
        },
    );
    let email_domains = checked_list(
        p,
        &key("allow_email_domains"),
        email_domains,
        "\"example.com\"",
        |d| match names::host_name(d.trim_start_matches('@')) {
            Ok(domain) if !d.starts_with('@') => Ok(domain),
            Ok(domain) => Err(format!("write \"{domain}\" without the @")),
            Err(e) => Err(e),
        },
    );
    AllowRules {
        groups,
        emails,
        email_domains,
    }
}

/// `service_tokens`: names of tokens defined at the top level.
fn app_service_tokens(
    p: &mut Problems,
    key: &impl Fn(&str) -> String,
    names: Option<Vec<String>>,
    defined: &[ServiceToken],
) -> Vec<String> {
    let mut tokens = Vec::new();
    for (j, name) in names.unwrap_or_default().into_iter().enumerate() {
        if defined.iter().any(|t| t.name == name) {
            tokens.push(name);
        } else {
            p.add(
                format!("{}[{j}]", key("service_tokens")),
                format!("no service token named \"{name}\"; define it under [[vars.PORTCULLIS.service_tokens]] (`scripts/service-token {name}` prints one)"),
            );
        }
    }
    tokens
}
