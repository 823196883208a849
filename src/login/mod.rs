//! The login part: starting a login (the pending-login cookie and the redirect to the
//! issuer) and the callback (state, code, ID token, new session); a login's purpose
//! beyond signing in (`purpose.rs`) and logout, here and at the issuer (`logout.rs`). It
//! owns the pending-login cookies; sessions are made and ended through
//! [`crate::session::Sessions`].

use crate::answer::Answer;
use crate::context::{Ctx, Io};
use crate::cookies;
use crate::error::{ConsoleRefused, GateError, LoginError};
use crate::http::Reply;
use crate::oidc::client::Vouched;
use crate::oidc::pending_login::{PendingError, LOGIN_TTL};
use crate::oidc::{ClientError, OidcError, PendingLogin};
use crate::parts::Parts;
use crate::request::RequestHead;
use crate::router::Endpoint;
use crate::session::SessionId;

mod logout;
mod purpose;

pub use purpose::LoginPurpose;

/// Pending-login cookies tolerated before a new login clears them (abandoned logins must
/// not pile up into an oversized `Cookie` header).
pub const MAX_PENDING_LOGINS: usize = 4;
/// A login started by this part.
type Pending = PendingLogin<LoginPurpose>;

/// The purpose of the CSRF token that confirms a sign-out.
pub const LOGOUT_CSRF: &str = "portcullis logout csrf v1";
/// Creating an app password, and opening the admin console, need an authentication at the
/// issuer at most this old.
pub const RECENT_LOGIN: u64 = 600;

pub struct Login {
    parts: Parts,
}

/// `/.portcullis/login?rd=<path>`
pub fn login_href(return_path: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(return_path.as_bytes()).collect();
    format!("{}?rd={rd}", Endpoint::Login.path())
}

/// This host's callback (the `redirect_uri` of every login that starts here).
fn callback_uri<I: Io>(ctx: &Ctx<'_, I>) -> String {
    format!("{}{}", ctx.head.origin(), Endpoint::Callback.path())
}

impl From<ClientError> for GateError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unavailable(e) => GateError::IssuerUnavailable(e),
            ClientError::Refused(e) => GateError::Login(LoginError::Failed(e)),
        }
    }
}

/// What the issuer's redirect to the callback carries (RFC 6749 §4.1.2 and §4.1.2.1,
/// RFC 9207), read in one pass; the first of each parameter counts.
#[derive(Default)]
struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

impl CallbackParams {
    fn of(head: &RequestHead) -> Self {
        let mut p = CallbackParams::default();
        for (name, value) in head.url.query_pairs() {
            let slot = match name.as_ref() {
                "state" => &mut p.state,
                "code" => &mut p.code,
                "error" => &mut p.error,
                "error_description" => &mut p.error_description,
                "iss" => &mut p.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        p
    }
}

/// An OAuth error text as RFC 6749 §4.1.2.1 allows it (`%x20-21 / %x23-5B / %x5D-7E`:
/// printable ASCII without `"` and `\`), at most `max` characters; anything else dropped.
fn oauth_text(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| matches!(*c, '\x20'..='\x7e') && *c != '"' && *c != '\\')
        .take(max)
        .collect()
}

impl Login {
    pub fn new(parts: Parts) -> Self {
        Self { parts }
    }

    /// `GET /.portcullis/login`: to the issuer, then back to `rd`; `switch` (sign in as
    /// someone else) asks the issuer to show its login again.
    pub async fn login<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        let head = ctx.head;
        let back =
            crate::return_to::resolve(head.query("rd").as_deref(), &head.url, &self.parts.config);
        let prompt = head.query("switch").is_some().then_some("login");
        self.start(ctx, back, prompt).await.map(Answer::from)
    }

    /// `GET /.portcullis/callback`.
    pub async fn callback<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        self.finish_login(ctx).await.map(Answer::from)
    }

    /// Sends the browser to the issuer (or first to the auth host, when one is set);
    /// `prompt` (e.g. `login`) asks the issuer to authenticate again.
    pub async fn start<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        return_to: String,
        prompt: Option<&str>,
    ) -> Result<Reply, GateError> {
        let head = ctx.head;
        if let Some(auth_host) = &self.parts.config.settings.auth_host {
            if head.host() != auth_host {
                let mut url = head.url.clone();
                url.set_host(Some(auth_host))
                    .map_err(|_| GateError::BadRequest("auth host"))?;
                url.set_path(Endpoint::Login.path());
                url.query_pairs_mut().clear().append_pair("rd", &return_to);
                if prompt.is_some() {
                    url.query_pairs_mut().append_pair("switch", "1");
                }
                return Ok(Reply::redirect(url.as_str()));
            }
        }
        let pending = Pending::new(ctx.env.rng(), return_to, callback_uri(ctx), ctx.now())?;
        self.to_issuer(ctx, &pending, prompt).await
    }

    /// The redirect to the issuer's authorization endpoint, with this login's cookie.
    async fn to_issuer<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        pending: &Pending,
        prompt: Option<&str>,
    ) -> Result<Reply, GateError> {
        let head = ctx.head;
        let authorize = self
            .parts
            .client
            .authorize_url(ctx.env.http(), pending, prompt, ctx.now())
            .await
            .map_err(GateError::IssuerUnavailable)?;

        let mut set_cookies = Vec::new();
        let stale: Vec<&str> = head
            .cookie_pairs()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with(cookies::LOGIN_PREFIX))
            .collect();
        if stale.len() >= MAX_PENDING_LOGINS {
            set_cookies.extend(stale.iter().map(|name| cookies::clear_login(name)));
        }
        set_cookies.push(cookies::set_login(
            &pending.cookie_name(),
            &pending.seal(&self.parts.config.secrets.signing_keys),
            LOGIN_TTL,
        ));
        Ok(Reply::redirect(&authorize).with_cookies(set_cookies))
    }

    /// The redirect back from the issuer: check state, redeem the code, validate the
    /// ID token, create the session. Every outcome uses up this login's cookie.
    async fn finish_login<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Reply, GateError> {
        let result = self.complete(ctx).await;
        if let Err(error) = &result {
            ctx.audit(
                "login_failed",
                &[("reason", error.code()), ("detail", &error.detail())],
            );
        }
        result
    }

    async fn complete<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Reply, GateError> {
        let head = ctx.head;
        let params = CallbackParams::of(head);
        let state = params.state.unwrap_or_default();
        let cookie_name = PendingLogin::cookie_name_for(&state);
        if let Some(name) = &cookie_name {
            ctx.add_cookie(cookies::clear_login(name));
        }
        // Without a pending login for this `state`, nothing the URL says is shown: anyone can
        // craft a callback link with an `error_description` of their choosing.
        let Some(value) = cookie_name.as_deref().and_then(|n| head.cookie(n)) else {
            return Err(GateError::Login(LoginError::StateMissing));
        };
        let keys = &self.parts.config.secrets.signing_keys;
        let pending = match Pending::open(value, keys, &state, ctx.now()) {
            Ok(pending) => pending,
            Err(PendingError::Expired) => return Err(GateError::Login(LoginError::Expired)),
            Err(_) => return Err(GateError::Login(LoginError::StateInvalid)),
        };
        // From here on, "try again" returns to where the login started.
        ctx.set_retry(&login_href(&pending.return_to));
        if let Some(error) = params.error {
            return Err(GateError::Login(LoginError::IssuerSaid {
                error: oauth_text(&error, 64),
                description: params.error_description.map(|d| oauth_text(&d, 200)),
            }));
        }
        // RFC 9207: when the issuer names itself, it must be ours (mix-up defence).
        if params
            .iss
            .is_some_and(|iss| iss != self.parts.config.settings.issuer)
        {
            return Err(GateError::Login(LoginError::Failed(OidcError::Discovery(
                "iss parameter names another issuer".into(),
            ))));
        }
        let Some(code) = params.code.filter(|c| !c.is_empty()) else {
            return Err(GateError::BadRequest("callback without code"));
        };

        let vouched = self
            .parts
            .client
            .exchange_code(
                ctx.env.http(),
                ctx.env.signatures(),
                &code,
                &pending,
                ctx.now(),
            )
            .await?;
        match &pending.purpose {
            Some(LoginPurpose::AppPassword(request)) => {
                return self
                    .create_app_password(ctx, request, &pending, vouched)
                    .await;
            }
            // OIDC Core §3.1.3.7 step 13: the console asked for a fresh authentication;
            // without one the person is not signed in again (and not sent round in a loop).
            Some(LoginPurpose::Console)
                if !vouched.claims.authenticated_within(RECENT_LOGIN, ctx.now()) =>
            {
                return Err(GateError::Console(ConsoleRefused::NotRecentLogin));
            }
            Some(LoginPurpose::Console) | None => {}
        }
        self.sign_in(ctx, &pending, vouched).await
    }

    /// The session the login made: stored, its cookie set, the one it replaces ended.
    async fn sign_in<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        pending: &Pending,
        vouched: Vouched,
    ) -> Result<Reply, GateError> {
        let head = ctx.head;
        let id = SessionId::generate(ctx.env.rng())?;
        let hash = id.hash();
        let (sub, email) = (
            vouched.claims.identity.sub.clone(),
            vouched.claims.identity.email.clone(),
        );
        let cookie = self
            .parts
            .sessions
            .create(&ctx.env, &id, vouched, head)
            .await?;
        ctx.audit(
            "login",
            &[
                ("sub", &sub),
                ("email", email.as_deref().unwrap_or_default()),
                ("session", &hash),
            ],
        );
        self.end_replaced_session(ctx).await;
        Ok(Reply::redirect(&pending.return_to)
            .with_cookies([self.parts.sessions.set_cookie(&cookie)]))
    }

    /// Signing in again (or as someone else) replaces the session the browser carried: it
    /// ends, rather than stay valid for anyone who kept its cookie. A failure to end it is
    /// logged, not answered: the new session is already stored.
    async fn end_replaced_session<I: Io>(&self, ctx: &Ctx<'_, I>) {
        let Some(old) = self.parts.sessions.id(ctx.head) else {
            return;
        };
        match self.parts.sessions.end(&ctx.env, &old).await {
            Ok(Some(_)) => ctx.audit("revoke", &[("by", "new_login"), ("session", &old.hash())]),
            Ok(None) => {}
            Err(e) => ctx.env.log(
                serde_json::json!({
                    "level": "warn",
                    "event": "replaced_session_not_ended",
                    "session": &*old.hash(),
                    "detail": e.to_string(),
                })
                .to_string(),
            ),
        }
    }
}
