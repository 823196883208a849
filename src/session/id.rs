//! The session ID and its cookie form.
//!
//! The ID is 256 random bits. The cookie carries `id.mac`, where `mac` is an HMAC of the ID
//! under `SESSION_SECRET`, so a forged or garbage cookie is refused before any KV read.
//! KV never sees the ID itself, only its SHA-256 hash: a leaked KV listing cannot be
//! turned into a cookie.

use std::fmt;

use crate::crypto::{self, Random, RandomError};
use crate::secret::SigningKeys;
use crate::store::keys::SessionHash;

const MAC_PURPOSE: &str = "portcullis session id v1";

#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl SessionId {
    pub fn generate(rng: &impl Random) -> Result<Self, RandomError> {
        crypto::random_bytes(rng).map(Self)
    }

    /// The ID's SHA-256 in base64url: the handle shown to users and admins and
    /// the suffix of the KV key.
    pub fn hash(&self) -> SessionHash {
        SessionHash::of_id(&self.0)
    }

    /// `id.mac`, signed with the current key.
    pub fn to_cookie_value(&self, keys: &SigningKeys) -> String {
        let mac = crypto::hmac_sha256(keys.current(), MAC_PURPOSE, &self.0);
        format!("{}.{}", crypto::b64url(&self.0), crypto::b64url(&mac))
    }

    /// The ID from a cookie value whose MAC verifies under any configured key.
    pub fn from_cookie_value(value: &str, keys: &SigningKeys) -> Option<Self> {
        // 43 + 1 + 43 characters; anything longer is not ours and not worth decoding.
        if value.len() != 87 {
            return None;
        }
        let (id, mac) = value.split_once('.')?;
        let id: [u8; 32] = crypto::b64url_decode(id)?.try_into().ok()?;
        let mac = crypto::b64url_decode(mac)?;
        keys.all()
            .any(|key| crypto::hmac_sha256_verify(key, MAC_PURPOSE, &id, &mac))
            .then_some(Self(id))
    }

    /// A value bound to this session for another purpose (e.g. a CSRF token).
    pub fn derive(&self, keys: &SigningKeys, purpose: &str) -> String {
        crypto::b64url(&crypto::hmac_sha256(keys.current(), purpose, &self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(hash {})", self.hash())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::testing::CountingRandom;

    fn keys(list: &[&str]) -> SigningKeys {
        SigningKeys::new(list.iter().map(|k| k.as_bytes().to_vec()).collect()).unwrap()
    }

    const K1: &str = "0123456789abcdef0123456789abcdef";

    fn read(value: &str, key: &str) -> Option<SessionId> {
        SessionId::from_cookie_value(value, &keys(&[key]))
    }

    /// A new ID and its cookie value signed with K1.
    fn issued() -> (SessionId, String) {
        let id = SessionId::generate(&CountingRandom::default()).unwrap();
        let value = id.to_cookie_value(&keys(&[K1]));
        (id, value)
    }
    const K2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn cookie_round_trip() {
        let (id, value) = issued();
        assert_eq!(read(&value, K1), Some(id.clone()));
        let key = crate::store::keys::session_key(&id.hash());
        assert!(key.starts_with("session:"));
        assert_eq!(key.len(), "session:".len() + 43);
        assert!(
            !key.contains(&value[..43]),
            "KV key must not contain the raw ID"
        );
    }

    #[test]
    fn forged_and_garbage_cookies_are_refused() {
        let (_, value) = issued();
        assert_eq!(read(&value, K2), None, "wrong key");
        let mut tampered = value.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            SessionId::from_cookie_value(&tampered, &keys(&[K1])),
            None,
            "changed ID"
        );
        for garbage in [
            "",
            "abc",
            "a.b",
            &"x".repeat(87),
            &format!("{value}x"),
            &value.replace('.', "!"),
        ] {
            assert_eq!(
                SessionId::from_cookie_value(garbage, &keys(&[K1])),
                None,
                "{garbage}"
            );
        }
    }

    #[test]
    fn rotation_old_key_still_verifies_new_key_signs() {
        let id = SessionId::generate(&CountingRandom::default()).unwrap();
        let old = id.to_cookie_value(&keys(&[K1]));
        let rotated = keys(&[K2, K1]);
        assert_eq!(
            SessionId::from_cookie_value(&old, &rotated),
            Some(id.clone())
        );
        let new = id.to_cookie_value(&rotated);
        assert_ne!(new, old);
        assert_eq!(SessionId::from_cookie_value(&new, &keys(&[K1])), None);
    }

    #[test]
    fn debug_shows_only_the_hash() {
        let id = SessionId::generate(&CountingRandom::default()).unwrap();
        let raw = crypto::b64url(&id.0);
        assert!(!format!("{id:?}").contains(&raw));
    }
}
