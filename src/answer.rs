//! What every endpoint handler answers: one signature for all of them,
//! `async fn(&self, ctx: &Ctx<'_, I>) -> Result<Answer, GateError>` on the part that owns
//! the endpoint ([`crate::login::Login`], [`crate::endpoints::account::Account`],
//! [`crate::endpoints::admin::Admin`], [`crate::endpoints::backchannel::Backchannel`]).

use crate::app_password::NewAppPassword;
use crate::http::Reply;

/// What an endpoint answers.
#[derive(Debug)]
pub enum Answer {
    Reply(Reply),
    /// Sign in first, then come back to this URL.
    Login(String),
    /// Go through the issuer to create this app password (`reauthenticate`: the last
    /// authentication is too old, so the issuer must ask again).
    AppPasswordLogin {
        request: NewAppPassword,
        reauthenticate: bool,
    },
    /// Sign in again at the issuer, then come back to the admin console.
    ConsoleLogin,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}
