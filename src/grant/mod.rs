//! One lifecycle for every credential backed by a refresh-token grant — sessions and app
//! passwords today, whatever comes next. Each owner keeps only what is its own (its
//! records, key layout, cache and audit lines); this module holds the rest, written once:
//!
//! - [`due`]: when a grant needs re-validation (after the response, or before it);
//! - [`lock`]: one refresh at a time per grant in an isolate, and the back-off after an
//!   unreachable issuer;
//! - [`tombstone`]: revocation (a tombstone, then the record and its index keys), the
//!   tombstone check, and the write-back that never resurrects a revoked grant;
//! - [`refresh`]: the re-validation itself, generic over the owner's [`GrantRecord`].
//!
//! [`Lifecycle`] is what an owner holds per isolate: the grants revoked here, the locks,
//! and the key that encrypts this kind's refresh tokens.

pub mod due;
pub mod lock;
pub mod refresh;
pub mod tombstone;

pub use due::{due, Due};
pub use lock::Locks;
pub use refresh::{revalidate, GrantRecord, GrantStore, Revalidation};
pub use tombstone::{Doomed, Tombstoned, WriteBack};

use crate::context::{Env, Io};
use crate::crypto::Random;
use crate::oidc::Client;
use crate::secret::SigningKeys;
use crate::store::keys::Grant;
use crate::store::StoreError;
use crate::ttl_cache::TtlCache;

/// What one owner keeps per isolate for its kind of grant.
pub struct Lifecycle {
    /// Revoked in this isolate: refused at once, and never written back.
    revoked: TtlCache<()>,
    /// Whether this isolate has said that refreshes cannot show changed claims.
    said_claims_unseen: std::cell::Cell<bool>,
    pub locks: Locks,
    /// The key-derivation label of the key that encrypts this kind's refresh tokens.
    seal_label: &'static str,
}

impl Lifecycle {
    pub fn new(seal_label: &'static str) -> Self {
        Self {
            revoked: TtlCache::new(1024),
            said_claims_unseen: std::cell::Cell::new(false),
            locks: Locks::new(),
            seal_label,
        }
    }

    /// Whether the grant was revoked in this isolate.
    pub fn revoked_here(&self, grant: &str, now: u64) -> bool {
        self.revoked.get(grant, now).is_some()
    }

    /// Refuses the grant in this isolate from now until `until`.
    pub fn mark_revoked(&self, grant: &str, until: u64, now: u64) {
        self.revoked.insert(grant, (), until, now);
    }

    /// Revoked here, or anywhere (its tombstone).
    pub async fn is_revoked<I: Io>(
        &self,
        env: &Env<'_, I>,
        grant: Grant<'_>,
    ) -> Result<bool, StoreError> {
        if self.revoked_here(grant.as_str(), env.now) {
            return Ok(true);
        }
        tombstone::is_revoked(env.store(), grant).await
    }

    /// Encrypts a refresh token for storage with the grant it belongs to.
    pub fn seal(
        &self,
        keys: &SigningKeys,
        grant: &str,
        token: &str,
        rng: &impl Random,
    ) -> Option<String> {
        keys.seal(self.seal_label, grant, token, rng)
    }

    /// Decrypts a stored refresh token of this grant.
    pub fn open(&self, keys: &SigningKeys, grant: &str, sealed: &str) -> Option<String> {
        keys.open(self.seal_label, grant, sealed)
    }

    /// Says once per isolate that the issuer's refreshes carry no ID token and it has no
    /// UserInfo endpoint: a group removed at the issuer is not seen until the person signs
    /// in again (the refresh itself still confirms the grant is alive).
    pub fn say_claims_unseen<I: Io>(&self, env: &Env<'_, I>) {
        if !self.said_claims_unseen.replace(true) {
            env.log(
                serde_json::json!({
                    "level": "warn",
                    "event": "claims_not_refreshed",
                    "detail": "the issuer's refresh answers carry no ID token and it has no UserInfo endpoint: changes to a person's claims (groups, email) are not seen until they sign in again",
                })
                .to_string(),
            );
        }
    }

    /// Says in the log when a revocation could not write its tombstone (the Free plan's
    /// daily writes spent, say): the grant is gone, but a re-validation that read it before
    /// could write it back until its lifetime ends.
    pub fn report<I: Io>(&self, env: &Env<'_, I>, grant: Grant<'_>, tombstoned: Tombstoned) {
        if tombstoned == Tombstoned::No {
            let kind = match grant {
                Grant::Session(_) => "session",
                Grant::AppPassword(_) => "app_password",
            };
            env.log(
                serde_json::json!({
                    "level": "warn",
                    "event": "revoked_without_tombstone",
                    kind: grant.as_str(),
                    "detail": "the record and index keys were removed, but the tombstone could not be written (KV writes failing or the daily quota spent)",
                })
                .to_string(),
            );
        }
    }

    /// RFC 7009: a revoked grant's refresh token is revoked at the issuer too, when it
    /// offers revocation, so the grant ends there as well.
    pub async fn revoke_at_issuer<I: Io>(
        &self,
        env: &Env<'_, I>,
        client: &Client,
        keys: &SigningKeys,
        grant: &str,
        sealed: Option<&str>,
    ) {
        if let Some(token) = sealed.and_then(|sealed| self.open(keys, grant, sealed)) {
            client
                .revoke_refresh_token(env.http(), &token, env.now)
                .await;
        }
    }
}
