//! Every key Portcullis keeps in the `SESSIONS` KV namespace, in one table. Raw `sub`,
//! `sid` and `jti` values never appear in key names (they may be long or contain any
//! character), only their SHA-256 (base64url); nor do raw session IDs (`H` below).
//!
//! | key                          | value                         | metadata        | TTL                     | written by |
//! |------------------------------|-------------------------------|-----------------|-------------------------|------------|
//! | `session:<H>`                | the session record (JSON)     | —               | until the session ends  | `session::registry` (login, re-validation) |
//! | `user:<U>:<H>`               | empty                         | session summary | until the session ends  | `session::registry` |
//! | `sid:<S>:<H>`                | empty                         | —               | until the session ends  | `session::registry` (when the issuer sent `sid`) |
//! | `app-password:<ID>`          | the app-password record (JSON)| —               | until it expires        | `app_password::registry` |
//! | `user-app-password:<U>:<ID>` | empty                         | its summary     | until it expires        | `app_password::registry` |
//! | `revoked:<H or ID>`          | [`TOMBSTONE`]                 | —               | as long as what it revokes could live | `grant::tombstone` (every revocation, `scripts/revoke`) |
//! | `jti:<J>`                    | `1`                           | —               | the logout token's lifetime | `endpoints::backchannel` (replay defence) |
//!
//! `H` = SHA-256 of the session ID, `U` = of the person's `sub`, `S` = of the issuer's
//! `sid`, `J` = of a back-channel logout token's `jti`; `ID` = an app password's client ID
//! (`ap_` and 24 hex digits). A record overwritten by a revocation whose deletes failed
//! holds [`TOMBSTONE`] too, which no reader accepts. Every TTL is at least KV's minimum,
//! 60 s ([`ttl_until`]).

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::crypto::{b64url, sha256};

/// A session's name in KV and in the owner's tools: the SHA-256 of its ID, base64url
/// (43 characters). Made from an ID, or taken in exactly that form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionHash(String);

impl SessionHash {
    /// The hash of a session ID.
    pub fn of_id(id: &[u8]) -> Self {
        SessionHash(b64url(&sha256(id)))
    }

    /// A hash as written (an admin's request, a KV key): only in its own form.
    pub fn parse(text: &str) -> Option<Self> {
        is_session_hash(text).then(|| SessionHash(text.to_string()))
    }
}

/// An app password's client ID: `ap_` and 24 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppPasswordId(String);

impl AppPasswordId {
    pub const PREFIX: &'static str = "ap_";
    pub const HEX_DIGITS: usize = 24;

    /// An ID as presented or written: only in its own form.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == Self::HEX_DIGITS
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        valid.then(|| AppPasswordId(text.to_string()))
    }
}

/// A person at the issuer: the `sub` claim (OpenID Connect Core §2: at most 255 ASCII
/// characters, here: 1 to 255 bytes without control characters), taken from a verified
/// token or an admin's request only in that form. Keys hold only its hash (`U`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

impl Subject {
    pub const MAX_LEN: usize = 255;

    pub fn parse(text: &str) -> Option<Self> {
        let valid =
            !text.is_empty() && text.len() <= Self::MAX_LEN && !text.chars().any(char::is_control);
        valid.then(|| Subject(text.to_string()))
    }
}

macro_rules! name_type {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                $name::parse(&text).ok_or_else(|| format!("not {}: {text:?}", $what))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
    };
}

name_type!(SessionHash, "a session hash");
name_type!(AppPasswordId, "an app password ID");
name_type!(Subject, "a subject (sub)");

impl Subject {
    /// The subject of a service token, `service:<name>` (names are checked when the
    /// configuration is read: letters, digits, `-`, `_` and `.`, so always one).
    pub fn of_service(name: &str) -> Self {
        let text = format!("service:{name}");
        let cut = (0..=text.len().min(Self::MAX_LEN))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        Subject(text[..cut].to_string())
    }
}

impl PartialEq<&str> for Subject {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A literal in tests (which may panic on a malformed one).
#[cfg(test)]
impl From<&str> for Subject {
    fn from(text: &str) -> Self {
        Subject::parse(text).unwrap_or_else(|| panic!("not a subject: {text:?}"))
    }
}

/// What a tombstone names: a session or an app password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    Session(&'a SessionHash),
    AppPassword(&'a AppPasswordId),
}

impl Grant<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Grant::Session(hash) => hash,
            Grant::AppPassword(id) => id,
        }
    }
}

pub const SESSION_PREFIX: &str = "session:";
pub const USER_PREFIX: &str = "user:";
pub const SID_PREFIX: &str = "sid:";
pub const APP_PASSWORD_PREFIX: &str = "app-password:";
pub const USER_APP_PASSWORD_PREFIX: &str = "user-app-password:";
pub const REVOKED_PREFIX: &str = "revoked:";
pub const JTI_PREFIX: &str = "jti:";

/// The value of a tombstone, and of a record overwritten as one: neither a session nor an
/// app password, so no reader accepts it.
pub const TOMBSTONE: &str = "revoked";

fn hash(text: &str) -> String {
    b64url(&sha256(text.as_bytes()))
}

/// How long a key of something expiring at `expires` (its record, index keys, tombstone)
/// is kept: as long as any copy of it could be used, and at least KV's minimum of 60 s.
pub fn ttl_until(expires: u64, now: u64) -> u64 {
    expires.saturating_sub(now).max(60)
}

pub fn session_key(session_hash: &SessionHash) -> String {
    format!("{SESSION_PREFIX}{session_hash}")
}

/// An index's prefix for one value (`U` or `S`): the value only as its hash.
fn index_prefix(index: &str, value: &str) -> String {
    format!("{index}{}:", hash(value))
}

/// The prefix of every index key of a person's sessions.
pub fn user_prefix(sub: &str) -> String {
    index_prefix(USER_PREFIX, sub)
}

pub fn user_key(sub: &str, session_hash: &SessionHash) -> String {
    user_prefix(sub) + session_hash
}

pub fn sid_prefix(sid: &str) -> String {
    index_prefix(SID_PREFIX, sid)
}

pub fn sid_key(sid: &str, session_hash: &SessionHash) -> String {
    sid_prefix(sid) + session_hash
}

pub fn app_password_key(id: &AppPasswordId) -> String {
    format!("{APP_PASSWORD_PREFIX}{id}")
}

/// The prefix of every index key of a person's app passwords.
pub fn user_app_password_prefix(sub: &str) -> String {
    index_prefix(USER_APP_PASSWORD_PREFIX, sub)
}

pub fn user_app_password_key(sub: &str, id: &AppPasswordId) -> String {
    user_app_password_prefix(sub) + id
}

/// The tombstone of a revoked grant: a session (by its hash) or an app password (by its ID).
pub fn revoked_key(grant: Grant<'_>) -> String {
    format!("{REVOKED_PREFIX}{}", grant.as_str())
}

/// The key remembering a back-channel logout token ID.
pub fn jti_key(jti: &str) -> String {
    format!("{JTI_PREFIX}{}", hash(jti))
}

/// The session hash at the end of an index key.
pub fn session_hash_of(index_key: &str) -> Option<SessionHash> {
    index_key.rsplit(':').next().and_then(SessionHash::parse)
}

/// Whether `text` has the form of a session hash (unpadded base64url of SHA-256).
fn is_session_hash(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let h = SessionHash::parse(&"x".repeat(43)).unwrap();
        assert!(user_key("alice", &h).starts_with(&user_prefix("alice")));
        assert_ne!(user_prefix("alice"), user_prefix("alice2"));
        assert!(
            !user_key("alice@example.com", &h).contains("alice"),
            "no raw sub in keys"
        );
        assert_eq!(session_hash_of(&user_key("alice", &h)), Some(h.clone()));
        assert_eq!(session_hash_of(&sid_key("s", &h)), Some(h.clone()));
        assert_eq!(session_hash_of("user:short"), None);
        let id = AppPasswordId::parse("ap_0123456789abcdef01234567").unwrap();
        assert!(user_app_password_key("alice", &id).starts_with(USER_APP_PASSWORD_PREFIX));
        assert_eq!(
            revoked_key(Grant::AppPassword(&id)),
            "revoked:ap_0123456789abcdef01234567"
        );
        assert_eq!(
            revoked_key(Grant::Session(&h)),
            format!("revoked:{}", "x".repeat(43))
        );
        assert!(
            !user_app_password_prefix("alice").starts_with(USER_PREFIX),
            "a session listing never lists app passwords"
        );
    }

    #[test]
    fn a_subject_is_what_the_issuer_may_send_and_nothing_else() {
        for good in [
            "alice-1",
            "ålice 1",
            "0b8f7d52-3a1e-4c0f-9d3b-2f1e5a6c7d8e",
            &"s".repeat(255),
        ] {
            assert_eq!(
                Subject::parse(good).map(String::from).as_deref(),
                Some(good)
            );
        }
        for bad in ["", "bob\r", "a\nb", "\u{7f}", &"s".repeat(256)] {
            assert!(Subject::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Subject::of_service("nzb360").as_str(), "service:nzb360");
        assert_eq!(
            Subject::of_service(&"x".repeat(300)).len(),
            Subject::MAX_LEN
        );
        let json: Result<Subject, _> = serde_json::from_str("\"\"");
        assert!(
            json.is_err(),
            "a stored record with an empty sub does not load"
        );
    }

    #[test]
    fn names_are_taken_only_in_their_own_form() {
        for bad in [
            "",
            "x",
            &"A".repeat(44),
            &("A".repeat(42) + ":"),
            &("A".repeat(42) + "="),
        ] {
            assert!(SessionHash::parse(bad).is_none(), "{bad:?}");
        }
        assert!(SessionHash::parse(&("A".repeat(42) + "_")).is_some());
        for bad in [
            "ap_0123",
            "session:x",
            "ap_0123456789ABCDEF01234567",
            "ap_0123456789abcdef0123456:",
        ] {
            assert!(AppPasswordId::parse(bad).is_none(), "{bad:?}");
        }
        let json = serde_json::to_string(&SessionHash::of_id(b"id")).unwrap();
        assert_eq!(
            serde_json::from_str::<SessionHash>(&json).unwrap(),
            SessionHash::of_id(b"id")
        );
        assert!(serde_json::from_str::<AppPasswordId>("\"ap_1\"").is_err());
    }

    #[test]
    fn prefixes_do_not_overlap() {
        let all = [
            SESSION_PREFIX,
            USER_PREFIX,
            SID_PREFIX,
            APP_PASSWORD_PREFIX,
            USER_APP_PASSWORD_PREFIX,
            REVOKED_PREFIX,
            JTI_PREFIX,
        ];
        for a in all {
            for b in all {
                assert!(a == b || !a.starts_with(b), "{a} starts with {b}");
            }
        }
    }

    #[test]
    fn a_ttl_is_at_least_kv_minimum() {
        assert_eq!(ttl_until(10_000, 1_000), 9_000);
        assert_eq!(ttl_until(1_010, 1_000), 60);
        assert_eq!(ttl_until(0, 1_000), 60);
    }
}
