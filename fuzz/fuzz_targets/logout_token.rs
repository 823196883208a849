//! Logout-token (and the shared claims) validation over arbitrary claims, signed with a
//! key the test holds, so every claim check is reached.
#![no_main]
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header};
use libfuzzer_sys::fuzz_target;
use portcullis::jose::jwks::{verify, KeySet};
use portcullis::oidc::logout_token;
use portcullis::jose::signature::RustCrypto;
use serde_json::{Map, Value};
use std::sync::OnceLock;

fn setup() -> &'static (ed25519_compact::SecretKey, KeySet) {
    static SETUP: OnceLock<(ed25519_compact::SecretKey, KeySet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
        let x = base64url(&pair.pk[..]);
        let jwks = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k","alg":"EdDSA","x":"{x}"}}]}}"#);
        (pair.sk, KeySet::parse(&jwks).expect("a key set"))
    })
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) else { return };
    let claims: Map<String, Value> = claims;
    let (key, keys) = setup();
    let Ok(token) = Ed25519.token(&Header::empty().with_key_id("k"), &Claims::new(claims), key) else {
        return;
    };
    if let Ok(jws) = pollster::block_on(verify(&token, keys, &RustCrypto)) {
        if let Ok(c) = logout_token::validate(&jws, "https://id.example.com", "portcullis", 1_800_000_000) {
            assert!(c.subject.sub().is_some() || c.subject.sid().is_some());
            assert!(!c.jti.is_empty());
        }
        let _ = portcullis::oidc::bearer::is_access_token(&jws);
    }
});
