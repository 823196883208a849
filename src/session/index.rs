//! What the user index keeps about each session (its key's metadata), so one `list` by
//! prefix answers "which sessions does this person have" without reading every record.
//! The keys themselves are in [`crate::store::keys`].

use serde::{Deserialize, Serialize};

use super::Session;
use crate::store::keys::SessionHash;
#[cfg(test)]
use crate::store::MAX_METADATA;
use crate::store::{fit_metadata, halve_longest};

/// What the user index keeps about a session (KV metadata, at most 1024 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub host: String,
    pub created: u64,
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The person's name (for the admin console), and where the login came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The issuer's session ID, when there is one (to remove the `sid:` index too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl SessionSummary {
    /// What every listing of sessions shows (the account page, the console and the admin
    /// API each add their own fields).
    pub fn to_json(&self, hash: &SessionHash) -> serde_json::Value {
        serde_json::json!({
            "session_id_hash": hash, "host": self.host, "created": self.created,
            "expires": self.expires, "user_agent": self.user_agent,
        })
    }

    pub fn of(session: &Session) -> Self {
        SessionSummary {
            sub: session.identity.sub.to_string(),
            email: session.identity.email.clone(),
            host: session.host.clone(),
            created: session.created,
            expires: session.expires,
            user_agent: session.user_agent.clone(),
            name: session.identity.name.clone(),
            location: session.location.clone(),
            sid: session.sid.clone(),
        }
    }

    /// The metadata JSON, shortened to fit KV's limit: the user agent goes first, then the
    /// longest text is halved until it fits. Never dropped: a session nobody can find
    /// cannot be revoked. (A shortened `sub` still lists under its user: the key holds
    /// the hash of the whole `sub`; see [`SessionSummary::is_of`].)
    pub fn to_metadata(&self) -> String {
        let mut shorter = self.clone();
        fit_metadata(&mut shorter, |s| {
            if s.user_agent.take().is_some() || s.location.take().is_some() || s.name.take().is_some() {
                return;
            }
            let (mut email, mut sid) = (s.email.take().unwrap_or_default(), s.sid.take().unwrap_or_default());
            halve_longest([&mut s.sub, &mut email, &mut s.host, &mut sid]);
            s.email = Some(email).filter(|e| !e.is_empty());
            s.sid = Some(sid).filter(|e| !e.is_empty());
        })
        // Unreachable in practice (every text halves toward empty); the essentials only.
        .unwrap_or_else(|| {
            serde_json::json!({ "sub": "", "host": "", "created": self.created, "expires": self.expires })
                .to_string()
        })
    }

    /// Whether this summary is of the user `sub` (whose `sub` may have been shortened to
    /// fit KV's metadata limit).
    pub fn is_of(&self, sub: &str) -> bool {
        self.sub == sub || (self.sub.len() >= 64 && sub.starts_with(&self.sub))
    }

    pub fn from_metadata(text: Option<&str>) -> Option<Self> {
        serde_json::from_str(text?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Subject};
    use crate::session::model::SESSION_FORMAT;

    fn session(sub: &str, ua: Option<String>) -> Session {
        Session {
            v: SESSION_FORMAT,
            identity: Identity {
                sub: sub.into(),
                email: Some("a@example.com".into()),
                ..Default::default()
            },
            created: 1,
            expires: 2,
            host: "photos.example.com".into(),
            sid: Some("op-sid".into()),
            id_token: None,
            user_agent: ua,
            location: None,
            refresh: None,
            validated: 1,
            auth_time: None,
        }
    }

    #[test]
    fn metadata_fits_kv() {
        let s = SessionSummary::of(&session("alice", Some("Mozilla/5.0".into())));
        let m = s.to_metadata();
        assert_eq!(SessionSummary::from_metadata(Some(&m)), Some(s));
        let long_ua = SessionSummary::of(&session("alice", Some("x".repeat(2000))));
        let m = long_ua.to_metadata();
        assert!(m.len() <= MAX_METADATA);
        assert!(!m.contains("xxxx"));
        // Shortened, never dropped: the session can still be listed and revoked.
        let longest = "s".repeat(Subject::MAX_LEN);
        let mut record = session(&longest, Some("ua".into()));
        record.identity.email = Some("e".repeat(2000));
        record.sid = Some("d".repeat(1000));
        let huge = SessionSummary::of(&record);
        let m = huge.to_metadata();
        assert!(m.len() <= MAX_METADATA);
        let back = SessionSummary::from_metadata(Some(&m)).unwrap();
        assert!(back.is_of(&longest));
        assert!(!back.is_of("someone-else"));
        let mut quoted = session(&"\"".repeat(Subject::MAX_LEN), None);
        quoted.identity.email = Some("\"".repeat(3000));
        let quotes = SessionSummary::of(&quoted);
        assert!(
            quotes.to_metadata().len() <= MAX_METADATA,
            "escaping counted"
        );
    }
}
