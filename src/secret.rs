//! Secret values, one type per kind of credential: a refresh token cannot be passed where
//! an ID token or the client secret is wanted. Every kind shares one implementation: its
//! `Debug` output is `[redacted]`, so a secret that ends up in a log line or a panic
//! message does not leak, and equality is compared in constant time.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of secret, as type markers.
pub mod kind {
    /// The OIDC client secret (`OIDC_CLIENT_SECRET`).
    pub enum ClientSecret {}
    /// The admin API's bearer token (`ADMIN_TOKEN`).
    pub enum AdminToken {}
    /// An ID token from the issuer (kept for `id_token_hint`).
    pub enum IdToken {}
    /// An access token from the issuer.
    pub enum AccessToken {}
    /// A refresh token from the issuer.
    pub enum RefreshToken {}
    /// A login's `state`, `nonce` or PKCE verifier.
    pub enum LoginValue {}
    /// A session cookie's value.
    pub enum SessionCookie {}
    /// A service token's or an app password's secret part.
    pub enum ClientCredential {}
    /// A private JSON Web Key.
    pub enum PrivateKey {}
}

/// A secret string of kind `K`.
pub struct Secret<K>(String, PhantomData<fn() -> K>);

pub type ClientSecret = Secret<kind::ClientSecret>;
pub type AdminToken = Secret<kind::AdminToken>;
pub type IdToken = Secret<kind::IdToken>;
pub type AccessToken = Secret<kind::AccessToken>;
pub type RefreshToken = Secret<kind::RefreshToken>;
pub type LoginValue = Secret<kind::LoginValue>;
pub type SessionCookie = Secret<kind::SessionCookie>;
pub type ClientCredential = Secret<kind::ClientCredential>;
pub type PrivateKey = Secret<kind::PrivateKey>;

impl<K> Secret<K> {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into(), PhantomData)
    }

    /// The secret itself; call only where it is sent or used as key material.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<K> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}

/// Constant time in the length compared, so a comparison reveals nothing of where two
/// secrets differ.
impl<K> PartialEq for Secret<K> {
    fn eq(&self, other: &Self) -> bool {
        crate::crypto::ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl<K> Eq for Secret<K> {}

impl<K> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

// Stored secrets (e.g. the ID token kept for logout) serialize as plain strings.
impl<K> Serialize for Secret<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, K> Deserialize<'de> for Secret<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// The keys that sign session and login cookies (from `SESSION_SECRET`, comma-separated).
/// The first signs; every key verifies, so a new key can be rolled out before the old one
/// is removed.
#[derive(Clone)]
pub struct SigningKeys(Vec<Vec<u8>>);

impl SigningKeys {
    /// At least one key; `Config` guarantees it.
    pub(crate) fn new(keys: Vec<Vec<u8>>) -> Option<Self> {
        if keys.is_empty() {
            None
        } else {
            Some(Self(keys))
        }
    }

    pub fn current(&self) -> &[u8] {
        // `new` refuses an empty list.
        self.0.first().map(Vec::as_slice).unwrap_or_default()
    }

    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(Vec::as_slice)
    }

    /// An encryption key derived from each signing key for `purpose` (the first is current).
    pub fn derived(&self, purpose: &str) -> impl Iterator<Item = [u8; 32]> + '_ {
        let purpose = purpose.to_string();
        self.all()
            .map(move |key| crate::crypto::hmac_sha256(key, &purpose, b"derived key"))
    }

    /// Encrypts `plaintext` under the current key derived for `purpose`, bound to `context`
    /// (e.g. a refresh token to the one session or app password it belongs to).
    pub fn seal(
        &self,
        purpose: &str,
        context: &str,
        plaintext: &str,
        rng: &impl crate::crypto::Random,
    ) -> Option<String> {
        let key = self.derived(purpose).next()?;
        crate::crypto::seal(&key, context.as_bytes(), plaintext.as_bytes(), rng).ok()
    }

    /// Decrypts what [`SigningKeys::seal`] produced, under any listed key.
    pub fn open(&self, purpose: &str, context: &str, sealed: &str) -> Option<String> {
        self.derived(purpose)
            .find_map(|key| crate::crypto::open(&key, context.as_bytes(), sealed))
            .and_then(|plain| String::from_utf8(plain).ok())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} redacted key(s)]", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let s = RefreshToken::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s, RefreshToken::new("hunter2"));
        assert_ne!(s, RefreshToken::new("hunter3"));
        assert_ne!(s, RefreshToken::new("hunter"));
        let k = SigningKeys::new(vec![b"0123456789abcdef0123456789abcdef".to_vec()]).unwrap();
        assert!(!format!("{k:?}").contains("0123"));
    }
}
