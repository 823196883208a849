//! Who may reach an app, and which of its paths skip the login or never redirect.
//! Pure functions of the configuration and the identity.

use crate::config::App;
use crate::path::PathPattern;
use crate::session::Identity;

/// The `allow_*` rules of one app. Any rule that matches admits; no rules admit everyone
/// the issuer lets in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub groups: Vec<String>,
    /// Lower-case.
    pub emails: Vec<String>,
    /// Lower-case, the part after `@`.
    pub email_domains: Vec<String>,
}

impl Access {
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
        assert!(Access::default().admits(&user(&[], None, false)));
    }

    #[test]
    fn any_rule_admits() {
        let a = Access {
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
