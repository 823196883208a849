//! The access part: a request for a protected app answers three questions in order.
//! 1. *Who is calling?* [`Access::principal`] resolves every kind of credential into one
//!    [`Principal`]: nobody needed (public path), a service token, a person's app
//!    password, a bearer token, a browser session, or nobody at all.
//! 2. *May they?* [`decide`] is one pure decision over the app's rules.
//! 3. *How is it forwarded?* One [`proxy::plan`], with the identity and the assertion.
//!
//! It owns the per-isolate caches of verified bearer tokens and signed assertions.

use crate::service_token::{check, presented, Presented};

use std::rc::Rc;

use crate::app_password::{credential, AppPassword, VerifyError};

use crate::assertion::ASSERTION_LIFETIME;
use crate::context::{Ctx, Io};
use crate::crypto::{b64url, sha256};
use crate::error::{AccessError, Challenge, GateError};
use crate::grant::CheckBy;
use crate::identity::Identity;
use crate::login::LOGOUT_CSRF;
use crate::model::{classify, App, PathClass};
use crate::oidc::{bearer, token, PresentedError};
use crate::parts::Parts;
use crate::people::relay::{GrantKind, Standing};
use crate::people::People;
use crate::proxy::{self, Forward, ProxyPlan};
use crate::request::RequestHead;
use crate::return_to;
use crate::session::Found;
use crate::ttl_cache::TtlCache;

/// A verified bearer token is remembered for at most this long.
const BEARER_CACHE: u64 = 60;
/// A cached assertion is reused only while it has more than this long to live.
const ASSERTION_REUSE_MARGIN: u64 = 60;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A public path: nobody needs to be identified, and no identity is passed on.
    Anonymous,
    /// A configured service token listed for this app (`service:<name>`).
    ServiceToken { identity: Identity, via_basic: bool },
    /// A person's app password for this app.
    AppPassword {
        record: Rc<AppPassword>,
        via_basic: bool,
    },
    /// An access token from the issuer (`accept_bearer`); `token` is its value.
    Bearer { identity: Identity, token: String },
    /// A browser session.
    Session(Found),
    /// No credential at all.
    Nobody,
}

impl Principal {
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Principal::ServiceToken { identity, .. } | Principal::Bearer { identity, .. } => {
                Some(identity)
            }
            Principal::Session(found) => Some(&found.session.identity),
            Principal::AppPassword { record, .. } => Some(&record.identity),
            Principal::Anonymous | Principal::Nobody => None,
        }
    }
}

/// What may happen with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Admit,
    /// An identity the app's rules do not admit.
    Deny,
    /// A browser on a protected path without a session: send it to the issuer.
    Login,
    /// Anything else without credentials: `401`.
    Unauthorized,
}

/// The one decision: who is calling against the app's rules and the path's class.
/// Service tokens were checked against the app's list when they were resolved.
pub fn decide(app: &App, class: PathClass, principal: &Principal, navigation: bool) -> Decision {
    match principal {
        Principal::Anonymous | Principal::ServiceToken { .. } => Decision::Admit,
        Principal::Nobody if class == PathClass::Protected && navigation => Decision::Login,
        Principal::Nobody => Decision::Unauthorized,
        Principal::Bearer { identity, .. } if !app.allow.admits(identity) => Decision::Deny,
        Principal::Session(found) if !app.allow.admits(&found.session.identity) => Decision::Deny,
        // The rules are checked against the person's stored claims on every request, so a
        // configuration change applies at once.
        Principal::AppPassword { record, .. } if !app.allow.admits(&record.identity) => {
            Decision::Deny
        }
        Principal::Bearer { .. } | Principal::Session(_) | Principal::AppPassword { .. } => {
            Decision::Admit
        }
    }
}

/// A WebSocket upgrade this app relays through the person's object is checked by that
/// object; anything else by the gate.
fn check_by<I: Io>(ctx: &Ctx<'_, I>, app: &App) -> CheckBy {
    if app.relays_websockets(ctx.env.people().bound()) && ctx.head.is_websocket_upgrade() {
        CheckBy::Relay
    } else {
        CheckBy::Gate
    }
}

/// What a relayed WebSocket stands on: a person's session or app password. Other
/// principals (public paths, service tokens, bearer tokens) answer to no person's
/// revocation; their sockets are passed as they are.
fn standing(app: &App, principal: &Principal) -> Option<Standing> {
    let (kind, grant, state) = match principal {
        Principal::Session(found) => (
            GrantKind::Session,
            found.id.hash().to_string(),
            (
                &found.session.identity,
                found.session.created,
                found.session.expires,
            ),
        ),
        Principal::AppPassword { record, .. } => (
            GrantKind::AppPassword,
            record.id.to_string(),
            (&record.identity, record.created, record.expires),
        ),
        _ => return None,
    };
    let (identity, created, expires) = state;
    Some(Standing {
        sub: identity.sub.clone(),
        kind,
        grant,
        created,
        expires,
        app: app.host.clone(),
    })
}

/// The challenges of a 401 for a request without credentials. A browser (it sends
/// `Sec-Fetch-Mode`) gets none: a Basic challenge would pop up its password dialog over
/// the app's own pages; it is sent to the login, or answered in JSON on API paths.
/// Programs get Basic where the path takes app passwords or service tokens, and Bearer
/// where the app takes the issuer's tokens.
fn challenge(app: &App, head: &RequestHead) -> Challenge {
    if head.header("sec-fetch-mode").is_some() {
        return Challenge::NONE;
    }
    let path = head.url.path();
    Challenge {
        basic: app.accepts_app_password_on(path) || !app.service_tokens.is_empty(),
        bearer: app.accept_bearer,
    }
}

/// What the gate does with an admitted or refused request.
#[derive(Debug)]
pub enum Admission {
    Proxy(ProxyPlan),
    /// Send the browser to log in, then back to this URL.
    Login(String),
}

pub struct Access {
    parts: Parts,
    bearers: TtlCache<Identity>,
    assertions: TtlCache<String>,
}

impl Access {
    pub fn new(parts: Parts) -> Self {
        Self {
            parts,
            bearers: TtlCache::new(256),
            assertions: TtlCache::new(1024),
        }
    }

    /// A request for a protected app: who, whether, how.
    pub async fn app<I: Io>(&self, ctx: &Ctx<'_, I>, app: &App) -> Result<Admission, GateError> {
        let head = ctx.head;
        let class = classify(app, head.url.path());
        let by = check_by(ctx, app);
        let principal = self.principal(ctx, app, class, by).await?;
        match decide(app, class, &principal, head.is_browser_navigation()) {
            Decision::Admit => {
                if let Principal::AppPassword { record, .. } = &principal {
                    if self.parts.app_passwords.after_use(&ctx.env, record) {
                        let fields = [("app_password", &*record.id), ("sub", &record.identity.sub)];
                        ctx.audit("app_password_used", &fields);
                    }
                }
                let mut plan = self.plan(ctx, app, &principal).await?;
                if by == CheckBy::Relay {
                    plan.relay = standing(app, &principal);
                }
                Ok(Admission::Proxy(plan))
            }
            Decision::Login => {
                let back =
                    return_to::resolve(Some(head.url.as_str()), &head.url, &self.parts.config);
                Ok(Admission::Login(back))
            }
            Decision::Unauthorized => Err(GateError::unauthenticated(challenge(app, head))),
            Decision::Deny => Err(self.deny(ctx, &principal)),
        }
    }

    /// Resolves the request's credentials, in order: public paths need none; the
    /// client-credential header pair (or Basic with a token's client ID), which is an app
    /// password when the client ID has that form, else a service token; where accepted, a
    /// bearer token; the session cookie. Presented credentials that fail are errors, not
    /// "nobody": a client that sent a token wants to hear why it did not work. `by`: who
    /// checks a person's credential with their object (`check_by`).
    pub async fn principal<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        app: &App,
        class: PathClass,
        by: CheckBy,
    ) -> Result<Principal, GateError> {
        if class == PathClass::Public {
            return Ok(Principal::Anonymous);
        }
        let head = ctx.head;
        let tokens = &self.parts.config.settings.service_tokens;
        if let Some(presented) = presented(head, tokens) {
            if credential::is_id(&presented.client_id) {
                return self.app_password(ctx, app, &presented, by).await;
            }
            let token = check(&presented, app, tokens).map_err(|refused| {
                ctx.audit(
                    "service_token_refused",
                    &[("client_id", &presented.client_id)],
                );
                GateError::Access(AccessError::ServiceToken(refused))
            })?;
            return Ok(Principal::ServiceToken {
                identity: token.identity(),
                via_basic: presented.via_basic,
            });
        }
        if app.accept_bearer {
            if let Some(token) = head.header("authorization").and_then(bearer::from_header) {
                let identity = self.bearer(ctx, token, app).await?;
                return Ok(Principal::Bearer {
                    identity,
                    token: token.to_string(),
                });
            }
        }
        let cookie = self.parts.sessions.cookie(head);
        Ok(
            match self.parts.sessions.find_valid(&ctx.env, cookie, by).await? {
                Some(found) => Principal::Session(found),
                None => Principal::Nobody,
            },
        )
    }

    /// Verifies a person's app password for this app and path.
    async fn app_password<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        app: &App,
        presented: &Presented,
        by: CheckBy,
    ) -> Result<Principal, GateError> {
        let id = &presented.client_id;
        let path = ctx.head.url.path();
        match self
            .parts
            .app_passwords
            .verify(&ctx.env, id, presented.secret(), app, path, by)
            .await
        {
            Ok(verified) => Ok(Principal::AppPassword {
                record: verified.record,
                via_basic: presented.via_basic,
            }),
            Err(VerifyError::Refused(refused)) => {
                let fields = [("app_password", id.as_str()), ("reason", refused.reason())];
                ctx.audit("app_password_refused", &fields);
                Err(GateError::Access(AccessError::AppPassword(refused)))
            }
            Err(VerifyError::Store(e)) => Err(e.into()),
        }
    }

    /// Verifies a bearer token from the issuer for `app`; verified tokens are remembered
    /// (by hash) until they expire, for at most a minute.
    async fn bearer<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        token: &str,
        app: &App,
    ) -> Result<Identity, GateError> {
        let now = ctx.now();
        let cache_key = format!("{}:{}", app.host, b64url(&sha256(token.as_bytes())));
        if let Some(identity) = self.bearers.get(&cache_key, now) {
            return Ok(identity);
        }
        let (identity, expires) = self
            .parts
            .client
            .bearer(
                ctx.env.http(),
                ctx.env.signatures(),
                token,
                &app.bearer_audiences,
                now,
            )
            .await
            .map_err(|e| match e {
                PresentedError::Unavailable(e) => GateError::IssuerUnavailable(e),
                PresentedError::Invalid(why) => GateError::Access(AccessError::InvalidBearer(why)),
            })?;
        let until = expires.min(now + BEARER_CACHE);
        self.bearers
            .insert(&cache_key, identity.clone(), until, now);
        Ok(identity)
    }

    /// The refusal for an identity the app's rules do not admit (logged).
    fn deny<I: Io>(&self, ctx: &Ctx<'_, I>, principal: &Principal) -> GateError {
        let (identity, csrf) = match principal {
            Principal::Session(found) => {
                let hash = found.id.hash();
                let identity = &found.session.identity;
                ctx.audit("denied", &[("sub", &identity.sub), ("session", &hash)]);
                let csrf = self.parts.sessions.derive(&found.id, LOGOUT_CSRF);
                (identity, Some(csrf))
            }
            Principal::Bearer { identity, .. } => {
                ctx.audit("denied", &[("sub", &identity.sub), ("via", "bearer")]);
                (identity, None)
            }
            Principal::AppPassword { record, .. } => {
                let fields = [
                    ("sub", record.identity.sub.as_str()),
                    ("via", "app_password"),
                    ("app_password", &record.id),
                ];
                ctx.audit("denied", &fields);
                (&record.identity, None)
            }
            // Only sessions and bearer tokens are ever denied.
            _ => return GateError::unauthenticated(Challenge::NONE),
        };
        GateError::Access(AccessError::Forbidden {
            user: identity.user().to_string(),
            csrf,
        })
    }

    /// The one place an admitted request becomes a proxy plan.
    async fn plan<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        app: &App,
        principal: &Principal,
    ) -> Result<ProxyPlan, GateError> {
        let identity = principal.identity();
        let assertion = match identity {
            Some(identity) => self.assertion(ctx, app, principal, identity).await?,
            None => None,
        };
        let forward = Forward {
            // `Authorization` carried a credential Portcullis consumed.
            strip_authorization: matches!(
                principal,
                Principal::ServiceToken {
                    via_basic: true,
                    ..
                } | Principal::AppPassword {
                    via_basic: true,
                    ..
                } | Principal::Bearer { .. }
            ),
            assertion,
            user: match principal {
                Principal::ServiceToken { identity, .. } => Some(identity.sub.to_string()),
                _ => identity
                    .and_then(|person| app.user_claim.user_of(person))
                    .map(String::from),
            },
            credential: match principal {
                Principal::AppPassword { record, .. } => Some(record.label.clone()),
                _ => None,
            },
        };
        Ok(proxy::plan(ctx.head, app, identity, &forward))
    }

    /// The `Portcullis-Assertion` for this identity and app, reused while it has more than
    /// a minute left (signing on every request would cost more than the rest of it). The
    /// cache key names the credential; it is only computed when an assertion key is
    /// configured, as it may cost a hash. An assertion that cannot be signed fails the
    /// request: with `ASSERTION_KEY` set, apps may rely on it.
    async fn assertion<I: Io>(
        &self,
        ctx: &Ctx<'_, I>,
        app: &App,
        principal: &Principal,
        identity: &Identity,
    ) -> Result<Option<String>, GateError> {
        let Some(key) = self.parts.config.secrets.assertion_key.as_ref() else {
            return Ok(None);
        };
        let now = ctx.now();
        let issuer = format!("{}/.portcullis", ctx.head.origin());
        let who = match principal {
            Principal::Session(found) => found.id.hash().to_string(),
            Principal::Bearer { token, .. } => format!("bearer:{}", token::fingerprint(token)),
            Principal::AppPassword { record, .. } => record.id.to_string(),
            _ => identity.sub.to_string(),
        };
        let cache_key = format!("{who}|{}|{issuer}", app.host);
        if let Some(token) = self
            .assertions
            .get(&cache_key, now + ASSERTION_REUSE_MARGIN)
        {
            return Ok(Some(token));
        }
        let token = key
            .sign(ctx.env.signatures(), &issuer, &app.host, identity, now)
            .await
            .map_err(GateError::Assertion)?;
        self.assertions
            .insert(&cache_key, token.clone(), now + ASSERTION_LIFETIME, now);
        Ok(Some(token))
    }
}
