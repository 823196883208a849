//! The signed identity assertion sent to apps as `Portcullis-Assertion`: a short-lived JWT
//! (ES256 or EdDSA) that apps, or a small middleware in front of them, can verify against
//! `/.portcullis/jwks.json` instead of trusting plain headers.

use std::fmt;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto::{b64url, b64url_decode};
use crate::identity::Identity;
use crate::jose::jwks::{self, Alg, Jwk};
use crate::jose::signature::{PrivateJwk, SignatureCheck, Signed, Signer};

/// How long an assertion is valid.
pub const ASSERTION_LIFETIME: u64 = 300;

/// The private key from the `ASSERTION_KEY` secret (a JWK: EC P-256 or OKP Ed25519).
/// The signature arithmetic is a [`Signer`]'s: WebCrypto in the Worker.
#[derive(Clone)]
pub struct AssertionKey {
    kid: String,
    private: PrivateJwk,
    /// The public half, as a verifier imports it.
    public: Jwk,
    /// The public half as served at `/.portcullis/jwks.json`.
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

/// Why an assertion could not be signed: the key is unusable (WebCrypto refused it, or
/// its private and public halves do not belong together).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ASSERTION_KEY could not sign: {0}")]
pub struct SigningError(pub String);

impl AssertionKey {
    /// Parses the secret. The error says what is wrong without repeating the key.
    pub fn from_jwk(text: &str) -> Result<Self, String> {
        let fix = "generate one with `scripts/assertion-key`";
        let value: Value = serde_json::from_str(text.trim())
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("is not a JSON Web Key; {fix}"))?;
        let field = |name: &str| value.get(name).and_then(Value::as_str);
        let alg = match (field("kty"), field("crv")) {
            (Some("EC"), Some("P-256")) => Alg::Es256,
            (Some("OKP"), Some("Ed25519")) => Alg::EdDsa,
            _ => {
                return Err(format!(
                    "must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key; {fix}"
                ))
            }
        };
        let Some(d) = field("d") else {
            return Err(format!(
                "is a public key; the private key (with \"d\") is needed; {fix}"
            ));
        };
        let curve = match alg {
            Alg::Es256 => "P-256",
            _ => "Ed25519",
        };
        // The key's own parameters, each of the length its curve has (RFC 7518 §6.2,
        // RFC 8037 §2); whether they belong together is checked when signing.
        let public =
            jwks::parse_key(&value).ok_or_else(|| format!("is not a valid {curve} key; {fix}"))?;
        let d = b64url_decode(d)
            .filter(|d| d.len() == 32)
            .ok_or_else(|| format!("is not a valid {curve} key; {fix}"))?;
        let mut public_jwk: Value = serde_json::from_str(&public.public)
            .map_err(|_| format!("is not a valid {curve} key; {fix}"))?;
        let mut private = public_jwk.clone();
        private["d"] = b64url(&d).into();
        let kid = match field("kid") {
            Some(kid) if !kid.is_empty() => kid.to_string(),
            // RFC 7638 thumbprint: the required members, in lexicographic order and
            // without white space, which is how `public` is written.
            _ => b64url(&Sha256::digest(public.public.as_bytes())),
        };
        public_jwk["kid"] = kid.clone().into();
        public_jwk["alg"] = alg.name().into();
        public_jwk["use"] = "sig".into();
        Ok(Self {
            kid,
            private: PrivateJwk::new(alg, private.to_string()),
            public,
            public_jwk,
        })
    }

    pub fn alg(&self) -> &'static str {
        self.private.alg.name()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set served at `/.portcullis/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    /// The JWS Signing Input (RFC 7515 §5.1) of the assertion of `identity` for the app
    /// at `audience`, issued by `issuer`.
    fn signing_input(&self, issuer: &str, audience: &str, identity: &Identity, now: u64) -> String {
        let mut claims = Map::new();
        claims.insert("iss".into(), issuer.into());
        claims.insert("aud".into(), audience.into());
        claims.insert("sub".into(), identity.sub.as_str().into());
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
        let header = json!({ "alg": self.alg(), "kid": self.kid, "typ": "JWT" });
        format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(Value::Object(claims).to_string().as_bytes())
        )
    }

    /// A signed assertion of `identity` for the app at `audience`, issued by `issuer`.
    /// The signature is checked against the served public key before the assertion is
    /// used: a private key that does not belong to its `x`/`y` would otherwise hand apps
    /// assertions that they can never verify, without a word in the log.
    pub async fn sign(
        &self,
        crypto: &(impl Signer + SignatureCheck),
        issuer: &str,
        audience: &str,
        identity: &Identity,
        now: u64,
    ) -> Result<String, SigningError> {
        let input = self.signing_input(issuer, audience, identity, now);
        let signature = crypto
            .sign(&self.private, input.as_bytes())
            .await
            .map_err(SigningError)?;
        let verified = crypto
            .verify(
                &self.public,
                self.private.alg,
                Signed {
                    message: input.as_bytes(),
                    signature: &signature,
                },
            )
            .await
            .map_err(SigningError)?;
        if !verified {
            return Err(SigningError(
                "its private part (\"d\") does not belong to its public part; generate a new key with `scripts/assertion-key`".into(),
            ));
        }
        Ok(format!("{input}.{}", b64url(&signature)))
    }

    /// Signs and checks one sample assertion with RustCrypto: for the owner's tools
    /// (`scripts/check-config`), run natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn self_test(&self) -> Result<(), SigningError> {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let sample = Identity::new(crate::identity::Subject::of_service("check-config"));
        let signing = self.sign(
            &crate::jose::signature::RustCrypto,
            "https://check-config/.portcullis",
            "check-config",
            &sample,
            0,
        );
        // RustCrypto never waits, so one poll finishes it.
        let polled = std::pin::pin!(signing).poll(&mut Context::from_waker(Waker::noop()));
        match polled {
            Poll::Ready(result) => result.map(drop),
            Poll::Pending => Err(SigningError("the native signer did not finish".into())),
        }
    }
}

/// A new private key as the JWK `ASSERTION_KEY` holds (`ES256` or `EdDSA`), with its
/// RFC 7638 thumbprint as `kid`. Parsed back by [`AssertionKey::from_jwk`]. For the
/// owner's tools, run natively.
#[cfg(not(target_arch = "wasm32"))]
pub fn generate(alg: &str, rng: &impl crate::crypto::Random) -> Result<String, String> {
    use crate::crypto::random_bytes;
    use jwt_compact::jwk::JsonWebKey;
    let seed: [u8; 32] = random_bytes(rng).map_err(|_| "no randomness available".to_string())?;
    let jwk = match alg {
        "ES256" => {
            // A random 32-byte string is a valid P-256 scalar except with negligible
            // probability; such a draw is refused rather than retried.
            let key = p256::ecdsa::SigningKey::from_bytes(&seed.into())
                .map_err(|_| "drew an invalid P-256 scalar; run again".to_string())?;
            serde_json::to_value(JsonWebKey::from(&key)).map_err(|e| e.to_string())?
        }
        "EdDSA" => {
            let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed)).sk;
            serde_json::to_value(JsonWebKey::from(&key)).map_err(|e| e.to_string())?
        }
        other => return Err(format!("unknown algorithm {other:?}; use ES256 or EdDSA")),
    };
    // The kid, as `from_jwk` computes it.
    let parsed = AssertionKey::from_jwk(&jwk.to_string())?;
    let mut jwk = jwk;
    jwk["kid"] = parsed.kid.into();
    jwk["alg"] = alg.into();
    jwk["use"] = "sig".into();
    Ok(jwk.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwks::testing::{ed25519_pair, es256_pair};
    use crate::jose::jwks::KeySet;
    use crate::jose::signature::RustCrypto;

    fn sign(
        key: &AssertionKey,
        issuer: &str,
        audience: &str,
        id: &Identity,
    ) -> Result<String, SigningError> {
        pollster::block_on(key.sign(&RustCrypto, issuer, audience, id, 1_000))
    }

    #[test]
    fn generated_keys_are_accepted_and_sign_verifiable_assertions() {
        for alg in ["ES256", "EdDSA"] {
            let text = generate(alg, &crate::crypto::SystemRandom).unwrap();
            let key = AssertionKey::from_jwk(&text).unwrap();
            assert_eq!(key.alg(), alg);
            assert_eq!(key.self_test(), Ok(()));
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
            let token = sign(&key, "https://h/.portcullis", "h", &id).unwrap();
            let set = KeySet::parse(&key.jwks().to_string()).unwrap();
            assert!(jwks::testing::verify_now(&token, &set).is_ok());
        }
        assert!(generate("RS256", &crate::crypto::SystemRandom).is_err());
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
            let token = sign(
                &key,
                "https://photos.example.com/.portcullis",
                "photos.example.com",
                &alice(),
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

    #[test]
    fn kid_is_the_rfc_7638_thumbprint() {
        use jwt_compact::jwk::JsonWebKey;
        let (_, ec_public) = es256_pair(3);
        let (_, ed_public) = ed25519_pair(4);
        for (mut public, d) in [(ec_public, [3; 32]), (ed_public, [4; 32])] {
            public.as_object_mut().unwrap().remove("kid");
            let key = AssertionKey::from_jwk(&private_jwk(public.clone(), &d)).unwrap();
            let reference: JsonWebKey<'_> = serde_json::from_value(public).unwrap();
            assert_eq!(key.kid(), b64url(&reference.thumbprint::<Sha256>()));
        }
        let named = json!({ "kid": "k1" });
        let (_, mut ec_public) = es256_pair(3);
        ec_public["kid"] = named["kid"].clone();
        let key = AssertionKey::from_jwk(&private_jwk(ec_public, &[3; 32])).unwrap();
        assert_eq!(key.kid(), "k1", "a kid the key names is kept");
    }

    /// A backend that signs with whatever key it was given, wrongly: only the check
    /// against the public half can notice.
    struct SignsWrongly;

    impl Signer for SignsWrongly {
        async fn sign(&self, _: &PrivateJwk, _: &[u8]) -> Result<Vec<u8>, String> {
            Ok(vec![7; 64])
        }
    }

    impl SignatureCheck for SignsWrongly {
        async fn verify(&self, key: &Jwk, alg: Alg, signed: Signed<'_>) -> Result<bool, String> {
            RustCrypto.verify(key, alg, signed).await
        }
    }

    #[test]
    fn a_private_part_of_another_key_is_refused_when_signing() {
        let (_, ec_public) = es256_pair(3);
        let (_, ed_public) = ed25519_pair(4);
        for (public, d) in [(ec_public, [5; 32]), (ed_public, [6; 32])] {
            let key = AssertionKey::from_jwk(&private_jwk(public, &d)).unwrap();
            // RustCrypto refuses such a key on import; WebCrypto may not.
            let e = sign(&key, "https://h/.portcullis", "h", &alice()).unwrap_err();
            assert!(e.to_string().starts_with("ASSERTION_KEY"), "{e}");
            assert!(key.self_test().is_err());
            let alice = alice();
            let signed = key.sign(&SignsWrongly, "https://h/.portcullis", "h", &alice, 1_000);
            let e = pollster::block_on(signed).unwrap_err();
            assert!(e.to_string().contains("does not belong"), "{e}");
        }
    }

    #[test]
    fn malformed_key_parameters_are_refused() {
        let (_, ec_public) = es256_pair(3);
        let mut short_x = ec_public.clone();
        short_x["x"] = b64url(&[1; 31]).into();
        let mut ed_with_y = json!({ "kty": "OKP", "crv": "Ed25519" });
        ed_with_y["x"] = b64url(&[1; 33]).into();
        for (text, needle) in [
            (
                private_jwk(ec_public.clone(), &[3; 31]),
                "not a valid P-256 key",
            ),
            (private_jwk(short_x, &[3; 32]), "not a valid P-256 key"),
            (private_jwk(ed_with_y, &[4; 32]), "not a valid Ed25519 key"),
            ("[1]".to_string(), "not a JSON Web Key"),
            (
                private_jwk(json!({ "kty": "EC", "crv": "P-384" }), &[3; 48]),
                "P-256",
            ),
        ] {
            let e = AssertionKey::from_jwk(&text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let mut not_for_signing = ec_public;
        not_for_signing["use"] = "enc".into();
        assert!(AssertionKey::from_jwk(&private_jwk(not_for_signing, &[3; 32])).is_err());
    }

    #[test]
    fn the_private_part_is_never_shown() {
        let (_, ec_public) = es256_pair(3);
        let key = AssertionKey::from_jwk(&private_jwk(ec_public, &[3; 32])).unwrap();
        let shown = format!("{key:?} {:?}", key.private);
        assert!(!shown.contains(&b64url(&[3; 32])), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert!(key.private.expose().contains(&b64url(&[3; 32])));
    }
}
