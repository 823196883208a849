//! Outbound HTTP: to the issuer for the core (bounded time and size), and to the origin
//! for proxied requests (streamed, redirects passed back, WebSocket upgrades untouched).

use std::cell::RefCell;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Headers, Request, RequestCache, RequestInit, RequestRedirect, Response, ResponseInit,
};

use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, Method, Reply, Standard};
use crate::proxy::{self, ProxyPlan};

/// Issuer requests give up after this long.
const ISSUER_TIMEOUT_MS: u32 = 10_000;
/// Largest issuer response read (discovery, keys and tokens are a few KB).
const MAX_ISSUER_BODY: usize = 512 * 1024;

fn js_error(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

/// `fetch(url, init)`: handing the URL and init straight to fetch avoids building a
/// separate Request object first.
async fn global_fetch(url: &str, init: &RequestInit) -> Result<Response, String> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let response = JsFuture::from(global.fetch_with_str_and_init(url, init))
        .await
        .map_err(js_error)?;
    response
        .dyn_into::<Response>()
        .map_err(|_| "fetch did not return a Response".to_string())
}

/// The issuer, reached with `fetch`.
pub struct Issuer;

impl HttpClient for Issuer {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let init = RequestInit::new();
        init.set_method(match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
        });
        let headers = Headers::new().map_err(|e| HttpError(js_error(e)))?;
        for (name, value) in &request.headers {
            headers
                .set(name, value)
                .map_err(|e| HttpError(js_error(e)))?;
        }
        init.set_headers(&headers);
        // A redirect from the issuer's API is never followed blindly.
        init.set_redirect(RequestRedirect::Manual);
        if let Some(body) = &request.body {
            init.set_body(&JsValue::from_str(body));
        }
        init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(
            ISSUER_TIMEOUT_MS,
        )));
        let response = global_fetch(&request.url, &init).await.map_err(HttpError)?;
        let status = response.status();
        if let Some(length) = response.headers().get("content-length").ok().flatten() {
            if length
                .parse::<usize>()
                .map_or(true, |l| l > MAX_ISSUER_BODY)
            {
                return Err(HttpError(format!("response too large ({length} bytes)")));
            }
        }
        let text = JsFuture::from(response.text().map_err(|e| HttpError(js_error(e)))?)
            .await
            .map_err(|e| HttpError(js_error(e)))?;
        let body = text.as_string().unwrap_or_default();
        if body.len() > MAX_ISSUER_BODY {
            return Err(HttpError(format!(
                "response too large ({} bytes)",
                body.len()
            )));
        }
        Ok(HttpResponse { status, body })
    }
}

/// Forwards the client's request as planned and returns the origin's response, with
/// `Cache-Control` made private. A WebSocket upgrade (101) is returned untouched.
pub async fn forward(req: &Request, plan: &ProxyPlan) -> Result<Response, String> {
    let headers = Headers::new_with_headers(&req.headers()).map_err(js_error)?;
    for name in &plan.remove {
        headers.delete(name).map_err(js_error)?;
    }
    for (name, value) in &plan.set {
        headers.set(name, value).map_err(js_error)?;
    }
    let method = req.method();
    let init = RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(RequestRedirect::Manual);
    // The edge cache must not keep one user's response for another.
    init.set_cache(RequestCache::NoStore);
    if method != "GET" && method != "HEAD" {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let response = global_fetch(&plan.url, &init).await?;
    if response.status() == 101 {
        return Ok(response);
    }
    let current = response.headers().get("cache-control").ok().flatten();
    match proxy::response_cache_control(current.as_deref()) {
        None => Ok(response),
        Some(value) => {
            // Fetched headers are immutable: copy into a new response around the same body.
            let headers = Headers::new_with_headers(&response.headers()).map_err(js_error)?;
            headers.set("cache-control", &value).map_err(js_error)?;
            let init = ResponseInit::new();
            init.set_status(response.status());
            init.set_status_text(&response.status_text());
            init.set_headers(&headers);
            Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
                .map_err(js_error)
        }
    }
}

/// Reads a small form body; `None` when absent, unreadable or larger than `limit`.
pub async fn read_form(req: &Request, limit: usize) -> Option<String> {
    let declared = req.headers().get("content-length").ok().flatten();
    if declared.is_some_and(|l| l.parse::<usize>().map_or(true, |l| l > limit)) {
        return None;
    }
    let text = JsFuture::from(req.text().ok()?).await.ok()?.as_string()?;
    (text.len() <= limit).then_some(text)
}

thread_local! {
    /// The standard header sets, built once per isolate and copied for each reply.
    static TEMPLATES: RefCell<Vec<(Standard, Headers)>> = const { RefCell::new(Vec::new()) };
}

fn standard_headers(standard: Standard, csp: &str) -> worker::Result<Headers> {
    let cached = TEMPLATES.with(|t| {
        t.borrow()
            .iter()
            .find(|(s, _)| *s == standard)
            .map(|(_, h)| h.clone())
    });
    let template = match cached {
        Some(template) => template,
        None => {
            let template = Headers::new()?;
            for (name, value) in standard.headers() {
                template.set(name, value)?;
            }
            template.set("content-security-policy", csp)?;
            TEMPLATES.with(|t| t.borrow_mut().push((standard, template.clone())));
            template
        }
    };
    Ok(Headers::new_with_headers(&template)?)
}

/// A core reply as a workerd response; `csp` is the gate's content security policy (the
/// same for every reply of an isolate).
pub fn reply(reply: Reply, csp: &str) -> worker::Result<Response> {
    let init = ResponseInit::new();
    init.set_status(reply.status);
    let headers = match reply.standard {
        Some(standard) => standard_headers(standard, csp)?,
        None => Headers::new()?,
    };
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    init.set_headers(&headers);
    let body = (!reply.body.is_empty()).then_some(reply.body.as_str());
    Ok(Response::new_with_opt_str_and_init(body, &init)?)
}
