//! The sessions part: the only writer of session keys. It owns what outlives a request —
//! the isolate's cache of sessions read from KV, the refreshes running in this isolate
//! and their back-off — and finds, creates, re-validates and revokes sessions.

use std::cell::Cell;
use std::rc::Rc;

use super::index::SessionSummary;
use super::model::SESSION_FORMAT;
use super::registry::{self, Index, Records};
use super::revalidate::{Outcome, REFRESH_KEY};
use super::{Session, SessionCache, SessionId};
use crate::context::{shorten_user_agent, Env, Io, SessionTask, Task};
use crate::cookies;
use crate::grant::{CheckBy, Due, Held, Lifecycle};
use crate::model::Config;
use crate::oidc::client::Vouched;
use crate::oidc::Client;
use crate::people::People;
use crate::request::RequestHead;
use crate::request::LOCATION;
use crate::secret::SessionCookie;
use crate::secret::SigningKeys;
use crate::store::keys::{Grant, SessionHash};
use crate::store::StoreError;
use crate::ttl_cache::TtlCache;

/// A verified, live session found for a request.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: SessionId,
    pub session: Rc<Session>,
}

/// How long this isolate remembers that a session a cookie named does not exist.
const MISSING_FOR: u64 = 60;

/// What [`Sessions`] reads of the configuration, and nothing more.
#[derive(Clone)]
pub struct SessionSettings {
    /// `session_lifetime`.
    pub lifetime: u64,
    /// `session_cache`.
    pub cache: u64,
    pub revalidate_every: Option<u64>,
    pub revocation_check: u64,
    pub cookie_domain: Option<String>,
    /// `SESSION_SECRET`: session IDs' MACs, CSRF tokens, sealed refresh tokens.
    pub keys: SigningKeys,
}

impl SessionSettings {
    pub fn of(config: &Config) -> Self {
        let s = &config.settings;
        SessionSettings {
            lifetime: s.session_lifetime,
            cache: s.session_cache,
            revalidate_every: s.revalidate_every,
            revocation_check: s.revocation_check,
            cookie_domain: s.cookie_domain.clone(),
            keys: config.secrets.signing_keys.clone(),
        }
    }
}

pub struct Sessions {
    pub(super) settings: SessionSettings,
    pub(super) client: Rc<Client>,
    pub(super) cache: SessionCache,
    /// Sessions (by hash) revoked or being refreshed here, and their refresh tokens' key.
    pub(super) grant: Lifecycle,
    /// Sessions (by hash) a cookie named but KV did not have, for [`MISSING_FOR`]: a kept
    /// cookie of a dead session costs one KV read a minute per isolate, not one a request.
    missing: TtlCache<()>,
    /// Whether this isolate has logged that the issuer gives no refresh token.
    said_no_refresh: Cell<bool>,
}

impl Sessions {
    pub fn new(settings: SessionSettings, client: Rc<Client>) -> Self {
        let revocation_check = settings.revocation_check;
        let cache = SessionCache::new(settings.cache);
        Self {
            settings,
            client,
            cache,
            grant: Lifecycle::new(REFRESH_KEY, revocation_check),
            missing: TtlCache::new(1024),
            said_no_refresh: Cell::new(false),
        }
    }

    fn cookie_domain(&self) -> Option<&str> {
        self.settings.cookie_domain.as_deref()
    }

    /// The session cookie's value on a request, as sent (not yet verified). A request that
    /// carries the name more than once — a cookie tossed in by a sibling subdomain under
    /// `cookie_domain` — is treated as signed out: which one the browser meant is unknown.
    pub fn cookie<'h>(&self, head: &'h RequestHead) -> Option<&'h str> {
        let name = cookies::session_cookie_name(self.cookie_domain());
        let mut sent = head.cookie_pairs().filter(|(n, _)| *n == name);
        let first = sent.next()?.1;
        sent.next().is_none().then_some(first)
    }

    /// `Set-Cookie` values that clear every copy of the session cookie Portcullis can name
    /// (host-only, and on `cookie_domain`), when a request carried more than one.
    pub fn clear_duplicates(&self, head: &RequestHead) -> Vec<String> {
        let name = cookies::session_cookie_name(self.cookie_domain());
        if head.cookie_pairs().filter(|(n, _)| *n == name).count() < 2 {
            return Vec::new();
        }
        let mut clear = vec![cookies::clear_session(self.cookie_domain())];
        if self.cookie_domain().is_some() {
            clear.push(cookies::clear_host_only(name));
        }
        clear
    }

    /// The session ID a request's cookie carries, if its MAC verifies.
    pub fn id(&self, head: &RequestHead) -> Option<SessionId> {
        SessionId::from_cookie_value(self.cookie(head)?, &self.settings.keys)
    }

    /// A value bound to a session for `purpose` (CSRF tokens).
    pub fn derive(&self, id: &SessionId, purpose: &str) -> String {
        id.derive(&self.settings.keys, purpose)
    }

    /// `Set-Cookie` that ends the session cookie in the browser.
    pub fn clear_cookie(&self) -> String {
        cookies::clear_session(self.cookie_domain())
    }

    /// The session this cookie designates, if the cookie verifies and the session is live
    /// (with `PEOPLE`: and its person's object, asked at most once per
    /// `revocation_check`, has not seen it revoked). A forged or garbage cookie is refused
    /// before any store read.
    pub async fn find<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: Option<&str>,
    ) -> Result<Option<Found>, StoreError> {
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        match self.find_unchecked(env, cookie).await? {
            Some(found) => Ok(self.checked(env, cookie, found).await),
            None => Ok(None),
        }
    }

    /// The session from this isolate's cache or KV, not yet checked with its object.
    async fn find_unchecked<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: &str,
    ) -> Result<Option<Found>, StoreError> {
        Ok(match self.cache.get(cookie, env.now) {
            Some((id, session)) => Some(Found { id, session }),
            None => self.load(env, cookie).await?,
        })
    }

    /// The session, unless its person's object (when a check is due) has it revoked.
    async fn checked<I: Io>(&self, env: &Env<'_, I>, cookie: &str, found: Found) -> Option<Found> {
        if !self.grant.check_due(env, cookie) {
            return Some(found);
        }
        let hash = found.id.hash();
        let held = Held {
            key: cookie,
            sub: &found.session.identity.sub,
            grant: Grant::Session(&hash),
            created: found.session.created,
            expires: found.session.expires,
        };
        if self.grant.still_live(env, held).await {
            return Some(found);
        }
        self.cache.remove(&found.id);
        None
    }

    /// A session read from KV (and cached), when the cookie verifies.
    async fn load<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: &str,
    ) -> Result<Option<Found>, StoreError> {
        let Some(id) = SessionId::from_cookie_value(cookie, &self.settings.keys) else {
            return Ok(None);
        };
        let hash = id.hash();
        if self.grant.revoked_here(&hash, env.now) || self.missing.get(&hash, env.now).is_some() {
            return Ok(None);
        }
        let session = registry::load(env.store(), &hash).await?;
        let Some(session) = session.filter(|s| s.is_live(env.now)) else {
            self.missing
                .insert(&hash, (), env.now + MISSING_FOR, env.now);
            return Ok(None);
        };
        let session = Rc::new(session);
        self.cache
            .insert(cookie, id.clone(), session.clone(), env.now);
        Ok(Some(Found { id, session }))
    }

    /// [`Sessions::find`], re-validating the session with the issuer when it is due:
    /// after the response normally, first when it is long overdue. Then the refresh's own
    /// question to the person's object (which answers "revoked" too) stands in for the
    /// check: one object request per gate request. `by`: whether the gate checks, or the
    /// object a relayed WebSocket goes to does.
    pub async fn find_valid<I: Io>(
        &self,
        env: &Env<'_, I>,
        cookie: Option<&str>,
        by: CheckBy,
    ) -> Result<Option<Found>, StoreError> {
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        let Some(found) = self.find_unchecked(env, cookie).await? else {
            return Ok(None);
        };
        let due = self.revalidation_due(&found.session, &found.id, env.now);
        let found = match due {
            Due::Now if env.people().bound() => found,
            _ if by == CheckBy::Relay => found,
            _ => match self.checked(env, cookie, found).await {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        match due {
            Due::No => Ok(Some(found)),
            Due::Later => {
                env.defer(Task::Session(SessionTask::Revalidate {
                    cookie: SessionCookie::new(cookie),
                }));
                Ok(Some(found))
            }
            Due::Now => {
                let found = match self.revalidate(env, cookie, &found.id).await {
                    Outcome::Renewed(session) => Found {
                        id: found.id,
                        session,
                    },
                    Outcome::Kept => found,
                    Outcome::Revoked => return Ok(None),
                };
                // A refresh settled without asking the object (another location's result
                // was in KV already): the check is still owed.
                if by == CheckBy::Relay || self.grant.consulted(&found.id.hash(), cookie, env.now) {
                    return Ok(Some(found));
                }
                Ok(self.checked(env, cookie, found).await)
            }
        }
    }

    /// Stores a new session for what the issuer vouched for; returns the cookie value.
    pub async fn create<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &SessionId,
        vouched: Vouched,
        head: &RequestHead,
    ) -> Result<String, StoreError> {
        let now = env.now;
        let hash = id.hash();
        let refresh = match (&self.settings.revalidate_every, &vouched.refresh_token) {
            (Some(_), Some(token)) => {
                let keys = &self.settings.keys;
                self.grant.seal(keys, &hash, token.expose(), env.rng())
            }
            (Some(_), None) => {
                if !self.said_no_refresh.replace(true) {
                    env.log(
                        serde_json::json!({
                            "level": "warn",
                            "event": "no_refresh_token",
                            "detail": "revalidate_every is set, but the issuer gave no refresh token at login: sessions are not re-validated and last until session_lifetime ends",
                        })
                        .to_string(),
                    );
                }
                None
            }
            _ => None,
        };
        let session = Session {
            v: SESSION_FORMAT,
            identity: vouched.claims.identity,
            created: now,
            expires: now + self.settings.lifetime,
            host: head.host().to_string(),
            sid: vouched.claims.sid,
            id_token: Some(vouched.id_token),
            user_agent: head.header("user-agent").map(shorten_user_agent),
            location: head.header(LOCATION).map(str::to_string),
            refresh,
            validated: now,
            auth_time: vouched.claims.auth_time,
        };
        registry::save(env.store(), &hash, &session, now, Index::Rewrite).await?;
        self.missing.remove(&hash);
        let cookie = id.to_cookie_value(&self.settings.keys);
        self.cache
            .insert(&cookie, id.clone(), Rc::new(session), now);
        Ok(cookie)
    }

    /// `Set-Cookie` for a new session's cookie value.
    pub fn set_cookie(&self, value: &str) -> String {
        cookies::set_session(self.cookie_domain(), value, self.settings.lifetime)
    }

    /// Ends a session (logout): revokes it and forgets it here; returns the record it had,
    /// if any.
    pub async fn end<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &SessionId,
    ) -> Result<Option<Session>, StoreError> {
        self.cache.remove(id);
        self.revoke_hash(env, &id.hash(), None).await
    }

    /// Revokes a session by its hash (tombstone, record, index keys, this isolate's cache
    /// entry, and its grant at the issuer). `known` is its summary when the caller listed
    /// it. True when there was something to revoke.
    pub async fn revoke<I: Io>(
        &self,
        env: &Env<'_, I>,
        hash: &SessionHash,
        known: Option<&SessionSummary>,
    ) -> Result<bool, StoreError> {
        self.cache.remove_hash(hash);
        let removed = self.revoke_hash(env, hash, known).await?;
        Ok(removed.is_some() || known.is_some())
    }

    /// The revocation itself; the caller has already dropped the session from the cache
    /// (by ID when it has one: `remove_hash` hashes every cached ID).
    async fn revoke_hash<I: Io>(
        &self,
        env: &Env<'_, I>,
        hash: &SessionHash,
        known: Option<&SessionSummary>,
    ) -> Result<Option<Session>, StoreError> {
        let until = env.now + self.settings.lifetime;
        let issuer = (&*self.client, &self.settings.keys);
        let records = Records(env.store());
        (self.grant)
            .revoke(env, &records, (hash, known), until, issuer)
            .await
    }
}
