//! The persons' objects on Cloudflare: the Durable Object class `Person` (SQLite-backed,
//! one per subject; here), the `PEOPLE` namespace as the core's `People` port
//! (`namespace.rs`), its storage on SQLite (`sql.rs`) and the WebSocket relay's JavaScript
//! (`relay_js.rs`). What an object does with a question is [`crate::people::record`].

mod namespace;
mod relay_js;
mod sql;

pub use namespace::{namespace, PeopleNamespace};

use std::cell::{Cell, RefCell};

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, DurableObject, Env, Request, Response, ScheduledTime, SqlStorage, State,
};

use super::{js, kv};
use crate::app_password::registry as app_password_registry;
use crate::identity::Identity;
use crate::people::record;
use crate::people::relay::{self, Ended, GrantKind, Standing, CLOSE_CODE, STANDING_HEADER};
use crate::people::{Answer, Ask};
use crate::session::registry as session_registry;
use crate::store::keys::{AppPasswordId, SessionHash};
use sql::Sql;

/// One person's object: the grants of theirs that are revoked, the time up to which all
/// of them are, and the WebSockets relayed for them.
#[durable_object]
pub struct Person {
    state: State,
    env: Env,
    sql: SqlStorage,
    relays: RefCell<Vec<Relayed>>,
    next_id: Cell<u64>,
}

/// One relayed WebSocket: what it stands on, and both of its ends.
struct Relayed {
    /// Names it across the awaits of a re-check (others may come and go meanwhile).
    id: u64,
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
            next_id: Cell::new(0),
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
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            self.relays.borrow_mut().push(Relayed {
                id,
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
        let standings: Vec<(u64, Standing)> = self
            .relays
            .borrow()
            .iter()
            .map(|r| (r.id, r.standing.clone()))
            .collect();
        let mut ended: Vec<(u64, Ended)> = Vec::new();
        for (id, standing) in &standings {
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
                    Some((&Identity::new(standing.sub.clone()), u64::MAX)),
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
            if let Err(why) = verdict {
                ended.push((*id, why));
            }
        }
        self.end_where(|r| {
            ended
                .iter()
                .find(|(id, _)| *id == r.id)
                .map(|(_, why)| *why)
        });
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
