//! Secret values. Their `Debug` output is `[redacted]`, so a secret that ends up in a log
//! line or a panic message does not leak.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string (e.g. the OIDC client secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent or used as key material.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

// Stored secrets (e.g. the ID token kept for logout) serialize as plain strings.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
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
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let k = SigningKeys::new(vec![b"0123456789abcdef0123456789abcdef".to_vec()]).unwrap();
        assert!(!format!("{k:?}").contains("0123"));
    }
}
