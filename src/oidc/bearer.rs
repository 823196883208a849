//! Bearer tokens from the issuer (`Authorization: Bearer <JWT>`), for scripts and CLI
//! tools, on apps with `accept_bearer = true`. The signature is checked against the same
//! JWKS cache as ID tokens; then the claims every issuer token shares (`iss`, `aud`, the
//! time claims) and `sub`.

use super::claims::{Audience, ClaimError, Claims, Expect};
use crate::identity::Identity;
use crate::jose::jwks::VerifiedJws;

/// The bearer token's value from an `Authorization` header, if it is one.
pub fn from_header(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a token that verifies is still not an access token.
pub const NOT_AN_ACCESS_TOKEN: &str =
    "not an access token (an ID token or logout token cannot open an app)";

/// Only access tokens open apps. An ID token travels in URLs (`id_token_hint` at logout)
/// and a logout token reaches us from the issuer, so neither may act as a bearer
/// credential: refuse a JOSE `typ` other than `JWT` or RFC 9068's `at+jwt`, any of the
/// claims only ID or logout tokens carry (`nonce`, `at_hash`, `c_hash`, `events`),
/// Keycloak's `typ` claim of `ID` or `Logout`, and Pocket ID's `type` claim of `id-token`
/// (its refreshed ID tokens carry no `nonce`). Access tokens from Pocket ID (`at+jwt`),
/// Keycloak (`typ: Bearer`) and Authentik carry none of these.
pub fn is_access_token(jws: &VerifiedJws) -> bool {
    let header_ok = jws.header.typ.as_deref().is_none_or(|typ| {
        let typ = typ.to_ascii_lowercase();
        matches!(typ.as_str(), "jwt" | "at+jwt" | "application/at+jwt")
    });
    let claims = &jws.claims.custom;
    let marked = ["nonce", "at_hash", "c_hash", "events"]
        .iter()
        .any(|c| claims.contains_key(*c));
    // Keycloak's `typ` (`ID`, `Logout`), and Pocket ID's `type` on the ID tokens of a
    // refresh (`id-token`), which carry no `nonce`.
    let kind_claim = |name: &str| {
        claims.get(name).and_then(|v| v.as_str()).is_some_and(|t| {
            [
                "id",
                "logout",
                "id-token",
                "id_token",
                "logout-token",
                "logout_token",
            ]
            .iter()
            .any(|kind| t.eq_ignore_ascii_case(kind))
        })
    };
    header_ok && !marked && !kind_claim("typ") && !kind_claim("type")
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
    let sub = claims.sub.as_ref().ok_or(ClaimError::Subject)?;
    Ok(claims.identity(sub, groups_claim))
}

#[cfg(test)]
mod tests {
    use super::super::claims::LEEWAY;
    use super::*;
    use crate::jose::jwks::{self, testing::*, KeySet};
    use serde_json::{json, Value};

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://id.example.com";

    fn check(claims: Value) -> Result<Identity, ClaimError> {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let jws = jwks::testing::verify_now(&sign_rs256(rsa_key(0), Some("rsa-0"), &claims), &set)
            .unwrap();
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

    fn access_token(typ: Option<&str>, claims: Value) -> bool {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let token = sign_rs256_typed(rsa_key(0), Some("rsa-0"), typ, &claims);
        is_access_token(&jwks::testing::verify_now(&token, &set).unwrap())
    }

    #[test]
    fn id_and_logout_tokens_are_not_access_tokens() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            c
        };
        // Access tokens: RFC 9068 (Pocket ID), Keycloak's `typ: Bearer`, plain JWTs.
        assert!(access_token(Some("at+jwt"), good()));
        assert!(access_token(Some("application/at+jwt"), good()));
        assert!(access_token(Some("JWT"), good()));
        assert!(access_token(None, with("typ", json!("Bearer"))));
        // ID tokens and logout tokens.
        assert!(!access_token(None, with("nonce", json!("n"))));
        assert!(!access_token(None, with("at_hash", json!("x"))));
        assert!(!access_token(None, with("c_hash", json!("x"))));
        assert!(!access_token(None, with("typ", json!("ID"))));
        assert!(!access_token(None, with("events", json!({}))));
        assert!(!access_token(Some("logout+jwt"), good()));
        assert!(!access_token(Some("id_token+jwt"), good()));
        // Pocket ID's ID token from a refresh: no nonce, marked by its `type` claim.
        assert!(!access_token(Some("JWT"), with("type", json!("id-token"))));
        assert!(access_token(
            Some("JWT"),
            with("type", json!("access-token"))
        ));
    }
}
