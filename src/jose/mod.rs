//! JOSE, as a leaf: algorithms, JSON Web Keys and key sets, signature checks and signing
//! (the arithmetic behind the [`signature::SignatureCheck`] and [`signature::Signer`]
//! traits: WebCrypto in the Worker, RustCrypto natively). OpenID Connect (`oidc/`)
//! and the signed identity assertion (`assertion.rs`) use it; nothing in it knows
//! either.

pub mod jwks;
pub mod signature;
