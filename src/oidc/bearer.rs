//! Bearer tokens from the issuer (`Authorization: Bearer <JWT>`), for scripts and CLI
//! tools, on apps with `accept_bearer = true`. The signature is checked against the same
//! JWKS cache as ID tokens; then `iss`, `exp` (and `nbf`), `aud` and `sub`.

use std::fmt;

use super::id_token::{audiences, identity, LEEWAY};
use super::jwks::VerifiedJws;
use crate::identity::Identity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    Issuer,
    Expired,
    NotYetValid,
    Audience,
    Subject,
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BearerError::Issuer => "iss is not the configured issuer",
            BearerError::Expired => "token has expired or has no exp",
            BearerError::NotYetValid => "token is not valid yet (nbf/iat)",
            BearerError::Audience => "aud names neither the client_id nor a bearer_audiences entry",
            BearerError::Subject => "sub is missing",
        })
    }
}

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
) -> Result<Identity, BearerError> {
    let claims = &jws.claims.custom;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(BearerError::Issuer);
    }
    let exp = jws
        .claims
        .expiration
        .map(|t| t.timestamp())
        .ok_or(BearerError::Expired)?;
    if i128::from(now) >= i128::from(exp) + i128::from(LEEWAY) {
        return Err(BearerError::Expired);
    }
    for not_before in [jws.claims.not_before, jws.claims.issued_at]
        .into_iter()
        .flatten()
    {
        if i128::from(not_before.timestamp()) > i128::from(now) + i128::from(LEEWAY) {
            return Err(BearerError::NotYetValid);
        }
    }
    if !audiences(claims).iter().any(|a| accepted.contains(a)) {
        return Err(BearerError::Audience);
    }
    let sub = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or(BearerError::Subject)?;
    Ok(identity(claims, sub, groups_claim))
}

#[cfg(test)]
mod tests {
    use super::super::jwks::{self, testing::*, KeySet};
    use super::*;
    use serde_json::{json, Value};

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://id.example.com";

    fn check(claims: Value) -> Result<Identity, BearerError> {
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
            Err(BearerError::Issuer)
        );
        assert_eq!(with("exp", json!(NOW - LEEWAY)), Err(BearerError::Expired));
        assert_eq!(
            with("aud", json!("someone-else")),
            Err(BearerError::Audience)
        );
        assert_eq!(
            with("nbf", json!(NOW + LEEWAY + 5)),
            Err(BearerError::NotYetValid)
        );
        assert_eq!(with("sub", json!("")), Err(BearerError::Subject));
        let mut c = good();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(c), Err(BearerError::Expired));
    }

    #[test]
    fn header_parsing() {
        assert_eq!(from_header("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(from_header("bearer  abc "), Some("abc"));
        assert_eq!(from_header("Basic abc"), None);
        assert_eq!(from_header("Bearer"), None);
    }
}
