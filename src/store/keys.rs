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

use crate::crypto::{b64url, sha256};

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

pub fn session_key(session_hash: &str) -> String {
    format!("{SESSION_PREFIX}{session_hash}")
}

/// The prefix of every index key of a person's sessions.
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

pub fn app_password_key(id: &str) -> String {
    format!("{APP_PASSWORD_PREFIX}{id}")
}

/// The prefix of every index key of a person's app passwords.
pub fn user_app_password_prefix(sub: &str) -> String {
    format!("{USER_APP_PASSWORD_PREFIX}{}:", hash(sub))
}

pub fn user_app_password_key(sub: &str, id: &str) -> String {
    format!("{}{id}", user_app_password_prefix(sub))
}

/// The tombstone of a revoked grant: a session (by its hash) or an app password (by its ID).
pub fn revoked_key(grant: &str) -> String {
    format!("{REVOKED_PREFIX}{grant}")
}

/// The key remembering a back-channel logout token ID.
pub fn jti_key(jti: &str) -> String {
    format!("{JTI_PREFIX}{}", hash(jti))
}

/// The session hash at the end of an index key.
pub fn session_hash_of(index_key: &str) -> Option<&str> {
    index_key.rsplit(':').next().filter(|h| is_session_hash(h))
}

/// Whether `text` has the form of a session hash (unpadded base64url of SHA-256): what
/// the admin API and the owner's tools take before it becomes part of a KV key.
pub fn is_session_hash(text: &str) -> bool {
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
        assert!(user_app_password_key("alice", "ap_1").starts_with(USER_APP_PASSWORD_PREFIX));
        assert!(
            !user_app_password_prefix("alice").starts_with(USER_PREFIX),
            "a session listing never lists app passwords"
        );
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
