//! Portcullis's own endpoints beyond the login: the person's view of their sessions
//! ([`account`]), the owner's admin API ([`admin`]) and logout driven by the issuer
//! ([`backchannel`]). Each owns its own forms and checks; sessions are changed only
//! through [`crate::session::Sessions`].

pub mod account;
pub mod admin;
pub mod backchannel;

pub use crate::answer::Answer;

use std::rc::Rc;

use crate::app_password::AppPasswords;
use crate::model::Config;
use crate::session::Sessions;

/// What the person's endpoints ([`account::Account`]) and the owner's
/// ([`admin::Admin`]) work with.
pub struct Parts {
    pub config: Rc<Config>,
    pub sessions: Rc<Sessions>,
    pub app_passwords: Rc<AppPasswords>,
}

impl Parts {
    pub fn new(
        config: Rc<Config>,
        sessions: Rc<Sessions>,
        app_passwords: Rc<AppPasswords>,
    ) -> Self {
        Self {
            config,
            sessions,
            app_passwords,
        }
    }
}
