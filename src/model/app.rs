//! One protected app as configured: its host and origin, who may use it (allow rules),
//! how its paths are treated, and the machine credentials it accepts. Pure functions of
//! the configuration and the identity.

use url::Url;

use crate::identity::Identity;
use crate::path::PathPattern;

/// One protected application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct App {
    /// Lower-case host name, without port.
    pub host: String,
    /// Where requests go; `None` fetches the request's own URL (the zone's origin).
    pub origin: Option<Url>,
    /// Who may use it (`allow_groups`, `allow_emails`, `allow_email_domains`).
    pub allow: AllowRules,
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

/// The `allow_*` rules of one app. Any rule that matches admits; no rules admit everyone
/// the issuer lets in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowRules {
    pub groups: Vec<String>,
    /// Lower-case.
    pub emails: Vec<String>,
    /// Lower-case, the part after `@`.
    pub email_domains: Vec<String>,
}

impl AllowRules {
    /// No `allow_*` rule: every signed-in user is admitted.
    pub fn is_open(&self) -> bool {
        self.groups.is_empty() && self.emails.is_empty() && self.email_domains.is_empty()
    }

    pub fn admits(&self, identity: &Identity) -> bool {
        if self.is_open() {
            return true;
        }
        if identity.groups.iter().any(|g| self.groups.contains(g)) {
            return true;
        }
        // Email rules count only for an address the issuer has verified.
        let Some(email) = identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified)
        else {
            return false;
        };
        let email = email.to_ascii_lowercase();
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.emails.contains(&email)
            || (!domain.is_empty() && self.email_domains.iter().any(|d| d == domain))
    }
}

/// How a path of an app is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// `public_paths`: proxied without authentication (and without identity headers).
    Public,
    /// `api_paths`: authentication required, but never answered with a redirect.
    Api,
    Protected,
}

fn any(patterns: &[PathPattern], path: &str) -> bool {
    patterns.iter().any(|p| p.matches(path))
}

/// Classifies a normalised path.
pub fn classify(app: &App, path: &str) -> PathClass {
    if any(&app.public_paths, path) {
        PathClass::Public
    } else if any(&app.api_paths, path) {
        PathClass::Api
    } else {
        PathClass::Protected
    }
}

/// A configured service token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceToken {
    pub name: String,
    pub client_id: String,
    pub secret_sha256: [u8; 32],
}

impl ServiceToken {
    /// Token names are letters, digits, `-`, `_` and `.` (they appear in `service:<name>`
    /// and in the client ID).
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    /// The identity a service token stands for upstream: `service:<name>`.
    pub fn identity(&self) -> Identity {
        let user = format!("service:{}", self.name);
        Identity {
            sub: user.clone(),
            preferred_username: Some(user),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str], email: Option<&str>, verified: bool) -> Identity {
        Identity {
            sub: "s".into(),
            email: email.map(String::from),
            email_verified: verified,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn open_apps_admit_everyone() {
        assert!(AllowRules::default().admits(&user(&[], None, false)));
    }

    #[test]
    fn any_rule_admits() {
        let a = AllowRules {
            groups: vec!["family".into()],
            emails: vec!["grandma@example.org".into()],
            email_domains: vec!["example.com".into()],
        };
        assert!(a.admits(&user(&["family"], None, false)));
        assert!(
            !a.admits(&user(&["Family"], None, false)),
            "group names are exact"
        );
        assert!(
            a.admits(&user(&[], Some("Grandma@Example.org"), true)),
            "emails case-insensitive"
        );
        assert!(a.admits(&user(&[], Some("bob@EXAMPLE.com"), true)));
        assert!(
            !a.admits(&user(&[], Some("bob@example.com"), false)),
            "unverified email never counts"
        );
        assert!(!a.admits(&user(&[], Some("grandma@example.org"), false)));
        assert!(
            !a.admits(&user(&[], Some("bob@sub.example.com"), true)),
            "domains are exact"
        );
        assert!(!a.admits(&user(&[], Some("bob@notexample.com"), true)));
        assert!(!a.admits(&user(&[], Some("example.com"), true)));
        assert!(!a.admits(&user(&["guests"], None, false)));
    }
}
