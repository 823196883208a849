//! The signed identity assertion sent to apps as `Portcullis-Assertion`: a short-lived JWT
//! (ES256 or EdDSA) that apps, or a small middleware in front of them, can verify against
//! `/.portcullis/jwks.json` instead of trusting plain headers.

use std::fmt;

use jwt_compact::alg::{Ed25519, Es256};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::crypto::{b64url, random_bytes, Random};
use crate::identity::Identity;

/// How long an assertion is valid.
pub const ASSERTION_LIFETIME: u64 = 300;

#[derive(Clone)]
enum Signer {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_compact::SecretKey),
}

/// The private key from the `ASSERTION_KEY` secret (a JWK: EC P-256 or OKP Ed25519).
#[derive(Clone)]
pub struct AssertionKey {
    kid: String,
    signer: Signer,
    public_jwk: Value,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AssertionKey({}, kid {}, [redacted])",
            self.alg(),
            self.kid
        )
    }
}

impl AssertionKey {
    /// Parses the secret. The error says what is wrong without repeating the key.
    pub fn from_jwk(text: &str) -> Result<Self, String> {
        let fix = "generate one with `scripts/assertion-key`";
        let value: Value = serde_json::from_str(text.trim())
            .map_err(|_| format!("is not a JSON Web Key; {fix}"))?;
        let jwk: JsonWebKey<'_> = serde_json::from_value(value.clone())
            .map_err(|_| format!("is not a usable JSON Web Key; {fix}"))?;
        if !jwk.is_signing_key() {
            return Err(format!(
                "is a public key; the private key (with \"d\") is needed; {fix}"
            ));
        }
        let signer = match &jwk {
            JsonWebKey::EllipticCurve { curve, .. } if curve == "P-256" => Signer::Es256(
                p256::ecdsa::SigningKey::try_from(&jwk)
                    .map_err(|_| format!("is not a valid P-256 key; {fix}"))?,
            ),
            JsonWebKey::KeyPair { curve, .. } if curve == "Ed25519" => Signer::EdDsa(
                ed25519_compact::SecretKey::try_from(&jwk)
                    .map_err(|_| format!("is not a valid Ed25519 key; {fix}"))?,
            ),
            _ => {
                return Err(format!(
                    "must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key; {fix}"
                ))
            }
        };
        let public = jwk.to_verifying_key();
        let kid = match value.get("kid").and_then(Value::as_str) {
            Some(kid) if !kid.is_empty() => kid.to_string(),
            // RFC 7638 thumbprint.
            _ => b64url(&public.thumbprint::<Sha256>()),
        };
        let mut public_jwk = serde_json::to_value(&public).map_err(|e| e.to_string())?;
        let alg = match signer {
            Signer::Es256(_) => "ES256",
            Signer::EdDsa(_) => "EdDSA",
        };
        public_jwk["kid"] = kid.clone().into();
        public_jwk["alg"] = alg.into();
        public_jwk["use"] = "sig".into();
        Ok(Self {
            kid,
            signer,
            public_jwk,
        })
    }

    /// A new private key as the JWK `ASSERTION_KEY` holds (`ES256` or `EdDSA`), with its
    /// RFC 7638 thumbprint as `kid`. Parsed back by [`AssertionKey::from_jwk`].
    pub fn generate(alg: &str, rng: &impl Random) -> Result<String, String> {
        let seed: [u8; 32] =
            random_bytes(rng).map_err(|_| "no randomness available".to_string())?;
        let (jwk, public) = match alg {
            "ES256" => {
                // A random 32-byte string is a valid P-256 scalar except with negligible
                // probability; such a draw is refused rather than retried.
                let key = p256::ecdsa::SigningKey::from_bytes(&seed.into())
                    .map_err(|_| "drew an invalid P-256 scalar; run again".to_string())?;
                let jwk =
                    serde_json::to_value(JsonWebKey::from(&key)).map_err(|e| e.to_string())?;
                let public = JsonWebKey::from(key.verifying_key()).thumbprint::<Sha256>();
                (jwk, public)
            }
            "EdDSA" => {
                let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed)).sk;
                let jwk =
                    serde_json::to_value(JsonWebKey::from(&key)).map_err(|e| e.to_string())?;
                let verifying = JsonWebKey::from(&key).to_verifying_key();
                (jwk, verifying.thumbprint::<Sha256>())
            }
            other => return Err(format!("unknown algorithm {other:?}; use ES256 or EdDSA")),
        };
        let mut jwk = jwk;
        jwk["kid"] = b64url(&public).into();
        jwk["alg"] = alg.into();
        jwk["use"] = "sig".into();
        Ok(jwk.to_string())
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Es256(_) => "ES256",
            Signer::EdDsa(_) => "EdDSA",
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set served at `/.portcullis/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    /// A signed assertion of `identity` for the app at `audience`, issued by `issuer`.
    pub fn sign(
        &self,
        issuer: &str,
        audience: &str,
        identity: &Identity,
        now: u64,
    ) -> Result<String, String> {
        let mut claims = Map::new();
        claims.insert("iss".into(), issuer.into());
        claims.insert("aud".into(), audience.into());
        claims.insert("sub".into(), identity.sub.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ASSERTION_LIFETIME).into());
        if let Some(email) = &identity.email {
            claims.insert("email".into(), email.clone().into());
            claims.insert("email_verified".into(), identity.email_verified.into());
        }
        if let Some(name) = &identity.name {
            claims.insert("name".into(), name.clone().into());
        }
        if let Some(username) = &identity.preferred_username {
            claims.insert("preferred_username".into(), username.clone().into());
        }
        claims.insert("groups".into(), identity.groups.clone().into());
        let header = Header::empty()
            .with_key_id(&self.kid)
            .with_token_type("JWT");
        let claims = Claims::new(claims);
        match &self.signer {
            Signer::Es256(key) => Es256.token(&header, &claims, key),
            Signer::EdDsa(key) => Ed25519.token(&header, &claims, key),
        }
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::jwks::testing::{ed25519_pair, es256_pair};
    use crate::oidc::jwks::{self, KeySet};

    #[test]
    fn generated_keys_are_accepted_and_sign_verifiable_assertions() {
        for alg in ["ES256", "EdDSA"] {
            let text = AssertionKey::generate(alg, &crate::crypto::SystemRandom).unwrap();
            let key = AssertionKey::from_jwk(&text).unwrap();
            assert_eq!(key.alg(), alg);
            let jwk: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                jwk["kid"].as_str(),
                Some(key.kid()),
                "kid is the thumbprint"
            );
            assert!(jwk.get("d").is_some(), "a private key");
            let id = Identity {
                sub: "alice".into(),
                ..Default::default()
            };
            let token = key.sign("https://h/.portcullis", "h", &id, 1_000).unwrap();
            let set = KeySet::parse(&key.jwks().to_string()).unwrap();
            assert!(jwks::testing::verify_now(&token, &set).is_ok());
        }
        assert!(AssertionKey::generate("RS256", &crate::crypto::SystemRandom).is_err());
    }

    fn private_jwk(public: Value, d: &[u8]) -> String {
        let mut jwk = public;
        jwk["d"] = b64url(d).into();
        jwk.to_string()
    }

    fn alice() -> Identity {
        Identity {
            sub: "alice-1".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            name: None,
            preferred_username: Some("alice".into()),
            groups: vec!["family".into()],
        }
    }

    #[test]
    fn es256_and_eddsa_assertions_verify_against_the_served_jwks() {
        let (_, ec_public) = es256_pair(3);
        let (_, ed_public) = ed25519_pair(4);
        for text in [
            private_jwk(ec_public, &[3; 32]),
            private_jwk(ed_public, &[4; 32]),
        ] {
            let key = AssertionKey::from_jwk(&text).unwrap();
            let token = key
                .sign(
                    "https://photos.example.com/.portcullis",
                    "photos.example.com",
                    &alice(),
                    1_000,
                )
                .unwrap();
            let set = KeySet::parse(&key.jwks().to_string()).unwrap();
            let v = jwks::testing::verify_now(&token, &set).unwrap();
            assert_eq!(v.header.kid.as_deref(), Some(key.kid()));
            let c = &v.claims.custom;
            assert_eq!(c["iss"], "https://photos.example.com/.portcullis");
            assert_eq!(c["aud"], "photos.example.com");
            assert_eq!(c["sub"], "alice-1");
            assert_eq!(c["groups"], json!(["family"]));
            assert_eq!(v.claims.expiration.unwrap().timestamp(), 1_300);
            assert!(
                !key.jwks().to_string().contains("\"d\""),
                "the JWKS holds no private part"
            );
            assert!(!format!("{key:?}").contains(&b64url(&[3; 32])));
        }
    }

    #[test]
    fn bad_keys_are_explained() {
        let (_, ec_public) = es256_pair(3);
        for (text, needle) in [
            ("not json".to_string(), "not a JSON Web Key"),
            (ec_public.to_string(), "public key"),
            (
                json!({ "kty": "oct", "k": "c2VjcmV0" }).to_string(),
                "P-256",
            ),
        ] {
            let e = AssertionKey::from_jwk(&text).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(e.contains("scripts/assertion-key"));
        }
    }
}
