//! Starting a login: fresh `state`, `nonce` and PKCE verifier (RFC 7636, S256), kept in a
//! short-lived signed cookie bound to this browser. Nothing is written to KV until the
//! issuer has vouched for the user, so unauthenticated traffic costs no KV write.

use serde::{Deserialize, Serialize};
use url::Url;

use super::client::ClientSettings;
use super::ProviderMetadata;
use crate::cookies::LOGIN_PREFIX;
use crate::crypto::{self, Random, RandomError};
use crate::secret::LoginValue;
use crate::secret::SigningKeys;

/// How long a started login may take, in seconds.
pub const LOGIN_TTL: u64 = 600;
const MAC_PURPOSE: &str = "portcullis pending login v1";
/// Characters of `state` used in the cookie name (enough to tell parallel logins apart).
const NAME_CHARS: usize = 16;

/// A login on its way through the issuer, kept in a sealed cookie. `P` is what the login
/// is for besides signing in (the part that starts it names its own type; `()` for none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin<P = ()> {
    pub state: LoginValue,
    pub nonce: LoginValue,
    /// PKCE code verifier.
    pub verifier: LoginValue,
    /// Absolute URL to return to afterwards (already checked).
    pub return_to: String,
    pub redirect_uri: String,
    pub created: u64,
    /// `max_age` sent with the request (OIDC Core §3.1.2.1): the ID token must then carry
    /// an `auth_time` no older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// What the login is for besides signing in (creating an app password), as a typed
    /// value; covered by the cookie's MAC like everything here.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub purpose: Option<P>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PendingError {
    /// No cookie for this `state`: expired, already used, or a different browser.
    #[error("no pending login for this state")]
    Missing,
    /// The cookie's MAC or content is wrong.
    #[error("the pending login cookie does not verify")]
    Invalid,
    #[error("the pending login has expired")]
    Expired,
}

fn none<P>() -> Option<P> {
    None
}

impl PendingLogin {
    /// Cookie name for the login with this `state` (whatever the login is for).
    pub fn cookie_name_for(state: &str) -> Option<String> {
        let short: String = state.chars().take(NAME_CHARS).collect();
        let valid = short.len() == NAME_CHARS
            && short
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| format!("{LOGIN_PREFIX}{short}"))
    }
}

impl<P: Serialize + serde::de::DeserializeOwned> PendingLogin<P> {
    pub fn new(
        rng: &impl Random,
        return_to: String,
        redirect_uri: String,
        now: u64,
    ) -> Result<Self, RandomError> {
        Ok(Self {
            state: LoginValue::new(crypto::random_token::<32>(rng)?),
            nonce: LoginValue::new(crypto::random_token::<32>(rng)?),
            verifier: LoginValue::new(crypto::random_token::<32>(rng)?),
            return_to,
            redirect_uri,
            created: now,
            max_age: None,
            purpose: None,
        })
    }

    pub fn cookie_name(&self) -> String {
        PendingLogin::cookie_name_for(self.state.expose())
            .unwrap_or_else(|| LOGIN_PREFIX.to_string())
    }

    /// `payload.mac`, payload being the base64url JSON of this login.
    pub fn seal(&self, keys: &SigningKeys) -> String {
        let payload = crypto::b64url(serde_json::to_string(self).unwrap_or_default().as_bytes());
        let mac = crypto::hmac_sha256(keys.current(), MAC_PURPOSE, payload.as_bytes());
        format!("{payload}.{}", crypto::b64url(&mac))
    }

    /// The login from a cookie value, if its MAC verifies, it is fresh, and it is for `state`.
    pub fn open(
        value: &str,
        keys: &SigningKeys,
        state: &str,
        now: u64,
    ) -> Result<Self, PendingError> {
        let (payload, mac) = value.split_once('.').ok_or(PendingError::Invalid)?;
        let mac = crypto::b64url_decode(mac).ok_or(PendingError::Invalid)?;
        if !keys
            .all()
            .any(|k| crypto::hmac_sha256_verify(k, MAC_PURPOSE, payload.as_bytes(), &mac))
        {
            return Err(PendingError::Invalid);
        }
        let json = crypto::b64url_decode(payload).ok_or(PendingError::Invalid)?;
        let login: PendingLogin<P> =
            serde_json::from_slice(&json).map_err(|_| PendingError::Invalid)?;
        if !crypto::ct_eq(login.state.expose().as_bytes(), state.as_bytes()) {
            return Err(PendingError::Invalid);
        }
        if now >= login.created.saturating_add(LOGIN_TTL) || login.created > now.saturating_add(60)
        {
            return Err(PendingError::Expired);
        }
        Ok(login)
    }

    /// The authorization request (OIDC Core §3.1.2.1) for this login; `prompt` (e.g.
    /// `login`) asks the issuer to authenticate again.
    pub fn authorize_url(
        &self,
        metadata: &ProviderMetadata,
        client: &ClientSettings,
        prompt: Option<&str>,
    ) -> Result<String, String> {
        let mut url = Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| format!("authorization_endpoint: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scopes(metadata, client))
            .append_pair("state", self.state.expose())
            .append_pair("nonce", self.nonce.expose())
            .append_pair("code_challenge", &pkce_challenge(self.verifier.expose()))
            .append_pair("code_challenge_method", "S256");
        if let Some(prompt) = prompt {
            url.query_pairs_mut().append_pair("prompt", prompt);
        }
        if let Some(max_age) = self.max_age {
            url.query_pairs_mut()
                .append_pair("max_age", &max_age.to_string());
        }
        Ok(url.into())
    }
}

/// The scopes of a login: the configured ones as they are; without `scopes` configured, the
/// defaults the issuer lists (or all of them when it lists none), since Keycloak and Google
/// refuse a whole login naming a scope they do not have (`groups`). With
/// `revalidate_every`, also `offline_access` (for a refresh token) when the issuer lists
/// it. An issuer that gives a refresh token without it (Pocket ID does) is used as it is.
fn scopes(metadata: &ProviderMetadata, client: &ClientSettings) -> String {
    let configured = client.scopes.is_configured();
    let mut scopes: Vec<&str> = client
        .scopes
        .all()
        .iter()
        .map(String::as_str)
        .filter(|s| configured || *s == "openid" || metadata.offers_scope(s))
        .collect();
    let wanted = client.refreshes
        && !client.scopes.all().iter().any(|s| s == "offline_access")
        && metadata.offers_scope("offline_access");
    if wanted {
        scopes.push("offline_access");
    }
    scopes.join(" ")
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn pkce_challenge(verifier: &str) -> String {
    crypto::b64url(&crypto::sha256(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inputs;
    use crate::crypto::testing::CountingRandom;
    use crate::model::Config;

    fn keys() -> SigningKeys {
        SigningKeys::new(vec![b"0123456789abcdef0123456789abcdef".to_vec()]).unwrap()
    }

    fn login() -> PendingLogin<()> {
        PendingLogin::new(
            &CountingRandom::default(),
            "https://photos.example.com/album/1".into(),
            "https://photos.example.com/.portcullis/callback".into(),
            1_000,
        )
        .unwrap()
    }

    #[test]
    fn a_purpose_travels_typed_in_the_sealed_cookie() {
        let mut l = PendingLogin::<Vec<u32>>::new(
            &crate::crypto::SystemRandom,
            "https://a/".into(),
            "https://a/cb".into(),
            1_000,
        )
        .unwrap();
        l.purpose = Some(vec![7, 8]);
        let sealed = l.seal(&keys());
        let back = PendingLogin::<Vec<u32>>::open(&sealed, &keys(), l.state.expose(), 1_100);
        assert_eq!(back.unwrap().purpose, Some(vec![7, 8]));
        // Read as another purpose, the same cookie is refused, not misread.
        assert_eq!(
            PendingLogin::<bool>::open(&sealed, &keys(), l.state.expose(), 1_100),
            Err(PendingError::Invalid)
        );
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn values_are_fresh_and_long() {
        let a = login();
        assert_ne!(a.state.expose(), a.nonce.expose());
        assert_ne!(a.nonce.expose(), a.verifier.expose());
        assert_eq!(
            a.verifier.expose().len(),
            43,
            "RFC 7636: 43 to 128 characters"
        );
        let b = PendingLogin::<()>::new(
            &crate::crypto::SystemRandom,
            String::new(),
            String::new(),
            0,
        )
        .unwrap();
        let c = PendingLogin::<()>::new(
            &crate::crypto::SystemRandom,
            String::new(),
            String::new(),
            0,
        )
        .unwrap();
        assert_ne!(b.state.expose(), c.state.expose());
        assert_ne!(
            b.cookie_name(),
            c.cookie_name(),
            "parallel logins use different cookies"
        );
    }

    #[test]
    fn seal_and_open() {
        let l = login();
        let sealed = l.seal(&keys());
        assert_eq!(
            PendingLogin::<()>::open(&sealed, &keys(), l.state.expose(), 1_100),
            Ok(l.clone())
        );
        assert_eq!(
            PendingLogin::<()>::open(&sealed, &keys(), "other-state", 1_100),
            Err(PendingError::Invalid)
        );
        assert_eq!(
            PendingLogin::<()>::open(&sealed, &keys(), l.state.expose(), 1_000 + LOGIN_TTL),
            Err(PendingError::Expired)
        );
        let other = SigningKeys::new(vec![b"fedcba9876543210fedcba9876543210".to_vec()]).unwrap();
        assert_eq!(
            PendingLogin::<()>::open(&sealed, &other, l.state.expose(), 1_100),
            Err(PendingError::Invalid)
        );
        let tampered = format!("x{sealed}");
        assert_eq!(
            PendingLogin::<()>::open(&tampered, &keys(), l.state.expose(), 1_100),
            Err(PendingError::Invalid)
        );
        assert_eq!(
            PendingLogin::<()>::open("garbage", &keys(), l.state.expose(), 1_100),
            Err(PendingError::Invalid)
        );
    }

    #[test]
    fn cookie_name_comes_from_state_and_is_safe() {
        let l = login();
        assert_eq!(
            PendingLogin::cookie_name_for(l.state.expose()),
            Some(l.cookie_name())
        );
        assert!(l.cookie_name().starts_with("__Host-portcullis-login-"));
        assert_eq!(PendingLogin::cookie_name_for("short"), None);
        assert_eq!(PendingLogin::cookie_name_for("bad;chars=here!!xx"), None);
    }

    #[test]
    fn authorize_url_carries_every_parameter() {
        let config = Config::from_inputs(&Inputs {
            portcullis: Some(serde_json::json!({
                "issuer": "https://id.example.com", "client_id": "portcullis",
                "apps": [{ "host": "photos.example.com" }]
            })),
            oidc_client_secret: None,
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap();
        let meta = ProviderMetadata {
            authorization_endpoint: "https://id.example.com/authorize?x=1".into(),
            ..ProviderMetadata::example()
        };
        let l = login();
        let client = ClientSettings::of(&config);
        let url = Url::parse(&l.authorize_url(&meta, &client, None).unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["x"], "1", "existing query kept");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "portcullis");
        assert_eq!(
            q["redirect_uri"],
            "https://photos.example.com/.portcullis/callback"
        );
        assert_eq!(q["scope"], "openid profile email groups");
        assert_eq!(q["state"], l.state.expose());
        assert_eq!(q["nonce"], l.nonce.expose());
        assert_eq!(q["code_challenge"], pkce_challenge(l.verifier.expose()));
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(
            !url.as_str().contains(l.verifier.expose()),
            "the verifier never leaves the browser's cookie"
        );
    }

    /// The client's settings for photos.example.com with these keys besides.
    fn settings_with(extra: serde_json::Value) -> ClientSettings {
        let mut v = serde_json::json!({
            "issuer": "https://id.example.com", "client_id": "portcullis",
            "apps": [{ "host": "photos.example.com" }]
        });
        for (key, value) in extra.as_object().into_iter().flatten() {
            v[key] = value.clone();
        }
        Config::from_inputs(&Inputs {
            portcullis: Some(v),
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            ..Default::default()
        })
        .map(|config| ClientSettings::of(&config))
        .unwrap()
    }

    /// An issuer listing these scopes (`None`: listing none).
    fn listing(listed: Option<&[&str]>) -> ProviderMetadata {
        ProviderMetadata {
            scopes_supported: listed.map(|l| l.iter().map(|s| s.to_string()).collect()),
            ..ProviderMetadata::example()
        }
    }

    /// The `scope` parameter of a login.
    fn scope_param(meta: &ProviderMetadata, settings: &ClientSettings) -> String {
        let url = login().authorize_url(meta, settings, None).unwrap();
        let url = Url::parse(&url).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    #[test]
    fn offline_access_is_requested_only_from_issuers_that_list_it() {
        let revalidating = settings_with(serde_json::json!({ "revalidate_every": "15m" }));
        let plain = settings_with(serde_json::json!({}));
        let lists_it = listing(Some(&["openid", "email", "offline_access"]));
        let does_not = listing(Some(&["openid", "email", "profile", "groups"]));
        let silent = listing(None);
        assert!(scope_param(&lists_it, &revalidating).ends_with(" offline_access"));
        assert!(scope_param(&silent, &revalidating).ends_with(" offline_access"));
        assert!(!scope_param(&does_not, &revalidating).contains("offline_access"));
        assert!(!scope_param(&lists_it, &plain).contains("offline_access"));
    }

    #[test]
    fn default_scopes_go_only_to_issuers_that_list_them_configured_ones_always() {
        let defaults = settings_with(serde_json::json!({}));
        // Keycloak without a `groups` client scope, Google: `groups` would fail the login.
        let keycloak = listing(Some(&[
            "openid",
            "profile",
            "email",
            "offline_access",
            "roles",
        ]));
        assert_eq!(scope_param(&keycloak, &defaults), "openid profile email");
        let pocket_id = listing(Some(&["openid", "profile", "email", "groups"]));
        assert_eq!(
            scope_param(&pocket_id, &defaults),
            "openid profile email groups"
        );
        assert_eq!(
            scope_param(&listing(None), &defaults),
            "openid profile email groups"
        );
        // `openid` is always asked for, listed or not.
        assert_eq!(
            scope_param(&listing(Some(&["email"])), &defaults),
            "openid email"
        );
        // What the owner configured is sent as it is (LemonLDAP::NG does not list its
        // extra scopes).
        let configured =
            settings_with(serde_json::json!({ "scopes": ["openid", "email", "groups"] }));
        assert_eq!(scope_param(&keycloak, &configured), "openid email groups");
    }
}
