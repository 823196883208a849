//! Provider metadata (OpenID Connect Discovery 1.0).

use serde::Deserialize;
use url::Url;

use super::token::ClientAuth;
use crate::config::is_loopback;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// The scopes the issuer lists; `None` when it lists none.
    #[serde(default, deserialize_with = "list_of_names")]
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 7009 token revocation.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// OpenID Connect Core §5.3, for the identity claims an ID token does not carry.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// How the token endpoint takes the client's secret; `None` when not listed (then
    /// `client_secret_basic`, Discovery §3).
    #[serde(default, deserialize_with = "list_of_names")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A list of names that only guides what Portcullis asks for: read leniently, since a
/// malformed one (not an array of strings) must not make the whole document unusable.
/// Anything but an array counts as not listed; entries that are not strings are dropped.
fn list_of_names<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(value.as_array().map(|list| {
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }))
}

impl ProviderMetadata {
    /// A plain document for `https://id.example.com`, for tests.
    #[cfg(test)]
    pub fn example() -> Self {
        let iss = "https://id.example.com";
        ProviderMetadata {
            issuer: iss.into(),
            authorization_endpoint: format!("{iss}/authorize"),
            token_endpoint: format!("{iss}/token"),
            jwks_uri: format!("{iss}/jwks"),
            end_session_endpoint: None,
            authorization_response_iss_parameter_supported: false,
            scopes_supported: None,
            revocation_endpoint: None,
            userinfo_endpoint: None,
            token_endpoint_auth_methods_supported: None,
        }
    }

    /// Whether a scope may be requested: the issuer lists it, or lists no scopes at all.
    /// Some issuers refuse a whole login with `invalid_scope` for a scope they do not list
    /// (Pocket ID before 2.10 did for `offline_access`).
    pub fn offers_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == scope))
    }

    /// How to send the client secret before the issuer has accepted either way: in the
    /// form when the issuer lists `client_secret_post` and not `client_secret_basic`, else
    /// HTTP Basic (the default when the list is missing, Discovery §3).
    pub fn client_auth(&self) -> ClientAuth {
        let listed = |m: &str| {
            self.token_endpoint_auth_methods_supported
                .as_ref()
                .is_some_and(|list| list.iter().any(|s| s == m))
        };
        if listed("client_secret_post") && !listed("client_secret_basic") {
            ClientAuth::Post
        } else {
            ClientAuth::Basic
        }
    }

    /// Parses and checks a discovery document fetched for `expected_issuer`.
    pub fn parse(body: &str, expected_issuer: &str) -> Result<Self, String> {
        let meta: ProviderMetadata =
            serde_json::from_str(body).map_err(|e| format!("not a discovery document: {e}"))?;
        // Discovery §4.3: the issuer in the document must be identical to the one used to
        // fetch it, or the ID tokens' `iss` would not match either.
        if meta.issuer != expected_issuer {
            return Err(format!(
                "issuer in the document is \"{}\", but the configured issuer is \"{expected_issuer}\"; set issuer to the exact value",
                meta.issuer
            ));
        }
        let loopback_issuer = Url::parse(expected_issuer)
            .ok()
            .is_some_and(|u| u.scheme() == "http" && is_loopback(u.host_str().unwrap_or_default()));
        for (name, value) in [
            ("authorization_endpoint", Some(&meta.authorization_endpoint)),
            ("token_endpoint", Some(&meta.token_endpoint)),
            ("jwks_uri", Some(&meta.jwks_uri)),
            ("end_session_endpoint", meta.end_session_endpoint.as_ref()),
            ("revocation_endpoint", meta.revocation_endpoint.as_ref()),
            ("userinfo_endpoint", meta.userinfo_endpoint.as_ref()),
        ] {
            let Some(value) = value else { continue };
            let url = Url::parse(value).map_err(|e| format!("{name} is not a URL: {e}"))?;
            let ok = url.scheme() == "https" || (loopback_issuer && url.scheme() == "http");
            if !ok {
                return Err(format!("{name} must use https: {value}"));
            }
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
        "issuer": "https://id.example.com",
        "authorization_endpoint": "https://id.example.com/authorize",
        "token_endpoint": "https://id.example.com/api/oidc/token",
        "jwks_uri": "https://id.example.com/.well-known/jwks.json",
        "end_session_endpoint": "https://id.example.com/api/oidc/end-session",
        "response_types_supported": ["code"]
    }"#;

    #[test]
    fn parses_a_pocket_id_like_document() {
        let m = ProviderMetadata::parse(DOC, "https://id.example.com").unwrap();
        assert_eq!(m.token_endpoint, "https://id.example.com/api/oidc/token");
        assert!(m.end_session_endpoint.is_some());
    }

    #[test]
    fn issuer_must_match_exactly() {
        let e = ProviderMetadata::parse(DOC, "https://id.example.com/").unwrap_err();
        assert!(e.contains("exact value"), "{e}");
    }

    #[test]
    fn endpoints_must_be_https_unless_the_issuer_is_local() {
        let doc = DOC.replace(
            "https://id.example.com/api/oidc/token",
            "http://id.example.com/token",
        );
        assert!(ProviderMetadata::parse(&doc, "https://id.example.com")
            .unwrap_err()
            .contains("https"));
        let local = DOC.replace("https://id.example.com", "http://127.0.0.1:9000");
        assert!(ProviderMetadata::parse(&local, "http://127.0.0.1:9000").is_ok());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ProviderMetadata::parse("<html>", "https://id.example.com").is_err());
        assert!(ProviderMetadata::parse("{}", "https://id.example.com").is_err());
    }

    #[test]
    fn the_client_authentication_discovery_suggests() {
        let with = |methods: &str| {
            let doc = DOC.replace(
                r#""response_types_supported""#,
                &format!(r#""token_endpoint_auth_methods_supported": {methods}, "response_types_supported""#),
            );
            ProviderMetadata::parse(&doc, "https://id.example.com")
                .unwrap()
                .client_auth()
        };
        assert_eq!(with(r#"["client_secret_post"]"#), ClientAuth::Post);
        assert_eq!(
            with(r#"["private_key_jwt", "client_secret_post"]"#),
            ClientAuth::Post
        );
        assert_eq!(
            with(r#"["client_secret_post", "client_secret_basic"]"#),
            ClientAuth::Basic
        );
        assert_eq!(with("[]"), ClientAuth::Basic);
        assert_eq!(
            ProviderMetadata::parse(DOC, "https://id.example.com")
                .unwrap()
                .client_auth(),
            ClientAuth::Basic,
            "not listed: client_secret_basic (Discovery §3)"
        );
        // Malformed lists guide nothing and break nothing.
        assert_eq!(with(r#""client_secret_post""#), ClientAuth::Basic);
        assert_eq!(with(r#"[3, "client_secret_post"]"#), ClientAuth::Post);
        assert_eq!(with("null"), ClientAuth::Basic);
    }

    #[test]
    fn a_malformed_scope_list_counts_as_none() {
        let doc = DOC.replace(
            r#""response_types_supported""#,
            r#""scopes_supported": "openid email", "response_types_supported""#,
        );
        let m = ProviderMetadata::parse(&doc, "https://id.example.com").unwrap();
        assert!(m.offers_scope("offline_access"));
    }
}
