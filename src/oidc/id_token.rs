//! ID token validation, step by step as OpenID Connect Core 1.0 §3.1.3.7 lists it.

use super::claims::{Audience, Carried, ClaimError, Claims, Expect, LEEWAY};
use crate::crypto::ct_eq;
use crate::identity::Identity;
use crate::jose::jwks::{JwsError, VerifiedJws};

/// What the ID token must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// Audiences besides the client an ID token may name (`id_token_audiences`).
    pub trusted_audiences: &'a [String],
    /// What ties the token to this relying party's request.
    pub binding: Binding<'a>,
    pub groups_claim: &'a str,
    pub now: u64,
}

/// What an ID token must be bound to: the login's nonce (§3.1.3.7 step 11), or, for one
/// from a refresh (§12.2, which carries no nonce), the subject of the grant refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    Login { nonce: &'a str },
    Refresh { subject: &'a str },
}

/// The claims Portcullis keeps from a valid ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub identity: Identity,
    /// Which identity claims the token itself carried (the rest may come from UserInfo).
    pub carried: Carried,
    pub sid: Option<String>,
    pub expires: u64,
    /// When the user last authenticated at the issuer (`auth_time`), if it says.
    pub auth_time: Option<u64>,
}

impl IdTokenClaims {
    /// OpenID Connect Core §3.1.3.7 step 13: after a request with `max_age`, `auth_time`
    /// must be present (§3.1.2.1) and no older than `max_age` (give or take the leeway).
    pub fn authenticated_within(&self, max_age: u64, now: u64) -> bool {
        authenticated_within(self.auth_time, max_age, now)
    }
}

/// Whether an authentication at `auth_time` is at most `max_age` old at `now`, give or
/// take the leeway: the one rule for "a recent login" (app passwords, the admin console).
pub fn authenticated_within(auth_time: Option<u64>, max_age: u64, now: u64) -> bool {
    auth_time.is_some_and(|at| {
        at <= now.saturating_add(LEEWAY) && now.saturating_sub(at) <= max_age + LEEWAY
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Steps 1 and 6–8: not a JWS we can verify (encrypted, bad algorithm, bad signature…).
    #[error(transparent)]
    Signature(JwsError),
    /// Steps 2–5, 9 and 10, and `sub` (§2).
    #[error(transparent)]
    Claim(ClaimError),
    /// Step 11.
    #[error("nonce is missing or does not match this login")]
    Nonce,
}

impl From<ClaimError> for IdTokenError {
    fn from(e: ClaimError) -> Self {
        IdTokenError::Claim(e)
    }
}

/// The claims of an ID token whose signature has already been verified against the
/// issuer's key set (steps 1, 6, 7 and 8 happen there: a JWS, not JWE; an asymmetric
/// algorithm from the accepted list; the key from the issuer's JWKS).
pub fn validate(jws: &VerifiedJws, expected: &Expected<'_>) -> Result<IdTokenClaims, IdTokenError> {
    let claims = Claims::of(jws);

    // 2. `iss` exactly the issuer; 3–5. `aud` the client and nobody else, `azp` the client;
    // 9. before `exp`; 10. `iat` present and not in the future — the checks every token
    // from the issuer shares, with one leeway for clock skew.
    Expect {
        issuer: expected.issuer,
        audience: Audience::Client {
            client_id: expected.client_id,
            trusted: expected.trusted_audiences,
        },
        exp_required: true,
        iat_required: true,
        max_age: None,
        now: expected.now,
    }
    .check(&claims)?;

    // 11. `nonce` MUST be present and equal the one sent in the authentication request.
    if let Binding::Login { nonce: sent } = expected.binding {
        let nonce = claims.text("nonce").ok_or(IdTokenError::Nonce)?;
        if !ct_eq(nonce.as_bytes(), sent.as_bytes()) {
            return Err(IdTokenError::Nonce);
        }
    }

    // §2: `sub` is REQUIRED, a locally unique identifier for the user; after a refresh
    // (§12.2) it must be the same user.
    let sub = claims.sub.as_ref().ok_or(ClaimError::Subject)?;
    if matches!(expected.binding, Binding::Refresh { subject } if subject != sub.as_str()) {
        return Err(ClaimError::Subject.into());
    }

    Ok(IdTokenClaims {
        identity: claims.identity(sub, expected.groups_claim),
        carried: Carried::of(claims.all, expected.groups_claim),
        sid: claims.text("sid").map(str::to_string),
        // `exp` is present: the check above requires it.
        expires: claims.exp.unwrap_or(expected.now),
        auth_time: claims.all.get("auth_time").and_then(numeric_date),
    })
}

/// A NumericDate (RFC 7519 §2): seconds, which may have a fraction (kept whole, rounded
/// down). `None` for anything else, negative numbers included.
fn numeric_date(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0 && *t < u64::MAX as f64)
            .map(|t| t.floor() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::super::claims::LEEWAY;
    use super::*;
    use crate::jose::jwks::{self, testing::*, KeySet};
    use serde_json::json;
    use serde_json::Value;

    const ISS: &str = "https://id.example.com";
    const NOW: u64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: "portcullis",
            trusted_audiences: &[],
            binding: Binding::Login {
                nonce: "n-0S6_WzA2Mj",
            },
            groups_claim: "groups",
            now: NOW,
        }
    }

    fn good_claims() -> Value {
        json!({
            "iss": ISS,
            "aud": "portcullis",
            "sub": "user-1",
            "exp": NOW + 300,
            "iat": NOW - 5,
            "nonce": "n-0S6_WzA2Mj",
            "email": "alice@example.com",
            "email_verified": true,
            "name": "Alice",
            "preferred_username": "alice",
            "groups": ["family", "admins"],
            "sid": "op-session"
        })
    }

    fn keys() -> KeySet {
        KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap()
    }

    fn check(claims: &Value) -> Result<IdTokenClaims, IdTokenError> {
        let token = sign_rs256(rsa_key(0), Some("rsa-0"), claims);
        let jws = jwks::testing::verify_now(&token, &keys()).map_err(IdTokenError::Signature)?;
        validate(&jws, &expected())
    }

    fn without(claim: &str) -> Value {
        with(|c| {
            c.as_object_mut().unwrap().remove(claim);
        })
    }

    fn with(change: impl FnOnce(&mut Value)) -> Value {
        let mut c = good_claims();
        change(&mut c);
        c
    }

    #[test]
    fn a_valid_token_yields_the_identity() {
        let c = check(&good_claims()).unwrap();
        assert_eq!(c.identity.sub, "user-1");
        assert_eq!(c.identity.email.as_deref(), Some("alice@example.com"));
        assert!(c.identity.email_verified);
        assert_eq!(c.identity.user(), "alice");
        assert_eq!(c.identity.groups, ["family", "admins"]);
        assert_eq!(c.sid.as_deref(), Some("op-session"));
        assert_eq!(c.expires, NOW + 300);
    }

    #[test]
    fn step_2_wrong_or_missing_issuer() {
        assert!(matches!(
            check(&with(|c| c["iss"] = json!("https://evil.example.com"))),
            Err(IdTokenError::Claim(ClaimError::Issuer { .. }))
        ));
        assert!(matches!(
            check(&with(|c| c["iss"] = json!("https://id.example.com/"))),
            Err(IdTokenError::Claim(ClaimError::Issuer { .. }))
        ));
        assert!(matches!(
            check(&without("iss")),
            Err(IdTokenError::Claim(ClaimError::Issuer { .. }))
        ));
    }

    #[test]
    fn step_3_audience() {
        assert_eq!(
            check(&with(|c| c["aud"] = json!("someone-else"))),
            Err(IdTokenError::Claim(ClaimError::Audience))
        );
        assert_eq!(
            check(&without("aud")),
            Err(IdTokenError::Claim(ClaimError::Audience))
        );
        assert!(check(&with(|c| c["aud"] = json!(["portcullis"]))).is_ok());
        let untrusted = || {
            Err(IdTokenError::Claim(ClaimError::UntrustedAudience(
                "\"other\"".into(),
            )))
        };
        assert_eq!(
            check(&with(|c| c["aud"] = json!(["portcullis", "other"]))),
            untrusted()
        );
        // Step 3 as written: an audience the client does not trust is refused, even with
        // `azp` naming the client.
        assert_eq!(
            check(&with(|c| {
                c["aud"] = json!(["portcullis", "other"]);
                c["azp"] = json!("portcullis");
            })),
            untrusted()
        );
    }

    #[test]
    fn step_3_audiences_the_owner_trusts() {
        let trusted = ["project-1".to_string(), "sibling-app".to_string()];
        let check = |claims: &Value| {
            let token = sign_rs256(rsa_key(0), Some("rsa-0"), claims);
            let jws = jwks::testing::verify_now(&token, &keys()).unwrap();
            validate(
                &jws,
                &Expected {
                    trusted_audiences: &trusted,
                    ..expected()
                },
            )
        };
        // Zitadel's shape: the client, its project, the project's other apps; azp the client.
        let zitadel = |c: &mut Value| {
            c["aud"] = json!(["portcullis", "project-1", "sibling-app"]);
            c["azp"] = json!("portcullis");
        };
        assert!(check(&with(zitadel)).is_ok());
        assert!(
            check(&good_claims()).is_ok(),
            "the client alone still passes"
        );
        // 4. Beside other audiences, azp must be there, and name the client (5).
        assert_eq!(
            check(&with(|c| {
                zitadel(c);
                c.as_object_mut().unwrap().remove("azp");
            })),
            Err(IdTokenError::Claim(ClaimError::AuthorizedParty))
        );
        assert_eq!(
            check(&with(|c| {
                zitadel(c);
                c["azp"] = json!("sibling-app");
            })),
            Err(IdTokenError::Claim(ClaimError::AuthorizedParty))
        );
        // Still one the owner did not list: refused, named in the error.
        let refused = check(&with(|c| {
            zitadel(c);
            c["aud"] = json!(["portcullis", "project-1", "new-app"]);
        }));
        assert_eq!(
            refused,
            Err(IdTokenError::Claim(ClaimError::UntrustedAudience(
                "\"new-app\"".into()
            )))
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("id_token_audiences"));
        // A trusted audience is no substitute for the client.
        assert_eq!(
            check(&with(|c| {
                c["aud"] = json!(["project-1"]);
                c["azp"] = json!("portcullis");
            })),
            Err(IdTokenError::Claim(ClaimError::Audience))
        );
    }

    #[test]
    fn steps_4_5_authorized_party() {
        assert_eq!(
            check(&with(|c| c["azp"] = json!("other"))),
            Err(IdTokenError::Claim(ClaimError::AuthorizedParty))
        );
        assert!(check(&with(|c| c["azp"] = json!("portcullis"))).is_ok());
    }

    #[test]
    fn step_7_signature_and_algorithm() {
        let bad_sig = sign_rs256(rsa_key(1), Some("rsa-0"), &good_claims());
        assert_eq!(
            jwks::testing::verify_now(&bad_sig, &keys()).unwrap_err(),
            JwsError::BadSignature
        );
        let none = forge(&json!({ "alg": "none" }), &good_claims(), b"");
        assert!(matches!(
            jwks::testing::verify_now(&none, &keys()),
            Err(JwsError::Algorithm(_))
        ));
        let hs = forge(
            &json!({ "alg": "HS256", "kid": "rsa-0" }),
            &good_claims(),
            b"mac",
        );
        assert!(matches!(
            jwks::testing::verify_now(&hs, &keys()),
            Err(JwsError::Algorithm(_))
        ));
    }

    /// The claim check a token fails, if it fails one.
    fn claim_error(claims: &Value) -> Option<ClaimError> {
        match check(claims) {
            Err(IdTokenError::Claim(e)) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn step_9_expiry_with_leeway() {
        assert!(check(&with(|c| c["exp"] = json!(NOW - LEEWAY + 1))).is_ok());
        let expired = with(|c| c["exp"] = json!(NOW - LEEWAY));
        assert_eq!(claim_error(&expired), Some(ClaimError::Expired));
        assert_eq!(claim_error(&without("exp")), Some(ClaimError::Expired));
    }

    #[test]
    fn step_10_issued_at() {
        let future = with(|c| c["iat"] = json!(NOW + LEEWAY + 1));
        assert_eq!(claim_error(&future), Some(ClaimError::IssuedAt));
        assert_eq!(claim_error(&without("iat")), Some(ClaimError::IssuedAt));
    }

    #[test]
    fn not_before_with_the_same_leeway() {
        assert!(check(&with(|c| c["nbf"] = json!(NOW + LEEWAY))).is_ok());
        let early = with(|c| c["nbf"] = json!(NOW + LEEWAY + 1));
        assert_eq!(claim_error(&early), Some(ClaimError::NotYetValid));
    }

    #[test]
    fn step_11_nonce() {
        assert_eq!(
            check(&with(|c| c["nonce"] = json!("other"))),
            Err(IdTokenError::Nonce)
        );
        assert_eq!(check(&without("nonce")), Err(IdTokenError::Nonce));
        assert_eq!(
            check(&with(|c| c["nonce"] = json!(42))),
            Err(IdTokenError::Nonce)
        );
    }

    #[test]
    fn refreshed_tokens_need_no_nonce_but_the_same_subject() {
        let token = sign_rs256(rsa_key(0), Some("rsa-0"), &without("nonce"));
        let jws = jwks::testing::verify_now(&token, &keys()).unwrap();
        let refreshed = Expected {
            binding: Binding::Refresh { subject: "user-1" },
            ..expected()
        };
        assert!(validate(&jws, &refreshed).is_ok());
        let other = Expected {
            binding: Binding::Refresh { subject: "user-2" },
            ..expected()
        };
        assert_eq!(
            validate(&jws, &other),
            Err(IdTokenError::Claim(ClaimError::Subject))
        );
    }

    #[test]
    fn subject_is_required() {
        assert_eq!(
            check(&without("sub")),
            Err(IdTokenError::Claim(ClaimError::Subject))
        );
        assert_eq!(
            check(&with(|c| c["sub"] = json!(""))),
            Err(IdTokenError::Claim(ClaimError::Subject))
        );
    }

    #[test]
    fn auth_time_is_a_numeric_date() {
        let at = |v: Value| check(&with(|c| c["auth_time"] = v)).unwrap().auth_time;
        assert_eq!(at(json!(NOW - 10)), Some(NOW - 10));
        assert_eq!(at(json!(NOW as f64 - 9.75)), Some(NOW - 10), "a fraction");
        assert_eq!(at(json!(-5)), None);
        assert_eq!(at(json!(-5.5)), None);
        assert_eq!(at(json!("1800000000")), None);
        assert_eq!(at(json!(null)), None);
        assert_eq!(check(&good_claims()).unwrap().auth_time, None);
    }

    #[test]
    fn claim_shapes() {
        let c = check(&with(|c| {
            c["groups"] = json!("family  admins");
            c["email_verified"] = json!("true");
        }))
        .unwrap();
        assert_eq!(c.identity.groups, ["family", "admins"]);
        assert!(c.identity.email_verified);
        let c = check(&with(|c| {
            c["groups"] = json!(42);
            c["email_verified"] = json!("yes");
        }))
        .unwrap();
        assert!(c.identity.groups.is_empty());
        assert!(!c.identity.email_verified);
        // A non-numeric exp is unreadable, never accepted.
        let token = sign_rs256(
            rsa_key(0),
            Some("rsa-0"),
            &with(|c| c["exp"] = json!("tomorrow")),
        );
        assert!(matches!(
            jwks::testing::verify_now(&token, &keys()),
            Err(JwsError::Claims(_))
        ));
    }
}
