//! Two small JavaScript helpers that move a request's headers across the JS↔wasm boundary
//! in one string each way, instead of one call (and two string conversions) per header.
//! Header names and values never contain a line feed (the Fetch standard forbids CR and
//! LF in them), so `\n` separates them unambiguously.

use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::Headers;

#[wasm_bindgen(inline_js = r#"
export function pack_headers(headers) {
  let packed = '';
  for (const [name, value] of headers) packed += name + '\n' + value + '\n';
  return packed;
}
export function forward_headers(incoming, remove, set) {
  const headers = new Headers(incoming);
  if (remove) for (const name of remove.split('\n')) headers.delete(name);
  if (set) {
    const parts = set.split('\n');
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  }
  return headers;
}
"#)]
extern "C" {
    /// Every header as `name\nvalue\n…` (names lower-case, as `Headers` iterates them).
    pub fn pack_headers(headers: &Headers) -> String;
    /// A copy of `incoming` without the `\n`-separated names in `remove`, with the
    /// `name\nvalue\n…` pairs in `set` set.
    #[wasm_bindgen(catch)]
    pub fn forward_headers(
        incoming: &Headers,
        remove: &str,
        set: &str,
    ) -> Result<Headers, wasm_bindgen::JsValue>;
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

/// `name\nvalue\n…` for [`forward_headers`].
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
