//! Every way a request can fail, mapped in one place to a status, a small page (or JSON for
//! API clients) and a log line. Nothing here includes secrets, tokens or session IDs.

use serde_json::json;

use crate::config::ConfigErrors;
use crate::http::Reply;
use crate::oidc::OidcError;
use crate::pages::{self, Action, Page};
use crate::service::Refused;
use crate::session::StoreError;

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
    /// No signed login state for this callback: expired cookie, a replayed or forged
    /// callback, or a different browser.
    LoginStateMissing,
    LoginStateInvalid,
    LoginExpired,
    /// The issuer redirected back with an OAuth error (e.g. `access_denied`).
    IssuerSaid {
        error: String,
        description: Option<String>,
    },
    /// Discovery, keys or the token endpoint could not be reached.
    IssuerUnavailable(OidcError),
    /// The issuer answered, but the login could not be completed (code refused, bad token).
    LoginFailed(OidcError),
    /// No valid session, on a request that must not be redirected (API, XHR, non-GET).
    Unauthenticated,
    /// The path means different things to different servers (encoded `/`, `..;` …).
    AmbiguousPath(&'static str),
    /// Signed in, but not allowed to use this app. `csrf` (for the sign-out button) is
    /// present when the identity comes from a browser session.
    Forbidden {
        user: String,
        csrf: Option<String>,
    },
    /// Service-token credentials that do not open this app.
    ServiceToken(Refused),
    /// A bearer token that is not valid here.
    InvalidBearer(String),
    /// The admin API was called without the right `ADMIN_TOKEN`.
    AdminUnauthorized,
    /// A back-channel logout request that cannot be honoured.
    InvalidLogoutToken(String),
    /// A state-changing POST without a valid CSRF token.
    Csrf,
    /// The app's origin could not be reached.
    OriginUnreachable(String),
    /// Workers KV failed.
    Store(StoreError),
    /// The random number generator failed.
    Random,
}

/// What an error page needs to know about the request.
pub struct ErrorContext<'a> {
    pub host: &'a str,
    /// Where "try again" leads.
    pub retry: &'a str,
    /// The client asked for JSON rather than HTML.
    pub wants_json: bool,
}

impl GateError {
    pub fn status(&self) -> u16 {
        match self {
            GateError::Misconfigured(_) | GateError::Random => 500,
            GateError::UnknownHost | GateError::NotFound => 404,
            GateError::MethodNotAllowed => 405,
            GateError::BadRequest(_)
            | GateError::LoginStateMissing
            | GateError::LoginStateInvalid
            | GateError::LoginExpired
            | GateError::IssuerSaid { .. }
            | GateError::LoginFailed(_) => 400,
            GateError::Unauthenticated
            | GateError::ServiceToken(_)
            | GateError::InvalidBearer(_)
            | GateError::AdminUnauthorized => 401,
            GateError::AmbiguousPath(_) | GateError::InvalidLogoutToken(_) => 400,
            GateError::Forbidden { .. } => 403,
            GateError::Csrf => 403,
            GateError::OriginUnreachable(_) => 502,
            GateError::IssuerUnavailable(_) | GateError::Store(_) => 503,
        }
    }

    /// A stable machine-readable name (JSON `error` field and log `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            GateError::Misconfigured(_) => "misconfigured",
            GateError::UnknownHost => "unknown_host",
            GateError::NotFound => "not_found",
            GateError::MethodNotAllowed => "method_not_allowed",
            GateError::BadRequest(_) => "bad_request",
            GateError::LoginStateMissing => "login_state_missing",
            GateError::LoginStateInvalid => "login_state_invalid",
            GateError::LoginExpired => "login_expired",
            GateError::IssuerSaid { .. } => "issuer_error",
            GateError::IssuerUnavailable(_) => "issuer_unavailable",
            GateError::LoginFailed(_) => "login_failed",
            GateError::Unauthenticated => "unauthenticated",
            GateError::AmbiguousPath(_) => "ambiguous_path",
            GateError::Forbidden { .. } => "forbidden",
            GateError::ServiceToken(Refused::Invalid) => "invalid_service_token",
            GateError::ServiceToken(Refused::NotForThisApp) => "service_token_not_allowed_here",
            GateError::InvalidBearer(_) => "invalid_token",
            GateError::AdminUnauthorized => "unauthorized",
            GateError::InvalidLogoutToken(_) => "invalid_request",
            GateError::Csrf => "csrf",
            GateError::OriginUnreachable(_) => "origin_unreachable",
            GateError::Store(_) => "session_store_unavailable",
            GateError::Random => "random_failed",
        }
    }

    /// The operator-facing explanation (for logs; pages say less).
    pub fn detail(&self) -> String {
        match self {
            GateError::Misconfigured(e) => e.to_string(),
            GateError::BadRequest(why) => (*why).to_string(),
            GateError::IssuerSaid { error, description } => match description {
                Some(d) => format!("{error}: {d}"),
                None => error.clone(),
            },
            GateError::IssuerUnavailable(e) | GateError::LoginFailed(e) => e.to_string(),
            GateError::OriginUnreachable(e)
            | GateError::InvalidBearer(e)
            | GateError::InvalidLogoutToken(e) => e.clone(),
            GateError::AmbiguousPath(why) => (*why).to_string(),
            GateError::Forbidden { user, .. } => format!("{user} is not allowed here"),
            GateError::Store(e) => e.to_string(),
            other => other.code().replace('_', " "),
        }
    }

    /// The JSON log line for this error.
    pub fn log_line(&self, host: &str, path: &str) -> String {
        let level = if self.status() >= 500 {
            "error"
        } else {
            "warn"
        };
        json!({
            "level": level,
            "event": "request_failed",
            "reason": self.code(),
            "detail": self.detail(),
            "status": self.status(),
            "host": host,
            "path": path,
        })
        .to_string()
    }

    pub fn reply(&self, ctx: &ErrorContext<'_>) -> Reply {
        let status = self.status();
        let always_json = matches!(
            self,
            GateError::Unauthenticated
                | GateError::ServiceToken(_)
                | GateError::InvalidBearer(_)
                | GateError::AdminUnauthorized
                | GateError::InvalidLogoutToken(_)
        ) || matches!(self, GateError::Forbidden { csrf: None, .. });
        if ctx.wants_json || always_json {
            let message = match self {
                GateError::Unauthenticated => {
                    "sign in first: this request carries no valid Portcullis session".to_string()
                }
                GateError::Misconfigured(_) => {
                    "Portcullis is misconfigured; see the worker log".to_string()
                }
                other => other.user_message().to_string(),
            };
            let reply = match self {
                // Back-Channel Logout §2.8: an OAuth-style error.
                GateError::InvalidLogoutToken(why) => Reply::json(
                    status,
                    &json!({ "error": self.code(), "error_description": why }),
                ),
                _ => Reply::json(status, &json!({ "error": self.code(), "message": message })),
            };
            // RFC 6750 §3: a refused bearer token is answered with a challenge.
            return match self {
                GateError::AdminUnauthorized => reply.with_header("www-authenticate", "Bearer"),
                GateError::InvalidBearer(_) => {
                    reply.with_header("www-authenticate", "Bearer error=\"invalid_token\"")
                }
                _ => reply,
            };
        }
        let retry = Action::Link {
            label: "Try again",
            href: ctx.retry,
        };
        let home = Action::Link {
            label: "Back to the app",
            href: "/",
        };
        let message = self.user_message();
        let body = match self {
            GateError::Misconfigured(errors) => pages::render(&Page {
                html: None,
                title: "Portcullis is misconfigured",
                host: ctx.host,
                paragraphs: &["Portcullis is misconfigured: the owner of this site needs to fix its configuration before anyone can sign in. The problems found:"],
                details: Some(&errors.to_string()),
                actions: &[],
            }),
            GateError::IssuerSaid { error, description } => {
                let said = match description {
                    Some(d) => format!("The identity provider said: {error} ({d})."),
                    None => format!("The identity provider said: {error}."),
                };
                pages::render(&Page {
                    html: None,
                    title: "Sign-in did not complete",
                    host: ctx.host,
                    paragraphs: &[&said, message],
                    details: None,
                    actions: &[retry],
                })
            }
            GateError::Forbidden { user, csrf } => {
                let line = format!("You are signed in as {user}, who is not allowed to use this app.");
                let switch = format!("{}&switch=1", ctx.retry);
                let csrf = csrf.as_deref().unwrap_or_default();
                let fields = [("csrf", csrf)];
                pages::render(&Page {
                    html: None,
                    title: "You don't have access",
                    host: ctx.host,
                    paragraphs: &[&line, "Sign in with an account that has access, or sign out. The owner can grant access in Portcullis's configuration or with a group at the identity provider."],
                    details: None,
                    actions: &[
                        Action::Link { label: "Sign in as someone else", href: &switch },
                        Action::Post { label: "Sign out", action: "/.portcullis/logout", fields: &fields },
                    ],
                })
            }
            GateError::OriginUnreachable(_) => pages::render(&Page {
                html: None,
                title: "The app is down",
                host: ctx.host,
                paragraphs: &[message],
                details: None,
                actions: &[retry],
            }),
            GateError::UnknownHost | GateError::NotFound | GateError::MethodNotAllowed => pages::render(&Page {
                html: None,
                title: self.title(),
                host: ctx.host,
                paragraphs: &[message],
                details: None,
                actions: if matches!(self, GateError::UnknownHost) { &[] } else { std::slice::from_ref(&home) },
            }),
            _ => pages::render(&Page {
                html: None,
                title: self.title(),
                host: ctx.host,
                paragraphs: &[message],
                details: None,
                actions: &[retry],
            }),
        };
        Reply::html(status, body)
    }

    fn title(&self) -> &'static str {
        match self {
            GateError::UnknownHost => "This site is not configured",
            GateError::NotFound => "Not found",
            GateError::MethodNotAllowed => "Method not allowed",
            GateError::IssuerUnavailable(_) => "Sign-in is unavailable",
            GateError::Store(_) => "Sessions are unavailable",
            GateError::Csrf => "Please confirm",
            GateError::AmbiguousPath(_) => "Bad request",
            _ => "Sign-in did not complete",
        }
    }

    /// What the visitor is told (no internal detail).
    fn user_message(&self) -> &'static str {
        match self {
            GateError::Misconfigured(_) => "Portcullis is misconfigured.",
            GateError::UnknownHost => "Portcullis protects this address but has no app configured for this host name, so nothing is served here.",
            GateError::NotFound => "There is nothing at this address.",
            GateError::MethodNotAllowed => "This address does not accept that kind of request.",
            GateError::BadRequest(_) => "The request was malformed.",
            GateError::LoginStateMissing => "This sign-in link has expired or was already used, or it was opened in a different browser. Start again from the app.",
            GateError::LoginStateInvalid => "The sign-in could not be verified. Start again from the app.",
            GateError::LoginExpired => "The sign-in took too long and has expired. Please try again.",
            GateError::IssuerSaid { .. } => "You were not signed in.",
            GateError::IssuerUnavailable(_) => "The identity provider cannot be reached right now. If you were signed in already, your session still works; new sign-ins will work once the provider is back.",
            GateError::LoginFailed(_) => "The identity provider's answer could not be accepted, so you were not signed in. Please try again; if it keeps happening, the site owner can find the reason in the log.",
            GateError::Unauthenticated => "Sign in first.",
            GateError::AmbiguousPath(_) => "This address is ambiguous (it contains an encoded slash, a control character or a dot segment with parameters), so it is refused.",
            GateError::Forbidden { .. } => "You are not allowed to use this app.",
            GateError::ServiceToken(Refused::Invalid) => "The service token is not valid.",
            GateError::ServiceToken(Refused::NotForThisApp) => "This service token is not valid for this app.",
            GateError::InvalidBearer(_) => "The bearer token is not valid here.",
            GateError::AdminUnauthorized => "A valid admin token is required.",
            GateError::InvalidLogoutToken(_) => "The logout token was not accepted.",
            GateError::Csrf => "This sign-out request could not be verified. Use the button below to sign out.",
            GateError::OriginUnreachable(_) => "You are signed in, but the app behind this address is not answering. It may be restarting or down; try again in a moment.",
            GateError::Store(_) => "The session store is not available right now. Please try again in a moment.",
            GateError::Random => "An internal error occurred. Please try again.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    fn ctx(json: bool) -> ErrorContext<'static> {
        ErrorContext {
            host: "photos.example.com",
            retry: "/.portcullis/login?rd=%2F",
            wants_json: json,
        }
    }

    #[test]
    fn statuses_and_pages() {
        let e = GateError::OriginUnreachable("connect ECONNREFUSED".into());
        let r = e.reply(&ctx(false));
        assert_eq!(r.status, 502);
        assert!(r.body.contains("The app is down"));
        assert!(r.body.contains("photos.example.com"));
        assert!(
            !r.body.contains("ECONNREFUSED"),
            "internal detail stays in the log"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));

        let r = GateError::Unauthenticated.reply(&ctx(false));
        assert_eq!(r.status, 401);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.contains("\"error\":\"unauthenticated\""));

        let r = GateError::IssuerSaid {
            error: "access_denied".into(),
            description: Some("<b>no</b>".into()),
        }
        .reply(&ctx(false));
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
        let r = e.reply(&ctx(false));
        assert_eq!(r.status, 500);
        assert!(r.body.contains("Portcullis is misconfigured"));
        assert!(r.body.contains("PORTCULLIS.issuer: is required"));
        let log = e.log_line("h", "/");
        assert!(log.contains("\"level\":\"error\""));
        assert!(log.contains("PORTCULLIS.issuer"));
    }

    #[test]
    fn json_for_api_clients() {
        let r = GateError::OriginUnreachable("x".into()).reply(&ctx(true));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.contains("origin_unreachable"));
    }
}
