//! The persons' objects on Cloudflare: the Durable Object class `Person` (SQLite-backed,
//! one per subject), and the `PEOPLE` namespace as the core's [`People`] port. What an
//! object does with a question is [`crate::people::record`]; this file maps it onto
//! SQLite and `fetch`.

use std::cell::OnceCell;

use wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    SqlStorage, SqlStorageValue, State,
};

use crate::people::record::{self, DbError, PersonDb};
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

/// One person's object: the grants of theirs that are revoked, and the time before which
/// all of them are.
#[durable_object]
pub struct Person {
    sql: SqlStorage,
}

impl DurableObject for Person {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        // Idempotent; a failure here shows as an error on the first question.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS revoked (grant_name TEXT PRIMARY KEY, expires INTEGER NOT NULL)",
            None,
        );
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS everything (id INTEGER PRIMARY KEY CHECK (id = 0), at_or_before INTEGER NOT NULL)",
            None,
        );
        Self { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let text = req.text().await?;
        let Ok(ask) = serde_json::from_str::<Ask>(&text) else {
            return Response::error("not a question this object answers", 400);
        };
        let now = (js_sys::Date::now() / 1000.0) as u64;
        match record::answer(&Sql(&self.sql), &ask, now) {
            Ok(answer) => Response::from_json(&answer),
            Err(e) => Response::error(format!("storage failed: {}", e.0), 500),
        }
    }
}

/// [`PersonDb`] on the object's SQLite.
struct Sql<'a>(&'a SqlStorage);

#[derive(serde::Deserialize)]
struct Number {
    n: f64,
}

fn failed(e: worker::Error) -> DbError {
    DbError(e.to_string())
}

impl Sql<'_> {
    fn exec(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<(), DbError> {
        self.0.exec(query, bindings).map(|_| ()).map_err(failed)
    }

    /// The first column (named `n`) of the first row, if any.
    fn number(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Option<u64>, DbError> {
        let rows: Vec<Number> = self
            .0
            .exec(query, bindings)
            .and_then(|cursor| cursor.to_array())
            .map_err(failed)?;
        Ok(rows.first().map(|row| row.n as u64))
    }
}

/// Seconds as SQLite integers (times are far below 2^53).
fn int(seconds: u64) -> SqlStorageValue {
    SqlStorageValue::from(seconds as f64)
}

impl PersonDb for Sql<'_> {
    fn is_revoked(&self, grant: &str) -> Result<bool, DbError> {
        let query = "SELECT 1 AS n FROM revoked WHERE grant_name = ?";
        Ok(self.number(query, vec![grant.into()])?.is_some())
    }

    fn add_revoked(&self, grant: &str, expires: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO revoked (grant_name, expires) VALUES (?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET expires = MAX(expires, excluded.expires)",
            vec![grant.into(), int(expires)],
        )
    }

    fn everything_before(&self) -> Result<Option<u64>, DbError> {
        self.number(
            "SELECT at_or_before AS n FROM everything WHERE id = 0",
            vec![],
        )
    }

    fn set_everything_before(&self, at: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO everything (id, at_or_before) VALUES (0, ?) \
             ON CONFLICT (id) DO UPDATE SET at_or_before = excluded.at_or_before",
            vec![int(at)],
        )
    }

    fn forget_expired(&self, now: u64) -> Result<(), DbError> {
        self.exec("DELETE FROM revoked WHERE expires <= ?", vec![int(now)])
    }
}
