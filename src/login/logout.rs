//! Signing out: here and, when the issuer supports it, at the issuer (RP-initiated
//! logout), with the confirmation a sign-out from elsewhere needs.

use url::Url;

use crate::answer::Answer;
use crate::context::{Ctx, Io};
use crate::crypto::ct_eq;
use crate::error::GateError;
use crate::http::Reply;
use crate::pages;
use crate::request::RequestHead;
use crate::router::Endpoint;

use super::{login_href, Login, LOGOUT_CSRF};

/// Whether a request comes from this site (or from no browser at all). Browsers send
/// `Sec-Fetch-Site`; older ones at least `Origin` on a POST.
fn from_this_site(head: &RequestHead) -> bool {
    match head.header("sec-fetch-site") {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => head.header("origin").is_none_or(|o| o == head.origin()),
    }
}

impl Login {
    /// `GET` or `POST /.portcullis/logout`.
    pub async fn logout<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        self.sign_out(ctx).await.map(Answer::from)
    }

    /// `GET /.portcullis/signed-out`.
    pub async fn signed_out<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError> {
        Ok(Reply::html(200, pages::signed_out(ctx.head.host(), &login_href("/"))).into())
    }

    /// Ends the session here and, when the issuer supports it, at the issuer.
    /// A GET is honoured only from this site (`Sec-Fetch-Site`); otherwise the user
    /// confirms with a POST carrying a CSRF token bound to the session.
    async fn sign_out<I: Io>(&self, ctx: &Ctx<'_, I>) -> Result<Reply, GateError> {
        let head = ctx.head;
        let id = self.parts.sessions.id(head);
        let csrf = id
            .as_ref()
            .map(|id| self.parts.sessions.derive(id, LOGOUT_CSRF));
        let confirmed = if head.method == "POST" {
            match (&csrf, head.form_field("csrf")) {
                // Without a session there is nothing to protect but the sign-out itself: a
                // cross-site POST must not clear cookies (Lax keeps the session cookie off it).
                (None, _) => from_this_site(head),
                (Some(expected), Some(given)) => ct_eq(expected.as_bytes(), given.as_bytes()),
                (Some(_), None) => false,
            }
        } else {
            id.is_none() || matches!(head.header("sec-fetch-site"), Some("same-origin" | "none"))
        };
        if !confirmed {
            let found = self
                .parts
                .sessions
                .find(&ctx.env, self.parts.sessions.cookie(head))
                .await?;
            let user = found
                .as_ref()
                .map(|f| f.session.identity.user().to_string())
                .unwrap_or_default();
            let page =
                pages::logout_confirm(head.host(), csrf.as_deref().unwrap_or_default(), &user);
            let status = if head.method == "POST" { 403 } else { 200 };
            return Ok(Reply::html(status, page));
        }

        let mut id_token_hint = None;
        if let Some(id) = &id {
            if let Some(session) = self.parts.sessions.end(&ctx.env, id).await? {
                ctx.audit(
                    "logout",
                    &[("sub", &session.identity.sub), ("session", &id.hash())],
                );
                id_token_hint = session.id_token;
            }
        }
        let signed_out = format!(
            "{}{}",
            self.callback_origin(ctx),
            Endpoint::SignedOut.path()
        );
        // The issuer is asked to end its session too, when it can be reached and supports it.
        let end_session = match &id_token_hint {
            Some(hint) => self
                .parts
                .client
                .metadata(ctx.env.http(), ctx.now())
                .await
                .ok()
                .and_then(|m| m.end_session_endpoint.clone())
                .and_then(|endpoint| Url::parse(&endpoint).ok())
                .map(|mut url| {
                    url.query_pairs_mut()
                        .append_pair("id_token_hint", hint.expose())
                        .append_pair("client_id", &self.parts.config.settings.client_id)
                        .append_pair("post_logout_redirect_uri", &signed_out);
                    url.to_string()
                }),
            None => None,
        };
        let target = end_session.unwrap_or_else(|| Endpoint::SignedOut.path().to_string());
        Ok(Reply::redirect(&target).with_cookies([self.parts.sessions.clear_cookie()]))
    }

    /// The origin whose callback and sign-out URLs are registered at the issuer.
    fn callback_origin<I: Io>(&self, ctx: &Ctx<'_, I>) -> String {
        let head = ctx.head;
        match &self.parts.config.settings.auth_host {
            Some(auth) if auth != head.host() => {
                let mut url = head.url.clone();
                if url.set_host(Some(auth)).is_err() {
                    return head.origin();
                }
                url.origin().ascii_serialization()
            }
            _ => head.origin(),
        }
    }
}
