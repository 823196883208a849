//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.6), checked in the order the
//! specification lists, after the signature has been verified against the issuer's keys.

use serde_json::Value;

use super::claims::{Audience, ClaimError, Claims, Expect};
use crate::identity::Subject;
use crate::jose::jwks::VerifiedJws;

/// The logout event's member name in the `events` claim.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Logout tokens older than this are refused; replayed `jti`s are remembered this long.
pub const MAX_AGE: u64 = 600;

/// Who is to be logged out, and the token's ID (for replay defence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub subject: LogoutSubject,
    pub jti: String,
}

/// §2.4: a logout token names an issuer session (`sid`), a person (`sub`), or both; never
/// neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutSubject {
    /// That issuer session only.
    Session { sid: String },
    /// That issuer session, which must belong to this person.
    SessionOf { sid: String, sub: Subject },
    /// Every session of the person.
    Person { sub: Subject },
}

impl LogoutSubject {
    pub fn sub(&self) -> Option<&Subject> {
        match self {
            LogoutSubject::SessionOf { sub, .. } | LogoutSubject::Person { sub } => Some(sub),
            LogoutSubject::Session { .. } => None,
        }
    }

    pub fn sid(&self) -> Option<&str> {
        match self {
            LogoutSubject::Session { sid } | LogoutSubject::SessionOf { sid, .. } => Some(sid),
            LogoutSubject::Person { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// Step 3: `iss`, `aud`, `iat`, `exp` as for any token from the issuer.
    #[error(transparent)]
    Claim(ClaimError),
    #[error("jti is missing")]
    Jti,
    #[error("events does not contain the back-channel logout event")]
    Events,
    #[error("neither sid nor sub is present")]
    NoSubject,
    #[error("a logout token must not contain a nonce")]
    Nonce,
}

impl From<ClaimError> for LogoutTokenError {
    fn from(e: ClaimError) -> Self {
        LogoutTokenError::Claim(e)
    }
}

/// §2.6 steps 3–9 (1–2, decrypting and verifying the signature, happen before).
pub fn validate(
    jws: &VerifiedJws,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutClaims, LogoutTokenError> {
    let claims = Claims::of(jws);
    let text = |name: &str| {
        claims
            .text(name)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };

    // 3. Validate iss, aud, iat (at most MAX_AGE old) and exp, when present, as for any
    // token from the issuer.
    Expect {
        issuer,
        audience: Audience::AnyOf(&[client_id]),
        exp_required: false,
        iat_required: true,
        max_age: Some(MAX_AGE),
        now,
    }
    .check(&claims)?;
    // 4. A sub claim, a sid claim, or both.
    let sub = match text("sub") {
        Some(sub) => Some(Subject::parse(&sub).ok_or(ClaimError::Subject)?),
        None => None,
    };
    let subject = match (text("sid"), sub) {
        (Some(sid), Some(sub)) => LogoutSubject::SessionOf { sid, sub },
        (Some(sid), None) => LogoutSubject::Session { sid },
        (None, Some(sub)) => LogoutSubject::Person { sub },
        (None, None) => return Err(LogoutTokenError::NoSubject),
    };
    // 5. The events claim holds the back-channel logout event, whose value is a JSON object.
    let event = claims
        .all
        .get("events")
        .and_then(|e| e.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(LogoutTokenError::Events);
    }
    // 6. No nonce (so an ID token can never pass for a logout token).
    if claims.has("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    // 7. A jti, to refuse replays (checked by the caller against the ones seen).
    let jti = text("jti").ok_or(LogoutTokenError::Jti)?;
    Ok(LogoutClaims { subject, jti })
}

#[cfg(test)]
mod tests {
    use super::super::claims::LEEWAY;
    use super::*;
    use crate::jose::jwks::{self, testing::*, KeySet};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://id.example.com";

    fn good() -> Value {
        json!({
            "iss": ISS, "aud": "portcullis", "iat": NOW - 5, "exp": NOW + 120, "jti": "j-1",
            "sub": "alice-1", "sid": "op-sid", "events": { BACKCHANNEL_EVENT: {} },
        })
    }

    fn check(claims: Value) -> Result<LogoutClaims, LogoutTokenError> {
        let set = KeySet::parse(&jwks(&[rsa_jwk(rsa_key(0))])).unwrap();
        let jws = jwks::testing::verify_now(&sign_rs256(rsa_key(0), Some("rsa-0"), &claims), &set)
            .unwrap();
        validate(&jws, ISS, "portcullis", NOW)
    }

    fn with(k: &str, v: Option<Value>) -> Result<LogoutClaims, LogoutTokenError> {
        let mut c = good();
        match v {
            Some(v) => c[k] = v,
            None => {
                c.as_object_mut().unwrap().remove(k);
            }
        }
        check(c)
    }

    #[test]
    fn accepts() {
        let c = check(good()).unwrap();
        assert_eq!(
            (
                c.subject.sub().map(Subject::as_str),
                c.subject.sid(),
                c.jti.as_str()
            ),
            (Some("alice-1"), Some("op-sid"), "j-1")
        );
        assert_eq!(
            with("sub", None).unwrap().subject,
            LogoutSubject::Session {
                sid: "op-sid".into()
            },
            "sid alone"
        );
        assert_eq!(
            with("sid", None).unwrap().subject,
            LogoutSubject::Person {
                sub: "alice-1".into()
            },
            "sub alone"
        );
        assert!(with("exp", None).is_ok(), "exp is optional");
    }

    #[test]
    fn refuses() {
        assert_eq!(
            with("iss", Some(json!("https://evil"))),
            Err(LogoutTokenError::Claim(ClaimError::Issuer {
                found: "https://evil".into()
            }))
        );
        assert_eq!(
            with("aud", Some(json!("other"))),
            Err(LogoutTokenError::Claim(ClaimError::Audience))
        );
        assert_eq!(
            with("iat", None),
            Err(LogoutTokenError::Claim(ClaimError::IssuedAt))
        );
        assert_eq!(
            with("iat", Some(json!(NOW - MAX_AGE - 1))),
            Err(LogoutTokenError::Claim(ClaimError::IssuedAt))
        );
        assert_eq!(
            with("iat", Some(json!(NOW + LEEWAY + 1))),
            Err(LogoutTokenError::Claim(ClaimError::IssuedAt))
        );
        assert_eq!(
            with("exp", Some(json!(NOW - LEEWAY))),
            Err(LogoutTokenError::Claim(ClaimError::Expired))
        );
        assert_eq!(with("jti", None), Err(LogoutTokenError::Jti));
        assert_eq!(with("events", None), Err(LogoutTokenError::Events));
        assert_eq!(
            with("events", Some(json!({ BACKCHANNEL_EVENT: "yes" }))),
            Err(LogoutTokenError::Events)
        );
        assert_eq!(
            with("events", Some(json!({ "http://other": {} }))),
            Err(LogoutTokenError::Events)
        );
        assert_eq!(
            with("nonce", Some(json!("n"))),
            Err(LogoutTokenError::Nonce)
        );
        let mut c = good();
        c.as_object_mut().unwrap().remove("sub");
        c.as_object_mut().unwrap().remove("sid");
        assert_eq!(check(c), Err(LogoutTokenError::NoSubject));
    }
}
