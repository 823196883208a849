//! The Worker: turns workerd's request into a [`RequestHead`], lets the [`Gate`] decide,
//! and carries the decision out (reply, or `fetch` to the origin with bodies streamed).
//! A decision that needs no I/O is carried out without the future executor.
//! Configuration is read once per isolate.

mod fetch;
mod js;
mod kv;
mod person;
mod webcrypto;

use std::cell::RefCell;
use std::rc::Rc;

use std::future::Future;
use std::task::Poll;
use url::Url;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::future_to_promise;
use worker::{console_error, console_log, Context, Env};

use crate::config::{binding_problems, ConfigError, ConfigErrors, Inputs};
use crate::context::IoParts;
use crate::crypto::SystemRandom;
use crate::error::{self, GateError, Scope};
use crate::gate::{Gate, Outcome};
use crate::http::{content_security_policy, Reply};
use crate::model::Config;
use crate::request::RequestHead;

/// Largest body read for Portcullis's own POST endpoints (forms and small JSON).
const MAX_BODY: usize = 16 * 1024;

enum State {
    /// The gate, and whether `PEOPLE` (the persons' objects) is bound.
    Ready(Box<Gate>, bool),
    Broken(ConfigErrors),
}

thread_local! {
    static STATE: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

fn state(env: &Env) -> Rc<State> {
    STATE.with(|cell| {
        if let Some(state) = cell.borrow().as_ref() {
            return state.clone();
        }
        let state = Rc::new(load(env));
        if let State::Broken(errors) = state.as_ref() {
            console_error!(
                "{}",
                GateError::Misconfigured(errors.clone()).log_line("", "")
            );
        }
        *cell.borrow_mut() = Some(state.clone());
        state
    })
}

fn load(env: &Env) -> State {
    let portcullis = js::configuration(env.as_ref(), "PORTCULLIS");
    let secret = |name: &str| env.secret(name).ok().map(|s| s.to_string());
    let inputs = Inputs {
        portcullis,
        oidc_client_secret: secret("OIDC_CLIENT_SECRET"),
        session_secret: secret("SESSION_SECRET"),
        assertion_key: secret("ASSERTION_KEY"),
        admin_token: secret("ADMIN_TOKEN"),
    };
    let config = Config::from_inputs(&inputs);
    let kv_problem = kv::namespace(env).is_none().then(|| ConfigError {
        key: kv::BINDING.into(),
        problem: "KV binding is missing; add [[kv_namespaces]] with binding = \"SESSIONS\" to wrangler.toml".into(),
    });
    let people_bound = person::namespace(env).is_some();
    let mut problems: Vec<ConfigError> = kv_problem.into_iter().collect();
    if let Ok(config) = &config {
        problems.extend(binding_problems(&config.settings, people_bound));
    }
    match (config, problems.is_empty()) {
        (Ok(config), true) => State::Ready(Box::new(Gate::new(config)), people_bound),
        (Ok(_), false) => State::Broken(ConfigErrors(problems)),
        (Err(mut e), _) => {
            e.0.extend(problems);
            State::Broken(e)
        }
    }
}

fn now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// The request head from the packed method, URL and headers
/// ([`RequestHead::from_packed`]), as UTF-8.
fn head_of(packed: Vec<u8>) -> Option<RequestHead> {
    RequestHead::from_packed(String::from_utf8(packed).ok()?)
}

/// The fetch handler, called by the entry module (`entry.js`) with the request's method,
/// URL and headers packed into one string, encoded as UTF-8, and the time in milliseconds.
/// (Bytes, not a `&str`: wasm-bindgen copies a string into wasm one character at a time
/// in JavaScript, which costs more than the gate's own logic for a browser's headers;
/// `TextEncoder` and a byte copy do it natively.) A request the
/// gate decides without waiting on anything (a signed-in request answered from the
/// isolate's session cache, most replies) is answered at once: the reply, or the promise
/// of the origin's response from [`js::proxy`]. Only a request that must wait (KV, the
/// issuer, a body) continues on the future executor, whose promise and microtask hops
/// would otherwise cost every request.
#[wasm_bindgen]
pub fn handle(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
    packed: Vec<u8>,
    now_ms: f64,
) -> JsValue {
    let head = head_of(packed);
    let now = (now_ms / 1000.0) as u64;
    let mut work =
        Box::pin(async move { answer(serve(req, head, now, env, Context::new(ctx)).await) });
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match work.as_mut().poll(&mut cx) {
        // Polling again with the executor's waker re-registers every pending future.
        Poll::Pending => future_to_promise(async move { Ok(work.await) }).into(),
        Poll::Ready(answer) => answer,
    }
}

/// The response (or its promise), or a bare 500 when not even the error page could be
/// built (as the `worker` crate's handler does).
fn answer(result: worker::Result<JsValue>) -> JsValue {
    result.unwrap_or_else(|e| {
        console_error!("{e}");
        let init = web_sys::ResponseInit::new();
        init.set_status(500);
        web_sys::Response::new_with_opt_str_and_init(Some("Internal server error"), &init)
            .map(JsValue::from)
            .unwrap_or(JsValue::UNDEFINED)
    })
}

async fn serve(
    req: web_sys::Request,
    head: Option<RequestHead>,
    at: u64,
    env: Env,
    ctx: Context,
) -> worker::Result<JsValue> {
    let Some(mut head) = head else {
        return fetch::reply(
            Reply::html(400, "Bad request".into()),
            &content_security_policy(None),
        )
        .map(JsValue::from);
    };
    #[cfg(feature = "fault-injection")]
    fault(&head).await;
    let state = state(&env);
    let (gate, people_bound) = match state.as_ref() {
        State::Ready(gate, bound) => (gate, *bound),
        State::Broken(errors) => {
            let scope = Scope {
                host: head.host(),
                path: head.url.path(),
                retry: "/",
                wants_json: false,
            };
            let (reply, log) = error::respond(&GateError::Misconfigured(errors.clone()), &scope);
            log.into_iter().for_each(|line| console_error!("{line}"));
            return fetch::reply(reply, &content_security_policy(None)).map(JsValue::from);
        }
    };
    let route = gate.route(&head);
    // A body is read only for the endpoints that take one, and never past the limit.
    if Gate::takes_body(route, &head) {
        match fetch::read_body(&req, MAX_BODY).await {
            Ok(body) => head.body = Some(body),
            Err(fetch::BodyError::Unreadable) => {}
            Err(fetch::BodyError::TooLarge) => {
                let (reply, log) = gate.edge_error(&head, route, GateError::PayloadTooLarge);
                log.into_iter().for_each(|line| console_log!("{line}"));
                return fetch::reply(reply, &gate.csp).map(JsValue::from);
            }
        }
    }
    let store = kv::KvSessions::new(&env);
    let people = person::PeopleNamespace::new(&env, people_bound);
    let io = IoParts::new(&store, &fetch::Issuer, &webcrypto::WebCrypto, &SystemRandom)
        .with_people(&people);
    let handled = gate.handle(&head, route, &io, at).await;
    for line in &handled.log {
        console_log!("{line}");
    }
    // Background work (re-validation) runs after the response, in this isolate.
    for task in handled.tasks {
        ctx.wait_until(run_later(state.clone(), env.clone(), task));
    }
    match handled.outcome {
        Outcome::Reply(reply) => fetch::reply(reply, &gate.csp).map(JsValue::from),
        Outcome::Proxy(plan) => forward(&req, &plan, &people),
    }
}

/// Work after the response (`waitUntil`), with I/O of its own.
async fn run_later(state: Rc<State>, env: Env, task: crate::context::Task) {
    if let State::Ready(gate, people_bound) = state.as_ref() {
        let store = kv::KvSessions::new(&env);
        let people = person::PeopleNamespace::new(&env, *people_bound);
        let io = IoParts::new(&store, &fetch::Issuer, &webcrypto::WebCrypto, &SystemRandom)
            .with_people(&people);
        for line in gate.run(task, &io, now()).await {
            console_log!("{line}");
        }
    }
}

/// Sends the request on as planned: to the origin, or (a relayed WebSocket) to the
/// person's object, the one place that can close it later; without one at hand it is
/// passed as before.
fn forward(
    req: &web_sys::Request,
    plan: &crate::proxy::ProxyPlan,
    people: &person::PeopleNamespace<'_>,
) -> worker::Result<JsValue> {
    let relay = plan
        .relay
        .as_ref()
        .and_then(|standing| Some((people.stub(&standing.sub)?, standing.to_header())));
    let (via, standing) = match relay {
        Some((stub, standing)) => (stub, Some(standing)),
        None => (JsValue::UNDEFINED, None),
    };
    HOOKS.with(|hooks| {
        js::proxy(
            req,
            &js::pack_plan(&plan.url, &plan.remove, &plan.set),
            &hooks.finish,
            &hooks.fail,
            &via,
            standing,
        )
        .map(JsValue::from)
        .or_else(|e| unreachable_origin(req, &plan.url, e))
    })
}

/// Test builds only: `X-Portcullis-Fault: sync` panics at once, `async` after waiting on a
/// promise (on the future executor), so tests can check that the isolate recovers.
#[cfg(feature = "fault-injection")]
async fn fault(head: &RequestHead) {
    match head.header("x-portcullis-fault") {
        Some("sync") => panic!("injected fault (sync)"),
        Some("async") => {
            let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL))
                .await;
            panic!("injected fault (async)")
        }
        _ => {}
    }
}

/// The two callbacks [`js::proxy`] takes, made once per isolate (not per request).
struct Hooks {
    finish: js_sys::Function,
    fail: js_sys::Function,
}

thread_local! {
    static HOOKS: Hooks = Hooks {
        finish: Closure::<dyn Fn(web_sys::Response, web_sys::Request, String) -> JsValue>::new(
            |response, req: web_sys::Request, url: String| {
                answer(fetch::finish(response).map(JsValue::from).or_else(|e| {
                    unreachable_origin(&req, &url, JsValue::from_str(&e))
                }))
            },
        )
        .into_js_value()
        .unchecked_into(),
        fail: Closure::<dyn Fn(web_sys::Request, String, JsValue) -> JsValue>::new(
            |req: web_sys::Request, url: String, error: JsValue| {
                answer(unreachable_origin(&req, &url, error))
            },
        )
        .into_js_value()
        .unchecked_into(),
    };
}

/// The error page for an origin that could not be reached.
fn unreachable_origin(
    req: &web_sys::Request,
    url: &str,
    error: JsValue,
) -> worker::Result<JsValue> {
    let error = GateError::OriginUnreachable(format!("{url}: {}", fetch::js_error(error)));
    let state = STATE.with(|cell| cell.borrow().clone());
    // Enough of the request for the error page: where it went, and whether it wants JSON.
    let accept = req
        .headers()
        .get("accept")
        .ok()
        .flatten()
        .unwrap_or_default();
    let head = Url::parse(&req.url())
        .ok()
        .map(|url| RequestHead::new(&req.method(), url, vec![("accept".into(), accept)]));
    match (state.as_deref(), head) {
        (Some(State::Ready(gate, _)), Some(head)) => {
            // The fail hook has only the request: its route is computed again, on this
            // error path alone.
            let (reply, log) = gate.edge_error(&head, gate.route(&head), error);
            log.into_iter().for_each(|line| console_error!("{line}"));
            fetch::reply(reply, &gate.csp).map(JsValue::from)
        }
        _ => Err(worker::Error::RustError(error.log_line("", ""))),
    }
}
