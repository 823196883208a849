//! Every way a request can fail, and the one boundary that turns a failure into a reply
//! (a small page, or JSON for API clients) and a log line, for the core and the edge
//! alike. Each error's status, code, title and message stand in one table (`meta`);
//! the pages' wording lives with the pages. Nothing here includes secrets, tokens or
//! session IDs.

use serde_json::json;

use crate::app_password::{self, CreateError};
use crate::assertion::SigningError;
use crate::config::ConfigErrors;
use crate::crypto::RandomError;
use crate::http::Reply;
use crate::oidc::OidcError;
use crate::pages;
use crate::service_token::ServiceTokenRefused;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    /// The configuration is invalid; every request gets this until it is fixed.
    Misconfigured(ConfigErrors),
    /// A host Portcullis was not configured for.
    UnknownHost,
    /// An unknown path under `/.portcullis/`.
    NotFound,
    MethodNotAllowed,
    BadRequest(&'static str),
    /// A login that did not complete (the login part's own errors).
    Login(LoginError),
    /// Discovery, keys or the token endpoint could not be reached.
    IssuerUnavailable(OidcError),
    /// A request for an app (or Portcullis's own page) that its credentials do not open.
    Access(AccessError),
    /// The path means different things to different servers (encoded `/`, `..;` …).
    AmbiguousPath(&'static str),
    /// A self-service form refused (the account page's own errors).
    Form(FormError),
    /// The admin console refused this person or this login.
    Console(ConsoleRefused),
    /// The admin API was called without the right `ADMIN_TOKEN`.
    AdminUnauthorized,
    /// A back-channel logout request that cannot be honoured.
    InvalidLogoutToken(String),
    /// The app's origin could not be reached.
    OriginUnreachable(String),
    /// A body larger than Portcullis reads for its own endpoints.
    PayloadTooLarge,
    /// Workers KV failed.
    Store(StoreError),
    /// The random number generator failed.
    Random,
    /// `ASSERTION_KEY` could not sign the `Portcullis-Assertion`.
    Assertion(SigningError),
}

/// Why a login did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No signed login state for this callback: expired cookie, a replayed or forged
    /// callback, or a different browser.
    #[error("no signed login state for this callback")]
    StateMissing,
    #[error("the login state does not verify")]
    StateInvalid,
    #[error("the login has expired")]
    Expired,
    /// The issuer redirected back with an OAuth error (e.g. `access_denied`).
    #[error("{error}{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    IssuerSaid {
        error: String,
        description: Option<String>,
    },
    /// The issuer answered, but the login could not be completed (code refused, bad token).
    #[error(transparent)]
    Failed(OidcError),
}

/// Why a request was not let in (the access part's own errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No valid session, on a request that must not be redirected (API, XHR, non-GET); the
    /// challenges its 401 carries for the credentials the path takes.
    #[error("no valid session or credential")]
    Unauthenticated(Challenge),
    /// Signed in, but not allowed to use this app. `csrf` (for the sign-out button) is
    /// present when the identity comes from a browser session.
    #[error("{user} is not allowed here")]
    Forbidden { user: String, csrf: Option<String> },
    /// Service-token credentials that do not open this app.
    #[error(transparent)]
    ServiceToken(ServiceTokenRefused),
    /// App-password credentials that do not open this app (here, now).
    #[error(transparent)]
    AppPassword(app_password::AppPasswordRefused),
    /// A bearer token that is not valid here.
    #[error("{0}")]
    InvalidBearer(String),
}

/// Why a self-service form (the account page's, the app-password forms) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The app-password form was filled in wrongly; the text says how.
    #[error("{0}")]
    AppPassword(&'static str),
    /// The person has as many app passwords as `max_app_passwords` allows.
    #[error("too many app passwords")]
    TooManyAppPasswords,
    /// The login made to create an app password is not a fresh login of the same person.
    #[error("recent login required")]
    NotRecentLogin,
    /// `revalidate_every` is set, but the issuer gave no refresh token for an app password.
    #[error("no refresh token")]
    NoRefreshToken,
    /// A state-changing POST without a valid CSRF token.
    #[error("csrf")]
    Csrf,
    /// The account page or one of its forms, asked by a script (`Sec-Fetch-Mode: cors`):
    /// a script on a protected app must not read the page or act through it.
    #[error("not for scripts")]
    NotForScripts,
}

/// Why the admin console refused (its own small error; its rows are in the table below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleRefused {
    /// Signed in, but in none of the `admin_groups`.
    #[error("not in any of admin_groups")]
    NotAdmin,
    /// The login made to open the console is not a fresh one.
    #[error("the issuer did not confirm a fresh sign-in")]
    NotRecentLogin,
}

/// Which `WWW-Authenticate` challenges a 401 carries (RFC 9110 §11.6.1): Basic where the
/// path takes app passwords or service tokens as Basic credentials, Bearer where it takes
/// the issuer's tokens. libcurl (git, `curl --anyauth`), davfs2 and the desktop WebDAV
/// clients send Basic credentials only after a Basic challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Challenge {
    pub basic: bool,
    pub bearer: bool,
}

impl Challenge {
    /// No credential but the session cookie.
    pub const NONE: Challenge = Challenge {
        basic: false,
        bearer: false,
    };

    fn header(self) -> Option<&'static str> {
        match (self.basic, self.bearer) {
            (false, false) => None,
            (true, false) => Some(BASIC),
            (false, true) => Some(BEARER),
            (true, true) => Some(BASIC_OR_BEARER),
        }
    }
}

impl std::fmt::Display for GateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for GateError {}

impl From<CreateError> for GateError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::TooMany(_) => GateError::Form(FormError::TooManyAppPasswords),
            CreateError::NoRefreshToken => GateError::Form(FormError::NoRefreshToken),
            CreateError::Store(e) => GateError::Store(e),
            CreateError::Random => GateError::Random,
        }
    }
}

impl From<StoreError> for GateError {
    fn from(e: StoreError) -> Self {
        GateError::Store(e)
    }
}

impl From<RandomError> for GateError {
    fn from(_: RandomError) -> Self {
        GateError::Random
    }
}

/// How an error is answered.
#[derive(Debug, Clone, Copy)]
struct Meta {
    status: u16,
    /// A stable machine-readable name (JSON `error` field and log `reason`).
    code: &'static str,
    /// The page's title.
    title: &'static str,
    /// What the visitor is told (no internal detail).
    message: &'static str,
    /// Answered in JSON whatever the client accepts (it is for programs).
    json_only: bool,
    /// The `WWW-Authenticate` challenge a JSON answer carries (RFC 9110 §11.6.1).
    challenge: Option<&'static str>,
}

const fn m(
    status: u16,
    code: &'static str,
    title: &'static str,
    message: &'static str,
    json_only: bool,
) -> Meta {
    Meta {
        status,
        code,
        title,
        message,
        json_only,
        challenge: None,
    }
}

impl Meta {
    const fn challenge(self, challenge: &'static str) -> Self {
        Meta {
            challenge: Some(challenge),
            ..self
        }
    }
}

/// RFC 6750 §3: a bearer credential refused.
const BEARER: &str = "Bearer";
const BEARER_INVALID: &str = "Bearer error=\"invalid_token\"";
/// RFC 7617: clients that speak Basic (nzb360, git) expect a challenge.
const BASIC: &str = "Basic realm=\"Portcullis\", charset=\"UTF-8\"";
const BASIC_OR_BEARER: &str = "Basic realm=\"Portcullis\", charset=\"UTF-8\", Bearer";

const DID_NOT_COMPLETE: &str = "Sign-in did not complete";

/// The table: one row per error.
fn meta(error: &GateError) -> Meta {
    use GateError as E;
    match error {
        E::Misconfigured(_) => m(500, "misconfigured", "Portcullis is misconfigured", "Portcullis is misconfigured; see the worker log", false),
        E::UnknownHost => m(404, "unknown_host", "This site is not configured", "Portcullis protects this address but has no app configured for this host name, so nothing is served here.", false),
        E::NotFound => m(404, "not_found", "Not found", "There is nothing at this address.", false),
        E::MethodNotAllowed => m(405, "method_not_allowed", "Method not allowed", "This address does not accept that kind of request.", false),
        E::BadRequest(_) => m(400, "bad_request", DID_NOT_COMPLETE, "The request was malformed.", false),
        E::Login(LoginError::StateMissing) => m(400, "login_state_missing", DID_NOT_COMPLETE, "This sign-in link has expired or was already used, or it was opened in a different browser. Start again from the app.", false),
        E::Login(LoginError::StateInvalid) => m(400, "login_state_invalid", DID_NOT_COMPLETE, "The sign-in could not be verified. Start again from the app.", false),
        E::Login(LoginError::Expired) => m(400, "login_expired", DID_NOT_COMPLETE, "The sign-in took too long and has expired. Please try again.", false),
        E::Login(LoginError::IssuerSaid { .. }) => m(400, "issuer_error", DID_NOT_COMPLETE, "You were not signed in.", false),
        E::IssuerUnavailable(_) => m(503, "issuer_unavailable", "Sign-in is unavailable", "The identity provider cannot be reached right now. If you were signed in already, your session still works; new sign-ins will work once the provider is back.", false),
        E::Login(LoginError::Failed(_)) => m(400, "login_failed", DID_NOT_COMPLETE, "The identity provider's answer could not be accepted, so you were not signed in. Please try again; if it keeps happening, the site owner can find the reason in the log.", false),
        E::Access(AccessError::Unauthenticated(c)) => Meta { challenge: c.header(), ..m(401, "unauthenticated", DID_NOT_COMPLETE, "sign in first: this request carries no valid Portcullis session", true) },
        E::AmbiguousPath(_) => m(400, "ambiguous_path", "Bad request", "This address is ambiguous (it contains an encoded slash, a control character or a dot segment with parameters), so it is refused.", false),
        E::Access(AccessError::Forbidden { csrf, .. }) => m(403, "forbidden", "You don't have access", "You are not allowed to use this app.", csrf.is_none()),
        E::Access(AccessError::ServiceToken(ServiceTokenRefused::Invalid)) => m(401, "invalid_service_token", DID_NOT_COMPLETE, "The service token is not valid.", true),
        E::Access(AccessError::ServiceToken(ServiceTokenRefused::NotForThisApp)) => m(401, "service_token_not_allowed_here", DID_NOT_COMPLETE, "This service token is not valid for this app.", true),
        E::Access(AccessError::AppPassword(r)) => m(401, r.code(), DID_NOT_COMPLETE, r.message(), true).challenge(BASIC),
        E::Form(FormError::AppPassword(why)) => m(400, "invalid_app_password_request", "The app password was not created", why, false),
        E::Form(FormError::TooManyAppPasswords) => m(409, "too_many_app_passwords", "The app password was not created", "You have as many app passwords as allowed. Revoke one you no longer use, then create the new one.", false),
        E::Form(FormError::NotRecentLogin) => m(403, "recent_login_required", "The app password was not created", "Creating an app password needs a fresh sign-in by the same person, and the identity provider did not confirm one. Please try again.", false),
        E::Console(ConsoleRefused::NotAdmin) => m(403, "not_an_admin", "You don't have access", "The admin console is for the owner's admins: members of a group in admin_groups.", false),
        E::Console(ConsoleRefused::NotRecentLogin) => m(403, "recent_login_required", "Sign in again first", "The admin console needs a sign-in from the last 10 minutes, and the identity provider did not confirm one. Open the console again to sign in.", false),
        E::Form(FormError::NoRefreshToken) => m(502, "no_refresh_token", "The app password was not created", "The identity provider gave no refresh token, so the app password could not be kept in step with your account. The site owner can find the reason in the log.", false),
        E::Access(AccessError::InvalidBearer(_)) => m(401, "invalid_token", DID_NOT_COMPLETE, "The bearer token is not valid here.", true).challenge(BEARER_INVALID),
        E::AdminUnauthorized => m(401, "unauthorized", DID_NOT_COMPLETE, "A valid admin token is required.", true).challenge(BEARER),
        E::InvalidLogoutToken(_) => m(400, "invalid_request", DID_NOT_COMPLETE, "The logout token was not accepted.", true),
        E::Form(FormError::NotForScripts) => m(403, "not_for_scripts", "Open this page yourself", "This page and its forms are for you to use in the browser, not for scripts.", false),
        E::Form(FormError::Csrf) => m(403, "csrf", "Please confirm", "This sign-out request could not be verified. Use the button below to sign out.", false),
        E::OriginUnreachable(_) => m(502, "origin_unreachable", "The app is down", "You are signed in, but the app behind this address is not answering. It may be restarting or down; try again in a moment.", false),
        E::PayloadTooLarge => m(413, "payload_too_large", "Request too large", "The request body is larger than this address accepts.", false),
        E::Store(_) => m(503, "session_store_unavailable", "Sessions are unavailable", "The session store is not available right now. Please try again in a moment.", false),
        E::Random => m(500, "random_failed", DID_NOT_COMPLETE, "An internal error occurred. Please try again.", false),
        E::Assertion(_) => m(500, "assertion_failed", "Portcullis is misconfigured", "Portcullis could not sign the identity assertion this app receives; see the worker log", false),
    }
}

impl GateError {
    /// No valid session or credential; the 401 offers these challenges.
    pub fn unauthenticated(challenge: Challenge) -> Self {
        GateError::Access(AccessError::Unauthenticated(challenge))
    }

    /// The app-password form was filled in wrongly; `why` says how.
    pub fn app_password_form(why: &'static str) -> Self {
        GateError::Form(FormError::AppPassword(why))
    }

    pub fn status(&self) -> u16 {
        meta(self).status
    }

    pub fn code(&self) -> &'static str {
        meta(self).code
    }

    /// The operator-facing explanation (for logs; pages say less).
    pub fn detail(&self) -> String {
        match self {
            GateError::Misconfigured(e) => e.to_string(),
            GateError::BadRequest(why) | GateError::AmbiguousPath(why) => (*why).to_string(),
            GateError::Login(LoginError::IssuerSaid { error, description }) => {
                let mut detail = match description {
                    Some(d) => format!("{error}: {d}"),
                    None => error.clone(),
                };
                if error == "invalid_scope" {
                    detail.push_str(
                        " (PORTCULLIS.scopes names a scope this issuer does not have; \
                         list only scopes its discovery document names, or leave scopes unset)",
                    );
                }
                detail
            }
            GateError::IssuerUnavailable(e) | GateError::Login(LoginError::Failed(e)) => {
                e.to_string()
            }
            GateError::OriginUnreachable(e)
            | GateError::Access(AccessError::InvalidBearer(e))
            | GateError::InvalidLogoutToken(e) => e.clone(),
            GateError::Access(AccessError::Forbidden { user, .. }) => {
                format!("{user} is not allowed here")
            }
            GateError::Access(AccessError::AppPassword(r)) => r.to_string(),
            GateError::Form(FormError::AppPassword(why)) => (*why).to_string(),
            GateError::Store(e) => e.to_string(),
            GateError::Assertion(e) => e.to_string(),
            other => other.code().replace('_', " "),
        }
    }

    /// The JSON log line for this error.
    pub fn log_line(&self, host: &str, path: &str) -> String {
        let status = self.status();
        json!({
            "level": if status >= 500 { "error" } else { "warn" },
            "event": "request_failed",
            "reason": self.code(),
            "detail": self.detail(),
            "status": status,
            "host": host,
            "path": path,
        })
        .to_string()
    }
}

/// What the boundary needs to know about the request an error happened on.
pub struct Scope<'a> {
    pub host: &'a str,
    pub path: &'a str,
    /// Where "try again" leads.
    pub retry: &'a str,
    /// The client asked for JSON rather than HTML (or the endpoint is for programs).
    pub wants_json: bool,
}

/// The error boundary: the reply for `error`, and the line to log (none for an
/// unauthenticated API call, which is ordinary traffic).
pub fn respond(error: &GateError, scope: &Scope<'_>) -> (Reply, Option<String>) {
    let log = (!matches!(error, GateError::Access(AccessError::Unauthenticated(_))))
        .then(|| error.log_line(scope.host, scope.path));
    (reply(error, scope), log)
}

fn reply(error: &GateError, scope: &Scope<'_>) -> Reply {
    let meta = meta(error);
    if scope.wants_json || meta.json_only {
        let reply = match error {
            // Back-Channel Logout §2.8: an OAuth-style error.
            GateError::InvalidLogoutToken(why) => Reply::json(
                meta.status,
                &json!({ "error": meta.code, "error_description": why }),
            ),
            // What was malformed, for the program that sent it (a fixed text, never input).
            GateError::BadRequest(why) => Reply::json(
                meta.status,
                &json!({ "error": meta.code, "message": meta.message, "detail": why }),
            ),
            _ => Reply::json(
                meta.status,
                &json!({ "error": meta.code, "message": meta.message }),
            ),
        };
        return match meta.challenge {
            Some(challenge) => reply.with_header("www-authenticate", challenge),
            None => reply,
        };
    }
    let page = pages::ErrorPage {
        host: scope.host,
        title: meta.title,
        message: meta.message,
        retry: scope.retry,
    };
    let body = match error {
        GateError::Misconfigured(errors) => pages::misconfigured(scope.host, &errors.for_page()),
        GateError::Login(LoginError::IssuerSaid { error, description }) => {
            pages::issuer_said(&page, error, description.as_deref())
        }
        GateError::Access(AccessError::Forbidden { user, csrf }) => {
            pages::forbidden(&page, user, csrf.as_deref().unwrap_or_default())
        }
        GateError::UnknownHost => pages::error(&page, pages::Next::Nothing),
        GateError::NotFound | GateError::MethodNotAllowed => pages::error(&page, pages::Next::Home),
        _ => pages::error(&page, pages::Next::Retry),
    };
    Reply::html(meta.status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error type of the core is a `std::error::Error` (with `Display`), so each part's
    /// failures compose with `?` and with other libraries' error handling.
    #[test]
    fn every_error_type_is_an_error() {
        fn is_error<E: std::error::Error>() {}
        is_error::<GateError>();
        is_error::<ConfigErrors>();
        is_error::<crate::config::ConfigError>();
        is_error::<StoreError>();
        is_error::<RandomError>();
        is_error::<SigningError>();
        is_error::<OidcError>();
        is_error::<crate::oidc::ClientError>();
        is_error::<crate::oidc::PresentedError>();
        is_error::<crate::oidc::IdTokenError>();
        is_error::<crate::oidc::claims::ClaimError>();
        is_error::<crate::oidc::logout_token::LogoutTokenError>();
        is_error::<crate::oidc::pending_login::PendingError>();
        is_error::<crate::oidc::provider::TokenVerifyError>();
        is_error::<crate::jose::jwks::JwsError>();
        is_error::<crate::http::HttpError>();
        is_error::<ServiceTokenRefused>();
        is_error::<app_password::AppPasswordRefused>();
        is_error::<app_password::VerifyError>();
        is_error::<CreateError>();
    }
    use crate::config::ConfigError;

    fn ctx(json: bool) -> Scope<'static> {
        Scope {
            host: "photos.example.com",
            path: "/",
            retry: "/.portcullis/login?rd=%2F",
            wants_json: json,
        }
    }

    #[test]
    fn an_invalid_scope_refusal_names_the_setting_in_the_log() {
        let e = GateError::Login(LoginError::IssuerSaid {
            error: "invalid_scope".into(),
            description: Some("Invalid scopes: openid groups".into()),
        });
        let detail = e.detail();
        assert!(
            detail.starts_with("invalid_scope: Invalid scopes: openid groups (")
                && detail.contains("PORTCULLIS.scopes"),
            "{detail}"
        );
        let other = GateError::Login(LoginError::IssuerSaid {
            error: "access_denied".into(),
            description: None,
        });
        assert_eq!(other.detail(), "access_denied");
    }

    #[test]
    fn statuses_and_pages() {
        let e = GateError::OriginUnreachable("connect ECONNREFUSED".into());
        let r = reply(&e, &ctx(false));
        assert_eq!(r.status, 502);
        assert!(r.body.contains("The app is down"));
        assert!(r.body.contains("photos.example.com"));
        assert!(
            !r.body.contains("ECONNREFUSED"),
            "internal detail stays in the log"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));

        let r = reply(&GateError::unauthenticated(Challenge::NONE), &ctx(false));
        assert_eq!(r.status, 401);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.contains("\"error\":\"unauthenticated\""));

        let r = reply(
            &GateError::Login(LoginError::IssuerSaid {
                error: "access_denied".into(),
                description: Some("<b>no</b>".into()),
            }),
            &ctx(false),
        );
        assert_eq!(r.status, 400);
        assert!(r.body.contains("access_denied"));
        assert!(r.body.contains("&lt;b&gt;no"));
        assert!(r.body.contains("Try again"));
    }

    #[test]
    fn misconfiguration_page_names_the_problem() {
        let e = GateError::Misconfigured(ConfigErrors(vec![ConfigError {
            key: "PORTCULLIS.issuer".into(),
            problem: "is required".into(),
        }]));
        let r = reply(&e, &ctx(false));
        assert_eq!(r.status, 500);
        assert!(r.body.contains("Portcullis is misconfigured"));
        assert!(r.body.contains("PORTCULLIS.issuer: is required"));
        let log = e.log_line("h", "/");
        assert!(log.contains("\"level\":\"error\""));
        assert!(log.contains("PORTCULLIS.issuer"));
        // Secrets' lengths and internal origins: in the log, not on the page.
        let private = GateError::Misconfigured(ConfigErrors(vec![
            ConfigError {
                key: "SESSION_SECRET".into(),
                problem: "the secret is 16 bytes; each key needs at least 32".into(),
            },
            ConfigError {
                key: "PORTCULLIS.apps[0].origin".into(),
                problem: "\"http://10.0.0.5:2283/x\" has a path".into(),
            },
        ]));
        let page = reply(&private, &ctx(false)).body;
        assert!(page.contains("SESSION_SECRET") && page.contains("PORTCULLIS.apps[0].origin"));
        assert!(
            !page.contains("16 bytes") && !page.contains("10.0.0.5"),
            "{page}"
        );
        let log = private.log_line("h", "/");
        assert!(log.contains("16 bytes") && log.contains("10.0.0.5"));
    }

    #[test]
    fn json_for_api_clients() {
        let r = reply(&GateError::OriginUnreachable("x".into()), &ctx(true));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.contains("origin_unreachable"));
    }
}
