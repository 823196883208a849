//! The app-passwords part: the only writer of app-password keys. It owns what outlives a
//! request — the isolate's cache of records read from KV (no longer than
//! `session_cache`), the app passwords revoked here, and which were recorded as used
//! today — and verifies, creates, records use of, re-validates and revokes them.

use std::fmt;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::credential::{self, NewCredential};
use super::record::{AppPassword, AppPasswordSummary, RECORD_FORMAT};
use super::registry;
use super::registry::Records;
use super::revalidate::Outcome;
use crate::context::{audit_line, AppPasswordTask, Env, Io, Task};
use crate::crypto::{b64url, ct_eq, sha256};
use crate::grant::{tombstone, CheckBy, Due, GrantStore, Held, Lifecycle, WriteBack};
use crate::identity::{Identity, Subject};
use crate::model::{App, Config};
use crate::oidc::Client;
use crate::people::People;
use crate::secret::RefreshToken;
use crate::secret::SigningKeys;
use crate::store::keys::{AppPasswordId, Grant};
use crate::store::StoreError;
use crate::ttl_cache::TtlCache;

/// "Last used" is written at most this often per app password.
const USED_EVERY: u64 = 86_400;
/// The key-derivation label of the key that encrypts app passwords' refresh tokens.
const REFRESH_KEY: &str = "portcullis app password refresh key v1";

/// What a person asked for on the account page; carried through the issuer and back in
/// the pending-login cookie when creating it needs a fresh login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAppPassword {
    /// The person asking (the session's `sub`): the login must be theirs.
    pub sub: Subject,
    pub app: String,
    pub label: String,
    /// Seconds.
    pub lifetime: u64,
}

/// Why presented app-password credentials were refused (all answered `401`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppPasswordRefused {
    /// This app does not take app passwords, or not on this path.
    NotAccepted,
    /// The secret does not belong to this ID and app.
    Invalid,
    /// No such app password (never was, or revoked).
    Unknown,
    Expired,
}

impl AppPasswordRefused {
    /// The error code answered.
    pub fn code(self) -> &'static str {
        match self {
            AppPasswordRefused::NotAccepted => "app_password_not_accepted",
            AppPasswordRefused::Invalid => "invalid_app_password",
            AppPasswordRefused::Unknown => "unknown_app_password",
            AppPasswordRefused::Expired => "app_password_expired",
        }
    }

    /// The message answered.
    pub fn message(self) -> &'static str {
        match self {
            AppPasswordRefused::NotAccepted => {
                "App passwords are not accepted on this app or path."
            }
            AppPasswordRefused::Invalid => "The app password is not valid for this app.",
            AppPasswordRefused::Unknown => "The app password does not exist or was revoked.",
            AppPasswordRefused::Expired => "The app password has expired.",
        }
    }

    /// The reason in audit lines.
    pub fn reason(self) -> &'static str {
        match self {
            AppPasswordRefused::NotAccepted => "not_accepted_here",
            AppPasswordRefused::Invalid => "invalid_secret",
            AppPasswordRefused::Unknown => "unknown_or_revoked",
            AppPasswordRefused::Expired => "expired",
        }
    }
}

impl fmt::Display for AppPasswordRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AppPasswordRefused {}

/// Why verifying did not produce an app password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Refused(AppPasswordRefused),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        VerifyError::Store(e)
    }
}

/// Why an app password could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The person has `max_app_passwords` already.
    #[error("already {0} app passwords")]
    TooMany(usize),
    /// `revalidate_every` is set but the issuer gave no refresh token for this one.
    #[error("the issuer gave no refresh token")]
    NoRefreshToken,
    #[error(transparent)]
    Store(StoreError),
    #[error("the random number generator failed")]
    Random,
}

impl From<StoreError> for CreateError {
    fn from(e: StoreError) -> Self {
        CreateError::Store(e)
    }
}

/// An app password verified for a request.
#[derive(Debug, Clone)]
pub struct Verified {
    pub record: Rc<AppPassword>,
}

/// A new app password: the record and the credentials to show once.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: AppPassword,
    pub credential: NewCredential,
}

/// What [`AppPasswords`] reads of the configuration, and nothing more.
#[derive(Clone)]
pub struct AppPasswordSettings {
    /// `app_password_lifetime`: the longest a person may choose.
    pub lifetime: u64,
    /// `max_app_passwords`, per person.
    pub max_per_person: usize,
    /// `session_cache`: how long a record read from KV is trusted here.
    pub cache: u64,
    pub revalidate_every: Option<u64>,
    pub revocation_check: u64,
    /// `SESSION_SECRET`: the secrets' tags and sealed refresh tokens.
    pub keys: SigningKeys,
}

impl AppPasswordSettings {
    pub fn of(config: &Config) -> Self {
        let s = &config.settings;
        AppPasswordSettings {
            lifetime: s.app_password_lifetime,
            max_per_person: s.max_app_passwords,
            cache: s.session_cache,
            revalidate_every: s.revalidate_every,
            revocation_check: s.revocation_check,
            keys: config.secrets.signing_keys.clone(),
        }
    }
}

pub struct AppPasswords {
    pub(super) settings: AppPasswordSettings,
    pub(super) client: Rc<Client>,
    /// Records read from KV, by ID, for at most `session_cache`.
    pub(super) cache: TtlCache<Rc<AppPassword>>,
    /// App passwords revoked or being re-validated here, and their refresh tokens' key.
    pub(super) grant: Lifecycle,
    /// Recorded as used (or being recorded) in the last day, from this isolate.
    used: TtlCache<()>,
}

impl AppPasswords {
    pub fn new(settings: AppPasswordSettings, client: Rc<Client>) -> Self {
        let revocation_check = settings.revocation_check;
        Self {
            settings,
            client,
            cache: TtlCache::new(1024),
            grant: Lifecycle::new(REFRESH_KEY, revocation_check),
            used: TtlCache::new(1024),
        }
    }

    /// Verifies presented credentials for `app` on `path`. The path, the ID's form and the
    /// secret's tag are checked before anything is read: a guessed secret, or a real one
    /// on another app or path, costs no KV operation. A valid one costs at most one read
    /// per `session_cache`.
    pub async fn verify<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &str,
        secret: &str,
        app: &App,
        path: &str,
        by: CheckBy,
    ) -> Result<Verified, VerifyError> {
        let refused = |r| Err(VerifyError::Refused(r));
        if !app.accepts_app_password_on(path) {
            return refused(AppPasswordRefused::NotAccepted);
        }
        let keys = &self.settings.keys;
        let Some(id) = AppPasswordId::parse(id) else {
            return refused(AppPasswordRefused::Invalid);
        };
        if !credential::tag_verifies(&id, &app.host, secret, keys) {
            return refused(AppPasswordRefused::Invalid);
        }
        let now = env.now;
        if self.grant.revoked_here(&id, now) {
            return refused(AppPasswordRefused::Unknown);
        }
        let record = match self.cache.get(&id, now) {
            Some(record) => record,
            None => {
                let Some(record) = registry::load(env.store(), &id).await? else {
                    return refused(AppPasswordRefused::Unknown);
                };
                let record = Rc::new(record);
                self.remember(now, record.clone());
                record
            }
        };
        let hash = b64url(&sha256(secret.as_bytes()));
        if !ct_eq(hash.as_bytes(), record.secret_sha256.as_bytes()) || record.app != app.host {
            return refused(AppPasswordRefused::Invalid);
        }
        if record.v != RECORD_FORMAT {
            return refused(AppPasswordRefused::Unknown);
        }
        if !record.is_live(now) {
            return refused(AppPasswordRefused::Expired);
        }
        // A refresh before the response asks the object itself (its answer says "revoked"
        // too): one object request per gate request.
        let due = self.revalidation_due(&record, now);
        let asked_elsewhere = by == CheckBy::Relay || (due == Due::Now && env.people().bound());
        if !asked_elsewhere && !self.still_held(env, &id, &record).await {
            return refused(AppPasswordRefused::Unknown);
        }
        let record = match due {
            Due::No => record,
            Due::Later => {
                env.defer(Task::AppPassword(AppPasswordTask::Revalidate {
                    id: id.clone(),
                }));
                record
            }
            Due::Now => {
                let record = match self.revalidate(env, &id).await {
                    Outcome::Renewed(renewed) => renewed,
                    Outcome::Kept => record,
                    Outcome::Ended => return refused(AppPasswordRefused::Unknown),
                };
                let checked = by == CheckBy::Relay
                    || self.grant.consulted(&id, &id, now)
                    || self.still_held(env, &id, &record).await;
                if !checked {
                    return refused(AppPasswordRefused::Unknown);
                }
                record
            }
        };
        Ok(Verified { record })
    }

    /// Whether the person's object (when a check is due) still holds this app password live.
    async fn still_held<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &AppPasswordId,
        record: &AppPassword,
    ) -> bool {
        let held = Held {
            key: id,
            sub: &record.identity.sub,
            grant: Grant::AppPassword(id),
            created: record.created,
            expires: record.expires,
        };
        if self.grant.still_live(env, held).await {
            return true;
        }
        self.cache.remove(id);
        false
    }

    /// After an admitted request: "last used" is recorded once a day (after the response).
    /// True when this is the first use today seen here (worth an audit line).
    pub fn after_use<I: Io>(&self, env: &Env<'_, I>, record: &AppPassword) -> bool {
        let now = env.now;
        let recent = record
            .last_used
            .is_some_and(|at| now.saturating_sub(at) < USED_EVERY);
        if recent || self.used.get(&record.id, now).is_some() {
            return false;
        }
        self.used.insert(&record.id, (), now + USED_EVERY, now);
        env.defer(Task::AppPassword(AppPasswordTask::Used {
            id: record.id.clone(),
        }));
        true
    }

    /// The app passwords of one person.
    pub async fn of_user<I: Io>(
        &self,
        env: &Env<'_, I>,
        sub: &str,
    ) -> Result<Vec<AppPasswordSummary>, StoreError> {
        let mut list = registry::of_user(env.store(), sub).await?;
        // Listings lag behind revocations (KV is eventually consistent).
        list.retain(|s| !self.grant.revoked_here(&s.id, env.now) && env.now < s.expires);
        Ok(list)
    }

    /// Creates an app password for `owner` as `request` describes; `refresh` is the
    /// refresh token of the grant obtained for it (needed with `revalidate_every`).
    pub async fn create<I: Io>(
        &self,
        env: &Env<'_, I>,
        owner: &Identity,
        request: &NewAppPassword,
        refresh: Option<&RefreshToken>,
    ) -> Result<Created, CreateError> {
        let settings = &self.settings;
        let existing = self.of_user(env, &owner.sub).await?.len();
        if existing >= settings.max_per_person {
            return Err(CreateError::TooMany(settings.max_per_person));
        }
        let keys = &self.settings.keys;
        let credential = NewCredential::generate(&request.app, keys, env.rng())
            .map_err(|_| CreateError::Random)?;
        let refresh = match (settings.revalidate_every, refresh) {
            (None, _) => None,
            (Some(_), None) => return Err(CreateError::NoRefreshToken),
            (Some(_), Some(token)) => Some(
                self.grant
                    .seal(keys, &credential.id, token.expose(), env.rng())
                    .ok_or(CreateError::Random)?,
            ),
        };
        let now = env.now;
        let record = AppPassword {
            v: RECORD_FORMAT,
            id: credential.id.clone(),
            label: request.label.clone(),
            app: request.app.clone(),
            identity: owner.clone(),
            created: now,
            expires: now + request.lifetime.min(settings.lifetime),
            secret_sha256: b64url(&credential.secret_sha256),
            last_used: None,
            refresh,
            validated: now,
        };
        registry::save(env.store(), &record, now).await?;
        Ok(Created { record, credential })
    }

    /// Revokes one app password (tombstone, record, index key, this isolate's copy, and its
    /// grant at the issuer). `known` is its summary when the caller listed it. True when
    /// there was something to revoke.
    pub async fn revoke<I: Io>(
        &self,
        env: &Env<'_, I>,
        id: &AppPasswordId,
        known: Option<&AppPasswordSummary>,
    ) -> Result<bool, StoreError> {
        let now = env.now;
        self.cache.remove(id);
        let lifetime = known.map_or(self.settings.lifetime, |k| k.expires.saturating_sub(now));
        let issuer = (&*self.client, &self.settings.keys);
        let records = Records(env.store());
        let record = (self.grant)
            .revoke(env, &records, (id, known), now + lifetime.max(60), issuer)
            .await?;
        Ok(record.is_some() || known.is_some())
    }

    /// Revokes every app password of a person; returns how many there were.
    pub async fn revoke_of_user<I: Io>(
        &self,
        env: &Env<'_, I>,
        sub: &str,
        by: &str,
    ) -> Result<usize, StoreError> {
        let listed = registry::of_user(env.store(), sub).await?;
        self.revoke_listed(env, &listed, by).await
    }

    /// Revokes the listed app passwords, with an audit line each.
    pub async fn revoke_listed<I: Io>(
        &self,
        env: &Env<'_, I>,
        listed: &[AppPasswordSummary],
        by: &str,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for summary in listed {
            if self.revoke(env, &summary.id, Some(summary)).await? {
                revoked += 1;
                env.log(revoked_line(
                    &summary.app,
                    &summary.id,
                    &summary.sub,
                    by,
                    "",
                ));
            }
        }
        Ok(revoked)
    }

    /// Runs work scheduled during a request, after its response.
    pub async fn run<I: Io>(&self, env: &Env<'_, I>, task: &AppPasswordTask) {
        match task {
            AppPasswordTask::Used { id } => self.record_use(env, id).await,
            AppPasswordTask::Revalidate { id } => {
                self.revalidate(env, id).await;
            }
        }
    }

    /// Writes "last used" (record and index key). The record is read again first: a
    /// re-validation elsewhere may have rotated its refresh token, which must be kept.
    async fn record_use<I: Io>(&self, env: &Env<'_, I>, id: &AppPasswordId) {
        let now = env.now;
        let Ok(Some(mut record)) = registry::load(env.store(), id).await else {
            return;
        };
        if record
            .last_used
            .is_some_and(|at| now.saturating_sub(at) < USED_EVERY)
        {
            return;
        }
        record.last_used = Some(now);
        // Written unless it was revoked meanwhile (here or anywhere: the tombstone).
        let records = Records(env.store());
        let written = tombstone::write_back(
            || {
                let (sub, created) = (&record.identity.sub, record.created);
                self.grant
                    .is_revoked(env, Grant::AppPassword(id), Some((sub, created)))
            },
            records.write(id, &record, &record, now),
            || records.unwrite(id, &record),
        )
        .await;
        match written {
            WriteBack::Written => self.remember(now, Rc::new(record)),
            WriteBack::Revoked => self.cache.remove(id),
            WriteBack::Failed => {}
        }
    }

    /// Keeps a record read or written now in this isolate, for at most `session_cache`.
    pub(super) fn remember(&self, now: u64, record: Rc<AppPassword>) {
        let until = (now + self.settings.cache).min(record.expires);
        self.cache.insert(&record.id.clone(), record, until, now);
    }
}

/// The audit line of a revoked app password.
pub(super) fn revoked_line(app: &str, id: &str, sub: &str, by: &str, reason: &str) -> String {
    audit_line(
        "app_password_revoked",
        app,
        &[
            ("app_password", id),
            ("sub", sub),
            ("by", by),
            ("reason", reason),
        ],
    )
}
