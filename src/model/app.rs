//! One protected app as configured: its host and origin, who may use it (allow rules),
//! how its paths are treated, and the machine credentials it accepts. Pure functions of
//! the configuration and the identity.

use url::Url;

use crate::identity::{Identity, Subject};
use crate::path::PathPattern;

/// One protected application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct App {
    /// Lower-case host name, without port.
    pub host: String,
    /// Where requests go; `None` fetches the request's own URL (the zone's origin).
    pub origin: Option<Origin>,
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
    /// The claim sent as the user name (`X-Auth-Request-User`, `Remote-User`).
    pub user_claim: UserClaim,
    /// People may create their own app passwords for this app (`app_passwords`).
    pub app_passwords: bool,
    /// Where app passwords are accepted (`app_password_paths`); empty: the whole app.
    pub app_password_paths: Vec<PathPattern>,
    /// How WebSocket upgrades are carried (`websockets`); `None`: relayed when `PEOPLE` is
    /// bound, else passed.
    pub websockets: Option<WebSockets>,
}

/// How an app's WebSockets are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebSockets {
    /// Through the person's Durable Object, which closes the socket (1008) when the
    /// credential is revoked, expires, or no longer satisfies the app's rules. Needs `PEOPLE`.
    Relay,
    /// The origin's `101` straight to the client: the socket outlives any revocation.
    Pass,
}

impl WebSockets {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "relay" => Some(WebSockets::Relay),
            "pass" => Some(WebSockets::Pass),
            _ => None,
        }
    }
}

/// An app's `origin` as `scheme://host[:port]`, serialised once when the configuration is
/// read: every proxied request's URL starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    pub fn of(url: &Url) -> Self {
        Self(url.origin().ascii_serialization())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl App {
    /// Whether this app's WebSocket upgrades are relayed, with or without `PEOPLE`.
    pub fn relays_websockets(&self, people_bound: bool) -> bool {
        match self.websockets {
            Some(mode) => mode == WebSockets::Relay && people_bound,
            None => people_bound,
        }
    }

    /// Whether an app password may be used on this (normalised) path.
    pub fn accepts_app_password_on(&self, path: &str) -> bool {
        self.app_passwords
            && (self.app_password_paths.is_empty() || any(&self.app_password_paths, path))
    }
}

/// Which claim apps receive as a person's user name. Only what the issuer vouches for:
/// `sub` (stable, never edited), or the email when the issuer says it is verified.
/// `preferred_username` is offered for apps that need a short name, but most issuers
/// (Pocket ID included) let people edit it, so a person could choose whose account an
/// app maps them to; `scripts/check-config` warns about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserClaim {
    Sub,
    /// The verified email; `sub` when there is none.
    #[default]
    Email,
    PreferredUsername,
}

impl UserClaim {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sub" => Some(UserClaim::Sub),
            "email" => Some(UserClaim::Email),
            "preferred_username" => Some(UserClaim::PreferredUsername),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UserClaim::Sub => "sub",
            UserClaim::Email => "email",
            UserClaim::PreferredUsername => "preferred_username",
        }
    }

    /// The user name of a person. `None` when the claim is missing, when it begins with
    /// `service:`, which names service tokens and is never sent for a person, or when it
    /// is not clean (surrounding whitespace, control characters: [`crate::identity::is_clean`]).
    pub fn user_of(self, person: &Identity) -> Option<&str> {
        let verified_email = person.email.as_deref().filter(|_| person.email_verified);
        let value = match self {
            UserClaim::Sub => Some(person.sub.as_str()),
            UserClaim::Email => verified_email.or(Some(person.sub.as_str())),
            UserClaim::PreferredUsername => person.preferred_username.as_deref(),
        };
        value.filter(|v| !is_service_name(v) && crate::identity::is_clean(v))
    }
}

/// The prefix reserved for service tokens' user names.
pub const SERVICE_PREFIX: &str = "service:";

/// Whether a user name is in the form reserved for service tokens.
pub fn is_service_name(name: &str) -> bool {
    name.get(..SERVICE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(SERVICE_PREFIX))
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
        let sub = Subject::of_service(&self.name);
        Identity {
            preferred_username: Some(sub.to_string()),
            ..Identity::new(sub)
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

    #[test]
    fn the_user_name_is_only_what_the_issuer_vouches_for() {
        let mut person = Identity {
            sub: "7f0c2b9e-uuid".into(),
            email: Some("alice@example.com".into()),
            email_verified: false,
            preferred_username: Some("admin".into()),
            ..Default::default()
        };
        assert_eq!(
            UserClaim::Email.user_of(&person),
            Some("7f0c2b9e-uuid"),
            "unverified: sub"
        );
        assert_eq!(UserClaim::Sub.user_of(&person), Some("7f0c2b9e-uuid"));
        person.email_verified = true;
        assert_eq!(UserClaim::Email.user_of(&person), Some("alice@example.com"));
        assert_eq!(UserClaim::PreferredUsername.user_of(&person), Some("admin"));
        person.preferred_username = Some("Service:backup".into());
        assert_eq!(
            UserClaim::PreferredUsername.user_of(&person),
            None,
            "reserved prefix"
        );
        person.sub = "service:x".into();
        assert_eq!(UserClaim::Sub.user_of(&person), None);
        // Headers.set would trim the space: " service:x" would reach the app as a service.
        person.sub = " service:x".into();
        assert_eq!(UserClaim::Sub.user_of(&person), None);
        // A control character cannot even be in a subject: refused where it is parsed.
        assert!(Subject::parse("bob\r").is_none());
        assert_eq!(UserClaim::default(), UserClaim::Email);
    }
}
