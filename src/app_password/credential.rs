//! What an app password looks like. Its client ID is `ap_` and 24 hex digits (never
//! confused with a service token's `<name>.<8 hex digits>`); its secret is 24 random bytes
//! and an 8-byte tag, base64url. The tag is an HMAC under the session secret over the ID,
//! the app and the random part, so a guessed secret, or a real one presented on another
//! app, is refused before any KV read. KV holds only the SHA-256 of the whole secret.

use crate::crypto::{self, b64url, b64url_decode, random_bytes, sha256, Random, RandomError};
use crate::secret::{ClientCredential, SigningKeys};
use crate::store::keys::AppPasswordId;

const ID_BYTES: usize = AppPasswordId::HEX_DIGITS / 2;
const RANDOM_BYTES: usize = 24;
const TAG_BYTES: usize = 8;
const TAG_PURPOSE: &str = "portcullis app password v1";

/// Whether `client_id` has the form of an app password's ID (`ap_` + 24 lower-case hex).
pub fn is_id(client_id: &str) -> bool {
    AppPasswordId::parse(client_id).is_some()
}

/// A new app password's credentials: shown once, then only the hash is kept.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: AppPasswordId,
    pub secret: ClientCredential,
    pub secret_sha256: [u8; 32],
}

fn tag(key: &[u8], id: &str, app: &str, random: &[u8]) -> [u8; 32] {
    let message = [id.as_bytes(), b"\0", app.as_bytes(), b"\0", random].concat();
    crypto::hmac_sha256(key, TAG_PURPOSE, &message)
}

impl NewCredential {
    /// A fresh ID and secret for an app password on `app`.
    pub fn generate(app: &str, keys: &SigningKeys, rng: &impl Random) -> Result<Self, RandomError> {
        let id_bytes: [u8; ID_BYTES] = random_bytes(rng)?;
        let id: String = std::iter::once(AppPasswordId::PREFIX.to_string())
            .chain(id_bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        // Made in the form `parse` takes (a prefix and 2 × ID_BYTES hex digits).
        let id = AppPasswordId::parse(&id).ok_or(RandomError)?;
        let random: [u8; RANDOM_BYTES] = random_bytes(rng)?;
        let mut secret = random.to_vec();
        secret.extend_from_slice(&tag(keys.current(), &id, app, &random)[..TAG_BYTES]);
        let secret = b64url(&secret);
        Ok(Self {
            secret_sha256: sha256(secret.as_bytes()),
            secret: ClientCredential::new(secret),
            id,
        })
    }
}

/// Whether a presented secret was made by this gate for this ID and app (under any of the
/// signing keys). Costs two HMACs at most, and no I/O: what fails here never reaches KV.
pub fn tag_verifies(id: &str, app: &str, secret: &str, keys: &SigningKeys) -> bool {
    let Some(bytes) = b64url_decode(secret) else {
        return false;
    };
    if bytes.len() != RANDOM_BYTES + TAG_BYTES {
        return false;
    }
    let (random, given) = bytes.split_at(RANDOM_BYTES);
    keys.all()
        .any(|key| crypto::ct_eq(&tag(key, id, app, random)[..TAG_BYTES], given))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SystemRandom;

    fn keys(k: &[u8]) -> SigningKeys {
        SigningKeys::new(vec![k.to_vec()]).unwrap()
    }

    #[test]
    fn generated_credentials_have_the_documented_form() {
        let k = keys(b"0123456789abcdef0123456789abcdef");
        let c = NewCredential::generate("photos.example.com", &k, &SystemRandom).unwrap();
        assert!(is_id(&c.id), "{}", c.id);
        assert_eq!(c.id.len(), 27);
        assert_eq!(c.secret.expose().len(), 43);
        assert_eq!(c.secret_sha256, sha256(c.secret.expose().as_bytes()));
        let other = NewCredential::generate("photos.example.com", &k, &SystemRandom).unwrap();
        assert_ne!(c.id, other.id);
        assert_ne!(c.secret.expose(), other.secret.expose());
    }

    #[test]
    fn the_tag_binds_id_app_and_key() {
        let k = keys(b"0123456789abcdef0123456789abcdef");
        let c = NewCredential::generate("photos.example.com", &k, &SystemRandom).unwrap();
        let s = c.secret.expose();
        assert!(tag_verifies(&c.id, "photos.example.com", s, &k));
        assert!(!tag_verifies(&c.id, "sonarr.example.com", s, &k));
        assert!(!tag_verifies(
            "ap_000000000000000000000000",
            "photos.example.com",
            s,
            &k
        ));
        assert!(!tag_verifies(
            &c.id,
            "photos.example.com",
            s,
            &keys(b"another key of 32 bytes........")
        ));
        // A rotated-in key still accepts what the old one made while it is listed.
        let both = SigningKeys::new(vec![
            b"new key 0123456789abcdef01234567".to_vec(),
            b"0123456789abcdef0123456789abcdef".to_vec(),
        ])
        .unwrap();
        assert!(tag_verifies(&c.id, "photos.example.com", s, &both));
        // Tampering with any character fails.
        let mut chars: Vec<char> = s.chars().collect();
        chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(!tag_verifies(&c.id, "photos.example.com", &tampered, &k));
        for junk in ["", "x", "!!!!", &"A".repeat(43), &"A".repeat(4000)] {
            assert!(!tag_verifies(&c.id, "photos.example.com", junk, &k));
        }
    }

    #[test]
    fn id_form() {
        assert!(is_id("ap_0123456789abcdef01234567"));
        for not in [
            "ap_0123456789ABCDEF01234567",
            "ap_0123456789abcdef0123456",
            "ap_0123456789abcdef012345678",
            "immich-mobile.8f3c1a2b",
            "ap_0123456789abcdef0123456g",
            "",
            "ap_",
        ] {
            assert!(!is_id(not), "{not}");
        }
    }
}
