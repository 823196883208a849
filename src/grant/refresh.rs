//! Re-validation: with `revalidate_every`, a grant's refresh token is used every so often
//! to confirm the person is still active at the issuer (and to pick up changed claims).
//! If the issuer refuses it (`invalid_grant`: user disabled, grant revoked), or disowns
//! the refreshed grant ([`OidcError::disowns_grant`]: the new ID token fails its checks,
//! UserInfo refuses the new access token or names someone else), the owner ends it.
//!
//! - Within an isolate only one refresh per grant runs at a time ([`super::Locks`]); other
//!   requests meanwhile are served with the grant as it is.
//! - Before refreshing, the record is re-read from the store: another isolate may have
//!   refreshed it already (then its result is used). On `invalid_grant` it is re-read once
//!   more, and the grant is refused only if nobody else has rotated the token meanwhile.
//! - If the issuer (or the store) cannot be reached, the grant keeps working and this
//!   isolate waits [`super::lock::BACKOFF`] before trying again.
//! - The renewed record is written back through [`super::tombstone::write_back`]: never
//!   over a revocation.

use super::tombstone::{write_back, Doomed, WriteBack};
use super::Lifecycle;
use crate::context::{audit_line, Env, Io, Task};
use crate::identity::{Identity, Subject};
use crate::oidc::client::{Refreshed, Vouch};
use crate::oidc::{Client, ClientError, OidcError};
use crate::people::{self, Answer, Ask};
use crate::secret::SigningKeys;
use crate::store::keys::Grant;
use crate::store::{Store, StoreError};

/// A stored credential backed by a grant, as the lifecycle needs to see it (serialised:
/// the person's object hands a renewed one to the other locations).
pub trait GrantRecord: Clone + serde::Serialize + serde::de::DeserializeOwned {
    /// What audit lines call the grant's ID (`session`, `app_password`).
    const KIND: &'static str;
    /// The host named in its audit lines.
    fn host(&self) -> &str;
    fn is_live(&self, now: u64) -> bool;
    /// What every grant keeps: whom it is for, when the issuer last vouched for them, and
    /// its refresh token (encrypted).
    fn state(&self) -> GrantState<'_>;
    fn state_mut(&mut self) -> GrantStateMut<'_>;

    fn sub(&self) -> &Subject {
        &self.state().identity.sub
    }

    fn validated(&self) -> u64 {
        self.state().validated
    }

    fn created(&self) -> u64 {
        self.state().created
    }

    fn expires(&self) -> u64 {
        self.state().expires
    }

    fn sealed_refresh(&self) -> Option<&str> {
        self.state().refresh.as_deref()
    }

    /// The record after a refresh: the issuer's new claims (and ID token) when it sent
    /// them, the rotated refresh token (sealed) when it rotated, vouched for at `now`.
    fn renewed(&self, vouch: Vouch, sealed_refresh: Option<Option<String>>, now: u64) -> Self {
        let mut renewed = self.clone();
        // The claims only: a session keeps its login's ID token for `id_token_hint`
        // (a refresh's ID token carries no nonce, and issuers such as Pocket ID mark it as
        // one that must not stand in for the login's).
        vouch.apply(renewed.state_mut().identity);
        let state = renewed.state_mut();
        if let Some(sealed) = sealed_refresh {
            *state.refresh = sealed;
        }
        *state.validated = now;
        renewed
    }
}

/// The fields every grant-backed record has.
pub struct GrantState<'a> {
    pub identity: &'a Identity,
    pub created: u64,
    pub expires: u64,
    pub validated: u64,
    pub refresh: &'a Option<String>,
}

/// Implements [`GrantRecord`] for a record with the fields `identity`, `created`,
/// `validated` and `refresh`, an `is_live` of its own, and the host named in its audit
/// lines in the field given.
macro_rules! grant_record {
    ($record:ty, $kind:literal, $host:ident) => {
        impl $crate::grant::GrantRecord for $record {
            const KIND: &'static str = $kind;

            fn host(&self) -> &str {
                &self.$host
            }

            fn is_live(&self, now: u64) -> bool {
                <$record>::is_live(self, now)
            }

            fn state(&self) -> $crate::grant::refresh::GrantState<'_> {
                $crate::grant::refresh::GrantState {
                    identity: &self.identity,
                    created: self.created,
                    expires: self.expires,
                    validated: self.validated,
                    refresh: &self.refresh,
                }
            }

            fn state_mut(&mut self) -> $crate::grant::refresh::GrantStateMut<'_> {
                $crate::grant::refresh::GrantStateMut {
                    identity: &mut self.identity,
                    validated: &mut self.validated,
                    refresh: &mut self.refresh,
                }
            }
        }
    };
}
pub(crate) use grant_record;

/// The same fields, to update.
pub struct GrantStateMut<'a> {
    pub identity: &'a mut Identity,
    pub validated: &'a mut u64,
    pub refresh: &'a mut Option<String>,
}

/// Where an owner keeps its records, and what revoking one removes.
#[allow(async_fn_in_trait)] // single-threaded (wasm); no `Send` bound wanted
pub trait GrantStore {
    type Record: GrantRecord;
    /// The grant's name (a session hash, an app-password ID).
    type Id: std::ops::Deref<Target = str>;
    /// What listings know of a grant (its index key's metadata).
    type Summary: Clone;
    type Store: Store;
    /// What its tombstone names.
    fn grant(id: &Self::Id) -> Grant<'_>;
    /// The record (`None` when gone, revoked or unreadable).
    async fn load(&self, grant: &Self::Id) -> Result<Option<Self::Record>, StoreError>;
    /// Writes a renewed record at `now`; `before` is the one it replaces.
    async fn write(
        &self,
        grant: &Self::Id,
        renewed: &Self::Record,
        before: &Self::Record,
        now: u64,
    ) -> Result<(), StoreError>;
    /// Removes what a write put back when a revocation landed during it.
    async fn unwrite(&self, grant: &Self::Id, record: &Self::Record) -> Result<(), StoreError>;

    /// The store these records are in (revocation writes the tombstone there too).
    fn store(&self) -> &Self::Store;
    /// The summary a record gives.
    fn summary(record: &Self::Record) -> Self::Summary;
    /// What revoking the grant removes, as its summary names it (`record_exists`: whether
    /// its record is known to be there; deleting a missing one costs a delete for nothing).
    fn doomed<'a>(id: &'a Self::Id, summary: &'a Self::Summary, record_exists: bool) -> Doomed<'a>;
}

/// What a re-validation came to.
#[derive(Debug)]
pub enum Revalidation<R> {
    /// The issuer vouched again (through this isolate, or another one meanwhile): use
    /// this record from now on.
    Renewed(R),
    /// Left as it was: a refresh of it runs here already, or the issuer or the store
    /// could not be asked (this isolate backs off).
    Kept,
    /// Gone: revoked (here or anywhere), expired, or no longer stored.
    Gone,
    /// The issuer no longer vouches for it: the owner ends it, for this reason.
    Refused { record: R, why: String },
}

/// What a re-validation works with besides the store.
pub struct Refresher<'a> {
    life: &'a Lifecycle,
    client: &'a Client,
    keys: &'a SigningKeys,
    /// `revalidate_every`, seconds.
    every: u64,
}

impl Lifecycle {
    /// What a re-validation of this kind of grant works with (`every`:
    /// `revalidate_every`; never when unset).
    pub fn refresher<'a>(
        &'a self,
        client: &'a Client,
        keys: &'a SigningKeys,
        every: Option<u64>,
    ) -> Refresher<'a> {
        let every = every.unwrap_or(u64::MAX);
        Refresher {
            life: self,
            client,
            keys,
            every,
        }
    }
}

/// Re-validates one grant, at most one at a time per grant in this isolate.
pub async fn revalidate<I: Io, G: GrantStore>(
    with: &Refresher<'_>,
    env: &Env<'_, I>,
    records: &G,
    grant: &G::Id,
) -> Revalidation<G::Record> {
    let locks = &with.life.locks;
    if !locks.begin(grant, env.now) {
        return Revalidation::Kept;
    }
    let outcome = refresh(with, env, records, grant).await;
    locks.end(grant);
    match outcome {
        Revalidation::Renewed(_) if with.life.revoked_here(grant, env.now) => Revalidation::Gone,
        outcome => outcome,
    }
}

async fn refresh<I: Io, G: GrantStore>(
    with: &Refresher<'_>,
    env: &Env<'_, I>,
    records: &G,
    grant: &G::Id,
) -> Revalidation<G::Record> {
    let now = env.now;
    let back_off = || {
        with.life.locks.back_off(grant, now);
        Revalidation::Kept
    };
    // The freshest copy: another isolate may have refreshed (or revoked) it already.
    let current = match records.load(grant).await {
        Ok(Some(record)) if record.is_live(now) => record,
        Ok(_) => return Revalidation::Gone,
        Err(_) => return back_off(),
    };
    if now.saturating_sub(current.validated()) < with.every {
        return Revalidation::Renewed(current);
    }
    // One refresh at a time wherever it runs, when the persons' objects are bound; from
    // the newest record, which the object may hold while this location's KV lags.
    let (lease, current) = match begin(with, env, grant, &current).await {
        Begun::Refresh(lease, newer) => (lease, newer.unwrap_or(current)),
        Begun::Done(outcome) => return outcome,
    };
    let Some(token) = current
        .sealed_refresh()
        .and_then(|sealed| with.life.open(with.keys, grant, sealed))
    else {
        lease.end::<I, G::Record>(env, None);
        let why = "no refresh token (does the issuer grant offline_access?)".to_string();
        return Revalidation::Refused {
            record: current,
            why,
        };
    };
    let refreshed = match with
        .client
        .refresh(env.http(), env.signatures(), &token, current.sub(), now)
        .await
    {
        Ok(refreshed) => refreshed,
        Err(error) => {
            let leased = lease.holds();
            lease.end::<I, G::Record>(env, None);
            return refused(env, records, grant, current, error, leased, back_off).await;
        }
    };
    let renewed = renew(with, env, grant, &current, refreshed);
    let outcome = write_back(
        || {
            let ask = (!lease.holds()).then(|| (current.sub().as_str(), current.created()));
            with.life.is_revoked(env, G::grant(grant), ask)
        },
        records.write(grant, &renewed, &current, now),
        || records.unwrite(grant, &renewed),
    )
    .await;
    // Unless revoked, the object keeps the renewed record even when KV failed: its refresh
    // token is the only one the issuer still takes.
    let kept = !matches!(outcome, WriteBack::Revoked);
    lease.end(env, kept.then_some(&renewed));
    match outcome {
        WriteBack::Written => Revalidation::Renewed(renewed),
        WriteBack::Revoked => Revalidation::Gone,
        WriteBack::Failed => back_off(),
    }
}

/// What the person's object said about a due refresh.
enum Begun<R> {
    /// Refresh it (holding the object's lease when there is one), from this record when
    /// the object holds one newer than this location's.
    Refresh(Lease, Option<R>),
    /// Settled without a refresh here.
    Done(Revalidation<R>),
}

/// The object's lease on a grant's refresh (whose, which): `None` without `PEOPLE`, or
/// when the object could not be asked (then this location refreshes on its own).
struct Lease {
    held: Option<(String, String)>,
}

impl Lease {
    fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// Ends the lease after the response: with the renewed record for the others, or
    /// without (failed).
    fn end<I: Io, R: GrantRecord>(self, env: &Env<'_, I>, renewed: Option<&R>) {
        let Some((sub, grant)) = self.held else {
            return;
        };
        let ask = match renewed.map(|r| (serde_json::to_string(r), r)) {
            Some((Ok(record), r)) => Ask::Refreshed {
                grant,
                created: r.created(),
                record,
                validated: r.validated(),
                expires: r.expires(),
            },
            _ => Ask::RefreshFailed { grant },
        };
        // After the response: it need not hold up the request it may ride on.
        env.defer(Task::Person { sub, ask });
    }
}

/// Asks the person's object whether this location may refresh the grant now.
async fn begin<I: Io, R: GrantRecord>(
    with: &Refresher<'_>,
    env: &Env<'_, I>,
    grant: &str,
    current: &R,
) -> Begun<R> {
    let (sub, created) = (current.sub(), current.created());
    let answer = people::begin_refresh(env.people(), sub, grant, created, with.every).await;
    if matches!(&answer, Ok(a) if *a != Answer::Revoked) {
        with.life.note_consulted(grant, env.now);
    }
    match answer {
        Ok(Answer::Go { record }) => {
            let newer = record
                .and_then(|r| serde_json::from_str::<R>(&r).ok())
                .filter(|r| r.validated() > current.validated());
            let held = Some((sub.to_string(), grant.to_string()));
            Begun::Refresh(Lease { held }, newer)
        }
        Ok(Answer::Revoked) => Begun::Done(Revalidation::Gone),
        Ok(Answer::Current { record }) => match serde_json::from_str::<R>(&record) {
            Ok(renewed) if renewed.validated() > current.validated() => {
                Begun::Done(Revalidation::Renewed(renewed))
            }
            // Not newer than what this location holds: nothing to take from it.
            _ => Begun::Done(Revalidation::Kept),
        },
        // Another location is refreshing it: serve it as it is meanwhile.
        Ok(_) => Begun::Done(Revalidation::Kept),
        Err(_) => Begun::Refresh(Lease { held: None }, None),
    }
}

/// The record as the issuer's answer leaves it.
fn renew<I: Io, R: GrantRecord>(
    with: &Refresher<'_>,
    env: &Env<'_, I>,
    grant: &str,
    current: &R,
    refreshed: Refreshed,
) -> R {
    // The issuer may rotate the refresh token; keep whichever is current.
    let sealed = refreshed.refresh_token.as_ref().map(|rotated| {
        with.life
            .seal(with.keys, grant, rotated.expose(), env.rng())
    });
    if matches!(refreshed.vouch, Vouch::Nothing) {
        with.life.say_claims_unseen(env);
    }
    current.renewed(refreshed.vouch, sealed, env.now)
}

/// What an issuer's refusal means for the grant. `leased`: this refresh held the person's
/// object's lease, so nobody else can have rotated the token meanwhile.
async fn refused<I: Io, G: GrantStore>(
    env: &Env<'_, I>,
    records: &G,
    grant: &G::Id,
    current: G::Record,
    error: ClientError,
    leased: bool,
    back_off: impl FnOnce() -> Revalidation<G::Record>,
) -> Revalidation<G::Record> {
    match error {
        ClientError::Refused(OidcError::TokenRefused { error, .. }) if error == "invalid_grant" => {
            // Without the lease, someone else may have rotated the token between our read
            // and now. (With it, a KV that lags would show an older record, not a newer.)
            let again = if leased {
                None
            } else {
                records.load(grant).await.ok().flatten()
            };
            if let Some(again) = again {
                if again.sealed_refresh() != current.sealed_refresh()
                    || again.validated() != current.validated()
                {
                    return Revalidation::Renewed(again);
                }
            }
            let why = "the issuer refused the refresh token (invalid_grant)".to_string();
            Revalidation::Refused {
                record: current,
                why,
            }
        }
        ClientError::Refused(e) if e.disowns_grant() => Revalidation::Refused {
            record: current,
            why: format!("after the refresh, {e}"),
        },
        ClientError::Refused(e) => {
            env.log(audit_line(
                "revalidation_error",
                current.host(),
                &[(G::Record::KIND, grant), ("detail", &e.to_string())],
            ));
            back_off()
        }
        ClientError::Unavailable(_) => back_off(),
    }
}
