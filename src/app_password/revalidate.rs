//! Re-validation of app passwords, through the one grant lifecycle ([`crate::grant`]):
//! with `revalidate_every`, each app password's own refresh token is used every so often;
//! a refusal ends it, so disabling one account at the issuer ends every access. What is
//! the app password's own is its record layout, its cache entry and its audit line.

use std::rc::Rc;

use super::passwords::{revoked_line, AppPasswords};
use super::record::AppPassword;
use super::registry;
use crate::context::{Env, Io};
use crate::grant::refresh::{grant_record, Refresher};
use crate::grant::{self, Due, GrantStore, Revalidation};
use crate::store::keys::{AppPasswordId, Grant};
use crate::store::{Store, StoreError};

grant_record!(AppPassword, "app_password", app);

/// App-password records in the store, as the lifecycle reads and writes them: a record
/// is always written with its index key (which carries "last used" and the label).
pub(super) struct Records<'s, S>(pub &'s S);

impl<S: Store> GrantStore for Records<'_, S> {
    type Record = AppPassword;
    type Id = AppPasswordId;

    fn grant(id: &AppPasswordId) -> Grant<'_> {
        Grant::AppPassword(id)
    }

    async fn load(&self, id: &AppPasswordId) -> Result<Option<AppPassword>, StoreError> {
        registry::load(self.0, id).await
    }

    async fn write(
        &self,
        _: &AppPasswordId,
        renewed: &AppPassword,
        _: &AppPassword,
        now: u64,
    ) -> Result<(), StoreError> {
        registry::save(self.0, renewed, now).await
    }

    async fn unwrite(&self, _: &AppPasswordId, record: &AppPassword) -> Result<(), StoreError> {
        registry::remove(self.0, record).await
    }
}

/// What an app password's re-validation came to.
pub(super) enum Outcome {
    /// Use this record from now on.
    Renewed(Rc<AppPassword>),
    /// Left as it was.
    Kept,
    /// Ended: refused, revoked or gone.
    Ended,
}

impl AppPasswords {
    pub(super) fn revalidation_due(&self, record: &AppPassword, now: u64) -> Due {
        match (self.settings.revalidate_every, &record.refresh) {
            (Some(every), Some(_)) => grant::due(every, record.validated, now, || {
                self.grant.locks.busy(&record.id, now)
            }),
            _ => Due::No,
        }
    }

    /// Re-validates one app password.
    pub(super) async fn revalidate<I: Io>(&self, env: &Env<'_, I>, id: &AppPasswordId) -> Outcome {
        let with = Refresher {
            life: &self.grant,
            client: &self.client,
            keys: &self.settings.keys,
            every: self.settings.revalidate_every.unwrap_or(u64::MAX),
        };
        match grant::revalidate(&with, env, &Records(env.store()), id).await {
            Revalidation::Renewed(record) => {
                let record = Rc::new(record);
                self.remember(env.now, record.clone());
                Outcome::Renewed(record)
            }
            Revalidation::Kept => Outcome::Kept,
            Revalidation::Gone => {
                self.cache.remove(id);
                Outcome::Ended
            }
            Revalidation::Refused { record, why } => {
                self.end(env, &record, &why).await;
                Outcome::Ended
            }
        }
    }

    /// Ends an app password the issuer no longer vouches for.
    async fn end<I: Io>(&self, env: &Env<'_, I>, record: &AppPassword, why: &str) {
        if self.revoke(env, &record.id, None).await.is_err() {
            self.cache.remove(&record.id);
            self.grant
                .mark_revoked(&record.id, env.now + 3_600, env.now);
        }
        let sub = &record.identity.sub;
        env.log(revoked_line(
            &record.app,
            &record.id,
            sub,
            "revalidation",
            why,
        ));
    }
}
