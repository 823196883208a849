//! App passwords: each person's own revocable credential for one app, for the phone and
//! desktop apps that cannot follow a browser login (Immich, Home Assistant, nzb360).
//! A person creates one on `/.portcullis/account` after a recent login; it is presented
//! like a service token (the `Portcullis-Client-Id`/`-Secret` header pair, or HTTP Basic)
//! and admits its owner to its one app, under the app's access rules, with the same
//! identity a browser session would carry.
//!
//! The pieces: the credential's form and its KV-free pre-check ([`credential`]), the
//! stored record and listing summary ([`record`]), the KV layout ([`registry`]), and the
//! [`AppPasswords`] part, which alone writes their keys.

pub mod credential;
mod passwords;
pub mod record;
pub mod registry;
mod revalidate;

pub use passwords::{
    AppPasswordRefused, AppPasswordSettings, AppPasswords, CreateError, Created, NewAppPassword,
    Verified, VerifyError,
};
pub use record::{AppPassword, AppPasswordSummary};
