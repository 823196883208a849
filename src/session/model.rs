//! What a session holds: who the user is, since when and until when, and what logout needs.

use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::secret::IdToken;

/// The stored session (JSON in KV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Format version, so a later release can read or discard older records.
    pub v: u8,
    pub identity: Identity,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; KV expires the record at the same moment.
    pub expires: u64,
    /// The host the login happened on.
    pub host: String,
    /// The issuer's session ID (`sid` claim), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The ID token, sent back as `id_token_hint` at logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// The browser's User-Agent at login (shortened), for the sessions page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Where the login came from, as Cloudflare placed it (city, country), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The refresh token, encrypted (only with `revalidate_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// When the issuer last vouched for the user (login or re-validation), unix seconds.
    #[serde(default)]
    pub validated: u64,
    /// When the user last authenticated at the issuer (`auth_time` at login), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

pub const SESSION_FORMAT: u8 = 1;

impl Session {
    pub fn is_live(&self, now: u64) -> bool {
        self.v == SESSION_FORMAT && now < self.expires
    }

    /// Whether the person authenticated at the issuer at most `max_age` ago, as its login
    /// said (`auth_time`).
    pub fn logged_in_within(&self, max_age: u64, now: u64) -> bool {
        crate::oidc::id_token::authenticated_within(self.auth_time, max_age, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_token() {
        let s = Session {
            v: SESSION_FORMAT,
            identity: Identity {
                sub: "s".into(),
                groups: vec!["g".into()],
                ..Default::default()
            },
            created: 10,
            expires: 20,
            host: "h".into(),
            sid: Some("sid".into()),
            id_token: Some(IdToken::new("eyJ.secret-token-value")),
            user_agent: None,
            location: None,
            refresh: None,
            validated: 10,
            auth_time: Some(9),
        };
        let json = serde_json::to_string(&s).unwrap();
        let back: Session = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(s.is_live(19));
        assert!(!s.is_live(20));
        assert!(!format!("{s:?}").contains("secret-token-value"));
    }
}
