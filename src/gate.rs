//! The gate: one per isolate. It holds the configuration and the parts that own state —
//! [`Sessions`], [`Login`], [`Access`], [`Backchannel`] — and dispatches each request:
//! the route is computed once, one part handles it, and any error passes through the one
//! boundary in [`crate::error`]. It never touches `worker` types.

use std::rc::Rc;

use url::Url;

use crate::access::{Access, Admission};
use crate::app_password::AppPasswords;
use crate::context::{Ctx, Env, Io, Task};
use crate::endpoints::account::Account;
use crate::endpoints::admin::Admin;
use crate::endpoints::console::Console;
use crate::endpoints::{backchannel::Backchannel, Answer, Parts};
use crate::error::{self, GateError, Scope};
use crate::grant;
use crate::http::{content_security_policy_with, Reply};
use crate::login::{login_href, Login};
use crate::model::Config;
use crate::proxy::ProxyPlan;
use crate::request::RequestHead;
use crate::router::{self, Endpoint, Method, Route, PREFIX};
use crate::session::Sessions;

/// The same URL on another host (same scheme, port, path and query).
fn on_host(url: &Url, host: &str) -> String {
    let mut moved = url.clone();
    match moved.set_host(Some(host)) {
        Ok(()) => moved.to_string(),
        Err(_) => url.to_string(),
    }
}

/// What the edge should do.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    Proxy(ProxyPlan),
}

/// An outcome, the log lines (JSON) explaining it, and work for after the response.
#[derive(Debug)]
pub struct Handled {
    pub outcome: Outcome,
    pub log: Vec<String>,
    pub tasks: Vec<Task>,
}

pub struct Gate {
    config: Rc<Config>,
    /// `Content-Security-Policy` of Portcullis's own pages.
    pub csp: String,
    sessions: Rc<Sessions>,
    app_passwords: Rc<AppPasswords>,
    login: Login,
    access: Access,
    account: Account,
    admin: Admin,
    console: Console,
    backchannel: Backchannel,
}

impl Gate {
    pub fn new(config: Config) -> Self {
        let config = Rc::new(config);
        let issuer_origin =
            Url::parse(&config.settings.issuer).map(|u| u.origin().ascii_serialization());
        let csp = content_security_policy_with(
            issuer_origin.as_deref().ok(),
            config.settings.auth_host.as_deref(),
        );
        let parts = Parts::new(config.clone());
        Self {
            csp,
            login: Login::new(parts.clone()),
            access: Access::new(parts.clone()),
            account: Account(parts.clone()),
            admin: Admin(parts.clone()),
            console: Console(parts.clone()),
            backchannel: Backchannel::new(
                parts.client.clone(),
                parts.sessions.clone(),
                parts.app_passwords.clone(),
            ),
            sessions: parts.sessions,
            app_passwords: parts.app_passwords,
            config,
        }
    }

    pub async fn handle<I: Io>(
        &self,
        head: &RequestHead,
        route: Route<'_>,
        io: &I,
        now: u64,
    ) -> Handled {
        let ctx = Ctx::new(Env::new(io, now), head, route);
        let outcome = match self.dispatch(&ctx).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Reply(self.fail(&ctx, &error)),
        };
        let (cookies, log, tasks) = ctx.finish();
        let outcome = match outcome {
            // A request with several session cookies was treated as signed out; its reply
            // (a login redirect or a 401) also clears them. Proxied requests are not looked
            // at: they are the hot path, and a signed-out one is never proxied but on a
            // public path.
            Outcome::Reply(reply) => Outcome::Reply(
                reply
                    .with_cookies(cookies)
                    .with_cookies(self.sessions.clear_duplicates(head)),
            ),
            proxy => proxy,
        };
        Handled {
            outcome,
            log,
            tasks,
        }
    }

    /// Runs a task scheduled by [`Gate::handle`]; returns its log lines.
    pub async fn run<I: Io>(&self, task: Task, io: &I, now: u64) -> Vec<String> {
        let env = Env::new(io, now);
        match &task {
            Task::Session(task) => self.sessions.run(&env, task).await,
            Task::AppPassword(task) => self.app_passwords.run(&env, task).await,
            Task::Person { sub, ask } => grant::tell(&env, sub, ask).await,
        }
        let (mut log, tasks) = env.finish();
        // What that work left for later (the end of a refresh) runs now; it leaves nothing.
        let env = Env::new(io, now);
        for task in tasks {
            if let Task::Person { sub, ask } = &task {
                grant::tell(&env, sub, ask).await;
            }
        }
        log.extend(env.finish().0);
        log
    }

    /// Where the request goes, and who handles it.
    async fn dispatch<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Outcome, GateError> {
        if let Some(why) = &ctx.head.ambiguous_path {
            return Err(GateError::AmbiguousPath(why.0));
        }
        let answer = match ctx.route {
            Route::UnknownHost => return Err(GateError::UnknownHost),
            Route::App(app) => match self.access.app(ctx, app).await? {
                Admission::Proxy(plan) => return Ok(Outcome::Proxy(plan)),
                Admission::Login(back) => Answer::Login(back),
            },
            Route::Endpoint(endpoint) => self.endpoint(ctx, endpoint).await?,
        };
        let reply = match answer {
            Answer::Reply(reply) => reply,
            Answer::Login(back) => self.login.start(ctx, back, None).await?,
            Answer::AppPasswordLogin {
                request,
                reauthenticate,
            } => {
                self.login
                    .start_for_app_password(ctx, &request, reauthenticate)
                    .await?
            }
            Answer::ConsoleLogin => self.login.start_for_console(ctx).await?,
        };
        Ok(Outcome::Reply(reply))
    }

    /// Portcullis's own endpoints: a path that names none is 404 whatever the method; a
    /// method the endpoint's row does not list is 405.
    async fn endpoint<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        endpoint: Endpoint,
    ) -> Result<Answer, GateError> {
        if endpoint == Endpoint::Unknown {
            return Err(GateError::NotFound);
        }
        let method = endpoint
            .takes(&ctx.head.method)
            .ok_or(GateError::MethodNotAllowed)?;
        let head = ctx.head;
        if let Some(auth_host) = endpoint.served_elsewhere(&self.config.settings, head.host()) {
            return match method {
                Method::Get => Ok(Answer::Reply(Reply::redirect(&on_host(
                    &head.url, auth_host,
                )))),
                Method::Post => Err(GateError::NotFound),
            };
        }
        // One handler signature: the part that owns the endpoint, given the request.
        match (endpoint, method) {
            (Endpoint::Login, _) => self.login.login(ctx).await,
            (Endpoint::Callback, _) => self.login.callback(ctx).await,
            (Endpoint::Logout, _) => self.login.logout(ctx).await,
            (Endpoint::SignedOut, _) => self.login.signed_out(ctx).await,
            (Endpoint::Me, _) => self.account.me(ctx).await,
            (Endpoint::Account, _) => self.account.page(ctx).await,
            // The former sessions page: its address keeps working.
            (Endpoint::Sessions, Method::Get) => {
                Ok(Reply::redirect(Endpoint::Account.path()).into())
            }
            (Endpoint::Sessions, Method::Post) => self.account.act(ctx).await,
            (Endpoint::AppPasswords, _) => self.account.create(ctx).await,
            (Endpoint::AppPasswordsRevoke, _) => self.account.revoke_app_password(ctx).await,
            (Endpoint::Console, Method::Get) => self.console.page(ctx).await,
            (Endpoint::Console, Method::Post) => self.console.act(ctx).await,
            (Endpoint::AdminSessions, _) => self.admin.sessions(ctx).await,
            (Endpoint::AdminAppPasswords, _) => self.admin.app_passwords(ctx).await,
            (Endpoint::AdminRevoke, _) => self.admin.revoke(ctx).await,
            (Endpoint::BackchannelLogout, _) => self.backchannel.logout(ctx).await,
            (Endpoint::Jwks, _) => self.admin.jwks(),
            (Endpoint::Unknown, _) => Err(GateError::NotFound),
        }
    }

    /// The error boundary for a request the core handled.
    fn fail<I: Io>(&self, ctx: &Ctx<'_, I>, error: &GateError) -> Reply {
        let (reply, log) = reply_for_error(ctx.head, error, ctx.route.is_api(), ctx.retry());
        if let Some(line) = log {
            ctx.env.log(line);
        }
        reply
    }

    /// What a request is for: computed once per request, by the edge, and handed to
    /// [`Gate::handle`] and the error boundary.
    pub fn route<'g>(&'g self, head: &RequestHead) -> Route<'g> {
        router::route(&self.config.settings, head)
    }

    /// Whether the edge should read this request's body: only a POST to one of the
    /// endpoints whose row says it takes one (forms, the admin API's JSON, back-channel
    /// logout).
    pub fn takes_body(route: Route<'_>, head: &RequestHead) -> bool {
        matches!(route, Route::Endpoint(e) if e.reads_body(&head.method))
    }

    /// The error boundary for what the edge itself meets (a body too large, an origin
    /// that cannot be reached); returns the reply and the line to log.
    pub fn edge_error(
        &self,
        head: &RequestHead,
        route: Route<'_>,
        error: GateError,
    ) -> (Reply, Option<String>) {
        reply_for_error(head, &error, route.is_api(), None)
    }
}

/// The reply for an error on this request. "Try again" starts a login that returns to
/// `retry` when a handler set one (the callback: where the login began), else to this URL
/// (or `/` for Portcullis's own endpoints) — except when the app is down, where it simply
/// reloads. Programs (`api` endpoints, or clients preferring JSON) get JSON.
fn reply_for_error(
    head: &RequestHead,
    error: &GateError,
    api: bool,
    retry: Option<String>,
) -> (Reply, Option<String>) {
    let here = &head.url[url::Position::BeforePath..url::Position::AfterQuery];
    let retry = match (error, retry) {
        (GateError::OriginUnreachable(_), _) => here.to_string(),
        (_, Some(to)) => to,
        _ if head.url.path().starts_with(PREFIX) => login_href("/"),
        _ => login_href(here),
    };
    let wants_json = api || head.prefers_json();
    error::respond(
        error,
        &Scope {
            host: head.host(),
            path: head.url.path(),
            retry: &retry,
            wants_json,
        },
    )
}

#[cfg(test)]
mod tests;
