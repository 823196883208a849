//! Sessions: the stored record ([`model`]), the signed ID in the cookie ([`id`]),
//! the key-value store they live in ([`store`]) and the short in-isolate cache ([`cache`]).

pub mod cache;
pub mod id;
pub mod index;
pub mod model;
pub mod registry;
pub mod store;

pub use cache::SessionCache;
pub use id::SessionId;
pub use model::Session;
pub use store::{Store, StoreError};
