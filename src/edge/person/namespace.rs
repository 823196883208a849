//! The `PEOPLE` namespace as the core's [`People`] port: whether it is bound, and the
//! stub of a person's object (asked with JSON questions, or handed a WebSocket upgrade).

use std::cell::OnceCell;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Env, ObjectNamespace};

use crate::people::{Answer, Ask, People, PeopleError};

/// The binding of the persons' objects in `wrangler.toml`.
pub const BINDING: &str = "PEOPLE";

/// The namespace, when `PEOPLE` is bound to a Durable Object namespace.
pub fn namespace(env: &Env) -> Option<ObjectNamespace> {
    let bound = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(BINDING)).ok()?;
    if bound.is_undefined() {
        return None;
    }
    env.durable_object(BINDING).ok()
}

/// [`People`] over the `PEOPLE` namespace. Whether it is bound is known per isolate (read
/// at start-up); the namespace itself is looked up only when an object is asked, which
/// most requests never do.
pub struct PeopleNamespace<'a> {
    env: &'a Env,
    bound: bool,
    ns: OnceCell<Option<ObjectNamespace>>,
}

impl<'a> PeopleNamespace<'a> {
    pub fn new(env: &'a Env, bound: bool) -> Self {
        Self {
            env,
            bound,
            ns: OnceCell::new(),
        }
    }
}

impl PeopleNamespace<'_> {
    /// The stub of the person's object, as JavaScript's `fetch` target.
    pub fn stub(&self, sub: &str) -> Option<JsValue> {
        self.stub_of(sub).ok()
    }

    fn stub_of(&self, sub: &str) -> Result<JsValue, PeopleError> {
        if !self.bound {
            return Err(PeopleError::NotBound);
        }
        let ns = self.ns.get_or_init(|| namespace(self.env));
        let ns = ns.as_ref().ok_or(PeopleError::NotBound)?;
        let stub = ns.id_from_name(sub).and_then(|id| id.get_stub());
        let stub = stub.map_err(|e| PeopleError::Unreachable(e.to_string()))?;
        Ok(stub.into_rpc::<JsValue>())
    }
}

// The question goes as a POST of its JSON to the object's `fetch`, in JavaScript: the
// answer's status and text come back as `[status, text]`.
#[wasm_bindgen(inline_js = r#"
export async function ask(stub, body) {
  const response = await stub.fetch('https://person/', { method: 'POST', body });
  return [response.status, await response.text()];
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = ask)]
    fn ask_object(stub: &JsValue, body: &str) -> js_sys::Promise;
}

impl People for PeopleNamespace<'_> {
    fn bound(&self) -> bool {
        self.bound
    }

    async fn ask(&self, sub: &str, ask: &Ask) -> Result<Answer, PeopleError> {
        let stub = self.stub_of(sub)?;
        let unreachable = PeopleError::Unreachable;
        let body = serde_json::to_string(ask).map_err(|e| unreachable(e.to_string()))?;
        let answered = JsFuture::from(ask_object(&stub, &body))
            .await
            .map_err(|e| unreachable(thrown(&e)))?;
        let answered = js_sys::Array::from(&answered);
        let status = answered.get(0).as_f64().unwrap_or_default();
        let text = answered.get(1).as_string().unwrap_or_default();
        if status != 200.0 {
            return Err(unreachable(format!("answered {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| unreachable(e.to_string()))
    }
}

/// What a rejected promise says: an `Error`'s message, else the value itself.
fn thrown(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => format!("{value:?}"),
    }
}
