//! Portcullis: an OpenID Connect login gate for self-hosted apps, run as a Cloudflare Worker.
//!
//! How a request flows:
//!
//! 1. [`edge`] receives it from workerd and turns it into a plain [`request::RequestHead`].
//! 2. [`router`] decides what it is: one of Portcullis's own endpoints (`/.portcullis/…`),
//!    a request for a protected app, or a host that is not configured.
//! 3. [`gate`] handles it: it reads the session cookie ([`session`]), verifies it, loads the
//!    session through the [`session::Store`] trait, or runs the login ([`oidc`]).
//! 4. The outcome is either a reply (redirect, page, JSON; errors go through [`error`] and
//!    [`pages`]) or a [`proxy::ProxyPlan`]: the upstream URL and the header edits that strip
//!    spoofable identity headers and inject the session's identity.
//! 5. [`edge`] carries the plan out with `fetch`, streaming bodies both ways.
//!
//! Everything but `edge` is plain Rust without `worker` types, and is tested natively.

pub mod access;
pub mod assertion;
pub mod cache;
pub mod config;
pub mod context;
pub mod cookies;
pub mod crypto;
pub mod endpoints;
pub mod error;
pub mod gate;
pub mod http;
pub mod identity;
pub mod login;
pub mod model;
pub mod oidc;
pub mod pages;
pub mod path;
pub mod proxy;
pub mod request;
pub mod return_to;
pub mod router;
pub mod secret;
pub mod service_token;
pub mod session;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod edge;
