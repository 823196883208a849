//! What one request (or one piece of background work) is handled with: the I/O the core
//! may use, the time, and the sinks for log lines and after-response work. [`Ctx`] adds
//! the request itself and its route, computed once.

use std::cell::RefCell;

use crate::crypto::Random;
use crate::http::HttpClient;
use crate::jose::signature::{SignatureCheck, Signer};
use crate::people::{People, Unbound};
use crate::request::RequestHead;
use crate::router::Route;
use crate::secret::SessionCookie;
use crate::store::keys::AppPasswordId;
use crate::store::Store;

/// The I/O the core may use: the session store, the persons' objects (the strong record
/// of revocation), outbound HTTP (the issuer), signature checks and randomness.
pub trait Io {
    type Store: Store;
    type People: People;
    type Http: HttpClient;
    type Signatures: SignatureCheck + Signer;
    type Random: Random;
    fn store(&self) -> &Self::Store;
    fn people(&self) -> &Self::People;
    fn http(&self) -> &Self::Http;
    fn signatures(&self) -> &Self::Signatures;
    fn rng(&self) -> &Self::Random;
}

/// [`Io`] from borrowed parts (the Worker's KV, `PEOPLE`, `fetch` and WebCrypto, or test
/// doubles).
pub struct IoParts<'a, S, H, C, R, P = Unbound> {
    pub store: &'a S,
    pub people: &'a P,
    pub http: &'a H,
    pub signatures: &'a C,
    pub rng: &'a R,
}

impl<'a, S, H, C, R> IoParts<'a, S, H, C, R> {
    /// Without persons' objects (revocation rests on KV); see [`IoParts::with_people`].
    pub fn new(store: &'a S, http: &'a H, signatures: &'a C, rng: &'a R) -> Self {
        Self {
            store,
            people: &Unbound,
            http,
            signatures,
            rng,
        }
    }
}

impl<'a, S, H, C, R, P> IoParts<'a, S, H, C, R, P> {
    pub fn with_people<Q>(self, people: &'a Q) -> IoParts<'a, S, H, C, R, Q> {
        IoParts {
            store: self.store,
            people,
            http: self.http,
            signatures: self.signatures,
            rng: self.rng,
        }
    }
}

impl<S: Store, H: HttpClient, C: SignatureCheck + Signer, R: Random, P: People> Io
    for IoParts<'_, S, H, C, R, P>
{
    type Store = S;
    type People = P;
    type Http = H;
    type Signatures = C;
    type Random = R;
    fn people(&self) -> &P {
        self.people
    }
    fn store(&self) -> &S {
        self.store
    }
    fn http(&self) -> &H {
        self.http
    }
    fn signatures(&self) -> &C {
        self.signatures
    }
    fn rng(&self) -> &R {
        self.rng
    }
}

/// Work to do after the response has been sent (`waitUntil`), by the part it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Session(SessionTask),
    AppPassword(AppPasswordTask),
    /// Tell a person's object something that need not hold up the response (the end of a
    /// refresh: its renewed record).
    Person {
        sub: String,
        ask: crate::people::Ask,
    },
}

/// After-response work of the sessions part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTask {
    /// Re-validate the session of this session cookie (its value, as sent and verified)
    /// with the issuer.
    Revalidate { cookie: SessionCookie },
}

/// After-response work of the app-passwords part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppPasswordTask {
    /// Record that this app password was used today.
    Used { id: AppPasswordId },
    /// Re-validate this app password with the issuer.
    Revalidate { id: AppPasswordId },
}

/// I/O, time and sinks: everything a part needs that is not the request.
pub struct Env<'a, I> {
    pub io: &'a I,
    /// Unix seconds, read once.
    pub now: u64,
    log: RefCell<Vec<String>>,
    tasks: RefCell<Vec<Task>>,
}

impl<'a, I: Io> Env<'a, I> {
    pub fn new(io: &'a I, now: u64) -> Self {
        Self {
            io,
            now,
            log: RefCell::new(Vec::new()),
            tasks: RefCell::new(Vec::new()),
        }
    }

    pub fn store(&self) -> &I::Store {
        self.io.store()
    }

    pub fn people(&self) -> &I::People {
        self.io.people()
    }

    pub fn http(&self) -> &I::Http {
        self.io.http()
    }

    pub fn signatures(&self) -> &I::Signatures {
        self.io.signatures()
    }

    pub fn rng(&self) -> &I::Random {
        self.io.rng()
    }

    /// Adds a log line (JSON).
    pub fn log(&self, line: String) {
        self.log.borrow_mut().push(line);
    }

    /// Schedules work for after the response.
    pub fn defer(&self, task: Task) {
        self.tasks.borrow_mut().push(task);
    }

    /// The log lines and tasks gathered.
    pub fn finish(self) -> (Vec<String>, Vec<Task>) {
        (self.log.into_inner(), self.tasks.into_inner())
    }
}

/// One request being handled.
pub struct Ctx<'a, I> {
    pub env: Env<'a, I>,
    pub head: &'a RequestHead,
    pub route: Route<'a>,
    /// `Set-Cookie` values added to whatever reply this request gets (e.g. a used-up
    /// login cookie cleared, whether the callback succeeds or fails).
    cookies: RefCell<Vec<String>>,
    /// Where "try again" on an error page leads, when a handler knows better than the
    /// request's own URL (the callback: the page the login started from).
    retry: RefCell<Option<String>>,
}

impl<'a, I: Io> Ctx<'a, I> {
    pub fn new(env: Env<'a, I>, head: &'a RequestHead, route: Route<'a>) -> Self {
        Self {
            env,
            head,
            route,
            cookies: RefCell::new(Vec::new()),
            retry: RefCell::new(None),
        }
    }

    pub fn now(&self) -> u64 {
        self.env.now
    }

    /// An audit line for a security event on this request: the event, the host, the
    /// client's IP and user agent, and the given fields (empty ones left out). Never
    /// secrets, tokens or raw session IDs; sessions are named by their hash.
    pub fn audit(&self, event: &str, fields: &[(&str, &str)]) {
        let ip = self.head.header("cf-connecting-ip").unwrap_or_default();
        let ua = self
            .head
            .header("user-agent")
            .map(shorten_user_agent)
            .unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("ip", ip), ("user_agent", &ua)];
        all.extend_from_slice(fields);
        self.env.log(audit_line(event, self.head.host(), &all));
    }

    pub fn add_cookie(&self, set_cookie: String) {
        self.cookies.borrow_mut().push(set_cookie);
    }

    pub fn set_retry(&self, to: &str) {
        *self.retry.borrow_mut() = Some(to.to_string());
    }

    pub fn retry(&self) -> Option<String> {
        self.retry.borrow().clone()
    }

    /// The cookies to add to the reply, and the log lines and tasks gathered.
    pub fn finish(self) -> (Vec<String>, Vec<String>, Vec<Task>) {
        let (log, tasks) = self.env.finish();
        (self.cookies.into_inner(), log, tasks)
    }
}

/// One JSON audit line (also for events outside a request, e.g. a background refresh).
pub fn audit_line(event: &str, host: &str, fields: &[(&str, &str)]) -> String {
    let mut line = serde_json::Map::new();
    line.insert("level".into(), "info".into());
    line.insert("audit".into(), true.into());
    line.insert("event".into(), event.into());
    line.insert("host".into(), host.into());
    for (k, v) in fields {
        if !v.is_empty() {
            line.insert((*k).into(), (*v).into());
        }
    }
    serde_json::Value::Object(line).to_string()
}

/// User agents are kept (in sessions and logs) up to this many characters.
pub fn shorten_user_agent(ua: &str) -> String {
    ua.chars().take(200).collect()
}
