//! The session store on Workers KV, called through a few lines of JavaScript: the
//! `worker` crate's KV builders pass their options and listings through
//! `serde_wasm_bindgen`, which (with the float formatting it brings) is a sizeable part of
//! the wasm for four calls. Values, metadata and listings cross as strings here.

use std::cell::OnceCell;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::store::{Entry, ListPage, Store, StoreError};

pub const BINDING: &str = "SESSIONS";

/// KV reads may be served from the edge cache for this long (the minimum KV allows):
/// it bounds how long a revoked session can still be read elsewhere.
const READ_CACHE_TTL: u32 = 30;

/// KV refuses an expiration TTL under a minute.
const MIN_TTL: u64 = 60;

#[wasm_bindgen(inline_js = r#"
export function kv_get(ns, key, cacheTtl) { return ns.get(key, { cacheTtl }); }
export function kv_put(ns, key, value, expirationTtl, metadata) {
  const options = { expirationTtl };
  if (metadata !== undefined) options.metadata = JSON.parse(metadata);
  return ns.put(key, value, options);
}
export function kv_delete(ns, key) { return ns.delete(key); }
export async function kv_list(ns, prefix, cursor) {
  const page = await ns.list(cursor === undefined ? { prefix } : { prefix, cursor });
  return JSON.stringify({
    keys: page.keys.map((k) => ({ name: k.name, metadata: k.metadata === undefined || k.metadata === null ? null : JSON.stringify(k.metadata) })),
    cursor: page.list_complete ? null : page.cursor,
  });
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kv_get(ns: &JsValue, key: &str, cache_ttl: u32) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn kv_put(
        ns: &JsValue,
        key: &str,
        value: &str,
        expiration_ttl: f64,
        metadata: Option<String>,
    ) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn kv_delete(ns: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn kv_list(
        ns: &JsValue,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// The `SESSIONS` binding, when it is a KV namespace.
pub fn namespace(env: &Env) -> Option<JsValue> {
    let ns = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(BINDING)).ok()?;
    let get = js_sys::Reflect::get(&ns, &JsValue::from_str("list")).ok()?;
    get.is_instance_of::<js_sys::Function>().then_some(ns)
}

/// The namespace, looked up on first use: most signed-in requests are answered from the
/// isolate's session cache and never touch KV.
pub struct KvSessions<'a> {
    env: &'a Env,
    ns: OnceCell<JsValue>,
}

impl<'a> KvSessions<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self {
            env,
            ns: OnceCell::new(),
        }
    }

    fn ns(&self) -> Result<&JsValue, StoreError> {
        if let Some(ns) = self.ns.get() {
            return Ok(ns);
        }
        let ns = namespace(self.env)
            .ok_or_else(|| StoreError(format!("no KV namespace bound as {BINDING}")))?;
        Ok(self.ns.get_or_init(|| ns))
    }
}

fn failed(e: JsValue) -> StoreError {
    StoreError(super::fetch::js_error(e))
}

async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, StoreError> {
    JsFuture::from(promise.map_err(failed)?)
        .await
        .map_err(failed)
}

impl Store for KvSessions<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = settle(kv_get(self.ns()?, key, READ_CACHE_TTL)).await?;
        Ok(value.as_string())
    }

    async fn put(&self, key: &str, entry: Entry<'_>) -> Result<(), StoreError> {
        let ttl = entry.ttl.max(MIN_TTL) as f64;
        let metadata = entry.metadata.map(str::to_string);
        settle(kv_put(self.ns()?, key, entry.value, ttl, metadata)).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, StoreError> {
        let listed = settle(kv_list(self.ns()?, prefix, cursor.map(str::to_string))).await?;
        let text = listed
            .as_string()
            .ok_or_else(|| StoreError("KV list returned no listing".into()))?;
        // The helper writes the listing in `ListPage`'s own shape.
        serde_json::from_str(&text).map_err(|e| StoreError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        settle(kv_delete(self.ns()?, key)).await?;
        Ok(())
    }
}
