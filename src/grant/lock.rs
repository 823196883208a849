//! One refresh at a time per grant in an isolate, and the wait after an unreachable
//! issuer. Rotating refresh tokens (Pocket ID rotates on every use, with no grace period)
//! make two concurrent refreshes of one grant fatal for it.

use crate::ttl_cache::TtlCache;

/// A refresh is taken to be running for at most this long (the issuer's timeout is 10 s):
/// one whose `waitUntil` was abandoned no longer counts after it.
pub const REFRESH_MARKER: u64 = 60;
/// After an unreachable issuer, this isolate waits this long before the next attempt.
pub const BACKOFF: u64 = 60;

/// The in-flight refresh markers and the back-off, by grant.
pub struct Locks {
    refreshing: TtlCache<()>,
    backoff: TtlCache<()>,
}

impl Default for Locks {
    fn default() -> Self {
        Self::new()
    }
}

impl Locks {
    pub fn new() -> Self {
        Self {
            refreshing: TtlCache::new(1024),
            backoff: TtlCache::new(1024),
        }
    }

    /// Whether a refresh of this grant runs here, or waits after a failed one.
    pub fn busy(&self, grant: &str, now: u64) -> bool {
        self.refreshing.get(grant, now).is_some() || self.backoff.get(grant, now).is_some()
    }

    /// Marks a refresh of this grant as running; false when one already runs here.
    pub fn begin(&self, grant: &str, now: u64) -> bool {
        if self.refreshing.get(grant, now).is_some() {
            return false;
        }
        self.refreshing.insert(grant, (), now + REFRESH_MARKER, now);
        true
    }

    pub fn end(&self, grant: &str) {
        self.refreshing.remove(grant);
    }

    /// No refresh of this grant from here for [`BACKOFF`].
    pub fn back_off(&self, grant: &str, now: u64) {
        self.backoff.insert(grant, (), now + BACKOFF, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refresh_at_a_time_and_a_wait_after_failure() {
        let locks = Locks::new();
        assert!(!locks.busy("g", 100));
        assert!(locks.begin("g", 100));
        assert!(!locks.begin("g", 101), "one at a time");
        assert!(locks.busy("g", 101));
        assert!(
            locks.begin("g", 100 + REFRESH_MARKER),
            "an abandoned marker expires"
        );
        locks.end("g");
        assert!(!locks.busy("g", 200));
        locks.back_off("g", 200);
        assert!(locks.busy("g", 200 + BACKOFF - 1));
        assert!(!locks.busy("g", 200 + BACKOFF));
    }
}
