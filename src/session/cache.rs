//! A short, bounded in-isolate cache of sessions already read from KV, keyed by the
//! session cookie's value (already verified when it was inserted, so a hit skips the HMAC
//! check and the key hashing too).
//!
//! Why: a KV read costs more CPU than the rest of an authorized request together, and most
//! requests come in bursts from one browser. Bound: an entry is trusted for at most
//! `session_cache` (default 30 s, at most 5 min, `0s` turns the cache off), and never past
//! the session's own expiry. A revocation in the same isolate removes the entry at once; one
//! made elsewhere is seen once the entry ages out (plus KV's own propagation delay).

use std::rc::Rc;

use super::{Session, SessionId};
use crate::store::keys::SessionHash;
use crate::ttl_cache::TtlCache;

/// Entries kept at most.
const MAX_ENTRIES: usize = 1024;

pub struct SessionCache {
    ttl: u64,
    entries: TtlCache<(SessionId, Rc<Session>)>,
}

impl SessionCache {
    pub fn new(ttl: u64) -> Self {
        Self {
            ttl,
            entries: TtlCache::new(MAX_ENTRIES),
        }
    }

    /// The session behind a cookie value, if cached less than `ttl` ago and still live.
    pub fn get(&self, cookie: &str, now: u64) -> Option<(SessionId, Rc<Session>)> {
        self.entries
            .get(cookie, now)
            .filter(|(_, s)| s.is_live(now))
    }

    /// Remembers a session under the (verified) cookie value that designates it.
    pub fn insert(&self, cookie: &str, id: SessionId, session: Rc<Session>, now: u64) {
        if self.ttl == 0 {
            return;
        }
        let until = now.saturating_add(self.ttl).min(session.expires);
        self.entries.insert(cookie, (id, session), until, now);
    }

    /// Forgets a session, whichever cookie value it was cached under.
    pub fn remove(&self, id: &SessionId) {
        self.entries.retain(|(cached, _)| cached != id);
    }

    /// Forgets the session with this hash (as revocations name sessions).
    pub fn remove_hash(&self, session_hash: &SessionHash) {
        self.entries
            .retain(|(cached, _)| cached.hash() != *session_hash);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::session::model::SESSION_FORMAT;

    fn session(expires: u64) -> Rc<Session> {
        Rc::new(Session {
            v: SESSION_FORMAT,
            identity: Identity {
                sub: "s".into(),
                ..Default::default()
            },
            created: 0,
            expires,
            host: "h".into(),
            sid: None,
            id_token: None,
            user_agent: None,
            location: None,
            refresh: None,
            validated: 0,
            auth_time: None,
        })
    }

    fn id() -> SessionId {
        SessionId::generate(&crate::crypto::SystemRandom).unwrap()
    }

    #[test]
    fn entries_age_out_after_ttl_and_with_the_session() {
        let c = SessionCache::new(30);
        let k = id();
        c.insert("k", k.clone(), session(1_000), 100);
        assert!(c.get("k", 129).is_some());
        assert!(c.get("k", 130).is_none(), "trusted no longer than the ttl");
        c.insert("short", id(), session(110), 100);
        assert!(
            c.get("short", 110).is_none(),
            "never past the session's own expiry"
        );
        c.insert("k2", k.clone(), session(1_000), 100);
        c.remove(&k);
        assert!(c.get("k", 101).is_none());
        assert!(
            c.get("k2", 101).is_none(),
            "removed under every cookie value"
        );
    }

    #[test]
    fn zero_ttl_disables() {
        let c = SessionCache::new(0);
        c.insert("k", id(), session(1_000), 100);
        assert!(c.get("k", 100).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(300);
        for i in 0..(MAX_ENTRIES as u64 * 3) {
            c.insert(&format!("k{i}"), id(), session(u64::MAX), i / 10);
        }
        assert!(c.len() <= MAX_ENTRIES);
        assert!(
            c.get(&format!("k{}", MAX_ENTRIES as u64 * 3 - 1), 300)
                .is_some(),
            "newest kept"
        );
    }
}
