//! Portcullis's own endpoints beyond the login: the person's view of their sessions
//! ([`account`]), the owner's admin API ([`admin`]) and logout driven by the issuer
//! ([`backchannel`]). Each owns its own forms and checks; sessions are changed only
//! through [`crate::session::Sessions`].

pub mod account;
pub mod admin;
pub mod backchannel;

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
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}
