//! The claims every token from the issuer carries (ID tokens, bearer access tokens, logout
//! tokens), read into one typed view, and the one checker of what they have in common:
//! issuer, audience and authorized party, expiry / not-before / issued-at under one
//! clock-skew rule. What is particular to a kind of token (nonce, events…) is checked in
//! that kind's module, after this.

use serde_json::{Map, Value};

use crate::identity::{is_clean, Identity, Subject};
use crate::jose::jwks::VerifiedJws;

/// Allowed clock difference between Portcullis and the issuer, in seconds, for every time
/// claim of every kind of token.
pub const LEEWAY: u64 = 60;

/// A typed view of a verified token's claims (borrowed from it).
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    pub iss: Option<&'a str>,
    /// Present only in its own form ([`Subject::parse`]).
    pub sub: Option<Subject>,
    /// `aud` as a list (the token may carry a string or an array of strings).
    pub aud: Vec<&'a str>,
    pub azp: Option<&'a str>,
    /// Unix seconds; `None` when absent (or negative, which no issuer sends).
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
    /// Every claim, for those particular to one kind of token.
    pub all: &'a Map<String, Value>,
}

impl<'a> Claims<'a> {
    pub fn of(jws: &'a VerifiedJws) -> Self {
        let all = &jws.claims.custom;
        let unix = |t: Option<i64>| t.and_then(|t| u64::try_from(t).ok());
        Claims {
            iss: text(all, "iss"),
            sub: text(all, "sub").and_then(Subject::parse),
            aud: match all.get("aud") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            },
            azp: text(all, "azp"),
            exp: unix(jws.claims.expiration.map(|t| t.timestamp())),
            nbf: unix(jws.claims.not_before.map(|t| t.timestamp())),
            iat: unix(jws.claims.issued_at.map(|t| t.timestamp())),
            all,
        }
    }

    /// A string claim; `None` when absent or not a string.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        text(self.all, name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.all.contains_key(name)
    }

    /// The person these claims describe; `groups_claim` names the claim listing groups.
    pub fn identity(&self, sub: &Subject, groups_claim: &str) -> Identity {
        identity_of(self.all, sub, groups_claim)
    }
}

/// The person a set of claims (a token's, or a UserInfo response's) describes.
pub fn identity_of(all: &Map<String, Value>, sub: &Subject, groups_claim: &str) -> Identity {
    // Values that could be read as something else once trimmed are left out (is_clean).
    let non_empty = |name: &str| text(all, name).filter(|s| is_clean(s)).map(String::from);
    // Some issuers send booleans as strings.
    let email_verified = match all.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Identity {
        sub: sub.clone(),
        email: non_empty("email"),
        email_verified,
        name: non_empty("name"),
        preferred_username: non_empty("preferred_username"),
        groups: groups(all.get(groups_claim)),
    }
}

/// Which of the identity claims Portcullis uses a set of claims carries (present at all,
/// even if empty). An issuer may return the claims of the `email` and `profile` scopes
/// only from its UserInfo endpoint (OpenID Connect Core §5.4); those an ID token lacks are
/// asked there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Carried {
    /// `email` (with `email_verified`, which only means something beside it).
    pub email: bool,
    pub name: bool,
    pub preferred_username: bool,
    /// The configured `groups_claim`.
    pub groups: bool,
}

impl Carried {
    pub fn of(all: &Map<String, Value>, groups_claim: &str) -> Self {
        Carried {
            email: all.contains_key("email"),
            name: all.contains_key("name"),
            preferred_username: all.contains_key("preferred_username"),
            groups: all.contains_key(groups_claim),
        }
    }

    /// Every claim there: nothing to ask elsewhere.
    pub fn all(self) -> bool {
        self.email && self.name && self.preferred_username && self.groups
    }

    /// `identity` with each claim it did not carry taken from `more` (the same person's,
    /// from the UserInfo endpoint): what the ID token says wins.
    pub fn complete(self, identity: &mut Identity, more: Identity) {
        if !self.email {
            identity.email = more.email;
            identity.email_verified = more.email_verified;
        }
        if !self.name {
            identity.name = more.name;
        }
        if !self.preferred_username {
            identity.preferred_username = more.preferred_username;
        }
        if !self.groups {
            identity.groups = more.groups;
        }
    }
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// Groups as an array of strings, one space-separated string, or an object whose keys
/// are the groups (Zitadel's roles claim maps each role to the organisations granting it).
pub fn groups(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Object(map)) => map.keys().filter(|s| is_clean(s)).cloned().collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| is_clean(s))
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split_whitespace()
            .filter(|s| is_clean(s))
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

/// Whom the token must be for.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// OpenID Connect Core §3.1.3.7 steps 3–5, for ID tokens: `aud` contains the client ID
    /// and no audience the client does not trust (itself and `trusted`, the configured
    /// `id_token_audiences`); `azp` is the client ID, and present when `aud` names others.
    Client {
        client_id: &'a str,
        trusted: &'a [String],
    },
    /// `aud` names at least one of these (bearer and logout tokens).
    AnyOf(&'a [&'a str]),
}

/// What a kind of token must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: Audience<'a>,
    /// `exp` must be present (it is optional only in logout tokens).
    pub exp_required: bool,
    /// `iat` must be present, and not older than this many seconds when set.
    pub iat_required: bool,
    pub max_age: Option<u64>,
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("iss {found:?} is not the configured issuer")]
    Issuer { found: String },
    #[error("aud does not name this client (or names audiences the client does not trust)")]
    Audience,
    /// `aud` names the client and also these, which it does not trust.
    #[error("aud also names {0}, which this client does not trust (if the issuer adds audiences of its own, as Zitadel adds its project's ID, list them in id_token_audiences)")]
    UntrustedAudience(String),
    #[error("azp is not this client_id (or is missing beside other audiences)")]
    AuthorizedParty,
    #[error("token has expired or has no exp")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("iat is missing, in the future, or too old")]
    IssuedAt,
    #[error("sub is missing, not a subject (1 to 255 characters, no control characters), or names another user")]
    Subject,
}

impl Expect<'_> {
    /// The checks every kind of token shares, in the order OpenID Connect Core §3.1.3.7
    /// lists them for ID tokens.
    pub fn check(&self, c: &Claims<'_>) -> Result<(), ClaimError> {
        let now = self.now;

        // 2. The issuer identifier MUST exactly match `iss`.
        if c.iss != Some(self.issuer) {
            return Err(ClaimError::Issuer {
                found: c.iss.unwrap_or_default().into(),
            });
        }

        // 3–5. The audience.
        match self.audience {
            Audience::Client { client_id, trusted } => {
                // 3. `aud` MUST contain the client ID, and the token MUST be rejected if it
                // lists additional audiences not trusted by the client (only those the owner
                // configured are).
                if !c.aud.contains(&client_id) {
                    return Err(ClaimError::Audience);
                }
                let others: Vec<&str> = c.aud.iter().copied().filter(|a| *a != client_id).collect();
                let untrusted: Vec<String> = others
                    .iter()
                    .filter(|a| !trusted.iter().any(|t| t == *a))
                    .map(|a| format!("{a:?}"))
                    .collect();
                if !untrusted.is_empty() {
                    return Err(ClaimError::UntrustedAudience(untrusted.join(", ")));
                }
                // 4. With several audiences, `azp` SHOULD be present: required here, so a
                // token shared with other parties is one issued to this client.
                if !others.is_empty() && c.azp.is_none() {
                    return Err(ClaimError::AuthorizedParty);
                }
                // 5. `azp`, when present, MUST be the client ID.
                if c.azp.is_some_and(|azp| azp != client_id) {
                    return Err(ClaimError::AuthorizedParty);
                }
            }
            Audience::AnyOf(accepted) => {
                if !c.aud.iter().any(|a| accepted.contains(a)) {
                    return Err(ClaimError::Audience);
                }
            }
        }

        // 9. The current time MUST be before `exp` (give or take the leeway).
        match c.exp {
            Some(exp) if now >= exp.saturating_add(LEEWAY) => return Err(ClaimError::Expired),
            None if self.exp_required => return Err(ClaimError::Expired),
            _ => {}
        }
        // RFC 7519 §4.1.5: not before `nbf`.
        if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY)) {
            return Err(ClaimError::NotYetValid);
        }
        // 10. `iat`: never in the future; not too old where a maximum age applies.
        match c.iat {
            Some(iat) if iat > now.saturating_add(LEEWAY) => return Err(ClaimError::IssuedAt),
            Some(iat)
                if self
                    .max_age
                    .is_some_and(|age| iat.saturating_add(age) < now) =>
            {
                return Err(ClaimError::IssuedAt)
            }
            None if self.iat_required => return Err(ClaimError::IssuedAt),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_with_surrounding_whitespace_or_control_characters_are_left_out() {
        let claims = serde_json::json!({
            "preferred_username": " service:immich-mobile",
            "email": "alice@example.com\n",
            "name": "Alice Smith",
            "groups": ["family", " admins", "ops\u{0}", "\tguests"],
        });
        let Value::Object(all) = claims else {
            unreachable!()
        };
        let id = identity_of(&all, &"alice".into(), "groups");
        assert_eq!(
            id.preferred_username, None,
            "not trimmed into a service name"
        );
        assert_eq!(id.email, None);
        assert_eq!(
            id.name.as_deref(),
            Some("Alice Smith"),
            "inner spaces are fine"
        );
        assert_eq!(id.groups, ["family"]);
    }

    #[test]
    fn groups_from_an_array_a_string_or_an_object_of_roles() {
        let read = |v: Value| groups(Some(&v));
        assert_eq!(
            read(json!(["family", "", "admins", 3])),
            ["family", "admins"]
        );
        assert_eq!(read(json!(" family  admins ")), ["family", "admins"]);
        let zitadel = json!({
            "admins": { "2170...": "example.zitadel.cloud" },
            "family": { "2170...": "example.zitadel.cloud" },
            "": {},
        });
        assert_eq!(read(zitadel), ["admins", "family"]);
        assert!(read(json!(true)).is_empty());
        assert!(read(json!(null)).is_empty());
        assert!(groups(None).is_empty());
    }
}
