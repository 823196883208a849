//! The JavaScript side of the per-request work, kept to one call each way. Every call
//! into or out of wasm, every string passed across (re-encoded as UTF-8 or UTF-16), and
//! every promise the Rust executor awaits costs more than the gate's own logic, so:
//! - the entry module (`entry.js`) hands the request's method, URL and headers to wasm
//!   as one string (the format [`crate::request::RequestHead::from_packed`] reads, made
//!   by `packRequest` there);
//! - [`proxy`] builds the upstream request from the client's, sends it and returns the
//!   promise of the response, so a request decided without I/O never enters the future
//!   executor at all. The response comes back through Rust (`finish`) only when it has
//!   a `Cache-Control` or `Set-Cookie` header for the core to look at.
//!
//! Header names and values never contain a line feed or NUL (the Fetch standard forbids
//! CR, LF and NUL in them; the URL is percent-encoded), so `\n` and `\0` separate fields
//! unambiguously.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::Request;

#[wasm_bindgen(inline_js = r#"
export function configuration(env, name) {
  const value = env[name];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? 's' + value : 'j' + JSON.stringify(value);
}
export function proxy(request, plan, finish, fail, via, standing) {
  const [url, remove, set] = plan.split('\0');
  const headers = new Headers(request.headers);
  if (remove) for (const name of remove.split('\n')) headers.delete(name);
  if (set) {
    const parts = set.split('\n');
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  }
  const method = request.method;
  const init = { method, headers, redirect: 'manual', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD' && request.body) init.body = request.body;
  let sent;
  if (via === undefined) sent = fetch(url, init);
  else {
    headers.set('portcullis-relay', standing);
    sent = via.fetch(url, init);
  }
  return sent.then(
    (response) => response.headers.get('set-cookie') === null
      && (response.status === 101 || response.headers.get('cache-control') === null)
      ? response : finish(response, request, url),
    (error) => fail(request, url, error));
}
"#)]
extern "C" {
    /// The binding `name` of `env`: `s` followed by a text binding's value, or `j`
    /// followed by a JSON binding's value as JSON; `None` when it is not bound.
    #[wasm_bindgen(js_name = configuration)]
    fn configuration_tagged(env: &JsValue, name: &str) -> Option<String>;
    /// `fetch(url)` with the client's method, body and headers (without the names in
    /// `remove`, with the pairs in `set`), not following redirects and not cached;
    /// `plan` is [`pack_plan`]'s. The promise resolves to the origin's response: untouched
    /// when it has no `Set-Cookie` and either is a WebSocket upgrade (101) or has no
    /// `Cache-Control`, else as `finish(response, request, url)` returns it (an upgrade
    /// too: an app must not set Portcullis's cookies through it); a failed fetch resolves
    /// to `fail(request, url, error)`. With `via` (a person's object) the request goes to
    /// that object instead, carrying `standing` in the `portcullis-relay` header: a
    /// WebSocket upgrade it relays (`src/edge/person.rs`).
    #[wasm_bindgen(catch)]
    pub fn proxy(
        request: &Request,
        plan: &str,
        finish: &js_sys::Function,
        fail: &js_sys::Function,
        via: &JsValue,
        standing: Option<String>,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// A configuration binding (a `[vars]` table or string) as JSON.
pub fn configuration(env: &JsValue, name: &str) -> Option<serde_json::Value> {
    let tagged = configuration_tagged(env, name)?;
    if let Some(text) = tagged.strip_prefix('s') {
        return Some(serde_json::Value::String(text.to_string()));
    }
    serde_json::from_str(tagged.strip_prefix('j')?).ok()
}

/// `url\0remove\0set` for [`proxy`]: the names to delete `\n`-separated, the headers to
/// set as `name\nvalue\n…`.
pub fn pack_plan(url: &str, remove: &[String], set: &[(&str, String)]) -> String {
    let mut packed = String::with_capacity(
        url.len()
            + remove.iter().map(|n| n.len() + 1).sum::<usize>()
            + set
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2)
                .sum::<usize>()
            + 2,
    );
    packed.push_str(url);
    packed.push('\0');
    for (i, name) in remove.iter().enumerate() {
        if i > 0 {
            packed.push('\n');
        }
        packed.push_str(name);
    }
    packed.push('\0');
    for (name, value) in set {
        packed.push_str(name);
        packed.push('\n');
        packed.push_str(value);
        packed.push('\n');
    }
    packed
}
