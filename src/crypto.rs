//! Small cryptographic helpers shared by the core: base64url, SHA-256, HMAC-SHA256,
//! constant-time comparison, and the source of randomness (a trait, so tests can
//! substitute a deterministic one and the core never reads a global RNG).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Where random bytes come from. The Worker uses `crypto.getRandomValues` (via `getrandom`).
pub trait Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The platform's cryptographic random number generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::getrandom(buf).map_err(|_| RandomError)
    }
}

/// The random number generator failed; nothing secure can be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random number generator failed")]
pub struct RandomError;

/// `N` random bytes.
pub fn random_bytes<const N: usize>(rng: &impl Random) -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    rng.fill(&mut buf)?;
    Ok(buf)
}

/// A random token of `N` bytes, base64url-encoded (for state, nonce, PKCE verifier, CSRF).
pub fn random_token<const N: usize>(rng: &impl Random) -> Result<String, RandomError> {
    Ok(b64url(&random_bytes::<N>(rng)?))
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 over `purpose` and `message`. The purpose label separates the uses of one
/// key (session cookie, login cookie, CSRF token) so a MAC made for one is useless for another.
pub fn hmac_sha256(key: &[u8], purpose: &str, message: &[u8]) -> [u8; 32] {
    mac(key, purpose, message).finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time.
pub fn hmac_sha256_verify(key: &[u8], purpose: &str, message: &[u8], tag: &[u8]) -> bool {
    mac(key, purpose, message).verify_slice(tag).is_ok()
}

fn mac(key: &[u8], purpose: &str, message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback
    // keeps the function total without an unwrap.
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()));
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(message);
    mac
}

/// Encrypts `plaintext` with AES-256-GCM under `key`, bound to `context` (associated data):
/// `base64url(nonce || ciphertext || tag)`.
pub fn seal(
    key: &[u8; 32],
    context: &[u8],
    plaintext: &[u8],
    rng: &impl Random,
) -> Result<String, RandomError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let nonce: [u8; 12] = random_bytes(rng)?;
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        .map_err(|_| RandomError)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64url(&out))
}

/// Decrypts what [`seal`] produced under the same key and context.
pub fn open(key: &[u8; 32], context: &[u8], sealed: &str) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let bytes = b64url_decode(sealed)?;
    if bytes.len() < 12 + 16 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(12);
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad: context,
            },
        )
        .ok()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::cell::Cell;

    /// Deterministic bytes for tests: a counter, never secure.
    #[derive(Default)]
    pub struct CountingRandom(Cell<u8>);

    impl Random for CountingRandom {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            for b in buf {
                let next = self.0.get().wrapping_add(1);
                self.0.set(next);
                *b = next;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_shape_and_separates_purposes() {
        let key = [7u8; 32];
        let a = hmac_sha256(&key, "session", b"id");
        let b = hmac_sha256(&key, "login", b"id");
        assert_ne!(a, b, "purpose labels must separate MACs");
        assert!(hmac_sha256_verify(&key, "session", b"id", &a));
        assert!(!hmac_sha256_verify(&key, "login", b"id", &a));
        assert!(!hmac_sha256_verify(&[8u8; 32], "session", b"id", &a));
        assert!(!hmac_sha256_verify(&key, "session", b"id", &a[..31]));
    }

    #[test]
    fn base64url_round_trip_and_rejects_garbage() {
        let data = [0xfb, 0xff, 0x00, 0x10];
        let text = b64url(&data);
        assert_eq!(text, "-_8AEA");
        assert_eq!(b64url_decode(&text).unwrap(), data);
        assert!(b64url_decode("not base64!").is_none());
        assert!(
            b64url_decode("+/8AEA").is_none(),
            "standard alphabet is not url-safe"
        );
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            b64url(&sha256(b"abc")),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn seal_and_open() {
        let rng = SystemRandom;
        let key = [9u8; 32];
        let sealed = seal(&key, b"session-a", b"refresh-token", &rng).unwrap();
        assert_eq!(open(&key, b"session-a", &sealed).unwrap(), b"refresh-token");
        assert!(
            open(&key, b"session-b", &sealed).is_none(),
            "bound to its context"
        );
        assert!(
            open(&[8u8; 32], b"session-a", &sealed).is_none(),
            "needs the key"
        );
        assert!(!sealed.contains("refresh"), "not in the clear");
        assert_ne!(
            sealed,
            seal(&key, b"session-a", b"refresh-token", &rng).unwrap(),
            "fresh nonce"
        );
        let mut tampered = b64url_decode(&sealed).unwrap();
        tampered[20] ^= 1;
        assert!(open(&key, b"session-a", &b64url(&tampered)).is_none());
        assert!(open(&key, b"session-a", "short").is_none());
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
