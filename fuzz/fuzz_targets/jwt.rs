//! JWT and JWK parsing: key sets, headers and tokens from anyone, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::jose::jwks::{peek_header, verify, KeySet};
use portcullis::jose::signature::RustCrypto;
use std::sync::OnceLock;

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::parse(JWKS).expect("a key set"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = KeySet::parse(text);
    let _ = peek_header(text);
    // Forged tokens must never verify against keys whose private halves nobody has.
    assert!(pollster::block_on(verify(text, keys(), &RustCrypto)).is_err());
});
