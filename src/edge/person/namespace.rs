//! The `PEOPLE` namespace as the core's [`People`] port: whether it is bound, and the
//! stub of a person's object (asked with JSON questions, or handed a WebSocket upgrade).

use std::cell::OnceCell;

use wasm_bindgen::JsValue;
use worker::{Env, Method, ObjectNamespace, Request, RequestInit};

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
        if !self.bound {
            return None;
        }
        let ns = self.ns.get_or_init(|| namespace(self.env)).as_ref()?;
        let stub = ns.id_from_name(sub).and_then(|id| id.get_stub()).ok()?;
        Some(stub.into_rpc::<JsValue>())
    }
}

impl People for PeopleNamespace<'_> {
    fn bound(&self) -> bool {
        self.bound
    }

    async fn ask(&self, sub: &str, ask: &Ask) -> Result<Answer, PeopleError> {
        if !self.bound {
            return Err(PeopleError::NotBound);
        }
        let ns = self.ns.get_or_init(|| namespace(self.env));
        let ns = ns.as_ref().ok_or(PeopleError::NotBound)?;
        let unreachable = |e: worker::Error| PeopleError::Unreachable(e.to_string());
        let stub = ns
            .id_from_name(sub)
            .and_then(|id| id.get_stub())
            .map_err(unreachable)?;
        let body =
            serde_json::to_string(ask).map_err(|e| PeopleError::Unreachable(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init("https://person/", &init).map_err(unreachable)?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(unreachable)?;
        let text = response.text().await.map_err(unreachable)?;
        if response.status_code() != 200 {
            let status = response.status_code();
            return Err(PeopleError::Unreachable(format!(
                "answered {status}: {text}"
            )));
        }
        serde_json::from_str(&text).map_err(|e| PeopleError::Unreachable(e.to_string()))
    }
}
