//! What a login is for besides signing in: creating an app password, or opening the admin
//! console. Each needs a fresh authentication at the issuer (`max_age`, `auth_time`
//! checked), and the first also a grant of its own.

use serde::{Deserialize, Serialize};

use crate::app_password::NewAppPassword;
use crate::context::{Ctx, Io};
use crate::error::{FormError, GateError};
use crate::http::Reply;
use crate::oidc::client::Vouched;
use crate::pages;
use crate::router::Endpoint;

use super::{callback_uri, Login, Pending, RECENT_LOGIN};

/// What a login is for besides signing in, carried through the issuer in the sealed
/// pending-login cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginPurpose {
    /// Create this app password once the person has signed in again.
    AppPassword(NewAppPassword),
    /// Open the admin console, which needs a login at most [`RECENT_LOGIN`] old.
    Console,
}

impl Login {
    /// Sends the person to the issuer to create an app password: a login that must be
    /// fresh (`max_age`; `prompt=login` when their last authentication is older), whose
    /// grant becomes the app password's own. It happens on the host whose callback is
    /// registered (the auth host, when one is set), where the account page's form posts.
    pub async fn start_for_app_password<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        request: &NewAppPassword,
        reauthenticate: bool,
    ) -> Result<Reply, GateError> {
        let auth_host = self.parts.config.settings.auth_host.as_deref();
        if auth_host.is_some_and(|auth| auth != ctx.head.host()) {
            return Err(GateError::app_password_form(
                "app passwords are created on the sign-in host; open the account page there",
            ));
        }
        let purpose = LoginPurpose::AppPassword(request.clone());
        let prompt = reauthenticate.then_some("login");
        self.fresh_login(ctx, Endpoint::Account, purpose, prompt)
            .await
    }

    /// Sends an admin to the issuer to sign in again before the console opens: a login
    /// that must be fresh (`prompt=login`, `max_age`), on the auth host where the console
    /// is served, coming back to it.
    pub async fn start_for_console<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Reply, GateError> {
        self.fresh_login(ctx, Endpoint::Console, LoginPurpose::Console, Some("login"))
            .await
    }

    /// A login that must be fresh (`max_age`), made for `purpose`, coming back to `back`
    /// on this host.
    async fn fresh_login<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        back: Endpoint,
        purpose: LoginPurpose,
        prompt: Option<&str>,
    ) -> Result<Reply, GateError> {
        let back = format!("{}{}", ctx.head.origin(), back.path());
        let mut pending = Pending::new(ctx.env.rng(), back, callback_uri(ctx), ctx.now())?;
        pending.max_age = Some(RECENT_LOGIN);
        pending.purpose = Some(purpose);
        self.to_issuer(ctx, &pending, prompt).await
    }

    /// The end of the login made to create an app password: it must be a fresh
    /// authentication (OIDC Core §3.1.3.7 step 13, `auth_time` against `max_age`) of the
    /// person whose session asked, who must still be admitted to the app. The secret is
    /// shown once, on the page this answers with.
    pub(super) async fn create_app_password<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        request: &NewAppPassword,
        pending: &Pending,
        vouched: Vouched,
    ) -> Result<Reply, GateError> {
        let now = ctx.now();
        let claims = &vouched.claims;
        let fresh = claims.authenticated_within(pending.max_age.unwrap_or(RECENT_LOGIN), now);
        let session = self
            .parts
            .sessions
            .find(&ctx.env, self.parts.sessions.cookie(ctx.head))
            .await?;
        let same_person = claims.identity.sub == request.sub
            && session.is_some_and(|s| s.session.identity.sub == request.sub);
        if !fresh || !same_person {
            return Err(GateError::Form(FormError::NotRecentLogin));
        }
        let admitted = self
            .parts
            .config
            .settings
            .app(&request.app)
            .is_some_and(|app| app.app_passwords && app.allow.admits(&claims.identity));
        if !admitted {
            return Err(GateError::app_password_form(
                "you may not create app passwords for that app",
            ));
        }
        let refresh = vouched.refresh_token.as_ref();
        let created = self
            .parts
            .app_passwords
            .create(&ctx.env, &claims.identity, request, refresh)
            .await?;
        // Without re-validation the grant is not needed: end it at the issuer.
        if let (None, Some(token)) = (self.parts.config.settings.revalidate_every, refresh) {
            self.parts
                .client
                .revoke_refresh_token(ctx.env.http(), token.expose(), now)
                .await;
        }
        ctx.audit(
            "app_password_created",
            &[
                ("app_password", &created.record.id),
                ("sub", &request.sub),
                ("app", &request.app),
            ],
        );
        Ok(Reply::html(
            200,
            pages::app_password_created(ctx.head.host(), &created),
        ))
    }
}
