//! The relying party's side of the conversation with the issuer, in one place: the
//! authorization request, redeeming a code, refreshing, and verifying tokens that clients
//! present (bearer and logout tokens). Each verifies the signature against the issuer's
//! keys and then checks the claims, so no caller repeats verify-and-validate.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::claims::{Carried, ClaimError};
use super::id_token::{self, Binding, Expected, IdTokenClaims, IdTokenError};
use super::logout_token::{self, LogoutClaims};
use super::provider::{Source, TokenVerifyError};
use super::token::{self, ClientAuth, TokenResponse};
use super::userinfo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{bearer, OidcError, PendingLogin, Provider, ProviderMetadata};
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::identity::{Identity, Subject};
use crate::jose::signature::SignatureCheck;
use crate::model::{Config, Scopes};
use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken};

/// A completed login or refresh: what the issuer vouched for.
#[derive(Debug, Clone)]
pub struct Vouched {
    pub claims: IdTokenClaims,
    pub id_token: IdToken,
    pub refresh_token: Option<RefreshToken>,
}

/// What a refresh came to.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// What the issuer said of the person this time.
    pub vouch: Vouch,
    pub refresh_token: Option<RefreshToken>,
}

/// What a refresh says of the person's claims.
#[derive(Debug, Clone)]
pub enum Vouch {
    /// A new ID token (completed from UserInfo where it lacked claims): the claims as they
    /// are now.
    IdToken(IdTokenClaims),
    /// No ID token (OIDC Core §12.2 makes it optional: Google, older Pocket ID): what
    /// UserInfo says of the same `sub`, for the claims it carries.
    Userinfo {
        identity: Identity,
        carried: Carried,
    },
    /// Neither an ID token nor a UserInfo endpoint: the claims cannot be seen to change.
    Nothing,
}

impl Vouch {
    /// `identity` as this answer leaves it.
    pub fn apply(self, identity: &mut Identity) {
        match self {
            Vouch::IdToken(claims) => *identity = claims.identity,
            Vouch::Userinfo {
                identity: mut now,
                carried,
            } => {
                // What UserInfo did not carry stays as it was.
                carried.complete(&mut now, identity.clone());
                *identity = now;
            }
            Vouch::Nothing => {}
        }
    }
}

/// Why talking to the issuer did not produce what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The issuer could not be reached, or answered with a server error: try later.
    #[error(transparent)]
    Unavailable(OidcError),
    /// The issuer answered, and the answer is a refusal or unusable.
    #[error(transparent)]
    Refused(OidcError),
}

impl From<TokenVerifyError> for ClientError {
    fn from(e: TokenVerifyError) -> Self {
        match e {
            TokenVerifyError::Issuer(e) => ClientError::Unavailable(e),
            TokenVerifyError::Token(e) => {
                ClientError::Refused(OidcError::IdToken(IdTokenError::Signature(e)))
            }
        }
    }
}

/// A token a client presented that is not valid here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentedError {
    /// The issuer's keys could not be obtained.
    #[error(transparent)]
    Unavailable(OidcError),
    /// The token is bad (signature, claims); the text says why.
    #[error("{0}")]
    Invalid(String),
}

/// What the issuer's client reads of the configuration, and nothing more.
#[derive(Clone)]
pub struct ClientSettings {
    pub issuer: String,
    pub discovery_url: String,
    pub client_id: String,
    /// `None`: a public client, authenticated by PKCE alone.
    pub client_secret: Option<ClientSecret>,
    pub id_token_audiences: Vec<String>,
    pub scopes: Scopes,
    pub groups_claim: String,
    /// Grants are re-validated (`revalidate_every`): a login asks for `offline_access`
    /// where the issuer offers it.
    pub refreshes: bool,
}

impl ClientSettings {
    pub fn of(config: &Config) -> Self {
        let s = &config.settings;
        ClientSettings {
            issuer: s.issuer.clone(),
            discovery_url: s.discovery_url.to_string(),
            client_id: s.client_id.clone(),
            client_secret: config.secrets.client_secret.clone(),
            id_token_audiences: s.id_token_audiences.clone(),
            scopes: s.scopes.clone(),
            groups_claim: s.groups_claim.clone(),
            refreshes: s.revalidate_every.is_some(),
        }
    }
}

pub struct Client {
    settings: ClientSettings,
    provider: Provider,
    /// How the client secret goes to the issuer, once the issuer has accepted a way it was
    /// not first sent (remembered for the isolate); until then as discovery suggests
    /// ([`ProviderMetadata::client_auth`]).
    auth: Cell<Option<ClientAuth>>,
    /// This isolate's last failed refresh: when, and why.
    last_refresh_error: RefCell<Option<(u64, String)>>,
}

/// The issuer as the admin console shows it.
#[derive(Debug, Clone)]
pub struct IssuerState {
    /// Whether the discovery document answered (asked afresh), or why not.
    pub discovery: Result<(), String>,
    /// The `kid`s of the signing keys in use (a key without one shows as `(none)`).
    pub key_ids: Result<Vec<String>, String>,
    pub last_refresh_error: Option<(u64, String)>,
}

impl Client {
    pub fn new(settings: ClientSettings) -> Self {
        let provider = Provider::new(&settings.issuer, &settings.discovery_url);
        Self {
            settings,
            provider,
            auth: Cell::new(None),
            last_refresh_error: RefCell::new(None),
        }
    }

    pub async fn metadata(
        &self,
        http: &impl HttpClient,
        now: u64,
    ) -> Result<Rc<ProviderMetadata>, OidcError> {
        self.provider.metadata(http, now).await
    }

    /// The authorization request (OIDC Core §3.1.2.1) for a login.
    pub async fn authorize_url<P: Serialize + DeserializeOwned>(
        &self,
        http: &impl HttpClient,
        pending: &PendingLogin<P>,
        prompt: Option<&str>,
        now: u64,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata(http, now).await?;
        pending
            .authorize_url(&metadata, &self.settings, prompt)
            .map_err(OidcError::Discovery)
    }

    /// Redeems an authorization code (OIDC Core §3.1.3) and validates the ID token
    /// (§3.1.3.7) against the login's nonce.
    pub async fn exchange_code<P: Serialize + DeserializeOwned>(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        code: &str,
        pending: &PendingLogin<P>,
        now: u64,
    ) -> Result<Vouched, ClientError> {
        let verifier = pending.verifier.expose();
        let request = |meta: &ProviderMetadata, auth| {
            token::code_request(
                meta,
                &self.settings,
                auth,
                code,
                verifier,
                &pending.redirect_uri,
            )
        };
        let tokens = self
            .token_endpoint(http, now, request, token::parse_response)
            .await?;
        let id_token = tokens.id_token.unwrap_or_else(|| IdToken::new(""));
        let claims = self
            .id_token(
                http,
                check,
                &id_token,
                Binding::Login {
                    nonce: pending.nonce.expose(),
                },
                now,
            )
            .await?;
        let claims = self
            .with_userinfo(http, claims, tokens.access_token.as_ref(), now)
            .await?;
        Ok(Vouched {
            claims,
            id_token,
            refresh_token: tokens.refresh_token,
        })
    }

    /// Uses a refresh token (OIDC Core §12): the issuer confirms the user is still
    /// active, and any new ID token must name the same `sub`. A failure is remembered for
    /// the admin console ([`Client::issuer_state`]).
    pub async fn refresh(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        refresh_token: &str,
        sub: &Subject,
        now: u64,
    ) -> Result<Refreshed, ClientError> {
        let result: Result<Refreshed, ClientError> = async {
            let request = |meta: &ProviderMetadata, auth| {
                token::refresh_request(meta, &self.settings, auth, refresh_token)
            };
            let tokens = self
                .token_endpoint(http, now, request, token::parse_refresh_response)
                .await?;
            let vouch = match tokens.id_token {
                Some(id_token) => {
                    let claims = self
                        .id_token(
                            http,
                            check,
                            &id_token,
                            Binding::Refresh { subject: sub },
                            now,
                        )
                        .await?;
                    let claims = self
                        .with_userinfo(http, claims, tokens.access_token.as_ref(), now)
                        .await?;
                    Vouch::IdToken(claims)
                }
                None => {
                    self.userinfo_only(http, sub, tokens.access_token.as_ref(), now)
                        .await?
                }
            };
            Ok(Refreshed {
                vouch,
                refresh_token: tokens.refresh_token,
            })
        }
        .await;
        if let Err(e) = &result {
            *self.last_refresh_error.borrow_mut() = Some((now, e.to_string()));
        }
        result
    }

    /// What the admin console shows of the issuer: whether its discovery document answers
    /// now (asked afresh), the key IDs of its JWKS, and this isolate's last failed
    /// re-validation.
    pub async fn issuer_state(&self, http: &impl HttpClient, now: u64) -> IssuerState {
        let (discovery, key_ids) = self.provider.state(http, now).await;
        IssuerState {
            discovery,
            key_ids,
            last_refresh_error: self.last_refresh_error.borrow().clone(),
        }
    }

    /// One call to the token endpoint: an unreachable issuer or a server error is
    /// `Unavailable`, an OAuth error or an unusable answer is `Refused`. A refused client
    /// authentication consumes no code, so [`Self::send_as_client`] may ask twice.
    async fn token_endpoint(
        &self,
        http: &impl HttpClient,
        now: u64,
        request: impl Fn(&ProviderMetadata, ClientAuth) -> HttpRequest,
        parse: fn(&HttpResponse) -> Result<TokenResponse, OidcError>,
    ) -> Result<TokenResponse, ClientError> {
        let metadata = self
            .metadata(http, now)
            .await
            .map_err(ClientError::Unavailable)?;
        let response = self
            .send_as_client(http, &metadata, |auth| request(&metadata, auth))
            .await
            .map_err(|e| ClientError::Unavailable(OidcError::Unreachable(e.0)))?;
        parse(&response).map_err(|e| match e {
            OidcError::Unreachable(_) => ClientError::Unavailable(e),
            e => ClientError::Refused(e),
        })
    }

    /// Sends a request authenticated as the client (token, revocation).
    ///
    /// The secret goes as [`Self::client_auth`] says. An issuer may take it only one way
    /// for a given client (Authelia and Zitadel let the owner choose so), whatever its
    /// discovery lists: on `invalid_client` the request is made once more the other way,
    /// and that way is kept once the issuer has accepted the client with it — an answer
    /// that is neither a server error nor `invalid_client` (as golang.org/x/oauth2's
    /// auto-detection does). A public client never retries.
    async fn send_as_client(
        &self,
        http: &impl HttpClient,
        metadata: &ProviderMetadata,
        request: impl Fn(ClientAuth) -> HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let auth = self.client_auth(metadata);
        let first = http.send(request(auth)).await?;
        if self.settings.client_secret.is_none() || !token::refuses_client(&first) {
            return Ok(first);
        }
        let other = auth.other();
        let second = http.send(request(other)).await?;
        if second.status < 500 && !token::refuses_client(&second) {
            self.auth.set(Some(other));
        }
        Ok(second)
    }

    /// The ID token's identity, completed from the UserInfo endpoint when the token lacks
    /// some of the claims Portcullis uses and the issuer has the endpoint (one more request
    /// to the issuer, only then). A refusal or an answer about another `sub` fails the
    /// login or refresh: fewer claims could as well decide who gets in.
    async fn with_userinfo(
        &self,
        http: &impl HttpClient,
        mut claims: IdTokenClaims,
        access_token: Option<&AccessToken>,
        now: u64,
    ) -> Result<IdTokenClaims, ClientError> {
        if claims.carried.all() {
            return Ok(claims);
        }
        let Some(response) = self.userinfo(http, access_token, now).await? else {
            return Ok(claims);
        };
        let groups_claim = &self.settings.groups_claim;
        userinfo::complete(
            &mut claims.identity,
            claims.carried,
            &response,
            groups_claim,
        )
        .map_err(ClientError::Refused)?;
        Ok(claims)
    }

    /// After a refresh without an ID token: what UserInfo says of `sub`, when the issuer
    /// has the endpoint (a refusal or an answer about someone else disowns the grant).
    async fn userinfo_only(
        &self,
        http: &impl HttpClient,
        sub: &Subject,
        access_token: Option<&AccessToken>,
        now: u64,
    ) -> Result<Vouch, ClientError> {
        let Some(response) = self.userinfo(http, access_token, now).await? else {
            return Ok(Vouch::Nothing);
        };
        let groups_claim = &self.settings.groups_claim;
        let (identity, carried) =
            userinfo::read(&response, sub, groups_claim).map_err(ClientError::Refused)?;
        Ok(Vouch::Userinfo { identity, carried })
    }

    /// The UserInfo endpoint's answer to `access_token`; `None` when the issuer has no
    /// such endpoint or gave no access token.
    async fn userinfo(
        &self,
        http: &impl HttpClient,
        access_token: Option<&AccessToken>,
        now: u64,
    ) -> Result<Option<HttpResponse>, ClientError> {
        let metadata = self
            .metadata(http, now)
            .await
            .map_err(ClientError::Unavailable)?;
        let (Some(endpoint), Some(token)) = (&metadata.userinfo_endpoint, access_token) else {
            return Ok(None);
        };
        let response = http
            .send(userinfo::request(endpoint, token.expose()))
            .await
            .map_err(|e| ClientError::Unavailable(OidcError::Unreachable(e.0)))?;
        if response.status >= 500 {
            return Err(ClientError::Unavailable(OidcError::Userinfo(format!(
                "status {}",
                response.status
            ))));
        }
        Ok(Some(response))
    }

    /// An ID token straight from the token endpoint: signature, then §3.1.3.7.
    async fn id_token(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        token: &IdToken,
        binding: Binding<'_>,
        now: u64,
    ) -> Result<IdTokenClaims, ClientError> {
        let s = &self.settings;
        let jws = self
            .provider
            .verify(http, check, token.expose(), Source::Issuer, now)
            .await?;
        id_token::validate(
            &jws,
            &Expected {
                issuer: &s.issuer,
                client_id: &s.client_id,
                trusted_audiences: &s.id_token_audiences,
                binding,
                groups_claim: &s.groups_claim,
                now,
            },
        )
        .map_err(|e| ClientError::Refused(OidcError::IdToken(e)))
    }

    /// Revokes a refresh token at the issuer (RFC 7009), when it offers revocation. Best
    /// effort: the session is already gone here; this ends the grant at the issuer too.
    /// Returns whether the issuer confirmed it.
    pub async fn revoke_refresh_token(
        &self,
        http: &impl HttpClient,
        refresh_token: &str,
        now: u64,
    ) -> bool {
        let Ok(metadata) = self.metadata(http, now).await else {
            return false;
        };
        let Some(endpoint) = metadata.revocation_endpoint.as_deref() else {
            return false;
        };
        self.send_as_client(http, &metadata, |auth| {
            token::revocation_request(endpoint, &self.settings, auth, refresh_token)
        })
        .await
        .is_ok_and(|response| response.status == 200)
    }

    /// How to send the client secret: the way the issuer last accepted after refusing the
    /// other, else what its discovery suggests.
    fn client_auth(&self, metadata: &ProviderMetadata) -> ClientAuth {
        self.auth.get().unwrap_or_else(|| metadata.client_auth())
    }

    /// A bearer token presented to an app: the holder's identity, when the token is the
    /// issuer's and names the client or one of `extra_audiences`. Also the token's expiry.
    pub async fn bearer(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        token: &str,
        extra_audiences: &[String],
        now: u64,
    ) -> Result<(Identity, u64), PresentedError> {
        let s = &self.settings;
        let jws = self.presented(http, check, token, now).await?;
        if !bearer::is_access_token(&jws) {
            return Err(PresentedError::Invalid(bearer::NOT_AN_ACCESS_TOKEN.into()));
        }
        let mut accepted: Vec<&str> = vec![s.client_id.as_str()];
        accepted.extend(extra_audiences.iter().map(String::as_str));
        let identity = bearer::validate(&jws, &s.issuer, &accepted, &s.groups_claim, now)
            .map_err(|e: ClaimError| PresentedError::Invalid(e.to_string()))?;
        let expires = jws
            .claims
            .expiration
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .unwrap_or(now);
        Ok((identity, expires))
    }

    /// A back-channel logout token (Back-Channel Logout 1.0 §2.6).
    pub async fn logout_token(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        token: &str,
        now: u64,
    ) -> Result<LogoutClaims, PresentedError> {
        let s = &self.settings;
        let jws = self.presented(http, check, token, now).await?;
        logout_token::validate(&jws, &s.issuer, &s.client_id, now)
            .map_err(|e| PresentedError::Invalid(e.to_string()))
    }

    async fn presented(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        token: &str,
        now: u64,
    ) -> Result<crate::jose::jwks::VerifiedJws, PresentedError> {
        self.provider
            .verify(http, check, token, Source::Client, now)
            .await
            .map_err(|e| match e {
                TokenVerifyError::Issuer(e) => PresentedError::Unavailable(e),
                TokenVerifyError::Token(e) => PresentedError::Invalid(e.to_string()),
            })
    }
}
