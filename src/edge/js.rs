//! Two small JavaScript helpers that keep the per-request work on the JS side of the
//! boundary to one call each way. Every call into or out of wasm, every string passed
//! across (re-encoded as UTF-8 or UTF-16), and every promise the Rust executor awaits
//! costs more than the gate's own logic, so:
//! - [`pack_headers`] hands over all request headers as one string;
//! - [`proxy`] builds the upstream request from the client's, sends it and returns the
//!   promise of the response, so a request decided without I/O never enters the future
//!   executor at all. The response comes back through Rust ([`Hooks::finish`]) only when
//!   it has a `Cache-Control` or `Set-Cookie` header for the core to look at.
//!
//! Header names and values never contain a line feed (the Fetch standard forbids CR and
//! LF in them), so `\n` separates them unambiguously.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::{Headers, Request};

#[wasm_bindgen(inline_js = r#"
export function pack_headers(headers) {
  let packed = '';
  for (const [name, value] of headers) packed += name + '\n' + value + '\n';
  return packed;
}
export function proxy(request, url, remove, set, finish, fail) {
  const headers = new Headers(request.headers);
  if (remove) for (const name of remove.split('\n')) headers.delete(name);
  if (set) {
    const parts = set.split('\n');
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  }
  const method = request.method;
  const init = { method, headers, redirect: 'manual', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD' && request.body) init.body = request.body;
  return fetch(url, init).then(
    (response) => response.status === 101
      || (response.headers.get('cache-control') === null && response.headers.get('set-cookie') === null)
      ? response : finish(response, request, url),
    (error) => fail(request, url, error));
}
"#)]
extern "C" {
    /// Every header as `name\nvalue\n…` (names lower-case, as `Headers` iterates them).
    pub fn pack_headers(headers: &Headers) -> String;
    /// `fetch(url)` with the client's method, body and headers (without the
    /// `\n`-separated names in `remove`, with the `name\nvalue\n…` pairs in `set`), not
    /// following redirects and not cached. The promise resolves to the origin's response:
    /// untouched for a WebSocket upgrade (101) or when it has neither `Cache-Control` nor
    /// `Set-Cookie`, else as `finish(response, request, url)` returns it; a failed fetch resolves to
    /// `fail(request, url, error)`.
    #[wasm_bindgen(catch)]
    pub fn proxy(
        request: &Request,
        url: &str,
        remove: &str,
        set: &str,
        finish: &js_sys::Function,
        fail: &js_sys::Function,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// The `(name, value)` pairs of what [`pack_headers`] returned.
pub fn unpack(packed: &str) -> Vec<(String, String)> {
    let mut parts = packed.split('\n');
    let mut out = Vec::with_capacity(16);
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        out.push((name.to_string(), value.to_string()));
    }
    out
}

/// `name\nvalue\n…` for [`proxy`].
pub fn pack(pairs: &[(String, String)]) -> String {
    let mut packed = String::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in pairs {
        packed.push_str(name);
        packed.push('\n');
        packed.push_str(value);
        packed.push('\n');
    }
    packed
}
