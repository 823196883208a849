//! Signatures with WebCrypto (`crypto.subtle`): workerd's native RSA, ECDSA and Ed25519,
//! so the wasm carries no signature arithmetic of its own.

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};

use super::fetch::js_error;
use crate::jose::jwks::{Alg, Jwk};
use crate::jose::signature::{PrivateJwk, SignatureCheck, Signed, Signer};

pub struct WebCrypto;

/// A plain object of string fields (a WebCrypto algorithm dictionary).
fn object(fields: &[(&str, &str)]) -> Result<Object, String> {
    let object = Object::new();
    for (name, value) in fields {
        Reflect::set(&object, &JsValue::from_str(name), &JsValue::from_str(value))
            .map_err(js_error)?;
    }
    Ok(object)
}

/// The algorithm dictionaries for `importKey` and for `verify` (RFC 7518 §3.1 names
/// mapped to WebCrypto's).
fn algorithms(alg: Alg) -> Result<(Object, Object), String> {
    const RSA: &str = "RSASSA-PKCS1-v1_5";
    let rsa = |hash: &str| {
        Ok((
            object(&[("name", RSA), ("hash", hash)])?,
            object(&[("name", RSA)])?,
        ))
    };
    // RFC 7518 §3.5: MGF1 with the same hash, and a salt as long as the hash.
    let pss = |hash: &str, salt_len: u32| {
        let verify = object(&[("name", "RSA-PSS")])?;
        Reflect::set(
            &verify,
            &JsValue::from_str("saltLength"),
            &JsValue::from(salt_len),
        )
        .map_err(js_error)?;
        Ok((object(&[("name", "RSA-PSS"), ("hash", hash)])?, verify))
    };
    let ecdsa = |curve: &str, hash: &str| {
        Ok((
            object(&[("name", "ECDSA"), ("namedCurve", curve)])?,
            object(&[("name", "ECDSA"), ("hash", hash)])?,
        ))
    };
    match alg {
        Alg::Rs256 => rsa("SHA-256"),
        Alg::Rs384 => rsa("SHA-384"),
        Alg::Rs512 => rsa("SHA-512"),
        Alg::Ps256 => pss("SHA-256", 32),
        Alg::Ps384 => pss("SHA-384", 48),
        Alg::Ps512 => pss("SHA-512", 64),
        Alg::Es256 => ecdsa("P-256", "SHA-256"),
        Alg::Es384 => ecdsa("P-384", "SHA-384"),
        Alg::Es512 => ecdsa("P-521", "SHA-512"),
        Alg::EdDsa => Ok((
            object(&[("name", "Ed25519")])?,
            object(&[("name", "Ed25519")])?,
        )),
    }
}

fn subtle() -> Result<SubtleCrypto, String> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(global.crypto().map_err(js_error)?.subtle())
}

/// Imports a JWK (JSON text) for one usage (`"verify"` or `"sign"`).
async fn import(
    subtle: &SubtleCrypto,
    jwk: &str,
    algorithm: &Object,
    usage: &str,
) -> Result<CryptoKey, String> {
    let jwk: Object = JSON::parse(jwk)
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| "the key is not a JSON object".to_string())?;
    let usages = Array::of1(&JsValue::from_str(usage));
    let imported = subtle
        .import_key_with_object("jwk", &jwk, algorithm, false, &usages)
        .map_err(js_error)?;
    JsFuture::from(imported)
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| "importKey did not return a CryptoKey".to_string())
}

impl SignatureCheck for WebCrypto {
    async fn verify(&self, key: &Jwk, alg: Alg, signed: Signed<'_>) -> Result<bool, String> {
        let Signed { message, signature } = signed;
        let subtle = subtle()?;
        let (import_as, verify) = algorithms(alg)?;
        let crypto_key = import(&subtle, &key.public, &import_as, "verify").await?;
        // WebCrypto copies both byte views when called, before anything is awaited.
        let verified = subtle
            .verify_with_object_and_u8_array_and_u8_array(&verify, &crypto_key, signature, message)
            .map_err(js_error)?;
        let valid = JsFuture::from(verified).await.map_err(js_error)?;
        Ok(valid.as_bool() == Some(true))
    }
}

impl Signer for WebCrypto {
    async fn sign(&self, key: &PrivateJwk, message: &[u8]) -> Result<Vec<u8>, String> {
        let subtle = subtle()?;
        let (import_as, sign) = algorithms(key.alg)?;
        let crypto_key = import(&subtle, key.expose(), &import_as, "sign").await?;
        // The message view is copied when `sign` is called, before anything is awaited.
        let signed = subtle
            .sign_with_object_and_u8_array(&sign, &crypto_key, message)
            .map_err(js_error)?;
        let signature = JsFuture::from(signed).await.map_err(js_error)?;
        Ok(Uint8Array::new(&signature).to_vec())
    }
}
