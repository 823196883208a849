//! The token request (OIDC Core §3.1.3.1) and its response.

use serde::Deserialize;

use super::client::ClientSettings;
use super::{OidcError, ProviderMetadata};
use crate::crypto;
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// How a confidential client sends its secret (RFC 6749 §2.3.1, OIDC Core §9). An issuer
/// may take only one of the two for a client, whatever its discovery lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic (what issuers must support, and the default).
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post,
}

impl ClientAuth {
    /// The other way, tried once when the issuer refuses this one.
    pub fn other(self) -> Self {
        match self {
            Self::Basic => Self::Post,
            Self::Post => Self::Basic,
        }
    }
}

/// Exchanges an authorization code (OIDC Core §3.1.3.1).
pub fn code_request(
    metadata: &ProviderMetadata,
    client: &ClientSettings,
    auth: ClientAuth,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> HttpRequest {
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    token_request(metadata, client, auth, form)
}

/// Uses a refresh token (OIDC Core §12.1), to re-validate a session.
pub fn refresh_request(
    metadata: &ProviderMetadata,
    client: &ClientSettings,
    auth: ClientAuth,
    refresh_token: &str,
) -> HttpRequest {
    let form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token_request(metadata, client, auth, form)
}

/// Revokes a refresh token at the issuer's `revocation_endpoint` (RFC 7009).
pub fn revocation_request(
    endpoint: &str,
    client: &ClientSettings,
    auth: ClientAuth,
    refresh_token: &str,
) -> HttpRequest {
    client_request(
        endpoint,
        client,
        auth,
        vec![
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
    )
}

fn token_request<'a>(
    metadata: &ProviderMetadata,
    client: &'a ClientSettings,
    auth: ClientAuth,
    fields: Vec<(&str, &'a str)>,
) -> HttpRequest {
    client_request(&metadata.token_endpoint, client, auth, fields)
}

/// A request to the issuer authenticated as the client: with the secret as `auth` says when
/// one is configured, else a public client naming itself (for a code, the PKCE verifier
/// proves it).
fn client_request<'a>(
    url: &str,
    client: &'a ClientSettings,
    auth: ClientAuth,
    mut fields: Vec<(&str, &'a str)>,
) -> HttpRequest {
    match (&client.client_secret, auth) {
        (Some(secret), ClientAuth::Basic) => HttpRequest::post_form(url, &fields).with_header(
            "authorization",
            basic_auth(&client.client_id, secret.expose()),
        ),
        (Some(secret), ClientAuth::Post) => {
            fields.push(("client_id", &client.client_id));
            fields.push(("client_secret", secret.expose()));
            HttpRequest::post_form(url, &fields)
        }
        (None, _) => {
            fields.push(("client_id", &client.client_id));
            HttpRequest::post_form(url, &fields)
        }
    }
}

/// Whether an answer is the OAuth error `invalid_client` (RFC 6749 §5.2, which the
/// revocation endpoint uses too, RFC 7009 §2.2.1): a client error status with that code.
pub fn refuses_client(response: &HttpResponse) -> bool {
    (400..500).contains(&response.status)
        && serde_json::from_str::<ErrorResponse>(&response.body)
            .is_ok_and(|e| e.error == "invalid_client")
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before being joined.
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub id_token: Option<IdToken>,
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    // Nothing else is read: `expires_in` and the rest are left alone, so an issuer that
    // sends one in an unusual form (a string, as some do) does not fail the login.
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads the token endpoint's answer: tokens on 200, the OAuth error otherwise.
pub fn parse_response(response: &HttpResponse) -> Result<TokenResponse, OidcError> {
    if response.status >= 500 {
        return Err(OidcError::Unreachable(format!(
            "token endpoint answered {}",
            response.status
        )));
    }
    if response.status != 200 {
        return Err(
            match serde_json::from_str::<ErrorResponse>(&response.body) {
                Ok(e) => OidcError::TokenRefused {
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => OidcError::TokenResponse(format!(
                    "status {} without an OAuth error",
                    response.status
                )),
            },
        );
    }
    let tokens: TokenResponse = serde_json::from_str(&response.body)
        .map_err(|e| OidcError::TokenResponse(format!("not JSON: {e}")))?;
    if tokens.id_token.is_none() {
        return Err(OidcError::TokenResponse(
            "no id_token (is the openid scope allowed for this client?)".into(),
        ));
    }
    Ok(tokens)
}

/// Reads the answer to a refresh: an ID token is optional there (OIDC Core §12.2).
pub fn parse_refresh_response(response: &HttpResponse) -> Result<TokenResponse, OidcError> {
    match parse_response(response) {
        Err(OidcError::TokenResponse(why)) if why.starts_with("no id_token") => {
            serde_json::from_str(&response.body)
                .map_err(|e| OidcError::TokenResponse(e.to_string()))
        }
        other => other,
    }
}

/// A short fingerprint of a token for logs (never the token itself).
pub fn fingerprint(token: &str) -> String {
    crypto::b64url(&crypto::sha256(token.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse {
            status,
            body: body.into(),
        }
    }
    use crate::config::Inputs;
    use crate::http::Method;
    use crate::model::Config;

    fn config(secret: Option<&str>) -> ClientSettings {
        let config = Config::from_inputs(&Inputs {
            portcullis: Some(serde_json::json!({
                "issuer": "https://id.example.com", "client_id": "my client",
                "apps": [{ "host": "photos.example.com" }]
            })),
            oidc_client_secret: secret.map(String::from),
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap();
        ClientSettings::of(&config)
    }

    fn meta() -> ProviderMetadata {
        ProviderMetadata::example()
    }

    /// The code request of a client with the secret `s3cr:t`.
    fn confidential(auth: ClientAuth) -> HttpRequest {
        code_request(
            &meta(),
            &config(Some("s3cr:t")),
            auth,
            "the-code",
            "the-verifier",
            "https://cb",
        )
    }

    #[test]
    fn confidential_client_uses_basic_auth() {
        let r = confidential(ClientAuth::Basic);
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.url, "https://id.example.com/token");
        let auth = r
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone();
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&auth["Basic ".len()..])
            .unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), "my+client:s3cr%3At");
        let body = r.body.unwrap();
        assert!(body.contains("grant_type=authorization_code"));
        assert!(body.contains("code=the-code"));
        assert!(body.contains("code_verifier=the-verifier"));
        assert!(!body.contains("client_id"), "{body}");
    }

    #[test]
    fn public_client_sends_client_id_and_no_secret() {
        for auth in [ClientAuth::Basic, ClientAuth::Post] {
            let r = code_request(&meta(), &config(None), auth, "c", "v", "https://cb");
            assert!(r.headers.iter().all(|(k, _)| k != "authorization"));
            let body = r.body.unwrap();
            assert!(body.contains("client_id=my+client"));
            assert!(!body.contains("client_secret"));
        }
    }

    #[test]
    fn confidential_client_posting_its_secret() {
        let r = confidential(ClientAuth::Post);
        assert!(r.headers.iter().all(|(k, _)| k != "authorization"));
        let body = r.body.unwrap();
        assert!(body.contains("client_id=my+client"), "{body}");
        assert!(body.contains("client_secret=s3cr%3At"), "{body}");
        assert!(body.contains("code=the-code"), "{body}");
    }

    #[test]
    fn refresh_requests() {
        let r = refresh_request(&meta(), &config(Some("s")), ClientAuth::Basic, "rt-1");
        let body = r.body.unwrap();
        assert!(body.contains("grant_type=refresh_token"));
        assert!(body.contains("refresh_token=rt-1"));
        assert!(r.headers.iter().any(|(k, _)| k == "authorization"));
        let no_id = response(200, r#"{"access_token":"x","refresh_token":"rt-2"}"#);
        assert_eq!(
            parse_refresh_response(&no_id)
                .unwrap()
                .refresh_token
                .as_ref()
                .map(RefreshToken::expose),
            Some("rt-2")
        );
    }

    #[test]
    fn responses() {
        let ok = response(
            200,
            r#"{"id_token":"a.b.c","access_token":"x","token_type":"Bearer"}"#,
        );
        assert_eq!(
            parse_response(&ok)
                .unwrap()
                .id_token
                .as_ref()
                .map(IdToken::expose),
            Some("a.b.c")
        );
        let refused = HttpResponse {
            status: 400,
            body: r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#
                .into(),
        };
        assert!(
            matches!(parse_response(&refused), Err(OidcError::TokenRefused { error, .. }) if error == "invalid_grant")
        );
        let down = response(502, "bad gateway");
        assert!(matches!(
            parse_response(&down),
            Err(OidcError::Unreachable(_))
        ));
        let string_expiry = response(
            200,
            r#"{"id_token":"a.b.c","access_token":"x","expires_in":"3599","token_type":"bearer"}"#,
        );
        assert!(parse_response(&string_expiry).is_ok());
        let no_id = response(200, r#"{"access_token":"x"}"#);
        assert!(matches!(
            parse_response(&no_id),
            Err(OidcError::TokenResponse(_))
        ));
        let html = response(200, "<html>");
        assert!(matches!(
            parse_response(&html),
            Err(OidcError::TokenResponse(_))
        ));
    }

    #[test]
    fn only_an_invalid_client_error_counts_as_refusing_the_client() {
        let answer = |status, body: &str| HttpResponse {
            status,
            body: body.into(),
        };
        assert!(refuses_client(&answer(
            401,
            r#"{"error":"invalid_client"}"#
        )));
        assert!(refuses_client(&answer(
            400,
            r#"{"error":"invalid_client"}"#
        )));
        assert!(!refuses_client(&answer(
            400,
            r#"{"error":"invalid_grant"}"#
        )));
        assert!(!refuses_client(&answer(401, "Unauthorized")));
        assert!(!refuses_client(&answer(
            503,
            r#"{"error":"invalid_client"}"#
        )));
        assert!(!refuses_client(&answer(
            200,
            r#"{"error":"invalid_client"}"#
        )));
    }
}
