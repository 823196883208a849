//! The gate: given a request, the configuration and the I/O it may use, decide what
//! happens. Returns either a reply or a plan for proxying; never touches `worker` types.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use serde_json::json;
use url::Url;

use crate::assertion::ASSERTION_LIFETIME;
use crate::cache::TtlCache;
use crate::cookies;
use crate::crypto::{ct_eq, Random};
use crate::error::{ErrorContext, GateError};
use crate::http::{HttpClient, Reply};
use crate::identity::Identity;
use crate::model::{self, PathClass};
use crate::model::{App, Config};
use crate::oidc::id_token::{self, Expected};
use crate::oidc::login::{PendingError, LOGIN_TTL};
use crate::oidc::provider::{Source, VerifyError};
use crate::oidc::{bearer, token, OidcError, PendingLogin, Provider};
use crate::pages;
use crate::proxy::{self, Forward, ProxyPlan};
use crate::request::RequestHead;
use crate::return_to;
use crate::router::{self, Endpoint, Route};
use crate::service;
use crate::session::model::SESSION_FORMAT;
use crate::session::{registry, Session, SessionCache, SessionId, Store};

/// Pending-login cookies tolerated before a new login clears them (abandoned logins must
/// not pile up into an oversized `Cookie` header).
const MAX_PENDING_LOGINS: usize = 4;
const LOGOUT_CSRF: &str = "portcullis logout csrf v1";

/// A verified bearer token is remembered for at most this long.
const BEARER_CACHE: u64 = 60;
/// A cached assertion is reused only while it has more than this long to live.
const ASSERTION_REUSE_MARGIN: u64 = 60;

/// One JSON audit line for a security event on this request: the event, the host, the
/// client's IP and user agent, and the given fields (empty ones left out). Never secrets,
/// tokens or raw session IDs — sessions are named by their hash.
fn audit(head: &RequestHead, event: &str, fields: &[(&str, &str)]) -> String {
    let ip = head.header("cf-connecting-ip").unwrap_or_default();
    let ua = head
        .header("user-agent")
        .map(shorten_user_agent)
        .unwrap_or_default();
    let mut all: Vec<(&str, &str)> = vec![("ip", ip), ("user_agent", &ua)];
    all.extend_from_slice(fields);
    audit_fields(event, head.host(), &all)
}

/// An audit line outside a request (e.g. a background re-validation).
fn audit_fields(event: &str, host: &str, fields: &[(&str, &str)]) -> String {
    let mut line = serde_json::Map::new();
    line.insert("level".into(), "info".into());
    line.insert("audit".into(), true.into());
    line.insert("event".into(), event.into());
    line.insert("host".into(), host.into());
    for (k, v) in fields {
        if !v.is_empty() {
            line.insert((*k).into(), (*v).into());
        }
    }
    serde_json::Value::Object(line).to_string()
}

/// User agents are kept (in sessions and logs) up to this many characters.
fn shorten_user_agent(ua: &str) -> String {
    ua.chars().take(200).collect()
}

/// What the edge should do.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    Proxy(ProxyPlan),
}

/// An outcome and the log lines (JSON) explaining it.
#[derive(Debug)]
pub struct Handled {
    pub outcome: Outcome,
    pub log: Vec<String>,
}

/// The I/O the gate may use for one request.
pub struct Io<'a, S, H, R> {
    pub store: &'a S,
    pub http: &'a H,
    pub rng: &'a R,
    /// Work the gate asks to run after the response (`waitUntil`), via [`Gate::run`].
    pub tasks: RefCell<Vec<Task>>,
}

impl<'a, S, H, R> Io<'a, S, H, R> {
    pub fn new(store: &'a S, http: &'a H, rng: &'a R) -> Self {
        Self {
            store,
            http,
            rng,
            tasks: RefCell::new(Vec::new()),
        }
    }
}

/// One per isolate: configuration and the caches that outlive a request.
pub struct Gate {
    pub config: Config,
    /// `Content-Security-Policy` of Portcullis's own pages.
    pub csp: String,
    provider: Provider,
    sessions: SessionCache,
    assertions: TtlCache<String>,
    bearers: TtlCache<Identity>,
    /// Back-channel logout token IDs already honoured (replays are refused).
    logout_jtis: TtlCache<()>,
    /// Sessions (by hash) whose refresh is running in this isolate.
    refreshing: RefCell<HashSet<String>>,
    /// Sessions whose refresh failed for want of the issuer, until they may try again.
    refresh_backoff: TtlCache<()>,
}

/// A verified session found for a request.
struct Found {
    id: SessionId,
    session: Rc<Session>,
}

impl Gate {
    pub fn new(config: Config) -> Self {
        let provider = Provider::new(
            &config.settings.issuer,
            config.settings.discovery_url.as_str(),
        );
        let sessions = SessionCache::new(config.settings.session_cache);
        let issuer_origin =
            Url::parse(&config.settings.issuer).map(|u| u.origin().ascii_serialization());
        let csp = crate::http::content_security_policy(issuer_origin.as_deref().ok());
        Self {
            config,
            csp,
            provider,
            sessions,
            assertions: TtlCache::new(1024),
            bearers: TtlCache::new(256),
            logout_jtis: TtlCache::new(1024),
            refreshing: RefCell::new(HashSet::new()),
            refresh_backoff: TtlCache::new(1024),
        }
    }

    pub async fn handle<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
    ) -> Handled {
        let mut log = Vec::new();
        let result = self.route(head, io, now, &mut log).await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                // An unauthenticated API call is ordinary traffic, not worth a log line.
                if error != GateError::Unauthenticated {
                    log.push(error.log_line(head.host(), head.url.path()));
                }
                Outcome::Reply(self.error_reply(&error, head, None))
            }
        };
        Handled { outcome, log }
    }

    /// The reply for an error on this request. "Try again" starts a login that returns to
    /// `return_to` (default: this URL, or `/` for Portcullis's own endpoints), except when
    /// the app is down, where it simply reloads.
    pub fn error_reply(
        &self,
        error: &GateError,
        head: &RequestHead,
        return_to: Option<&str>,
    ) -> Reply {
        let here = &head.url[url::Position::BeforePath..url::Position::AfterQuery];
        let retry = match (error, return_to) {
            (GateError::OriginUnreachable(_), _) => here.to_string(),
            (_, Some(to)) => login_href(to),
            _ if head.url.path().starts_with(router::PREFIX) => login_href("/"),
            _ => login_href(here),
        };
        let accept = head.header("accept").unwrap_or_default();
        let api = matches!(router::route(&self.config, head), Route::Endpoint(e) if e.is_api());
        let wants_json =
            api || (accept.contains("application/json") && !accept.contains("text/html"));
        error.reply(&ErrorContext {
            host: head.host(),
            retry: &retry,
            wants_json,
        })
    }

    async fn route<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Outcome, GateError> {
        if let Some(why) = &head.ambiguous_path {
            return Err(GateError::AmbiguousPath(why.0));
        }
        let get = head.method == "GET" || head.method == "HEAD";
        let post = head.method == "POST";
        match router::route(&self.config, head) {
            Route::UnknownHost => Err(GateError::UnknownHost),
            Route::App(app) => self.app(app, head, io, now, log).await,
            Route::Endpoint(endpoint) => {
                let reply = match endpoint {
                    Endpoint::Login if get => {
                        let back = return_to::resolve(
                            head.query("rd").as_deref(),
                            &head.url,
                            &self.config,
                        );
                        // "Sign in as someone else" asks the issuer to show its login again.
                        let prompt = head.query("switch").is_some().then_some("login");
                        self.start_login(head, back, prompt, io, now).await
                    }
                    Endpoint::Callback if get => self.callback(head, io, now, log).await,
                    Endpoint::Logout if get || head.method == "POST" => {
                        self.logout(head, io, now, log).await
                    }
                    Endpoint::SignedOut if get => Ok(Reply::html(
                        200,
                        pages::signed_out(head.host(), &login_href("/")),
                    )),
                    Endpoint::Me if get => self.me(head, io, now, log).await,
                    Endpoint::Sessions if get => self.sessions_page(head, io, now).await,
                    Endpoint::Sessions if post => {
                        self.sessions_action(head, io.store, now, log).await
                    }
                    Endpoint::AdminSessions if get => self.admin_sessions(head, io.store).await,
                    Endpoint::AdminRevoke if post => self.admin_revoke(head, io.store, log).await,
                    Endpoint::BackchannelLogout if post => {
                        self.backchannel_logout(head, io, now, log).await
                    }
                    Endpoint::Jwks if get => match &self.config.secrets.assertion_key {
                        Some(key) => Ok(Reply::json(200, &key.jwks())
                            .with_header("access-control-allow-origin", "*")),
                        None => Err(GateError::NotFound),
                    },
                    Endpoint::Unknown => Err(GateError::NotFound),
                    _ => Err(GateError::MethodNotAllowed),
                };
                reply.map(Outcome::Reply)
            }
        }
    }

    /// A request for a protected app. In order: public paths pass; service-token
    /// credentials, then (where accepted) a bearer token, then the session cookie decide
    /// who this is; the app's rules decide whether they may enter.
    async fn app<S: Store, H: HttpClient, R: Random>(
        &self,
        app: &App,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Outcome, GateError> {
        let class = model::classify(app, head.url.path());
        if class == PathClass::Public {
            return Ok(Outcome::Proxy(proxy::plan(
                head,
                app,
                None,
                &Forward::default(),
            )));
        }

        if let Some(presented) = service::presented(head, &self.config) {
            let token = service::check(&presented, app, &self.config).map_err(|refused| {
                log.push(audit(
                    head,
                    "service_token_refused",
                    &[("client_id", &presented.client_id)],
                ));
                GateError::ServiceToken(refused)
            })?;
            let identity = token.identity();
            let forward = Forward {
                strip_authorization: presented.via_basic,
                assertion: self.assertion(head, app, &identity, || identity.sub.clone(), now),
            };
            return Ok(Outcome::Proxy(proxy::plan(
                head,
                app,
                Some(&identity),
                &forward,
            )));
        }

        if app.accept_bearer {
            if let Some(token) = head.header("authorization").and_then(bearer::from_header) {
                let identity = self.bearer(token, app, io.http, now).await?;
                if !app.access.admits(&identity) {
                    log.push(audit(
                        head,
                        "denied",
                        &[("sub", &identity.sub), ("via", "bearer")],
                    ));
                    return Err(GateError::Forbidden {
                        user: identity.user().to_string(),
                        csrf: None,
                    });
                }
                let who = || format!("bearer:{}", token::fingerprint(token));
                let forward = Forward {
                    strip_authorization: true,
                    assertion: self.assertion(head, app, &identity, who, now),
                };
                return Ok(Outcome::Proxy(proxy::plan(
                    head,
                    app,
                    Some(&identity),
                    &forward,
                )));
            }
        }

        match self.find_valid_session(head, io, now, log).await? {
            Some(found) => {
                let identity = &found.session.identity;
                if !app.access.admits(identity) {
                    log.push(audit(
                        head,
                        "denied",
                        &[("sub", &identity.sub), ("session", &found.id.hash())],
                    ));
                    let csrf = found
                        .id
                        .derive(&self.config.secrets.signing_keys, LOGOUT_CSRF);
                    return Err(GateError::Forbidden {
                        user: identity.user().to_string(),
                        csrf: Some(csrf),
                    });
                }
                let forward = Forward {
                    strip_authorization: false,
                    assertion: self.assertion(head, app, identity, || found.id.hash(), now),
                };
                Ok(Outcome::Proxy(proxy::plan(
                    head,
                    app,
                    Some(identity),
                    &forward,
                )))
            }
            None if class == PathClass::Protected && head.is_browser_navigation() => {
                let back = return_to::resolve(Some(head.url.as_str()), &head.url, &self.config);
                self.start_login(head, back, None, io, now)
                    .await
                    .map(Outcome::Reply)
            }
            None => Err(GateError::Unauthenticated),
        }
    }

    /// Verifies a bearer token from the issuer for `app`; verified tokens are remembered
    /// (by hash) until they expire, for at most a minute.
    async fn bearer<H: HttpClient>(
        &self,
        token: &str,
        app: &App,
        http: &H,
        now: u64,
    ) -> Result<Identity, GateError> {
        let cache_key = format!("{}:{}", app.host, token::fingerprint(token));
        if let Some(identity) = self.bearers.get(&cache_key, now) {
            return Ok(identity);
        }
        let jws = self
            .provider
            .verify(http, token, Source::Client, now)
            .await
            .map_err(|e| match e {
                VerifyError::Issuer(e) => GateError::IssuerUnavailable(e),
                VerifyError::Token(e) => GateError::InvalidBearer(e.to_string()),
            })?;
        let mut accepted: Vec<&str> = vec![self.config.settings.client_id.as_str()];
        accepted.extend(app.bearer_audiences.iter().map(String::as_str));
        let identity = bearer::validate(
            &jws,
            &self.config.settings.issuer,
            &accepted,
            &self.config.settings.groups_claim,
            now,
        )
        .map_err(|e| GateError::InvalidBearer(e.to_string()))?;
        let expires = jws
            .claims
            .expiration
            .map_or(now, |t| u64::try_from(t.timestamp()).unwrap_or(now));
        self.bearers.insert(
            &cache_key,
            identity.clone(),
            expires.min(now + BEARER_CACHE),
            now,
        );
        Ok(identity)
    }

    /// The `Portcullis-Assertion` for this identity and app, reused while it has more than
    /// a minute left (signing on every request would cost more than the rest of it).
    /// `who` names the credential (session, token) for the cache; it is only computed when
    /// an assertion key is configured, as it may cost a hash.
    fn assertion(
        &self,
        head: &RequestHead,
        app: &App,
        identity: &Identity,
        who: impl FnOnce() -> String,
        now: u64,
    ) -> Option<String> {
        let key = self.config.secrets.assertion_key.as_ref()?;
        let issuer = format!("{}/.portcullis", head.origin());
        let cache_key = format!("{}|{}|{issuer}", who(), app.host);
        if let Some(token) = self
            .assertions
            .get(&cache_key, now + ASSERTION_REUSE_MARGIN)
        {
            return Some(token);
        }
        let token = key.sign(&issuer, &app.host, identity, now).ok()?;
        self.assertions
            .insert(&cache_key, token.clone(), now + ASSERTION_LIFETIME, now);
        Some(token)
    }

    /// The session this request's cookie designates, if the cookie verifies and the
    /// session is live. A forged or garbage cookie is refused before any store read.
    async fn find_session<S: Store>(
        &self,
        head: &RequestHead,
        store: &S,
        now: u64,
    ) -> Result<Option<Found>, GateError> {
        let Some(cookie) = self.session_cookie(head) else {
            return Ok(None);
        };
        if let Some((id, session)) = self.sessions.get(cookie, now) {
            return Ok(Some(Found { id, session }));
        }
        let Some(id) = SessionId::from_cookie_value(cookie, &self.config.secrets.signing_keys)
        else {
            return Ok(None);
        };
        let key = id.store_key();
        let Some(record) = store.get(&key).await.map_err(GateError::Store)? else {
            return Ok(None);
        };
        let Ok(session) = serde_json::from_str::<Session>(&record) else {
            return Ok(None);
        };
        if !session.is_live(now) {
            return Ok(None);
        }
        let session = Rc::new(session);
        self.sessions
            .insert(cookie, id.clone(), session.clone(), now);
        Ok(Some(Found { id, session }))
    }

    /// [`Gate::find_session`], re-validating the session with the issuer when it is due:
    /// after the response normally, first when it is long overdue.
    async fn find_valid_session<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Option<Found>, GateError> {
        let Some(found) = self.find_session(head, io.store, now).await? else {
            return Ok(None);
        };
        let due = self.revalidation_due(&found.session, &found.id, now);
        if due == Due::No {
            return Ok(Some(found));
        }
        let cookie = self.session_cookie(head).unwrap_or_default().to_string();
        match due {
            Due::No => Ok(Some(found)),
            Due::Later => {
                io.tasks.borrow_mut().push(Task::Revalidate {
                    cookie,
                    id: found.id.clone(),
                });
                Ok(Some(found))
            }
            Due::Now => match self.revalidate(&cookie, &found.id, io, now, log).await {
                Revalidation::Renewed(session) => Ok(Some(Found {
                    id: found.id,
                    session,
                })),
                Revalidation::Kept => Ok(Some(found)),
                Revalidation::Revoked => Ok(None),
            },
        }
    }

    /// The session cookie's value, as sent (not yet verified).
    fn session_cookie<'h>(&self, head: &'h RequestHead) -> Option<&'h str> {
        head.cookie(cookies::session_cookie_name(
            self.config.settings.cookie_domain.as_deref(),
        ))
    }

    fn session_id(&self, head: &RequestHead) -> Option<SessionId> {
        let value = self.session_cookie(head)?;
        SessionId::from_cookie_value(value, &self.config.secrets.signing_keys)
    }

    /// Sends the browser to the issuer (or first to the auth host, when one is set).
    async fn start_login<S, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        return_to: String,
        prompt: Option<&str>,
        io: &Io<'_, S, H, R>,
        now: u64,
    ) -> Result<Reply, GateError> {
        if let Some(auth_host) = &self.config.settings.auth_host {
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
        let metadata = self
            .provider
            .metadata(io.http, now)
            .await
            .map_err(GateError::IssuerUnavailable)?;
        let redirect_uri = format!("{}{}", head.origin(), Endpoint::Callback.path());
        let pending = PendingLogin::new(io.rng, return_to, redirect_uri, now)
            .map_err(|_| GateError::Random)?;
        let authorize = pending
            .authorize_url(&metadata, &self.config, prompt)
            .map_err(|e| GateError::IssuerUnavailable(OidcError::Discovery(e)))?;

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
            &pending.seal(&self.config.secrets.signing_keys),
            LOGIN_TTL,
        ));
        Ok(Reply::redirect(&authorize).with_cookies(set_cookies))
    }

    /// The redirect back from the issuer: check state, redeem the code, validate the
    /// ID token, create the session.
    async fn callback<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        let state = head.query("state").unwrap_or_default();
        let cookie_name = PendingLogin::cookie_name_for(&state);
        let clear = cookie_name.as_deref().map(cookies::clear_login);
        // Every outcome of a callback uses up this login's cookie.
        let with_clear = |reply: Reply| reply.with_cookies(clear.clone());
        let fail = |error: GateError, retry_to: Option<&str>| {
            let reply = self.error_reply(&error, head, retry_to);
            (error, with_clear(reply))
        };

        let result: Result<Reply, (GateError, Reply)> = async {
            let pending = {
                let value = cookie_name.as_deref().and_then(|n| head.cookie(n));
                let Some(value) = value else {
                    if let Some(error) = head.query("error") {
                        let e = GateError::IssuerSaid {
                            error,
                            description: head.query("error_description"),
                        };
                        return Err(fail(e, None));
                    }
                    return Err(fail(GateError::LoginStateMissing, None));
                };
                match PendingLogin::open(value, &self.config.secrets.signing_keys, &state, now) {
                    Ok(p) => p,
                    Err(PendingError::Expired) => return Err(fail(GateError::LoginExpired, None)),
                    Err(_) => return Err(fail(GateError::LoginStateInvalid, None)),
                }
            };
            let retry = Some(pending.return_to.as_str());
            if let Some(error) = head.query("error") {
                let e = GateError::IssuerSaid {
                    error,
                    description: head.query("error_description"),
                };
                return Err(fail(e, retry));
            }
            // RFC 9207: when the issuer names itself, it must be ours (mix-up defence).
            if head
                .query("iss")
                .is_some_and(|iss| iss != self.config.settings.issuer)
            {
                return Err(fail(
                    GateError::LoginFailed(OidcError::Discovery(
                        "iss parameter names another issuer".into(),
                    )),
                    retry,
                ));
            }
            let Some(code) = head.query("code").filter(|c| !c.is_empty()) else {
                return Err(fail(GateError::BadRequest("callback without code"), retry));
            };

            let metadata = self
                .provider
                .metadata(io.http, now)
                .await
                .map_err(|e| fail(GateError::IssuerUnavailable(e), retry))?;
            let request = token::code_request(
                &metadata,
                &self.config,
                &code,
                &pending.verifier,
                &pending.redirect_uri,
            );
            let response = io.http.send(request).await.map_err(|e| {
                fail(
                    GateError::IssuerUnavailable(OidcError::Unreachable(e.0)),
                    retry,
                )
            })?;
            let tokens = token::parse_response(&response).map_err(|e| match e {
                OidcError::Unreachable(_) => fail(GateError::IssuerUnavailable(e), retry),
                e => fail(GateError::LoginFailed(e), retry),
            })?;
            let id_token = tokens.id_token.unwrap_or_default();
            let jws = self
                .provider
                .verify(io.http, &id_token, Source::Issuer, now)
                .await
                .map_err(|e| match e {
                    VerifyError::Issuer(e) => fail(GateError::IssuerUnavailable(e), retry),
                    VerifyError::Token(e) => fail(
                        GateError::LoginFailed(OidcError::IdToken(
                            crate::oidc::IdTokenError::Signature(e),
                        )),
                        retry,
                    ),
                })?;
            let claims = id_token::validate(
                &jws,
                &Expected {
                    issuer: &self.config.settings.issuer,
                    client_id: &self.config.settings.client_id,
                    nonce: Some(&pending.nonce),
                    subject: None,
                    groups_claim: &self.config.settings.groups_claim,
                    now,
                },
            )
            .map_err(|e| fail(GateError::LoginFailed(OidcError::IdToken(e)), retry))?;

            let id = SessionId::generate(io.rng).map_err(|_| fail(GateError::Random, retry))?;
            let session = Session {
                v: SESSION_FORMAT,
                identity: claims.identity,
                created: now,
                expires: now + self.config.settings.session_lifetime,
                host: head.host().to_string(),
                sid: claims.sid,
                id_token: Some(crate::secret::Secret::new(id_token)),
                user_agent: head.header("user-agent").map(shorten_user_agent),
                refresh: None,
                validated: now,
            };
            let mut session = session;
            if self.config.settings.revalidate_every.is_some() {
                session.refresh = tokens
                    .refresh_token
                    .as_deref()
                    .and_then(|rt| self.seal_refresh(&id.hash(), rt, io.rng));
            }
            registry::save(io.store, &id.hash(), &session, now)
                .await
                .map_err(|e| fail(GateError::Store(e), retry))?;
            let identity = &session.identity;
            log.push(audit(
                head,
                "login",
                &[
                    ("sub", &identity.sub),
                    ("email", identity.email.as_deref().unwrap_or_default()),
                    ("session", &id.hash()),
                ],
            ));
            let cookie_value = id.to_cookie_value(&self.config.secrets.signing_keys);
            let cookie = cookies::set_session(
                self.config.settings.cookie_domain.as_deref(),
                &cookie_value,
                self.config.settings.session_lifetime,
            );
            self.sessions
                .insert(&cookie_value, id.clone(), Rc::new(session), now);
            Ok(with_clear(
                Reply::redirect(&pending.return_to).with_cookies([cookie]),
            ))
        }
        .await;

        match result {
            Ok(reply) => Ok(reply),
            Err((error, reply)) => {
                log.push(audit(
                    head,
                    "login_failed",
                    &[("reason", error.code()), ("detail", &error.detail())],
                ));
                Ok(reply)
            }
        }
    }

    /// Ends the session here and, when the issuer supports it, at the issuer.
    /// A GET is honoured only from this site (`Sec-Fetch-Site`); otherwise the user
    /// confirms with a POST carrying a CSRF token bound to the session.
    async fn logout<S: Store, H: HttpClient, R>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        let id = self.session_id(head);
        let csrf = id
            .as_ref()
            .map(|id| id.derive(&self.config.secrets.signing_keys, LOGOUT_CSRF));
        let confirmed = if head.method == "POST" {
            match (&csrf, head.form_field("csrf")) {
                (None, _) => true,
                (Some(expected), Some(given)) => ct_eq(expected.as_bytes(), given.as_bytes()),
                (Some(_), None) => false,
            }
        } else {
            id.is_none() || matches!(head.header("sec-fetch-site"), Some("same-origin" | "none"))
        };
        if !confirmed {
            let session = self.find_session(head, io.store, now).await?;
            let user = session
                .as_ref()
                .map(|f| f.session.identity.user().to_string())
                .unwrap_or_default();
            let page =
                pages::logout_confirm(head.host(), csrf.as_deref().unwrap_or_default(), &user);
            let status = if head.method == "POST" { 403 } else { 200 };
            return Ok(Reply::html(status, page));
        }

        let mut id_token_hint = None;
        if let Some(id) = &id {
            let session = registry::remove(io.store, &id.hash(), None)
                .await
                .map_err(GateError::Store)?;
            self.sessions.remove(id);
            if let Some(session) = session {
                log.push(audit(
                    head,
                    "logout",
                    &[("sub", &session.identity.sub), ("session", &id.hash())],
                ));
                id_token_hint = session.id_token;
            }
        }
        let clear = cookies::clear_session(self.config.settings.cookie_domain.as_deref());
        let signed_out = format!(
            "{}{}",
            self.callback_origin(head),
            Endpoint::SignedOut.path()
        );
        // The issuer is asked to end its session too, when it can be reached and supports it.
        let end_session = match &id_token_hint {
            Some(hint) => self
                .provider
                .metadata(io.http, now)
                .await
                .ok()
                .and_then(|m| m.end_session_endpoint.clone())
                .and_then(|endpoint| Url::parse(&endpoint).ok())
                .map(|mut url| {
                    url.query_pairs_mut()
                        .append_pair("id_token_hint", hint.expose())
                        .append_pair("client_id", &self.config.settings.client_id)
                        .append_pair("post_logout_redirect_uri", &signed_out);
                    url.to_string()
                }),
            None => None,
        };
        let target = end_session.unwrap_or_else(|| Endpoint::SignedOut.path().to_string());
        Ok(Reply::redirect(&target).with_cookies([clear]))
    }

    /// The origin whose callback and sign-out URLs are registered at the issuer.
    fn callback_origin(&self, head: &RequestHead) -> String {
        match &self.config.settings.auth_host {
            Some(auth) if auth != head.host() => {
                let mut url = head.url.clone();
                if url.set_host(Some(auth)).is_err() {
                    return head.origin();
                }
                url.origin().ascii_serialization()
            }
            _ => head.origin(),
        }
    }

    async fn me<S: Store, H: HttpClient, R: Random>(
        &self,
        head: &RequestHead,
        io: &Io<'_, S, H, R>,
        now: u64,
        log: &mut Vec<String>,
    ) -> Result<Reply, GateError> {
        let found = self
            .find_valid_session(head, io, now, log)
            .await?
            .ok_or(GateError::Unauthenticated)?;
        let s = &found.session;
        let i = &s.identity;
        Ok(Reply::json(
            200,
            &json!({
                "sub": i.sub,
                "email": i.email,
                "email_verified": i.email_verified,
                "name": i.name,
                "preferred_username": i.preferred_username,
                "groups": i.groups,
                "created": s.created,
                "expires": s.expires,
                "session_id_hash": found.id.hash(),
            }),
        ))
    }
}

/// `/.portcullis/login?rd=<path>`
fn login_href(return_path: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(return_path.as_bytes()).collect();
    format!("{}?rd={rd}", Endpoint::Login.path())
}

#[cfg(test)]
mod tests;

mod lifecycle;
mod revalidate;

pub use revalidate::Task;
use revalidate::{Due, Revalidation};
