//! The UserInfo endpoint (OpenID Connect Core §5.3): asked, after a login or refresh, for
//! the identity claims the ID token did not carry. An issuer may return the claims of the
//! `email` and `profile` scopes only there (§5.4), as a strictly conforming one does when
//! an access token is issued.

use serde_json::{Map, Value};

use super::claims::{identity_of, Carried};
use super::OidcError;
use crate::http::{HttpRequest, HttpResponse};
use crate::identity::{Identity, Subject};

/// §5.3.1: a GET with the access token as a bearer token (RFC 6750 §2.1).
pub fn request(endpoint: &str, access_token: &str) -> HttpRequest {
    HttpRequest::get(endpoint).with_header("authorization", format!("Bearer {access_token}"))
}

/// Completes `identity` (from an ID token that carried only `carried`) with the UserInfo
/// response: §5.3.2, a JSON object whose `sub` is exactly the ID token's, or nothing of it
/// is used (the login fails: a UserInfo answer about someone else is an attack or a
/// misconfigured issuer, never a reason to let anyone in).
pub fn complete(
    identity: &mut Identity,
    carried: Carried,
    response: &HttpResponse,
    groups_claim: &str,
) -> Result<(), OidcError> {
    let (more, _) = read(response, &identity.sub, groups_claim)?;
    carried.complete(identity, more);
    Ok(())
}

/// The person a UserInfo response describes, and which claims it carried: §5.3.2, a JSON
/// object whose `sub` is exactly `sub`, or an error (a refusal of the access token, or an
/// answer about someone else, disowns the grant).
pub fn read(
    response: &HttpResponse,
    sub: &Subject,
    groups_claim: &str,
) -> Result<(Identity, Carried), OidcError> {
    if response.status == 401 {
        return Err(OidcError::UserinfoDenied(
            "answered 401 to the access token".into(),
        ));
    }
    if response.status != 200 {
        return Err(OidcError::Userinfo(format!(
            "answered {} to the access token",
            response.status
        )));
    }
    // A signed or encrypted response (`application/jwt`) is not a JSON object: Portcullis
    // registers for none, so the issuer should not send one.
    let claims: Map<String, Value> = serde_json::from_str(&response.body).map_err(|_| {
        OidcError::Userinfo(
            "not a JSON object (a signed or encrypted response is not supported)".into(),
        )
    })?;
    match claims.get("sub").and_then(Value::as_str) {
        Some(said) if said == sub.as_str() => {}
        _ => {
            return Err(OidcError::UserinfoDenied(
                "its sub is not the ID token's (OpenID Connect Core §5.3.2)".into(),
            ))
        }
    }
    Ok((
        identity_of(&claims, sub, groups_claim),
        Carried::of(&claims, groups_claim),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> Identity {
        Identity {
            sub: "alice-1".into(),
            ..Default::default()
        }
    }

    fn ok(body: Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            body: body.to_string(),
        }
    }

    const NOTHING: Carried = Carried {
        email: false,
        name: false,
        preferred_username: false,
        groups: false,
    };

    #[test]
    fn the_request_is_a_get_with_the_bearer_token() {
        let r = request("https://id.example.com/userinfo", "at-1");
        assert_eq!(r.method, crate::http::Method::Get);
        assert_eq!(r.url, "https://id.example.com/userinfo");
        assert!(r.body.is_none());
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer at-1".into())));
    }

    #[test]
    fn fills_in_what_the_id_token_did_not_carry() {
        let mut id = alice();
        let body = json!({
            "sub": "alice-1", "email": "alice@example.com", "email_verified": true,
            "name": "Alice", "preferred_username": "alice", "roles": ["family", "admins"],
        });
        complete(&mut id, NOTHING, &ok(body), "roles").unwrap();
        assert_eq!(id.email.as_deref(), Some("alice@example.com"));
        assert!(id.email_verified);
        assert_eq!(id.name.as_deref(), Some("Alice"));
        assert_eq!(id.preferred_username.as_deref(), Some("alice"));
        assert_eq!(id.groups, ["family", "admins"]);
    }

    #[test]
    fn what_the_id_token_carried_wins() {
        let mut id = Identity {
            email: Some("alice@example.com".into()),
            email_verified: false,
            groups: vec![],
            ..alice()
        };
        let carried = Carried {
            email: true,
            groups: true,
            ..NOTHING
        };
        let body = json!({
            "sub": "alice-1", "email": "boss@example.com", "email_verified": true,
            "groups": ["admins"], "name": "Alice",
        });
        complete(&mut id, carried, &ok(body), "groups").unwrap();
        assert_eq!(
            (id.email.as_deref(), id.email_verified),
            (Some("alice@example.com"), false),
            "email and email_verified stay together"
        );
        assert!(
            id.groups.is_empty(),
            "an empty list carried is still carried"
        );
        assert_eq!(id.name.as_deref(), Some("Alice"));
    }

    #[test]
    fn another_sub_a_refusal_or_garbage_fails_and_changes_nothing() {
        let someone_else = ok(json!({ "sub": "mallory", "groups": ["admins"] }));
        let no_sub = ok(json!({ "groups": ["admins"] }));
        let numeric_sub = ok(json!({ "sub": 1, "groups": ["admins"] }));
        let refused = HttpResponse {
            status: 401,
            body: "{}".into(),
        };
        let jwt = HttpResponse {
            status: 200,
            body: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
        };
        let array = ok(json!([{ "sub": "alice-1" }]));
        let insufficient_scope = HttpResponse {
            status: 403,
            body: "{}".into(),
        };
        // Whether the answer disowns the grant: a refusal of the token, or another person.
        for (what, response, disowns) in [
            ("someone else", someone_else, true),
            ("no sub", no_sub, true),
            ("numeric sub", numeric_sub, true),
            ("401", refused, true),
            ("403", insufficient_scope, false),
            ("a JWT", jwt, false),
            ("an array", array, false),
        ] {
            let mut id = alice();
            let e = complete(&mut id, NOTHING, &response, "groups").unwrap_err();
            assert!(
                matches!(e, OidcError::Userinfo(_) | OidcError::UserinfoDenied(_)),
                "{what}: {e}"
            );
            assert_eq!(e.disowns_grant(), disowns, "{what}: {e}");
            assert_eq!(id, alice(), "{what}");
        }
    }
}
