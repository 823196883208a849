//! Portcullis: an OpenID Connect login gate for self-hosted apps, run as a Cloudflare Worker.
//!
//! How a request flows:
//!
//! 1. `edge` receives it from workerd and turns it into a plain [`request::RequestHead`].
//! 2. [`gate`] computes the [`router::Route`] once — one of Portcullis's own endpoints
//!    (`/.portcullis/…`), a protected app, or a host that is not configured — builds the
//!    request [`context::Ctx`] and hands it to the part that owns the route.
//! 3. For an app, [`access`] resolves who is calling into one `Principal` (public path,
//!    service token, a person's app password ([`app_password`]), bearer token, or a session
//!    found by [`session::Sessions`]), decides once against the app's rules ([`model`]),
//!    and plans the forward ([`proxy`]).
//!    Endpoints are [`login`] (login, callback, logout) and [`endpoints`].
//! 4. The outcome is a reply or a [`proxy::ProxyPlan`]; any error passes through the one
//!    boundary in [`error`] (status, page or JSON, log line).
//! 5. `edge` carries the plan out with `fetch`, streaming bodies both ways (at once,
//!    without the future executor, when the decision needed no I/O).
//!
//! Everything but `edge` is plain Rust without `worker` types, and is tested natively.

pub mod access;
pub mod answer;
pub mod app_password;
pub mod assertion;
pub mod config;
pub mod context;
pub mod cookies;
pub mod crypto;
pub mod endpoints;
pub mod error;
pub mod gate;
pub mod grant;
pub mod http;
pub mod identity;
pub mod jose;
mod layering;
pub mod login;
pub mod model;
pub mod oidc;
pub mod pages;
pub mod parts;
pub mod path;
pub mod people;
#[cfg(test)]
mod properties;
pub mod proxy;
pub mod request;
pub mod return_to;
pub mod router;
pub mod secret;
pub mod service_token;
pub mod session;
pub mod store;
pub mod ttl_cache;

#[cfg(target_arch = "wasm32")]
mod edge;
