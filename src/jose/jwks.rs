//! The issuer's signing keys (JWKS) and JWS signature verification.
//!
//! Accepted algorithms (RFC 7518 §3.1, RFC 8037): RS256/384/512 and PS256/384/512 (RSA
//! keys of 2048 to 4096 bits), ES256, ES384 and ES512 (P-256, P-384, P-521), and EdDSA
//! (Ed25519): what OpenID issuers offer (Pocket ID's key rotation offers all but PS*;
//! Keycloak all). Never `none`, never HMAC: a symmetric "key" in a JWKS is skipped.
//!
//! This module decides everything about a token except the signature arithmetic itself,
//! which a [`SignatureCheck`] does: WebCrypto in the Worker (fast, and no big-integer code
//! in the wasm), RustCrypto natively.

use jwt_compact::{Claims, UntrustedToken};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::signature::{SignatureCheck, Signed};
use crate::crypto::{b64url, b64url_decode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

impl Alg {
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "ES512" => Alg::Es512,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// RSA moduli accepted, in bits: below 2048 is too weak (RFC 7518 §3.3); above 4096
/// is refused as well, so a key set cannot make each check arbitrarily expensive.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// The kind of a usable key, with what its signatures' length depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA key whose modulus is this many bytes (an RS* or PS* signature is as long).
    Rsa { modulus_len: usize },
    /// An EC key on P-256.
    P256,
    /// An EC key on P-384.
    P384,
    /// An EC key on P-521.
    P521,
    /// An OKP key on Ed25519.
    Ed25519,
}

/// One usable verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, when the JWKS says so.
    pub alg: Option<String>,
    pub kind: KeyKind,
    /// The key's public parameters alone, as a JWK (JSON text) with minimal encodings:
    /// what a [`SignatureCheck`] imports. Nothing else from the issuer's entry (`d`,
    /// `key_ops`, `x5c`...) reaches the backend.
    pub public: String,
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        let type_fits = matches!(
            (self.kind, alg),
            (
                KeyKind::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (KeyKind::P256, Alg::Es256)
                | (KeyKind::P384, Alg::Es384)
                | (KeyKind::P521, Alg::Es512)
                | (KeyKind::Ed25519, Alg::EdDsa)
        );
        type_fits && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }

    /// The length a signature by this key has (RFC 8017 §8.2.2 step 1 and §8.1.2 step 1
    /// for RSA; RFC 7518 §3.4 for ECDSA, R and S of the curve's size each: 32, 48 and 66
    /// bytes; RFC 8032 §5.1 for Ed25519).
    fn signature_len(&self) -> usize {
        match self.kind {
            KeyKind::Rsa { modulus_len } => modulus_len,
            KeyKind::P256 | KeyKind::Ed25519 => 64,
            KeyKind::P384 => 96,
            KeyKind::P521 => 132,
        }
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
                "no usable signing key (RS256/384/512 or PS256/384/512 with 2048 to 4096 bit RSA, ES256/384/512, EdDSA) among {} key(s)",
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

/// A base64url field of a JWK, decoded.
fn bytes_field(value: &Value, name: &str) -> Option<Vec<u8>> {
    b64url_decode(value.get(name)?.as_str()?)
}

/// Big-endian unsigned integer bytes without leading zeros.
fn minimal(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// A key usable for signatures, or `None`: wrong `use`, unsupported type or curve,
/// malformed or out-of-range parameters (RFC 7518 §6).
pub(crate) fn parse_key(value: &Value) -> Option<Jwk> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let (kind, public) = match (field("kty")?.as_str(), field("crv").as_deref()) {
        ("RSA", _) => {
            let n = bytes_field(value, "n")?;
            let e = bytes_field(value, "e")?;
            let (n, e) = (minimal(&n), minimal(&e));
            let bits = n.len() * 8 - n.first()?.leading_zeros() as usize;
            // The exponent is at least 3, odd, and at most 33 bits, as RSA libraries
            // (and `rsa`'s checks) expect.
            let exponent = e.iter().try_fold(0u64, |acc, &b| {
                acc.checked_mul(256).map(|a| a + u64::from(b))
            })?;
            if !RSA_BITS.contains(&bits) || exponent < 3 || exponent % 2 == 0 || exponent >= 1 << 33
            {
                return None;
            }
            let public = json!({ "kty": "RSA", "n": b64url(n), "e": b64url(e) });
            (
                KeyKind::Rsa {
                    modulus_len: n.len(),
                },
                public,
            )
        }
        ("EC", Some(crv @ ("P-256" | "P-384" | "P-521"))) => {
            // RFC 7518 §6.2.1.2: coordinates are the full size of the curve's field.
            let (kind, size) = match crv {
                "P-256" => (KeyKind::P256, 32),
                "P-384" => (KeyKind::P384, 48),
                _ => (KeyKind::P521, 66),
            };
            let x = bytes_field(value, "x")?;
            let y = bytes_field(value, "y")?;
            if x.len() != size || y.len() != size {
                return None;
            }
            let public = json!({ "kty": "EC", "crv": crv, "x": b64url(&x), "y": b64url(&y) });
            (kind, public)
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes_field(value, "x")?;
            if x.len() != 32 {
                return None;
            }
            let public = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&x) });
            (KeyKind::Ed25519, public)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: field("kid"),
        alg: field("alg"),
        kind,
        public: public.to_string(),
    })
}

/// Why a JWS was refused before its claims were looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JWE (five parts): encrypted tokens are not supported.
    #[error("encrypted (JWE) tokens are not supported")]
    Encrypted,
    /// `none`, HMAC, or another algorithm not accepted here.
    #[error("algorithm {0:?} is not accepted; have the issuer sign with a public key: RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA (never none or HMAC)")]
    Algorithm(String),
    /// A `crit` header names extensions this verifier does not understand (RFC 7515 §4.1.11).
    #[error("token has critical header extensions")]
    Critical,
    /// No key in the set for this `kid`/algorithm.
    #[error("no key for kid {0:?}")]
    UnknownKey(Option<String>),
    #[error("signature does not verify")]
    BadSignature,
    /// The signature could not be checked with the key (the backend refused it).
    #[error("the signing key cannot be used: {0}")]
    UnusableKey(String),
    /// Signature fine, claims not a JSON object with numeric `exp`/`iat`/`nbf`.
    #[error("claims unreadable: {0}")]
    Claims(String),
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

/// Verifies the signature with the key the header designates (RFC 7515 §5.2), then
/// reads the claims.
pub async fn verify(
    token: &str,
    keys: &KeySet,
    check: &impl SignatureCheck,
) -> Result<VerifiedJws, JwsError> {
    let (parsed, header) = untrusted(token)?;
    let key = keys
        .select(header.kid.as_deref(), header.alg)
        .ok_or_else(|| JwsError::UnknownKey(header.kid.clone()))?;
    let signature = parsed.signature_bytes();
    if signature.len() != key.signature_len() {
        return Err(JwsError::BadSignature);
    }
    // The JWS Signing Input: the header and payload as they appear in the token.
    let signed = token
        .rsplit_once('.')
        .map(|(input, _)| input)
        .ok_or_else(|| JwsError::Malformed("no signature part".into()))?;
    match check
        .verify(
            key,
            header.alg,
            Signed {
                message: signed.as_bytes(),
                signature,
            },
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(JwsError::BadSignature),
        Err(e) => return Err(JwsError::UnusableKey(e)),
    }
    let claims = parsed
        .deserialize_claims_unchecked::<Map<String, Value>>()
        .map_err(|e| JwsError::Claims(e.to_string()))?;
    Ok(VerifiedJws { header, claims })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Keys and token minting for tests of everything that verifies tokens.
    use super::*;
    use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPrivateKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{AlgorithmExt, Header};
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

    /// A compact JWS of `claims` under `header`, signed by `sign` (the raw JWS signature of
    /// the signing input): for algorithms jwt-compact cannot sign (ES384, ES512).
    pub fn sign_with(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        use crate::crypto::b64url;
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = sign(input.as_bytes());
        format!("{input}.{}", b64url(&signature))
    }

    /// An ES384 key (P-384) from a seed, with its public JWK (`kid` `p384-<seed>`).
    /// A public EC JWK from a point's coordinates.
    fn ec_jwk<C: AsRef<[u8]>>(crv: &str, kid: &str, x: Option<C>, y: Option<C>) -> Value {
        let coordinate = |c: Option<C>| crate::crypto::b64url(c.unwrap().as_ref());
        json!({ "kty": "EC", "crv": crv, "kid": kid, "x": coordinate(x), "y": coordinate(y) })
    }

    pub fn es384_pair(seed: u8) -> (p384::ecdsa::SigningKey, Value) {
        let signing = p384::ecdsa::SigningKey::from_slice(&[seed; 48]).unwrap();
        let point = signing.verifying_key().to_encoded_point(false);
        let jwk = ec_jwk("P-384", &format!("p384-{seed}"), point.x(), point.y());
        (signing, jwk)
    }

    pub fn sign_es384(key: &p384::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
        use p384::ecdsa::signature::Signer;
        sign_with(&json!({ "alg": "ES384", "kid": kid }), claims, |input| {
            let signature: p384::ecdsa::Signature = key.sign(input);
            signature.to_bytes().to_vec()
        })
    }

    /// An ES512 key (P-521) from a seed, with its public JWK (`kid` `p521-<seed>`).
    pub fn es512_pair(seed: u8) -> (p521::ecdsa::SigningKey, Value) {
        let mut scalar = [seed; 66];
        scalar[0] = 0; // below the group order
        let signing = p521::ecdsa::SigningKey::from_slice(&scalar).unwrap();
        let verifying = p521::ecdsa::VerifyingKey::from(&signing);
        let point = verifying.to_encoded_point(false);
        let jwk = ec_jwk("P-521", &format!("p521-{seed}"), point.x(), point.y());
        (signing, jwk)
    }

    pub fn sign_es512(key: &p521::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
        // p521 signs deterministically only with its `getrandom` feature; a seeded RNG will do.
        use p521::ecdsa::signature::RandomizedSigner;
        sign_with(&json!({ "alg": "ES512", "kid": kid }), claims, |input| {
            let signature: p521::ecdsa::Signature =
                key.sign_with_rng(&mut StdRng::seed_from_u64(521), input);
            signature.to_bytes().to_vec()
        })
    }

    /// Signs `claims` with PS256, PS384 or PS512 under `key`.
    pub fn sign_ps(alg: Alg, key: &TestRsaKey, claims: &Value) -> String {
        let header = Header::empty().with_key_id(&key.kid);
        let map: Map<String, Value> = claims.as_object().unwrap().clone();
        let rsa = match alg {
            Alg::Ps256 => Rsa::ps256(),
            Alg::Ps384 => Rsa::ps384(),
            _ => Rsa::ps512(),
        };
        rsa.token(&header, &Claims::new(map), &key.private).unwrap()
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

    /// [`verify`] with RustCrypto, run to completion.
    pub fn verify_now(token: &str, keys: &KeySet) -> Result<VerifiedJws, JwsError> {
        pollster::block_on(verify(token, keys, &crate::jose::signature::RustCrypto))
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
            let v = verify_now(&token, &set).unwrap();
            assert_eq!(v.claims.custom["sub"], "x");
        }
    }

    #[test]
    fn verifies_pss_and_the_larger_curves() {
        let rsa = rsa_key(0);
        let mut rsa_any = rsa_jwk(rsa);
        rsa_any.as_object_mut().unwrap().remove("alg");
        let (p384, p384_jwk) = es384_pair(5);
        let (p521, p521_jwk) = es512_pair(6);
        let set = KeySet::parse(&jwks(&[rsa_any, p384_jwk, p521_jwk])).unwrap();
        assert_eq!(set.keys.len(), 3);
        let claims = json!({ "sub": "x" });
        let tokens = [
            (Alg::Ps256, sign_ps(Alg::Ps256, rsa, &claims)),
            (Alg::Ps384, sign_ps(Alg::Ps384, rsa, &claims)),
            (Alg::Ps512, sign_ps(Alg::Ps512, rsa, &claims)),
            (Alg::Es384, sign_es384(&p384, "p384-5", &claims)),
            (Alg::Es512, sign_es512(&p521, "p521-6", &claims)),
        ];
        for (alg, token) in &tokens {
            let v = verify_now(token, &set).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!((v.header.alg, &v.claims.custom["sub"]), (*alg, &json!("x")));
            // The same token with other claims fails.
            let parts: Vec<&str> = token.split('.').collect();
            let evil = crate::crypto::b64url(json!({ "sub": "admin" }).to_string().as_bytes());
            let tampered = format!("{}.{evil}.{}", parts[0], parts[2]);
            assert_eq!(
                verify_now(&tampered, &set).unwrap_err(),
                JwsError::BadSignature,
                "{alg:?}"
            );
        }
        // Each curve's signature is R and S at that curve's size: one byte short is refused
        // before any arithmetic.
        for (kid, header_alg, len) in [("p384-5", "ES384", 95), ("p521-6", "ES512", 131)] {
            let t = forge(
                &json!({ "alg": header_alg, "kid": kid }),
                &claims,
                &vec![1; len],
            );
            assert_eq!(verify_now(&t, &set).unwrap_err(), JwsError::BadSignature);
        }
    }

    #[test]
    fn a_key_restricted_to_one_algorithm_or_curve_is_used_for_no_other() {
        // The JWK says RS256: a PS256 token naming it is refused, though the key type fits.
        let rsa = rsa_key(0);
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa)])).unwrap();
        let claims = json!({ "sub": "x" });
        assert_eq!(
            verify_now(&sign_ps(Alg::Ps256, rsa, &claims), &set).unwrap_err(),
            JwsError::UnknownKey(Some("rsa-0".into()))
        );
        // ES256/384/512 each need their own curve.
        let (p256, mut p256_jwk) = es256_pair(7);
        let (p384, mut p384_jwk) = es384_pair(5);
        let (p521, mut p521_jwk) = es512_pair(6);
        for jwk in [&mut p256_jwk, &mut p384_jwk, &mut p521_jwk] {
            jwk["kid"] = "k".into();
        }
        let only = |jwk: &Value| KeySet::parse(&jwks(std::slice::from_ref(jwk))).unwrap();
        let refused = |token: String, set: KeySet| {
            assert_eq!(
                verify_now(&token, &set).unwrap_err(),
                JwsError::UnknownKey(Some("k".into()))
            );
        };
        refused(sign_es256(&p256, "k", &claims), only(&p384_jwk));
        refused(sign_es384(&p384, "k", &claims), only(&p256_jwk));
        refused(sign_es384(&p384, "k", &claims), only(&p521_jwk));
        refused(sign_es512(&p521, "k", &claims), only(&p384_jwk));
    }

    #[test]
    fn ec_keys_must_have_their_curves_full_size_coordinates() {
        use crate::crypto::b64url;
        for (crv, size) in [("P-256", 32), ("P-384", 48), ("P-521", 66)] {
            for (x, y) in [(size - 1, size), (size, size + 1), (size, 0)] {
                let jwk = json!({ "kty": "EC", "crv": crv, "x": b64url(&vec![1; x]), "y": b64url(&vec![1; y]) });
                assert!(parse_key(&jwk).is_none(), "{crv} {x}/{y}");
            }
        }
        assert!(parse_key(
            &json!({ "kty": "EC", "crv": "P-192", "x": b64url(&[1; 24]), "y": b64url(&[1; 24]) })
        )
        .is_none());
    }

    #[test]
    fn refuses_wrong_key_unknown_kid_and_tampering() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let claims = json!({ "sub": "x" });
        let other = sign_rs256(rsa_key(1), Some("rsa-0"), &claims);
        assert_eq!(
            verify_now(&other, &set).unwrap_err(),
            JwsError::BadSignature
        );
        let unknown = sign_rs256(rsa_key(0), Some("nope"), &claims);
        assert_eq!(
            verify_now(&unknown, &set).unwrap_err(),
            JwsError::UnknownKey(Some("nope".into()))
        );
        let no_kid = sign_rs256(rsa_key(0), None, &claims);
        assert!(
            verify_now(&no_kid, &set).is_ok(),
            "single fitting key is used without kid"
        );

        let good = sign_rs256(rsa_key(0), Some("rsa-0"), &claims);
        let parts: Vec<&str> = good.split('.').collect();
        let evil_claims = crate::crypto::b64url(json!({ "sub": "admin" }).to_string().as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], evil_claims, parts[2]);
        assert_eq!(
            verify_now(&tampered, &set).unwrap_err(),
            JwsError::BadSignature
        );
    }

    #[test]
    fn refuses_none_hmac_and_unknown_algorithms() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let claims = json!({ "sub": "x" });
        for alg in [
            "none", "HS256", "HS512", "ES256K", "RS1", "ps256", "Ed25519", "",
        ] {
            let t = forge(&json!({ "alg": alg, "kid": "rsa-0" }), &claims, b"sig");
            assert!(
                matches!(verify_now(&t, &set), Err(JwsError::Algorithm(_))),
                "{alg}"
            );
        }
        let t = forge(&json!({ "alg": "none" }), &claims, b"");
        assert!(verify_now(&t, &set).is_err());
        // The owner's log says what to change at the issuer.
        let t = forge(&json!({ "alg": "HS256", "kid": "rsa-0" }), &claims, b"sig");
        let message = verify_now(&t, &set).unwrap_err().to_string();
        assert!(
            message.contains("\"HS256\"") && message.contains("RS256/384/512"),
            "{message}"
        );
    }

    #[test]
    fn refuses_alg_confusion_between_key_types() {
        // An ES256 header naming the RSA key's kid must not be checked against it.
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let (ec, _) = es256_pair(7);
        let t = sign_es256(&ec, "rsa-0", &json!({ "sub": "x" }));
        assert_eq!(
            verify_now(&t, &set).unwrap_err(),
            JwsError::UnknownKey(Some("rsa-0".into()))
        );
    }

    #[test]
    fn refuses_encrypted_malformed_and_critical() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        assert_eq!(
            verify_now("a.b.c.d.e", &set).unwrap_err(),
            JwsError::Encrypted
        );
        assert!(matches!(
            verify_now("garbage", &set),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(verify_now("", &set), Err(JwsError::Malformed(_))));
        let t = forge(
            &json!({ "alg": "RS256", "kid": "rsa-0", "crit": ["exp"] }),
            &json!({}),
            b"x",
        );
        assert_eq!(verify_now(&t, &set).unwrap_err(), JwsError::Critical);
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
        assert!(matches!(verify_now(&t, &set), Err(JwsError::UnknownKey(_))));
    }

    fn rsa_entry(n: &[u8], e: &[u8]) -> Value {
        json!({ "kty": "RSA", "n": b64url(n), "e": b64url(e), "kid": "k" })
    }

    #[test]
    fn rsa_keys_must_be_2048_to_4096_bits_with_a_sane_exponent() {
        let usable = |entry: Value| parse_key(&entry).map(|k| k.kind);
        let mut n2048 = vec![0xffu8; 256];
        n2048[255] = 0xf1;
        assert_eq!(
            usable(rsa_entry(&n2048, &[1, 0, 1])),
            Some(KeyKind::Rsa { modulus_len: 256 })
        );
        // Leading zero bytes do not count, and are dropped from what the backend gets.
        let padded = [&[0u8, 0][..], &n2048].concat();
        let key = parse_key(&rsa_entry(&padded, &[0, 1, 0, 1])).unwrap();
        assert_eq!(key.kind, KeyKind::Rsa { modulus_len: 256 });
        let public: Value = serde_json::from_str(&key.public).unwrap();
        assert_eq!(
            public,
            json!({ "kty": "RSA", "n": b64url(&n2048), "e": "AQAB" })
        );
        // 2047 bits, 4097 bits.
        let mut short = n2048.clone();
        short[0] = 0x7f;
        assert_eq!(usable(rsa_entry(&short, &[1, 0, 1])), None);
        let long = [&[1u8][..], &[0xff; 512]].concat();
        assert_eq!(usable(rsa_entry(&long, &[1, 0, 1])), None);
        assert!(usable(rsa_entry(&[0xff; 512], &[1, 0, 1])).is_some());
        // Exponents: 1, even, 34 bits, empty.
        for e in [&[1u8][..], &[1, 0, 0], &[3, 0, 0, 0, 1], &[]] {
            assert_eq!(usable(rsa_entry(&n2048, e)), None, "{e:?}");
        }
        assert!(usable(rsa_entry(&n2048, &[3])).is_some());
        // Not base64url, or missing.
        assert_eq!(
            usable(json!({ "kty": "RSA", "n": "+/==", "e": "AQAB" })),
            None
        );
        assert_eq!(usable(json!({ "kty": "RSA", "e": "AQAB" })), None);
    }

    #[test]
    fn only_public_parameters_reach_the_backend() {
        let entry = json!({
            "kty": "EC", "crv": "P-256", "x": b64url(&[1; 32]), "y": b64url(&[2; 32]),
            "d": b64url(&[3; 32]), "key_ops": ["sign"], "alg": "ES256", "kid": "e",
        });
        let key = parse_key(&entry).unwrap();
        assert_eq!(key.kind, KeyKind::P256);
        assert_eq!(
            (key.kid.as_deref(), key.alg.as_deref()),
            (Some("e"), Some("ES256"))
        );
        let public: Value = serde_json::from_str(&key.public).unwrap();
        assert_eq!(
            public,
            json!({ "kty": "EC", "crv": "P-256", "x": b64url(&[1; 32]), "y": b64url(&[2; 32]) })
        );
        // Coordinates of the wrong length; Ed25519 likewise.
        let short =
            json!({ "kty": "EC", "crv": "P-256", "x": b64url(&[1; 31]), "y": b64url(&[2; 32]) });
        assert!(parse_key(&short).is_none());
        let ed = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&[1; 32]) });
        assert_eq!(parse_key(&ed).unwrap().kind, KeyKind::Ed25519);
        let ed_long = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&[1; 33]) });
        assert!(parse_key(&ed_long).is_none());
        let x25519 = json!({ "kty": "OKP", "crv": "X25519", "x": b64url(&[1; 32]) });
        assert!(parse_key(&x25519).is_none());
    }

    /// A backend that counts calls and answers as told.
    struct Scripted {
        calls: std::cell::Cell<u32>,
        answer: Result<bool, String>,
    }

    impl SignatureCheck for Scripted {
        async fn verify(&self, _: &Jwk, _: Alg, _: Signed<'_>) -> Result<bool, String> {
            self.calls.set(self.calls.get() + 1);
            self.answer.clone()
        }
    }

    #[test]
    fn the_backend_sees_the_signing_input_only_for_signatures_of_the_right_length() {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let claims = json!({ "sub": "x" });
        let run = |token: &str, answer: Result<bool, String>| {
            let check = Scripted {
                calls: std::cell::Cell::new(0),
                answer,
            };
            let result = pollster::block_on(verify(token, &set, &check));
            (
                result.map(|v| v.claims.custom["sub"].clone()),
                check.calls.get(),
            )
        };
        // 255 bytes for a 256-byte modulus: refused before the backend is asked.
        let short = forge(
            &json!({ "alg": "RS256", "kid": "rsa-0" }),
            &claims,
            &[7; 255],
        );
        assert_eq!(run(&short, Ok(true)), (Err(JwsError::BadSignature), 0));
        let sized = forge(
            &json!({ "alg": "RS256", "kid": "rsa-0" }),
            &claims,
            &[7; 256],
        );
        assert_eq!(run(&sized, Ok(true)), (Ok(json!("x")), 1));
        assert_eq!(run(&sized, Ok(false)), (Err(JwsError::BadSignature), 1));
        assert_eq!(
            run(&sized, Err("refused".into())),
            (Err(JwsError::UnusableKey("refused".into())), 1)
        );
        // Claims are read only after the signature verified, and must be an object.
        let array = forge(
            &json!({ "alg": "RS256", "kid": "rsa-0" }),
            &json!([1]),
            &[7; 256],
        );
        assert!(matches!(
            run(&array, Ok(false)),
            (Err(JwsError::BadSignature), 1)
        ));
        assert!(matches!(
            run(&array, Ok(true)),
            (Err(JwsError::Claims(_)), 1)
        ));
    }

    #[test]
    fn a_point_off_the_curve_is_an_unusable_key() {
        let entry = json!({ "kty": "EC", "crv": "P-256", "x": b64url(&[1; 32]), "y": b64url(&[1; 32]), "kid": "bad" });
        let set = KeySet::parse(&jwks(&[entry])).unwrap();
        let t = forge(
            &json!({ "alg": "ES256", "kid": "bad" }),
            &json!({}),
            &[1; 64],
        );
        assert!(matches!(
            verify_now(&t, &set),
            Err(JwsError::UnusableKey(_))
        ));
    }
}
