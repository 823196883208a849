//! The signature arithmetic of JWS, behind two narrow traits: checking the issuer's
//! signatures ([`SignatureCheck`]) and making the `Portcullis-Assertion`'s ([`Signer`]).
//! The Worker uses WebCrypto (`crypto.subtle`, native code in workerd, so the wasm carries
//! no RSA or elliptic-curve arithmetic), native builds and tests use RustCrypto.
//!
//! Everything else about a token (which algorithms, which key, its size, the signature's
//! length, the claims) is decided in [`super::jwks`] and the identity assertion (`assertion.rs`) before a
//! backend is asked.

use std::fmt;

use super::jwks::{Alg, Jwk};
use crate::secret::PrivateKey;

/// A JWS signature and the signing input it is over.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// Checks one signature.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait SignatureCheck {
    /// Whether `signed` carries a valid `alg` signature under `key` (whose type fits
    /// `alg`). `Err` when the key could not be used at all.
    async fn verify(&self, key: &Jwk, alg: Alg, signed: Signed<'_>) -> Result<bool, String>;
}

/// A private signing key: ES256 (EC P-256) or EdDSA (Ed25519), as a JWK (JSON text) of
/// the key's own parameters alone, `d` included. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateJwk {
    pub alg: Alg,
    jwk: PrivateKey,
}

impl PrivateJwk {
    /// `jwk` must hold a key of `alg`'s type; the identity assertion (`assertion.rs`) builds it so.
    pub(crate) fn new(alg: Alg, jwk: String) -> Self {
        Self {
            alg,
            jwk: PrivateKey::new(jwk),
        }
    }

    /// The JWK text; only for a backend to import.
    pub fn expose(&self) -> &str {
        self.jwk.expose()
    }
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateJwk({}, [redacted])", self.alg.name())
    }
}

/// Makes one signature.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait Signer {
    /// The JWS signature of `message` under `key` (for ES256, R and S of 32 bytes each as
    /// RFC 7518 §3.4 puts them; for EdDSA, RFC 8032's 64 bytes). `Err` when the key could
    /// not be used.
    async fn sign(&self, key: &PrivateJwk, message: &[u8]) -> Result<Vec<u8>, String>;
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::RustCrypto;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPublicKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{Algorithm, AlgorithmSignature};

    use super::{Alg, Jwk, PrivateJwk, SignatureCheck, Signed, Signer};
    use crate::crypto::b64url_decode;

    /// RustCrypto's implementations, through jwt-compact: for native builds and tests.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct RustCrypto;

    fn check<A: Algorithm>(
        alg: A,
        key: &A::VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        A::Signature::try_from_slice(signature)
            .is_ok_and(|signature| alg.verify_signature(&signature, key, message))
    }

    /// An ECDSA check with a curve crate jwt-compact does not wrap (`p384`, `p521`).
    macro_rules! ecdsa_check {
        ($curve:ident, $jwk:expr, $message:expr, $signature:expr) => {{
            use $curve::ecdsa::signature::Verifier;
            let public = $curve::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point($jwk)?)
                .map_err(|e| e.to_string())?;
            $curve::ecdsa::Signature::from_slice($signature)
                .is_ok_and(|signature| public.verify($message, &signature).is_ok())
        }};
    }

    /// An EC public key as SEC1 (uncompressed): `04 || x || y`, from the JWK's fields
    /// (jwt-compact has no P-384 or P-521).
    fn sec1_point(jwk: &str) -> Result<Vec<u8>, String> {
        let jwk: serde_json::Value = serde_json::from_str(jwk).map_err(|e| e.to_string())?;
        let coordinate = |name: &str| {
            jwk.get(name)
                .and_then(serde_json::Value::as_str)
                .and_then(b64url_decode)
                .ok_or_else(|| format!("EC key without {name}"))
        };
        let mut point = vec![4];
        point.extend(coordinate("x")?);
        point.extend(coordinate("y")?);
        Ok(point)
    }

    impl SignatureCheck for RustCrypto {
        async fn verify(&self, key: &Jwk, alg: Alg, signed: Signed<'_>) -> Result<bool, String> {
            let Signed { message, signature } = signed;
            let jwk: JsonWebKey<'_> =
                serde_json::from_str(&key.public).map_err(|e| e.to_string())?;
            Ok(match alg {
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                    let public = RsaPublicKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    let rsa = match alg {
                        Alg::Rs256 => Rsa::rs256(),
                        Alg::Rs384 => Rsa::rs384(),
                        Alg::Rs512 => Rsa::rs512(),
                        Alg::Ps256 => Rsa::ps256(),
                        Alg::Ps384 => Rsa::ps384(),
                        _ => Rsa::ps512(),
                    };
                    check(rsa, &public, message, signature)
                }
                Alg::Es384 => ecdsa_check!(p384, &key.public, message, signature),
                Alg::Es512 => ecdsa_check!(p521, &key.public, message, signature),
                Alg::Es256 => {
                    let public =
                        p256::ecdsa::VerifyingKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    check(Es256, &public, message, signature)
                }
                Alg::EdDsa => {
                    let public =
                        ed25519_compact::PublicKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    check(Ed25519, &public, message, signature)
                }
            })
        }
    }

    impl Signer for RustCrypto {
        async fn sign(&self, key: &PrivateJwk, message: &[u8]) -> Result<Vec<u8>, String> {
            let jwk: JsonWebKey<'_> =
                serde_json::from_str(key.expose()).map_err(|e| e.to_string())?;
            Ok(match key.alg {
                Alg::Es256 => {
                    let private =
                        p256::ecdsa::SigningKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    Es256.sign(&private, message).as_bytes().to_vec()
                }
                Alg::EdDsa => {
                    let private =
                        ed25519_compact::SecretKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    Ed25519.sign(&private, message).as_bytes().to_vec()
                }
                other => return Err(format!("{} is not a signing algorithm here", other.name())),
            })
        }
    }
}
