//! Re-validation of app passwords, through the one grant lifecycle ([`crate::grant`]):
//! with `revalidate_every`, each app password's own refresh token is used every so often;
//! a refusal ends it, so disabling one account at the issuer ends every access. What is
//! the app password's own is its record layout, its cache entry and its audit line.

use std::rc::Rc;

use super::passwords::{revoked_line, AppPasswords};
use super::record::AppPassword;
use super::registry::Records;
use crate::context::{Env, Io};
use crate::grant::refresh::grant_record;
use crate::grant::{self, Due, Revalidation};
use crate::store::keys::AppPasswordId;

grant_record!(AppPassword, "app_password", app);

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
        let (keys, every) = (&self.settings.keys, self.settings.revalidate_every);
        let with = self.grant.refresher(&self.client, keys, every);
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
