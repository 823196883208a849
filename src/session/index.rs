//! How sessions are found again without reading every record: index keys whose KV metadata
//! holds a summary, so one `list` by prefix answers "which sessions does this user have"
//! or "which sessions carry this issuer session ID".
//!
//! ```text
//! session:<H>           the session record              H = SHA-256 of the session ID
//! user:<U>:<H>          summary in metadata             U = SHA-256 of the user's sub
//! sid:<S>:<H>           (for back-channel logout)       S = SHA-256 of the issuer's sid
//! jti:<J>               a back-channel logout token ID already honoured (replay defence)
//! revoked:<H>           a revoked session's tombstone: nothing may write it back
//! ```
//! All of a session's keys share its expiry. Raw `sub`/`sid` values never appear in key
//! names (they may be long or contain any character), only their hashes.

use serde::{Deserialize, Serialize};

use super::Session;
use crate::crypto::{b64url, sha256};
#[cfg(test)]
use crate::store::MAX_METADATA;
use crate::store::{fit_metadata, halve_longest};

pub const SESSION_PREFIX: &str = "session:";
pub const USER_PREFIX: &str = "user:";
pub const SID_PREFIX: &str = "sid:";
pub const JTI_PREFIX: &str = "jti:";
pub const REVOKED_PREFIX: &str = "revoked:";

fn hash(text: &str) -> String {
    b64url(&sha256(text.as_bytes()))
}

pub fn session_key(session_hash: &str) -> String {
    format!("{SESSION_PREFIX}{session_hash}")
}

/// The prefix of every index key of a user's sessions.
pub fn user_prefix(sub: &str) -> String {
    format!("{USER_PREFIX}{}:", hash(sub))
}

pub fn user_key(sub: &str, session_hash: &str) -> String {
    format!("{}{session_hash}", user_prefix(sub))
}

pub fn sid_prefix(sid: &str) -> String {
    format!("{SID_PREFIX}{}:", hash(sid))
}

pub fn sid_key(sid: &str, session_hash: &str) -> String {
    format!("{}{session_hash}", sid_prefix(sid))
}

/// The tombstone of a revoked session (or app password, by its ID).
pub fn revoked_key(session_hash: &str) -> String {
    format!("{REVOKED_PREFIX}{session_hash}")
}

/// The value of a tombstone, and of a record overwritten as one: neither a session nor an
/// app password, so no reader accepts it.
pub const TOMBSTONE: &str = "revoked";

/// How long a tombstone (or any key of something expiring at `expires`) is kept: as long
/// as any copy of what it revokes could be used, and at least KV's minimum of 60 s.
pub fn ttl_until(expires: u64, now: u64) -> u64 {
    expires.saturating_sub(now).max(60)
}

/// The key remembering a back-channel logout token ID.
pub fn jti_key(jti: &str) -> String {
    format!("{JTI_PREFIX}{}", hash(jti))
}

/// The session hash at the end of an index key.
pub fn session_hash_of(index_key: &str) -> Option<&str> {
    index_key.rsplit(':').next().filter(|h| is_session_hash(h))
}

/// Whether `text` has the form of a session hash (unpadded base64url of SHA-256, as
/// [`hash`] makes it): what the owner's tools take before it becomes part of a KV key.
pub fn is_session_hash(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the user index keeps about a session (KV metadata, at most 1024 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub host: String,
    pub created: u64,
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The issuer's session ID, when there is one (to remove the `sid:` index too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Summary {
    pub fn of(session: &Session) -> Self {
        Summary {
            sub: session.identity.sub.clone(),
            email: session.identity.email.clone(),
            host: session.host.clone(),
            created: session.created,
            expires: session.expires,
            user_agent: session.user_agent.clone(),
            sid: session.sid.clone(),
        }
    }

    /// The metadata JSON, shortened to fit KV's limit: the user agent goes first, then the
    /// longest text is halved until it fits. Never dropped: a session nobody can find
    /// cannot be revoked. (A shortened `sub` still lists under its user: the key holds
    /// the hash of the whole `sub`; see [`Summary::is_of`].)
    pub fn to_metadata(&self) -> String {
        let mut shorter = self.clone();
        fit_metadata(&mut shorter, |s| {
            if s.user_agent.take().is_some() {
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
    use crate::identity::Identity;
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
            refresh: None,
            validated: 1,
            auth_time: None,
        }
    }

    #[test]
    fn keys() {
        let h = "x".repeat(43);
        assert!(user_key("alice", &h).starts_with(&user_prefix("alice")));
        assert_ne!(user_prefix("alice"), user_prefix("alice2"));
        assert!(
            !user_key("alice@example.com", &h).contains("alice"),
            "no raw sub in keys"
        );
        assert_eq!(session_hash_of(&user_key("alice", &h)), Some(h.as_str()));
        assert_eq!(session_hash_of(&sid_key("s", &h)), Some(h.as_str()));
        assert_eq!(session_hash_of("user:short"), None);
    }

    #[test]
    fn metadata_fits_kv() {
        let s = Summary::of(&session("alice", Some("Mozilla/5.0".into())));
        let m = s.to_metadata();
        assert_eq!(Summary::from_metadata(Some(&m)), Some(s));
        let long_ua = Summary::of(&session("alice", Some("x".repeat(2000))));
        let m = long_ua.to_metadata();
        assert!(m.len() <= MAX_METADATA);
        assert!(!m.contains("xxxx"));
        // Shortened, never dropped: the session can still be listed and revoked.
        let huge = Summary::of(&session(&"s".repeat(2000), Some("ua".into())));
        let m = huge.to_metadata();
        assert!(m.len() <= MAX_METADATA);
        let back = Summary::from_metadata(Some(&m)).unwrap();
        assert!(back.is_of(&"s".repeat(2000)));
        assert!(!back.is_of("someone-else"));
        let quotes = Summary::of(&session(&"\"".repeat(3000), None));
        assert!(
            quotes.to_metadata().len() <= MAX_METADATA,
            "escaping counted"
        );
    }
}
