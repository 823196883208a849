//! The issuer's signing keys (JWKS) and JWS signature verification.
//!
//! Accepted algorithms: RS256/384/512 (RSA keys of 2048 bits or more), ES256 and EdDSA
//! (Ed25519). Never `none`, never HMAC: a symmetric "key" in a JWKS is skipped.

use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPublicKey, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, UntrustedToken};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Es256,
    EdDsa,
}

impl Alg {
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "ES256" => Alg::Es256,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

enum Material {
    Rsa(StrongKey<RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_compact::PublicKey),
}

/// One usable verification key.
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, when the JWKS says so.
    pub alg: Option<String>,
    material: Material,
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        let type_fits = matches!(
            (&self.material, alg),
            (Material::Rsa(_), Alg::Rs256 | Alg::Rs384 | Alg::Rs512)
                | (Material::P256(_), Alg::Es256)
                | (Material::Ed25519(_), Alg::EdDsa)
        );
        type_fits && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.material {
            Material::Rsa(_) => "RSA",
            Material::P256(_) => "EC P-256",
            Material::Ed25519(_) => "Ed25519",
        };
        write!(f, "Jwk({kind}, kid {:?})", self.kid)
    }
}

/// The usable keys of a JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    /// Keys present but not usable here (encryption keys, weak or unsupported types).
    pub skipped: usize,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

impl KeySet {
    pub fn parse(body: &str) -> Result<KeySet, String> {
        let doc: Document =
            serde_json::from_str(body).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut set = KeySet::default();
        for key in doc.keys {
            match parse_key(&key) {
                Some(k) => set.keys.push(k),
                None => set.skipped += 1,
            }
        }
        if set.keys.is_empty() {
            return Err(format!(
                "no usable signing key (RS256/384/512 with 2048+ bit RSA, ES256, EdDSA) among {} key(s)",
                set.skipped
            ));
        }
        Ok(set)
    }

    /// The key for a token header: by `kid`; without a `kid`, the only key that fits.
    pub fn select(&self, kid: Option<&str>, alg: Alg) -> Option<&Jwk> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }
}

fn parse_key(value: &Value) -> Option<Jwk> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let jwk: JsonWebKey<'_> = serde_json::from_value(value.clone()).ok()?;
    let material = match &jwk {
        JsonWebKey::Rsa { .. } => {
            let key = RsaPublicKey::try_from(&jwk).ok()?;
            // StrongKey refuses RSA keys under 2048 bits.
            Material::Rsa(StrongKey::try_from(key).ok()?)
        }
        JsonWebKey::EllipticCurve { curve, .. } if curve == "P-256" => {
            Material::P256(p256::ecdsa::VerifyingKey::try_from(&jwk).ok()?)
        }
        JsonWebKey::KeyPair { curve, .. } if curve == "Ed25519" => {
            Material::Ed25519(ed25519_compact::PublicKey::try_from(&jwk).ok()?)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: field("kid"),
        alg: field("alg"),
        material,
    })
}

/// Why a JWS was refused before its claims were looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    Malformed(String),
    /// A JWE (five parts): encrypted tokens are not supported.
    Encrypted,
    /// `none`, HMAC, or another algorithm not accepted here.
    Algorithm(String),
    /// A `crit` header names extensions this verifier does not understand (RFC 7515 §4.1.11).
    Critical,
    /// No key in the set for this `kid`/algorithm.
    UnknownKey(Option<String>),
    BadSignature,
    /// Signature fine, claims not a JSON object with numeric `exp`/`iat`/`nbf`.
    Claims(String),
}

impl std::fmt::Display for JwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwsError::Malformed(e) => write!(f, "malformed token: {e}"),
            JwsError::Encrypted => f.write_str("encrypted (JWE) tokens are not supported"),
            JwsError::Algorithm(a) => write!(f, "algorithm {a:?} is not accepted"),
            JwsError::Critical => f.write_str("token has critical header extensions"),
            JwsError::UnknownKey(kid) => write!(f, "no key for kid {kid:?}"),
            JwsError::BadSignature => f.write_str("signature does not verify"),
            JwsError::Claims(e) => write!(f, "claims unreadable: {e}"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ExtraHeader {
    #[serde(default)]
    crit: Option<Value>,
}

/// What the header of a compact JWS says, before anything is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsHeader {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

fn untrusted(token: &str) -> Result<(UntrustedToken<'_, ExtraHeader>, JwsHeader), JwsError> {
    if token.split('.').count() == 5 {
        return Err(JwsError::Encrypted);
    }
    let parsed = UntrustedToken::<ExtraHeader>::try_from(token)
        .map_err(|e| JwsError::Malformed(e.to_string()))?;
    let alg = Alg::from_name(parsed.algorithm())
        .ok_or_else(|| JwsError::Algorithm(parsed.algorithm().to_string()))?;
    if parsed.header().other_fields.crit.is_some() {
        return Err(JwsError::Critical);
    }
    let header = JwsHeader {
        alg,
        kid: parsed.header().key_id.clone(),
        typ: parsed.header().token_type.clone(),
    };
    Ok((parsed, header))
}

/// Reads the header without verifying anything (to pick a key, or to decide to refetch).
pub fn peek_header(token: &str) -> Result<JwsHeader, JwsError> {
    untrusted(token).map(|(_, h)| h)
}

/// A token whose signature verified; the claims are not checked yet.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: JwsHeader,
    pub claims: Claims<Map<String, Value>>,
}

/// Verifies the signature with the key the header designates.
pub fn verify(token: &str, keys: &KeySet) -> Result<VerifiedJws, JwsError> {
    let (parsed, header) = untrusted(token)?;
    let key = keys
        .select(header.kid.as_deref(), header.alg)
        .ok_or_else(|| JwsError::UnknownKey(header.kid.clone()))?;
    type Out =
        Result<jwt_compact::Token<Map<String, Value>, ExtraHeader>, jwt_compact::ValidationError>;
    let result: Out = match (&key.material, header.alg) {
        (Material::Rsa(k), Alg::Rs256) => Rsa::rs256().validator(k.as_ref()).validate(&parsed),
        (Material::Rsa(k), Alg::Rs384) => Rsa::rs384().validator(k.as_ref()).validate(&parsed),
        (Material::Rsa(k), Alg::Rs512) => Rsa::rs512().validator(k.as_ref()).validate(&parsed),
        (Material::P256(k), Alg::Es256) => Es256.validator(k).validate(&parsed),
        (Material::Ed25519(k), Alg::EdDsa) => Ed25519.validator(k).validate(&parsed),
        // `select` only returns keys that fit the algorithm.
        _ => return Err(JwsError::UnknownKey(header.kid)),
    };
    match result {
        Ok(token) => Ok(VerifiedJws {
            header,
            claims: token.into_parts().1,
        }),
        Err(jwt_compact::ValidationError::MalformedClaims(e)) => {
            Err(JwsError::Claims(e.to_string()))
        }
        Err(_) => Err(JwsError::BadSignature),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Keys and token minting for tests of everything that verifies tokens.
    use super::*;
    use jwt_compact::alg::RsaPrivateKey;
    use jwt_compact::Header;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::OnceLock;

    pub struct TestRsaKey {
        pub kid: String,
        pub private: RsaPrivateKey,
    }

    /// RSA key generation is slow in debug builds: make each test key once.
    pub fn rsa_key(n: u64) -> &'static TestRsaKey {
        static KEYS: OnceLock<Vec<TestRsaKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            (0..2u64)
                .map(|i| {
                    let mut rng = StdRng::seed_from_u64(1000 + i);
                    TestRsaKey {
                        kid: format!("rsa-{i}"),
                        private: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
                    }
                })
                .collect()
        });
        &keys[n as usize]
    }

    pub fn rsa_jwk(key: &TestRsaKey) -> Value {
        let public = key.private.to_public_key();
        let mut jwk = serde_json::to_value(JsonWebKey::from(&public)).unwrap();
        jwk["kid"] = key.kid.clone().into();
        jwk["use"] = "sig".into();
        jwk["alg"] = "RS256".into();
        jwk
    }

    pub fn jwks(keys: &[Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// Signs `claims` (a JSON object) with RS256 under `key`, header `kid` as given.
    pub fn sign_rs256(key: &TestRsaKey, kid: Option<&str>, claims: &Value) -> String {
        sign_rs256_typed(key, kid, None, claims)
    }

    /// With a JOSE `typ` header (e.g. `at+jwt`).
    pub fn sign_rs256_typed(
        key: &TestRsaKey,
        kid: Option<&str>,
        typ: Option<&str>,
        claims: &Value,
    ) -> String {
        let mut header = Header::empty();
        if let Some(kid) = kid {
            header = header.with_key_id(kid);
        }
        if let Some(typ) = typ {
            header = header.with_token_type(typ);
        }
        let map: Map<String, Value> = claims.as_object().unwrap().clone();
        Rsa::rs256()
            .token(&header, &Claims::new(map), &key.private)
            .unwrap()
    }

    pub fn es256_pair(seed: u8) -> (p256::ecdsa::SigningKey, Value) {
        let signing = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let verifying = *signing.verifying_key();
        let mut jwk = serde_json::to_value(JsonWebKey::from(&verifying)).unwrap();
        jwk["kid"] = format!("ec-{seed}").into();
        (signing, jwk)
    }

    pub fn sign_es256(key: &p256::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
        let header = Header::empty().with_key_id(kid);
        let map: Map<String, Value> = claims.as_object().unwrap().clone();
        Es256.token(&header, &Claims::new(map), key).unwrap()
    }

    pub fn ed25519_pair(seed: u8) -> (ed25519_compact::SecretKey, Value) {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        let mut jwk = serde_json::to_value(JsonWebKey::from(&pair.pk)).unwrap();
        jwk["kid"] = format!("ed-{seed}").into();
        (pair.sk, jwk)
    }

    pub fn sign_eddsa(key: &ed25519_compact::SecretKey, kid: &str, claims: &Value) -> String {
        let header = Header::empty().with_key_id(kid);
        let map: Map<String, Value> = claims.as_object().unwrap().clone();
        Ed25519.token(&header, &Claims::new(map), key).unwrap()
    }

    /// A token with an arbitrary header and signature, for malformed-token tests.
    pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
        use crate::crypto::b64url;
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(signature)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn verifies_each_supported_algorithm() {
        let rsa = rsa_key(0);
        let (ec, ec_jwk) = es256_pair(7);
        let (ed, ed_jwk) = ed25519_pair(9);
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa), ec_jwk, ed_jwk])).unwrap();
        assert_eq!(set.keys.len(), 3);
        let claims = json!({ "sub": "x" });
        for token in [
            sign_rs256(rsa, Some("rsa-0"), &claims),
            sign_es256(&ec, "ec-7", &claims),
            sign_eddsa(&ed, "ed-9", &claims),
        ] {
            let v = verify(&token, &set).unwrap();
            assert_eq!(v.claims.custom["sub"], "x");
        }
    }

    #[test]
    fn refuses_wrong_key_unknown_kid_and_tampering() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let claims = json!({ "sub": "x" });
        let other = sign_rs256(rsa_key(1), Some("rsa-0"), &claims);
        assert_eq!(verify(&other, &set).unwrap_err(), JwsError::BadSignature);
        let unknown = sign_rs256(rsa_key(0), Some("nope"), &claims);
        assert_eq!(
            verify(&unknown, &set).unwrap_err(),
            JwsError::UnknownKey(Some("nope".into()))
        );
        let no_kid = sign_rs256(rsa_key(0), None, &claims);
        assert!(
            verify(&no_kid, &set).is_ok(),
            "single fitting key is used without kid"
        );

        let good = sign_rs256(rsa_key(0), Some("rsa-0"), &claims);
        let parts: Vec<&str> = good.split('.').collect();
        let evil_claims = crate::crypto::b64url(json!({ "sub": "admin" }).to_string().as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], evil_claims, parts[2]);
        assert_eq!(verify(&tampered, &set).unwrap_err(), JwsError::BadSignature);
    }

    #[test]
    fn refuses_none_hmac_and_unknown_algorithms() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let claims = json!({ "sub": "x" });
        for alg in ["none", "HS256", "ES384", "PS256", ""] {
            let t = forge(&json!({ "alg": alg, "kid": "rsa-0" }), &claims, b"sig");
            assert!(
                matches!(verify(&t, &set), Err(JwsError::Algorithm(_))),
                "{alg}"
            );
        }
        let t = forge(&json!({ "alg": "none" }), &claims, b"");
        assert!(verify(&t, &set).is_err());
    }

    #[test]
    fn refuses_alg_confusion_between_key_types() {
        // An ES256 header naming the RSA key's kid must not be checked against it.
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let (ec, _) = es256_pair(7);
        let t = sign_es256(&ec, "rsa-0", &json!({ "sub": "x" }));
        assert_eq!(
            verify(&t, &set).unwrap_err(),
            JwsError::UnknownKey(Some("rsa-0".into()))
        );
    }

    #[test]
    fn refuses_encrypted_malformed_and_critical() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        assert_eq!(verify("a.b.c.d.e", &set).unwrap_err(), JwsError::Encrypted);
        assert!(matches!(
            verify("garbage", &set),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(verify("", &set), Err(JwsError::Malformed(_))));
        let t = forge(
            &json!({ "alg": "RS256", "kid": "rsa-0", "crit": ["exp"] }),
            &json!({}),
            b"x",
        );
        assert_eq!(verify(&t, &set).unwrap_err(), JwsError::Critical);
    }

    #[test]
    fn key_set_skips_unusable_keys() {
        let doc = jwks(&[
            json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" }),
            json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "weak" }),
            {
                let mut k = rsa_jwk(rsa_key(0));
                k["use"] = "enc".into();
                k
            },
            json!({ "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA" }),
        ]);
        assert!(KeySet::parse(&doc)
            .unwrap_err()
            .contains("no usable signing key"));
        let doc = jwks(&[
            json!({ "kty": "oct", "k": "c2VjcmV0" }),
            rsa_jwk(rsa_key(1)),
        ]);
        let set = KeySet::parse(&doc).unwrap();
        assert_eq!((set.keys.len(), set.skipped), (1, 1));
        assert!(KeySet::parse("not json").is_err());
    }

    #[test]
    fn key_alg_restriction_is_honoured() {
        let mut jwk = rsa_jwk(rsa_key(0));
        jwk["alg"] = "RS512".into();
        let set = KeySet::parse(&jwks(&[jwk])).unwrap();
        let t = sign_rs256(rsa_key(0), Some("rsa-0"), &json!({}));
        assert!(matches!(verify(&t, &set), Err(JwsError::UnknownKey(_))));
    }
}
