//! Who a request comes from, as the issuer (or a service token) describes them: the
//! claims Portcullis keeps, decides access on and passes to apps.

use serde::{Deserialize, Serialize};

pub use crate::store::keys::Subject;

/// The user as the issuer described them at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: Subject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Whether an identity value (a claim, a group name) can be passed to an app as it is:
/// no surrounding whitespace and no control characters. `Headers.set` trims surrounding
/// whitespace, so " service:immich-mobile" would reach the app as the service token's
/// name, and an app that trims or splits on control characters could read another value.
/// A value that is not clean is left out, as if the issuer had not sent it.
pub fn is_clean(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && !value.chars().any(char::is_control)
}

impl Identity {
    /// Someone known only by their `sub`.
    pub fn new(sub: Subject) -> Self {
        Identity {
            sub,
            email: None,
            email_verified: false,
            name: None,
            preferred_username: None,
            groups: Vec::new(),
        }
    }

    /// The name apps see as the user: `preferred_username`, else `email`, else `sub`.
    pub fn user(&self) -> &str {
        self.preferred_username
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(&self.sub)
    }
}

/// In tests, an identity literal may leave out what it does not need.
#[cfg(test)]
impl Default for Identity {
    fn default() -> Self {
        Identity::new(Subject::from("test-subject"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_label_prefers_username_then_email_then_sub() {
        let mut id = Identity {
            sub: "s1".into(),
            ..Default::default()
        };
        assert_eq!(id.user(), "s1");
        id.email = Some("a@example.com".into());
        assert_eq!(id.user(), "a@example.com");
        id.preferred_username = Some("alice".into());
        assert_eq!(id.user(), "alice");
    }
}
