//! Portcullis's own endpoints beyond the login: the person's view of their sessions
//! ([`account`]), the owner's admin API ([`admin`]) and logout driven by the issuer
//! ([`backchannel`]). Each owns its own forms and checks; sessions are changed only
//! through [`crate::session::Sessions`].

pub mod account;
pub mod admin;
pub mod backchannel;

pub use crate::answer::Answer;

pub use crate::parts::Parts;
