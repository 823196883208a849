//! The signature arithmetic of JWS verification, behind a narrow trait: the Worker uses
//! WebCrypto (`crypto.subtle`, native code in workerd, and no RSA or elliptic-curve
//! verification code in the wasm), native builds and tests use RustCrypto.
//!
//! Everything else about a token (which algorithms, which key, its size, the signature's
//! length, the claims) is decided in [`super::jwks`] before a backend is asked.

use super::jwks::{Alg, Jwk};

/// Checks one signature.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait SignatureCheck {
    /// Whether `signature` is a valid `alg` signature of `message` under `key` (whose
    /// type fits `alg`). `Err` when the key could not be used at all.
    async fn verify(
        &self,
        key: &Jwk,
        alg: Alg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String>;
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::RustCrypto;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPublicKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{Algorithm, AlgorithmSignature};

    use super::{Alg, Jwk, SignatureCheck};

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

    impl SignatureCheck for RustCrypto {
        async fn verify(
            &self,
            key: &Jwk,
            alg: Alg,
            message: &[u8],
            signature: &[u8],
        ) -> Result<bool, String> {
            let jwk: JsonWebKey<'_> =
                serde_json::from_str(&key.public).map_err(|e| e.to_string())?;
            Ok(match alg {
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 => {
                    let public = RsaPublicKey::try_from(&jwk).map_err(|e| e.to_string())?;
                    let rsa = match alg {
                        Alg::Rs256 => Rsa::rs256(),
                        Alg::Rs384 => Rsa::rs384(),
                        _ => Rsa::rs512(),
                    };
                    check(rsa, &public, message, signature)
                }
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
}
