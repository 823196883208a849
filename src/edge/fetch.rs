//! Outbound HTTP to the issuer for the core (bounded time and size), the origin's response
//! on its way back to the client, request bodies read for Portcullis's own endpoints, and
//! core replies as workerd responses.

use std::cell::RefCell;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, RequestRedirect, Response, ResponseInit};

use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, Method, Reply, Standard};
use crate::proxy;

/// Issuer requests give up after this long.
const ISSUER_TIMEOUT_MS: u32 = 10_000;
/// Largest issuer response read (discovery, keys and tokens are a few KB).
const MAX_ISSUER_BODY: usize = 512 * 1024;

pub fn js_error(e: JsValue) -> String {
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

/// The origin's response as the client gets it: `Cache-Control` made private, and no
/// `Set-Cookie` for Portcullis's own cookies. ([`super::js::proxy`] sends the request and
/// calls this only when the response has one of those headers.)
pub fn finish(response: Response) -> Result<Response, String> {
    if response.status() == 101 {
        return finish_upgrade(response);
    }
    let origin_headers = response.headers();
    let current = origin_headers.get("cache-control").ok().flatten();
    let cache_control = proxy::response_cache_control(current.as_deref());
    let cookies = own_cookies_dropped(&origin_headers);
    if cache_control.is_none() && cookies.is_none() {
        return Ok(response);
    }
    // Fetched headers are immutable: copy into a new response around the same body.
    let headers = Headers::new_with_headers(&origin_headers).map_err(js_error)?;
    if let Some(value) = cache_control {
        headers.set("cache-control", &value).map_err(js_error)?;
    }
    if let Some(kept) = cookies {
        headers.delete("set-cookie").map_err(js_error)?;
        for cookie in kept {
            headers.append("set-cookie", &cookie).map_err(js_error)?;
        }
    }
    let init = ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
        .map_err(js_error)
}

/// A WebSocket upgrade's response without `Set-Cookie` for Portcullis's cookies: the same
/// socket (`webSocket`) in a new 101 response, since fetched headers are immutable.
fn finish_upgrade(response: Response) -> Result<Response, String> {
    let origin_headers = response.headers();
    let Some(kept) = own_cookies_dropped(&origin_headers) else {
        return Ok(response);
    };
    let headers = Headers::new_with_headers(&origin_headers).map_err(js_error)?;
    headers.delete("set-cookie").map_err(js_error)?;
    for cookie in kept {
        headers.append("set-cookie", &cookie).map_err(js_error)?;
    }
    let init = ResponseInit::new();
    init.set_status(101);
    init.set_headers(&headers);
    let socket =
        js_sys::Reflect::get(&response, &JsValue::from_str("webSocket")).map_err(js_error)?;
    js_sys::Reflect::set(&init, &JsValue::from_str("webSocket"), &socket).map_err(js_error)?;
    Response::new_with_opt_str_and_init(None, &init).map_err(js_error)
}

/// The origin's `Set-Cookie` values without Portcullis's cookie names, when it set any
/// (`None`: nothing to change). One header read per response; the values are only split
/// when a name looks like ours. Where `getSetCookie` is missing, every cookie is dropped
/// rather than let a planted one through.
fn own_cookies_dropped(headers: &Headers) -> Option<Vec<String>> {
    let combined = headers.get("set-cookie").ok().flatten()?;
    if !combined.to_ascii_lowercase().contains("portcullis") {
        return None;
    }
    let values = js_sys::Reflect::get(headers, &JsValue::from_str("getSetCookie"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(headers).ok())
        .and_then(|list| list.dyn_into::<js_sys::Array>().ok());
    match values {
        Some(list) => {
            let all: Vec<String> = list.iter().filter_map(|v| v.as_string()).collect();
            proxy::without_own_cookies(&all)
        }
        None => Some(Vec::new()),
    }
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit (declared, or found while streaming).
    #[error("the request body is larger than the limit")]
    TooLarge,
    /// Unreadable, or not UTF-8.
    #[error("the request body could not be read as UTF-8")]
    Unreadable,
}

/// Reads a small body (a form or JSON for Portcullis's own endpoints) as a stream, and
/// stops at `limit` bytes: a body without `Content-Length` is never buffered whole.
pub async fn read_body(req: &Request, limit: usize) -> Result<String, BodyError> {
    let declared = req.headers().get("content-length").ok().flatten();
    if declared.is_some_and(|l| l.trim().parse::<usize>().map_or(true, |l| l > limit)) {
        return Err(BodyError::TooLarge);
    }
    let Some(stream) = req.body() else {
        return Ok(String::new());
    };
    let reader = stream.get_reader();
    let call = |name: &str| -> Result<js_sys::Promise, BodyError> {
        js_sys::Reflect::get(&reader, &JsValue::from_str(name))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .and_then(|f| f.call0(&reader).ok())
            .and_then(|p| p.dyn_into::<js_sys::Promise>().ok())
            .ok_or(BodyError::Unreadable)
    };
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let chunk = JsFuture::from(call("read")?)
            .await
            .map_err(|_| BodyError::Unreadable)?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
            .ok_or(BodyError::Unreadable)?;
        if bytes.len() + value.length() as usize > limit {
            // Stop reading: the rest is never pulled from the client.
            if let Ok(cancel) = call("cancel") {
                let _ = JsFuture::from(cancel).await;
            }
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&value.to_vec());
    }
    String::from_utf8(bytes).map_err(|_| BodyError::Unreadable)
}

thread_local! {
    /// The standard header sets, built once per isolate and copied for each reply; keyed by
    /// the content security policy too, since a misconfigured gate's replies carry another
    /// one than a working gate's (a template must not keep the first reply's policy).
    static TEMPLATES: RefCell<Vec<(Standard, String, Headers)>> = const { RefCell::new(Vec::new()) };
}

fn standard_headers(standard: Standard, csp: &str) -> worker::Result<Headers> {
    let cached = TEMPLATES.with(|t| {
        t.borrow()
            .iter()
            .find(|(s, c, _)| *s == standard && c == csp)
            .map(|(_, _, h)| h.clone())
    });
    let template = match cached {
        Some(template) => template,
        None => {
            let template = Headers::new()?;
            for (name, value) in standard.headers() {
                template.set(name, value)?;
            }
            template.set("content-security-policy", csp)?;
            TEMPLATES.with(|t| {
                t.borrow_mut()
                    .push((standard, csp.to_string(), template.clone()))
            });
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
