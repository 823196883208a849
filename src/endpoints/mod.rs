//! Portcullis's own endpoints beyond the login: the person's view of their sessions
//! ([`account`]), the owner's admin API ([`admin`]) and logout driven by the issuer
//! ([`backchannel`]). Each owns its own forms and checks; sessions are changed only
//! through [`crate::session::Sessions`].

pub mod account;
pub mod admin;
pub mod backchannel;
pub mod console;

pub use crate::answer::Answer;

pub use crate::parts::Parts;

use crate::context::{Ctx, Io};
use crate::crypto::ct_eq;
use crate::error::{Challenge, FormError, GateError};
use crate::grant::CheckBy;
use crate::request::RequestHead;
use crate::session::{Found, Sessions};

/// The session this request carries, checked as every signed-in request is.
pub(super) async fn signed_in<I: Io>(
    ctx: &Ctx<'_, I>,
    sessions: &Sessions,
) -> Result<Option<Found>, GateError> {
    Ok(sessions
        .find_valid(&ctx.env, sessions.cookie(ctx.head), CheckBy::Gate)
        .await?)
}

/// The session of a form's POST, once its CSRF token is checked.
pub(super) async fn form_session<I: Io>(
    ctx: &Ctx<'_, I>,
    sessions: &Sessions,
    csrf_purpose: &str,
) -> Result<Found, GateError> {
    not_from_a_script(ctx.head)?;
    from_our_own_page(ctx.head)?;
    let found = sessions
        .find(&ctx.env, sessions.cookie(ctx.head))
        .await?
        .ok_or(GateError::unauthenticated(Challenge::NONE))?;
    let expected = sessions.derive(&found.id, csrf_purpose);
    let given = ctx.head.form_field("csrf").unwrap_or_default();
    if !ct_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(GateError::Form(FormError::Csrf));
    }
    Ok(found)
}

/// The account page and its forms answer a navigation (or a client that sends no
/// `Sec-Fetch-Mode`: programs, old browsers), never a script's `fetch` or XHR: JavaScript
/// on a protected app (a malicious app, an XSS in one) could otherwise read the page's
/// CSRF token and create an app password through it.
pub(super) fn not_from_a_script(head: &RequestHead) -> Result<(), GateError> {
    match head.header("sec-fetch-mode") {
        None | Some("navigate") => Ok(()),
        Some(_) => Err(GateError::Form(FormError::NotForScripts)),
    }
}

/// A form that changes something is posted from Portcullis's own page on this origin:
/// `Sec-Fetch-Site: same-origin`, or no `Sec-Fetch-*` at all (old clients; the CSRF token
/// still holds). A form posted from an app's page (same-site) or elsewhere is refused.
pub(super) fn from_our_own_page(head: &RequestHead) -> Result<(), GateError> {
    match head.header("sec-fetch-site") {
        None | Some("same-origin") => Ok(()),
        Some(_) => Err(GateError::Form(FormError::NotForScripts)),
    }
}
