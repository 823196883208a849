//! The persons' objects on Cloudflare: the Durable Object class `Person` (SQLite-backed,
//! one per subject), and the `PEOPLE` namespace as the core's [`People`] port. What an
//! object does with a question is [`crate::people::record`]; this file maps it onto
//! SQLite and `fetch`.

use std::cell::{OnceCell, RefCell};

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    ScheduledTime, SqlStorage, SqlStorageValue, State,
};

use super::{js, kv};
use crate::app_password::registry as app_password_registry;
use crate::identity::Identity;
use crate::people::record::{self, DbError, PersonDb, RefreshState, Renewed};
use crate::people::relay::{self, Ended, GrantKind, Standing, CLOSE_CODE, STANDING_HEADER};
use crate::people::{Answer, Ask, People, PeopleError};
use crate::session::registry as session_registry;
use crate::store::keys::{AppPasswordId, SessionHash};

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

/// One person's object: the grants of theirs that are revoked, the time up to which all
/// of them are, and the WebSockets relayed for them.
#[durable_object]
pub struct Person {
    state: State,
    env: Env,
    sql: SqlStorage,
    relays: RefCell<Vec<Relayed>>,
}

/// One relayed WebSocket: what it stands on, and both of its ends.
struct Relayed {
    standing: Standing,
    /// The server end of the client's socket.
    client: JsValue,
    origin: JsValue,
}

impl DurableObject for Person {
    fn new(state: State, env: Env) -> Self {
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
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS refreshing (grant_name TEXT PRIMARY KEY, lease_until INTEGER NOT NULL, record TEXT, validated INTEGER, expires INTEGER NOT NULL)",
            None,
        );
        Self {
            state,
            env,
            sql,
            relays: RefCell::new(Vec::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if let Some(standing) = req.headers().get(STANDING_HEADER)? {
            return self.relay(&req, &standing).await;
        }
        let text = req.text().await?;
        let Ok(ask) = serde_json::from_str::<Ask>(&text) else {
            return Response::error("not a question this object answers", 400);
        };
        let now = now();
        match record::answer(&Sql(&self.sql), &ask, now) {
            Ok(answer) => {
                self.end_revoked(&ask);
                Response::from_json(&answer)
            }
            Err(e) => Response::error(format!("storage failed: {}", e.0), 500),
        }
    }

    /// The re-check of every relayed socket (at least every minute, and at the earliest
    /// expiry).
    async fn alarm(&self) -> worker::Result<Response> {
        self.recheck().await;
        Response::ok("")
    }
}

fn now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

impl Person {
    /// Opens the origin's socket and relays it (or answers what the origin answered).
    async fn relay(&self, req: &Request, standing: &str) -> worker::Result<Response> {
        let Some(standing) = Standing::from_header(standing) else {
            return Response::error("not a standing this object takes", 400);
        };
        // Revoked since the gate last asked: no socket for it.
        let check = Ask::Check {
            grant: standing.grant.clone(),
            created: standing.created,
        };
        if record::answer(&Sql(&self.sql), &check, now()) != Ok(Answer::Live) {
            return Response::error("access revoked", 401);
        }
        let opened = JsFuture::from(relay_js::open(req.inner())).await?;
        let field = |name: &str| js_sys::Reflect::get(&opened, &JsValue::from_str(name));
        let response: web_sys::Response = field("response")?.unchecked_into();
        let (client, origin) = (field("client")?, field("origin")?);
        if !client.is_undefined() {
            self.relays.borrow_mut().push(Relayed {
                standing,
                client,
                origin,
            });
            self.schedule().await;
        }
        Ok(Response::from(response))
    }

    /// Closes the sockets a recorded revocation ends.
    fn end_revoked(&self, ask: &Ask) {
        let (grants, everything): (Vec<&str>, Option<u64>) = match ask {
            Ask::Revoke { grants } => (grants.iter().map(|g| g.grant.as_str()).collect(), None),
            Ask::RevokeEverything { at } => (Vec::new(), Some(*at)),
            Ask::Check { .. }
            | Ask::Refresh { .. }
            | Ask::Refreshed { .. }
            | Ask::RefreshFailed { .. } => return,
        };
        self.end_where(|r| {
            r.standing
                .ended_by(&grants, everything)
                .then_some(Ended::Revoked)
        });
    }

    /// Closes (1008, both ends) and forgets the relays `ends` says are over, and forgets
    /// those already closed.
    fn end_where(&self, mut ends: impl FnMut(&Relayed) -> Option<Ended>) {
        self.relays.borrow_mut().retain(|r| {
            if !relay_js::is_open(&r.client) {
                return false;
            }
            match ends(r) {
                Some(ended) => {
                    relay_js::end(&r.client, CLOSE_CODE, ended.reason());
                    relay_js::end(&r.origin, CLOSE_CODE, ended.reason());
                    false
                }
                None => true,
            }
        });
    }

    async fn recheck(&self) {
        let now = now();
        let settings = js::configuration(self.env.as_ref(), "PORTCULLIS")
            .and_then(|v| crate::model::Settings::parse(Some(&v)).ok());
        let store = kv::KvSessions::new(&self.env);
        let standings: Vec<Standing> = self
            .relays
            .borrow()
            .iter()
            .map(|r| r.standing.clone())
            .collect();
        let mut verdicts = Vec::with_capacity(standings.len());
        for standing in &standings {
            let revoked = record::answer(
                &Sql(&self.sql),
                &Ask::Check {
                    grant: standing.grant.clone(),
                    created: standing.created,
                },
                now,
            )
            .is_ok_and(|a| a == Answer::Revoked);
            let verdict = match stored(&store, standing).await {
                // KV unreachable: the object's own record and the expiry still apply.
                Err(_) => relay::recheck(
                    standing,
                    now,
                    revoked,
                    Some((&Identity::default(), u64::MAX)),
                    None,
                )
                .or_else(|e| {
                    if e == Ended::NotAdmitted {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }),
                Ok(record) => {
                    let app = settings.as_ref().and_then(|s| s.app(&standing.app));
                    let record = record
                        .as_ref()
                        .map(|(identity, expires)| (identity, *expires));
                    relay::recheck(standing, now, revoked, record, app)
                }
            };
            verdicts.push(verdict.err());
        }
        let mut verdicts = verdicts.into_iter();
        self.end_where(|_| verdicts.next().flatten());
        self.schedule().await;
    }

    /// Sets the alarm for the next re-check while sockets are relayed.
    async fn schedule(&self) {
        // The borrow ends before the await: another request may run meanwhile.
        let next = {
            let relays = self.relays.borrow();
            let standings: Vec<&Standing> = relays.iter().map(|r| &r.standing).collect();
            relay::next_check(now(), &standings)
        };
        if let Some(at) = next {
            let _ = self
                .state
                .storage()
                .set_alarm(ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(
                    at as f64 * 1000.0,
                ))))
                .await;
        }
    }
}

/// The stored identity and expiry of what a relayed socket stands on (`None`: gone).
async fn stored<S: crate::store::Store>(
    store: &S,
    standing: &Standing,
) -> Result<Option<(Identity, u64)>, crate::store::StoreError> {
    Ok(match standing.kind {
        GrantKind::Session => match SessionHash::parse(&standing.grant) {
            Some(hash) => session_registry::load(store, &hash)
                .await?
                .map(|s| (s.identity, s.expires)),
            None => None,
        },
        GrantKind::AppPassword => match AppPasswordId::parse(&standing.grant) {
            Some(id) => app_password_registry::load(store, &id)
                .await?
                .map(|p| (p.identity, p.expires)),
            None => None,
        },
    })
}

/// The relay itself, in JavaScript: each frame is passed on by the runtime without a
/// call into wasm (the object's CPU budget resets per message, but the cost per frame is
/// still the gate's to keep small).
mod relay_js {
    use wasm_bindgen::prelude::wasm_bindgen;
    use wasm_bindgen::JsValue;

    #[wasm_bindgen(inline_js = r#"
// Close codes that may not be sent in a close frame (RFC 6455 §7.4.1) become 1011.
const sendable = (code) => (code === undefined || code === 1005 || code === 1006 || code === 1015 ? 1011 : code);
export async function open(request) {
  const headers = new Headers(request.headers);
  headers.delete('portcullis-relay');
  const response = await fetch(request.url, { method: 'GET', headers, redirect: 'manual' });
  const origin = response.webSocket;
  if (!origin) return { response };
  const [client, server] = Object.values(new WebSocketPair());
  server.binaryType = 'arraybuffer';
  origin.binaryType = 'arraybuffer';
  server.accept();
  origin.accept();
  const pipe = (from, to) => {
    from.addEventListener('message', (e) => { try { to.send(e.data); } catch { /* closing */ } });
    from.addEventListener('close', (e) => { try { to.close(sendable(e.code), e.reason); } catch { /* closed */ } });
    from.addEventListener('error', () => { try { to.close(1011, 'relay error'); } catch { /* closed */ } });
  };
  pipe(server, origin);
  pipe(origin, server);
  // The origin's answer headers (the subprotocol, its cookies: the gate drops its own),
  // without those of the handshake itself, which the runtime writes for each leg.
  const out = new Headers();
  for (const [name, value] of response.headers) {
    if (!['connection', 'upgrade', 'sec-websocket-accept', 'sec-websocket-extensions', 'content-length'].includes(name)) out.append(name, value);
  }
  return { response: new Response(null, { status: 101, webSocket: client, headers: out }), client: server, origin };
}
export function end(socket, code, reason) { try { socket.close(code, reason); } catch { /* closed */ } }
export function is_open(socket) { return socket.readyState <= 1; }
"#)]
    extern "C" {
        /// Opens the origin's WebSocket for this upgrade request and relays it: resolves to
        /// `{ response, client, origin }` (the 101 for the client, and both sockets to
        /// close later), or `{ response }` with the origin's answer when it did not upgrade.
        pub fn open(request: &web_sys::Request) -> js_sys::Promise;
        pub fn end(socket: &JsValue, code: u16, reason: &str);
        pub fn is_open(socket: &JsValue) -> bool;
    }
}

/// [`PersonDb`] on the object's SQLite.
struct Sql<'a>(&'a SqlStorage);

#[derive(serde::Deserialize)]
struct Number {
    n: f64,
}

#[derive(serde::Deserialize)]
struct RefreshRow {
    lease_until: f64,
    record: Option<String>,
    validated: Option<f64>,
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
        self.exec("DELETE FROM revoked WHERE expires <= ?", vec![int(now)])?;
        self.exec("DELETE FROM refreshing WHERE expires <= ?", vec![int(now)])
    }

    fn refresh_state(&self, grant: &str) -> Result<Option<RefreshState>, DbError> {
        let rows: Vec<RefreshRow> = self
            .0
            .exec(
                "SELECT lease_until, record, validated FROM refreshing WHERE grant_name = ?",
                vec![grant.into()],
            )
            .and_then(|cursor| cursor.to_array())
            .map_err(failed)?;
        Ok(rows.into_iter().next().map(|row| RefreshState {
            lease_until: row.lease_until as u64,
            record: row.record.zip(row.validated.map(|v| v as u64)),
        }))
    }

    fn set_lease(&self, grant: &str, until: u64, expires: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO refreshing (grant_name, lease_until, expires) VALUES (?, ?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET lease_until = excluded.lease_until, \
             expires = MAX(expires, excluded.expires)",
            vec![grant.into(), int(until), int(expires)],
        )
    }

    fn set_current(&self, grant: &str, renewed: Renewed<'_>) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO refreshing (grant_name, lease_until, record, validated, expires) VALUES (?, 0, ?, ?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET lease_until = 0, record = excluded.record, \
             validated = excluded.validated, expires = excluded.expires",
            vec![
                grant.into(),
                renewed.record.into(),
                int(renewed.validated),
                int(renewed.expires),
            ],
        )
    }

    fn forget_refresh(&self, grant: &str) -> Result<(), DbError> {
        self.exec(
            "DELETE FROM refreshing WHERE grant_name = ?",
            vec![grant.into()],
        )
    }
}
