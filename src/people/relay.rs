//! WebSockets relayed through the person's object. Once an origin's `101` is returned to
//! the client, the Worker that returned it can no longer act on the socket: a revoked
//! person would keep a Home Assistant or Node-RED socket open for as long as the tab
//! stays open. With `websockets = "relay"` the gate hands the upgrade to the person's
//! object instead, with the [`Standing`] it was admitted on; the object opens the origin's
//! socket, relays both ways, and closes both with 1008 when the standing ends:
//!
//! - at once, when a revocation of the grant (or of everything of the person) is recorded
//!   in the object;
//! - when the credential expires;
//! - at a re-check, at least every [`RECHECK_EVERY`] seconds: the record gone from KV
//!   (revoked by a tool that reaches KV alone), or its stored claims no longer admitted
//!   by the app's rules (a group removed at the issuer, seen through re-validation).

use serde::{Deserialize, Serialize};

use crate::crypto::{b64url, b64url_decode};
use crate::identity::{Identity, Subject};
use crate::model::App;

/// The request header that carries the standing from the gate to the object. The gate
/// sets it itself (replacing any a client sent) on the request it hands to the object
/// only; the object removes it before the request goes to the origin.
pub const STANDING_HEADER: &str = "portcullis-relay";

/// Re-checks run at least this often (seconds).
pub const RECHECK_EVERY: u64 = 60;

/// The close code of a socket whose standing ended (RFC 6455 §7.4.1: policy violation).
pub const CLOSE_CODE: u16 = 1008;

/// What a relayed socket was admitted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standing {
    pub sub: Subject,
    pub kind: GrantKind,
    /// The session's hash or the app password's ID.
    pub grant: String,
    pub created: u64,
    pub expires: u64,
    /// The app's host: its rules are applied again at every re-check.
    pub app: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    Session,
    AppPassword,
}

/// Why a relayed socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
    /// The record is no longer in KV.
    Gone,
    /// The app's rules no longer admit the stored claims (or the app is gone).
    NotAdmitted,
}

impl Ended {
    /// The close frame's reason (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Ended::Revoked => "access revoked",
            Ended::Expired => "sign-in expired",
            Ended::Gone => "access ended",
            Ended::NotAdmitted => "no longer allowed",
        }
    }
}

impl Standing {
    /// The header value: the JSON in base64url (a `sub` may hold any character; header
    /// values may not).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        b64url(json.as_bytes())
    }

    pub fn from_header(value: &str) -> Option<Self> {
        let json = b64url_decode(value)?;
        serde_json::from_slice(&json).ok()
    }

    /// Whether a revocation recorded in the object ends this socket: one naming its
    /// grant, or "everything up to `at`" covering its creation.
    pub fn ended_by(&self, revoked_grants: &[&str], everything_up_to: Option<u64>) -> bool {
        revoked_grants.contains(&self.grant.as_str())
            || everything_up_to.is_some_and(|at| self.created <= at)
    }
}

/// The re-check: the object's own record first (`revoked`), then expiry, then what KV
/// holds now (`record`: the stored identity and expiry) against the app's current rules.
pub fn recheck(
    standing: &Standing,
    now: u64,
    revoked: bool,
    record: Option<(&Identity, u64)>,
    app: Option<&App>,
) -> Result<(), Ended> {
    if revoked {
        return Err(Ended::Revoked);
    }
    if now >= standing.expires {
        return Err(Ended::Expired);
    }
    let Some((identity, expires)) = record else {
        return Err(Ended::Gone);
    };
    if now >= expires {
        return Err(Ended::Expired);
    }
    match app {
        Some(app) if app.allow.admits(identity) => Ok(()),
        _ => Err(Ended::NotAdmitted),
    }
}

/// When the next re-check is due: within [`RECHECK_EVERY`], and at the earliest expiry.
pub fn next_check(now: u64, standings: &[&Standing]) -> Option<u64> {
    standings
        .iter()
        .map(|s| s.expires.min(now + RECHECK_EVERY))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AllowRules;

    fn standing() -> Standing {
        Standing {
            sub: "ålice 1".into(),
            kind: GrantKind::Session,
            grant: "h1".into(),
            created: 100,
            expires: 1_000,
            app: "ha.example.com".into(),
        }
    }

    fn identity(groups: &[&str]) -> Identity {
        Identity {
            sub: "ålice 1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_header_round_trips_any_subject_and_refuses_garbage() {
        let s = standing();
        let header = s.to_header();
        assert!(header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Standing::from_header(&header), Some(s));
        assert_eq!(Standing::from_header("not json"), None);
        assert_eq!(Standing::from_header(&b64url(br#"{"sub":"a"}"#)), None);
    }

    #[test]
    fn revocations_that_end_a_socket() {
        let s = standing();
        assert!(s.ended_by(&["h1"], None));
        assert!(!s.ended_by(&["h2"], None));
        assert!(s.ended_by(&[], Some(100)), "everything up to its creation");
        assert!(
            !s.ended_by(&[], Some(99)),
            "a revocation before it was created"
        );
    }

    #[test]
    fn a_recheck_ends_what_no_longer_stands() {
        let s = standing();
        let app = App {
            host: s.app.clone(),
            allow: AllowRules {
                groups: vec!["family".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let family = identity(&["family"]);
        let guest = identity(&["guests"]);
        assert_eq!(
            recheck(&s, 500, false, Some((&family, 1_000)), Some(&app)),
            Ok(())
        );
        assert_eq!(
            recheck(&s, 500, true, Some((&family, 1_000)), Some(&app)),
            Err(Ended::Revoked)
        );
        assert_eq!(
            recheck(&s, 1_000, false, Some((&family, 2_000)), Some(&app)),
            Err(Ended::Expired)
        );
        assert_eq!(recheck(&s, 500, false, None, Some(&app)), Err(Ended::Gone));
        assert_eq!(
            recheck(&s, 500, false, Some((&guest, 1_000)), Some(&app)),
            Err(Ended::NotAdmitted)
        );
        assert_eq!(
            recheck(&s, 500, false, Some((&family, 1_000)), None),
            Err(Ended::NotAdmitted)
        );
    }

    #[test]
    fn rechecks_come_at_least_every_minute_and_at_expiry() {
        let mut s = standing();
        assert_eq!(next_check(500, &[&s]), Some(560));
        s.expires = 530;
        assert_eq!(next_check(500, &[&s]), Some(530));
        assert_eq!(next_check(500, &[]), None);
    }
}
