//! Service tokens: machine access per app, for clients that cannot follow a browser login
//! (the Immich mobile app's custom proxy headers, nzb360, scripts). Presented as the header
//! pair `Portcullis-Client-Id` + `Portcullis-Client-Secret`, or as
//! `Authorization: Basic base64(client_id:secret)`. Only the SHA-256 of a secret is
//! configured; it is compared in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::crypto::{ct_eq, random_bytes, random_token, sha256, Random};
use crate::model::{App, ServiceToken};
use crate::request::RequestHead;
use crate::secret::ClientCredential;

pub const CLIENT_ID_HEADER: &str = "portcullis-client-id";
pub const CLIENT_SECRET_HEADER: &str = "portcullis-client-secret";

/// The credentials of a new service token, as `scripts/service-token` prints them.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    /// `<name>.<8 hex digits>`.
    pub client_id: String,
    /// 256 random bits, base64url; shown once, never stored.
    pub secret: ClientCredential,
    /// What `secret_sha256` in the configuration holds.
    pub secret_sha256: String,
}

impl NewToken {
    pub fn generate(name: &str, rng: &impl Random) -> Result<Self, String> {
        if !ServiceToken::valid_name(name) {
            return Err(format!(
                "\"{name}\" is not a token name; use letters, digits, -, _ or . (e.g. immich-mobile)"
            ));
        }
        let no_randomness = |_| "no randomness available".to_string();
        let suffix: [u8; 4] = random_bytes(rng).map_err(no_randomness)?;
        let secret = random_token::<32>(rng).map_err(no_randomness)?;
        Ok(Self {
            name: name.to_string(),
            client_id: format!("{name}.{}", hex(&suffix)),
            secret_sha256: hex(&sha256(secret.as_bytes())),
            secret: ClientCredential::new(secret),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Credentials found on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    secret: ClientCredential,
    /// Sent as `Authorization: Basic` (removed upstream only then).
    pub via_basic: bool,
}

impl Presented {
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }
}

/// Client credentials on a request, if any: a service token's, or an app password's
/// (told apart by the client ID's form, see [`crate::app_password::credential::is_id`]).
/// The header pair always counts (a half pair too, which then fails); `Authorization:
/// Basic` counts only when its user name is a configured token's client ID or has the
/// form of an app password's, so apps' own Basic authentication passes untouched.
pub fn presented(head: &RequestHead, tokens: &[ServiceToken]) -> Option<Presented> {
    let id = head.header(CLIENT_ID_HEADER);
    let secret = head.header(CLIENT_SECRET_HEADER);
    if id.is_some() || secret.is_some() {
        return Some(Presented {
            client_id: id.unwrap_or_default().to_string(),
            secret: ClientCredential::new(secret.unwrap_or_default()),
            via_basic: false,
        });
    }
    let auth = head.header("authorization")?;
    let (scheme, encoded) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (client_id, secret) = decoded.split_once(':')?;
    let ours = crate::app_password::credential::is_id(client_id)
        || tokens.iter().any(|t| t.client_id == client_id);
    ours.then(|| Presented {
        client_id: client_id.into(),
        secret: ClientCredential::new(secret),
        via_basic: true,
    })
}

/// Why presented credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServiceTokenRefused {
    /// No token with this client ID, or the secret does not match.
    #[error("the service token is not valid")]
    Invalid,
    /// A valid token that this app does not list.
    #[error("the service token is not valid for this app")]
    NotForThisApp,
}

/// Checks presented credentials for `app`.
pub fn check<'c>(
    presented: &Presented,
    app: &App,
    tokens: &'c [ServiceToken],
) -> Result<&'c ServiceToken, ServiceTokenRefused> {
    // Hash first and always, so an unknown ID and a wrong secret take the same time.
    let hash = sha256(presented.secret.expose().as_bytes());
    let token = tokens
        .iter()
        .find(|t| ct_eq(t.client_id.as_bytes(), presented.client_id.as_bytes()));
    let token = match token {
        Some(t) if ct_eq(&t.secret_sha256, &hash) && !presented.secret.expose().is_empty() => t,
        _ => return Err(ServiceTokenRefused::Invalid),
    };
    if app.service_tokens.contains(&token.name) {
        Ok(token)
    } else {
        Err(ServiceTokenRefused::NotForThisApp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inputs;
    use crate::crypto::b64url;
    use crate::model::Config;
    use serde_json::json;

    fn config() -> Config {
        Config::from_inputs(&Inputs {
            portcullis: Some(json!({
                "issuer": "https://id.example.com", "client_id": "c",
                "service_tokens": [
                    { "name": "immich-mobile", "client_id": "immich-mobile.8f3c", "secret_sha256": hex(&sha256(b"s3cret")) },
                    { "name": "nzb360", "client_id": "nzb360.1a2b", "secret_sha256": hex(&sha256(b"other")) },
                ],
                "apps": [{ "host": "photos.example.com", "service_tokens": ["immich-mobile"] }],
            })),
            oidc_client_secret: None,
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap()
    }

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::of("GET", "https://photos.example.com/api", headers)
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    #[test]
    fn header_pair_and_basic() {
        let c = config();
        let app = &c.settings.apps[0];
        let pair = presented(
            &head(&[
                ("portcullis-client-id", "immich-mobile.8f3c"),
                ("portcullis-client-secret", "s3cret"),
            ]),
            &c.settings.service_tokens,
        )
        .unwrap();
        assert!(!pair.via_basic);
        assert_eq!(
            check(&pair, app, &c.settings.service_tokens).unwrap().name,
            "immich-mobile"
        );
        let b = presented(
            &head(&[("authorization", &basic("immich-mobile.8f3c:s3cret"))]),
            &c.settings.service_tokens,
        )
        .unwrap();
        assert!(b.via_basic);
        assert_eq!(
            check(&b, app, &c.settings.service_tokens)
                .unwrap()
                .identity()
                .user(),
            "service:immich-mobile"
        );
    }

    #[test]
    fn refusals() {
        let c = config();
        let app = &c.settings.apps[0];
        let try_pair = |id: &str, secret: &str| {
            let p = presented(
                &head(&[
                    ("portcullis-client-id", id),
                    ("portcullis-client-secret", secret),
                ]),
                &c.settings.service_tokens,
            )
            .unwrap();
            check(&p, app, &c.settings.service_tokens).map(|t| t.name.clone())
        };
        assert_eq!(
            try_pair("immich-mobile.8f3c", "wrong"),
            Err(ServiceTokenRefused::Invalid)
        );
        assert_eq!(
            try_pair("immich-mobile.8f3c", ""),
            Err(ServiceTokenRefused::Invalid)
        );
        assert_eq!(
            try_pair("unknown", "s3cret"),
            Err(ServiceTokenRefused::Invalid)
        );
        assert_eq!(
            try_pair("nzb360.1a2b", "other"),
            Err(ServiceTokenRefused::NotForThisApp)
        );
        let half = presented(
            &head(&[("portcullis-client-id", "immich-mobile.8f3c")]),
            &c.settings.service_tokens,
        )
        .unwrap();
        assert_eq!(
            check(&half, app, &c.settings.service_tokens),
            Err(ServiceTokenRefused::Invalid)
        );
        let wrong = presented(
            &head(&[("authorization", &basic("immich-mobile.8f3c:nope"))]),
            &c.settings.service_tokens,
        )
        .unwrap();
        assert_eq!(
            check(&wrong, app, &c.settings.service_tokens),
            Err(ServiceTokenRefused::Invalid)
        );
    }

    #[test]
    fn other_authorization_is_not_ours() {
        let c = config();
        for auth in [
            basic("admin:password"),
            "Bearer abc".into(),
            "Basic !!!".into(),
            basic("no-colon"),
            b64url(b"x"),
        ] {
            assert_eq!(
                presented(
                    &head(&[("authorization", &auth)]),
                    &c.settings.service_tokens
                ),
                None,
                "{auth}"
            );
        }
        assert_eq!(presented(&head(&[]), &c.settings.service_tokens), None);
    }

    #[test]
    fn generated_tokens_pass_the_configuration_and_the_check() {
        let t = NewToken::generate("immich-mobile", &crate::crypto::SystemRandom).unwrap();
        assert!(t.client_id.starts_with("immich-mobile."));
        assert_eq!(t.client_id.len(), "immich-mobile.".len() + 8);
        let c = Config::from_inputs(&Inputs {
            portcullis: Some(json!({
                "issuer": "https://id.example.com", "client_id": "c",
                "service_tokens": [{ "name": t.name, "client_id": t.client_id, "secret_sha256": t.secret_sha256 }],
                "apps": [{ "host": "photos.example.com", "service_tokens": ["immich-mobile"] }],
            })),
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            ..Default::default()
        })
        .unwrap();
        let pair = presented(
            &head(&[
                ("portcullis-client-id", &t.client_id),
                ("portcullis-client-secret", t.secret.expose()),
            ]),
            &c.settings.service_tokens,
        )
        .unwrap();
        let tokens = &c.settings.service_tokens;
        assert!(check(&pair, &c.settings.apps[0], tokens).is_ok());
        assert!(NewToken::generate("bad name", &crate::crypto::SystemRandom).is_err());
    }
}
