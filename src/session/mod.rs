//! Sessions: the [`Sessions`] part that finds, creates, re-validates and revokes them
//! (and alone writes their keys), and the pieces it is built from: the stored record
//! ([`model`]), the signed ID in the cookie ([`id`]), the KV key layout ([`index`]),
//! reading and writing records with their index keys ([`registry`]) and the short
//! in-isolate cache ([`cache`]).

pub mod cache;
pub mod id;
pub mod index;
pub mod model;
pub mod registry;
pub(crate) mod revalidate;
mod sessions;

pub use cache::SessionCache;
pub use id::SessionId;
pub use model::Session;
pub use sessions::{Found, SessionSettings, Sessions};
