//! OpenID Connect, relying-party side: discovery, keys, the login request and the
//! ID-token checks, as OpenID Connect Core 1.0 and RFC 7636 / RFC 9700 describe them.

pub mod bearer;
pub mod claims;
pub mod client;
pub mod discovery;
pub mod id_token;
pub mod logout_token;
pub mod pending_login;
pub mod provider;
pub mod token;
pub mod userinfo;

pub use client::{Client, ClientError, ClientSettings, IssuerState, PresentedError};
pub use discovery::ProviderMetadata;
pub use id_token::{IdTokenClaims, IdTokenError};
pub use pending_login::PendingLogin;
pub use provider::Provider;

/// Why talking to the issuer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// No usable answer (network error, timeout, 5xx).
    #[error("issuer unreachable: {0}")]
    Unreachable(String),
    /// The discovery document is unusable.
    #[error("discovery document: {0}")]
    Discovery(String),
    /// The key set is unusable.
    #[error("key set: {0}")]
    Keys(String),
    /// The token endpoint refused the code.
    #[error("token endpoint refused the code: {error}{}", .description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        error: String,
        description: Option<String>,
    },
    /// The token endpoint answered something that is not a token response.
    #[error("token response: {0}")]
    TokenResponse(String),
    #[error("ID token rejected: {0}")]
    IdToken(IdTokenError),
    /// The UserInfo endpoint answered something unusable, or refused for a reason that says
    /// nothing about the grant (a server error, `insufficient_scope`).
    #[error("userinfo endpoint: {0}")]
    Userinfo(String),
    /// The UserInfo endpoint refused the access token the issuer had just issued (401,
    /// RFC 6750 §3.1 `invalid_token`), or answered about another user: the issuer no longer
    /// stands behind the grant (the person's session there ended meanwhile, say).
    #[error("userinfo endpoint: {0}")]
    UserinfoDenied(String),
}

impl OidcError {
    /// The issuer's answer disowns the grant a refresh was made for — its ID token failed
    /// the checks, or UserInfo refused the new access token or named someone else — so
    /// re-validation must end the session or app password, as on `invalid_grant`.
    pub fn disowns_grant(&self) -> bool {
        matches!(self, OidcError::IdToken(_) | OidcError::UserinfoDenied(_))
    }
}
