//! Bearer tokens from the issuer (`Authorization: Bearer <JWT>`), for scripts and CLI
//! tools, on apps with `accept_bearer = true`. The signature is checked against the same
//! JWKS cache as ID tokens; then the claims every issuer token shares (`iss`, `aud`, the
//! time claims) and `sub`.

use super::claims::{Audience, ClaimError, Claims, Expect};
use super::jwks::VerifiedJws;
use crate::identity::Identity;

/// The bearer token's value from an `Authorization` header, if it is one.
pub fn from_header(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Validates the claims of a signature-checked token; `accepted` lists the audiences that
/// count (the client ID and the app's `bearer_audiences`).
pub fn validate(
    jws: &VerifiedJws,
    issuer: &str,
    accepted: &[&str],
    groups_claim: &str,
    now: u64,
) -> Result<Identity, ClaimError> {
    let claims = Claims::of(jws);
    Expect {
        issuer,
        audience: Audience::AnyOf(accepted),
        exp_required: true,
        iat_required: false,
        max_age: None,
        now,
    }
    .check(&claims)?;
    let sub = claims.sub.ok_or(ClaimError::Subject)?;
    Ok(claims.identity(sub, groups_claim))
}

#[cfg(test)]
mod tests {
    use super::super::claims::LEEWAY;
    use super::super::jwks::{self, testing::*, KeySet};
    use super::*;
    use serde_json::{json, Value};

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://id.example.com";

    fn check(claims: Value) -> Result<Identity, ClaimError> {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let jws = jwks::verify(&sign_rs256(rsa_key(0), Some("rsa-0"), &claims), &set).unwrap();
        validate(&jws, ISS, &["portcullis", "cli"], "groups", NOW)
    }

    fn good() -> Value {
        json!({ "iss": ISS, "aud": "portcullis", "sub": "alice-1", "exp": NOW + 60, "iat": NOW - 1, "groups": ["admins"] })
    }

    #[test]
    fn accepts_and_describes_the_holder() {
        let id = check(good()).unwrap();
        assert_eq!(id.sub, "alice-1");
        assert_eq!(id.groups, ["admins"]);
        let mut c = good();
        c["aud"] = json!(["https://api", "cli"]);
        assert!(check(c).is_ok(), "bearer_audiences count");
    }

    #[test]
    fn refuses() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            check(c)
        };
        assert_eq!(
            with("iss", json!("https://evil.example.org")),
            Err(ClaimError::Issuer {
                found: "https://evil.example.org".into()
            })
        );
        assert_eq!(with("exp", json!(NOW - LEEWAY)), Err(ClaimError::Expired));
        assert_eq!(
            with("aud", json!("someone-else")),
            Err(ClaimError::Audience)
        );
        assert_eq!(
            with("nbf", json!(NOW + LEEWAY + 5)),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(with("sub", json!("")), Err(ClaimError::Subject));
        let mut c = good();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(c), Err(ClaimError::Expired));
    }

    #[test]
    fn header_parsing() {
        assert_eq!(from_header("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(from_header("bearer  abc "), Some("abc"));
        assert_eq!(from_header("Basic abc"), None);
        assert_eq!(from_header("Bearer"), None);
    }
}
