//! The issuer as seen from one isolate: its discovery document and key set, cached with
//! bounded lifetimes, refetched on an unknown `kid` (rate-limited), and used stale for a
//! while when the issuer is down — without asking it again on every request meanwhile.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{OidcError, ProviderMetadata};
use crate::http::{HttpClient, HttpRequest};
use crate::jose::jwks::{self, JwsError, KeySet, VerifiedJws};
use crate::jose::signature::SignatureCheck;
use crate::ttl_cache::TtlCache;

/// Discovery and keys are refreshed after this many seconds...
const FRESH_FOR: u64 = 3_600;
/// ...but a stale copy keeps serving for this long while the issuer cannot be reached.
const STALE_FOR: u64 = 86_400;
/// After a failed refresh, a stale copy is served without asking the issuer again for
/// this long: an outage must not turn every request into a request to the issuer.
const RETRY_AFTER: u64 = 60;
/// For tokens presented by clients, an unknown `kid` triggers a key refetch at most this
/// often, whatever the kid: made-up kids cannot become a stream of requests to the
/// issuer. Every refetch loads the whole set, so strangers' kids cannot keep a real
/// rotation out either: its key arrives with the next refetch, at most this long later.
const REFETCH_EVERY: u64 = 10;
/// A kid still unknown right after a refetch is remembered this long: repeating it
/// costs nothing.
const UNKNOWN_KID_MEMORY: u64 = 300;

/// Where a token came from, which decides whether an unknown `kid` may refetch the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Straight from the issuer's token endpoint over TLS (an ID token after a code
    /// exchange): an unknown `kid` means the issuer rotated, so refetch every time.
    Issuer,
    /// Presented by a client (bearer or logout tokens): refetch at most every minute.
    Client,
}

/// A document from the issuer, kept for `FRESH_FOR`, served stale for up to `STALE_FOR`
/// while the issuer cannot be reached, without asking it again for `RETRY_AFTER` after a
/// failure.
struct Cached<T> {
    entry: RefCell<Option<(Rc<T>, u64)>>,
    retry_at: Cell<u64>,
}

impl<T> Cached<T> {
    fn new() -> Self {
        Self {
            entry: RefCell::new(None),
            retry_at: Cell::new(0),
        }
    }

    /// The copy to use without asking the issuer: fresh, or stale while waiting to retry.
    fn usable(&self, now: u64) -> Option<Rc<T>> {
        let (value, fetched) = self.entry.borrow().clone()?;
        let fresh = now < fetched + FRESH_FOR;
        let waiting = now < self.retry_at.get() && now < fetched + STALE_FOR;
        (fresh || waiting).then_some(value)
    }

    fn store(&self, value: T, now: u64) -> Rc<T> {
        let value = Rc::new(value);
        *self.entry.borrow_mut() = Some((value.clone(), now));
        value
    }

    /// After a failed refresh: the stale copy, if it may still serve (and no new attempt
    /// for a while), or the error.
    fn fallback(&self, error: OidcError, now: u64) -> Result<Rc<T>, OidcError> {
        match self.entry.borrow().clone() {
            Some((value, fetched)) if now < fetched + STALE_FOR => {
                self.retry_at.set(now + RETRY_AFTER);
                Ok(value)
            }
            _ => Err(error),
        }
    }
}

pub struct Provider {
    issuer: String,
    discovery_url: String,
    metadata: Cached<ProviderMetadata>,
    keys: Cached<KeySet>,
    /// When a refetch for an unknown `kid` last happened.
    last_refetch: Cell<Option<u64>>,
    /// Kids that were still unknown after a refetch.
    unknown_kids: TtlCache<()>,
}

impl Provider {
    pub fn new(issuer: &str, discovery_url: &str) -> Self {
        Self {
            issuer: issuer.into(),
            discovery_url: discovery_url.into(),
            metadata: Cached::new(),
            keys: Cached::new(),
            last_refetch: Cell::new(None),
            unknown_kids: TtlCache::new(256),
        }
    }

    pub async fn metadata(
        &self,
        http: &impl HttpClient,
        now: u64,
    ) -> Result<Rc<ProviderMetadata>, OidcError> {
        if let Some(meta) = self.metadata.usable(now) {
            return Ok(meta);
        }
        match self.fetch_metadata(http).await {
            Ok(meta) => Ok(self.metadata.store(meta, now)),
            Err(e) => self.metadata.fallback(e, now),
        }
    }

    async fn fetch_metadata(&self, http: &impl HttpClient) -> Result<ProviderMetadata, OidcError> {
        let response = http
            .send(HttpRequest::get(&self.discovery_url))
            .await
            .map_err(|e| OidcError::Unreachable(format!("{}: {e}", self.discovery_url)))?;
        if response.status != 200 {
            return Err(OidcError::Unreachable(format!(
                "{} answered {}",
                self.discovery_url, response.status
            )));
        }
        ProviderMetadata::parse(&response.body, &self.issuer).map_err(OidcError::Discovery)
    }

    async fn fetch_keys(
        &self,
        http: &impl HttpClient,
        jwks_uri: &str,
        now: u64,
    ) -> Result<Rc<KeySet>, OidcError> {
        let response = http
            .send(HttpRequest::get(jwks_uri))
            .await
            .map_err(|e| OidcError::Unreachable(format!("{jwks_uri}: {e}")))?;
        if response.status != 200 {
            return Err(OidcError::Unreachable(format!(
                "{jwks_uri} answered {}",
                response.status
            )));
        }
        let set = KeySet::parse(&response.body).map_err(OidcError::Keys)?;
        Ok(self.keys.store(set, now))
    }

    async fn keys(
        &self,
        http: &impl HttpClient,
        jwks_uri: &str,
        now: u64,
    ) -> Result<Rc<KeySet>, OidcError> {
        if let Some(set) = self.keys.usable(now) {
            return Ok(set);
        }
        match self.fetch_keys(http, jwks_uri, now).await {
            Ok(set) => Ok(set),
            Err(e) => self.keys.fallback(e, now),
        }
    }

    /// The issuer's metadata and the keys at its `jwks_uri`, each from the cache while it
    /// is fresh.
    async fn metadata_and_keys(
        &self,
        http: &impl HttpClient,
        now: u64,
    ) -> Result<(Rc<ProviderMetadata>, Rc<KeySet>), OidcError> {
        let meta = self.metadata(http, now).await?;
        let keys = self.keys(http, &meta.jwks_uri, now).await?;
        Ok((meta, keys))
    }

    /// Whether discovery answers now (fetched afresh, and kept when it does), and the key
    /// IDs of the JWKS in use.
    pub async fn state(
        &self,
        http: &impl HttpClient,
        now: u64,
    ) -> (Result<(), String>, Result<Vec<String>, String>) {
        let fresh = self.fetch_metadata(http).await;
        let discovery = fresh.as_ref().map(|_| ()).map_err(ToString::to_string);
        // A failed fetch falls back to the cached copy as any other does: not fetched twice.
        let metadata = match fresh {
            Ok(meta) => Ok(self.metadata.store(meta, now)),
            Err(e) => self.metadata.fallback(e, now),
        };
        let key_ids = match metadata {
            Ok(meta) => self.keys(http, &meta.jwks_uri, now).await.map(|set| {
                set.keys
                    .iter()
                    .map(|k| k.kid.clone().unwrap_or_else(|| "(none)".into()))
                    .collect()
            }),
            Err(e) => Err(e),
        };
        (discovery, key_ids.map_err(|e| e.to_string()))
    }

    /// Verifies a JWS signed by the issuer. A `kid` not in the cached set causes one
    /// refetch of the JWKS (the issuer may have rotated its key), rate-limited for tokens
    /// presented by clients.
    pub async fn verify(
        &self,
        http: &impl HttpClient,
        check: &impl SignatureCheck,
        token: &str,
        source: Source,
        now: u64,
    ) -> Result<VerifiedJws, TokenVerifyError> {
        let (meta, keys) = self
            .metadata_and_keys(http, now)
            .await
            .map_err(TokenVerifyError::Issuer)?;
        match jwks::verify(token, &keys, check).await {
            Err(JwsError::UnknownKey(kid)) => {
                let name = kid.clone().unwrap_or_default();
                if source == Source::Client {
                    let remembered = self.unknown_kids.get(&name, now).is_some();
                    let too_soon = self
                        .last_refetch
                        .get()
                        .is_some_and(|at| now < at + REFETCH_EVERY);
                    if remembered || too_soon {
                        return Err(TokenVerifyError::Token(JwsError::UnknownKey(kid)));
                    }
                    self.last_refetch.set(Some(now));
                }
                let keys = self
                    .fetch_keys(http, &meta.jwks_uri, now)
                    .await
                    .map_err(TokenVerifyError::Issuer)?;
                let verified = jwks::verify(token, &keys, check).await;
                if let Err(JwsError::UnknownKey(_)) = &verified {
                    self.unknown_kids
                        .insert(&name, (), now + UNKNOWN_KID_MEMORY, now);
                }
                verified.map_err(TokenVerifyError::Token)
            }
            other => other.map_err(TokenVerifyError::Token),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenVerifyError {
    /// The issuer's metadata or keys could not be obtained.
    #[error(transparent)]
    Issuer(OidcError),
    /// The token itself is bad.
    #[error(transparent)]
    Token(JwsError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpError, HttpResponse};
    use crate::jose::jwks::testing::*;
    use crate::jose::signature::RustCrypto;
    use serde_json::json;
    use std::cell::Cell;

    const ISS: &str = "https://id.example.com";

    /// A fake issuer: serves discovery and a JWKS that the test can swap; can go down.
    struct FakeIssuer {
        jwks: RefCell<String>,
        down: Cell<bool>,
        /// Every request, answered or not.
        attempts: Cell<u32>,
        jwks_fetches: Cell<u32>,
        discovery_fetches: Cell<u32>,
    }

    impl FakeIssuer {
        fn new(jwks: String) -> Self {
            Self {
                jwks: RefCell::new(jwks),
                down: Cell::new(false),
                attempts: Cell::new(0),
                jwks_fetches: Cell::new(0),
                discovery_fetches: Cell::new(0),
            }
        }
    }

    impl HttpClient for FakeIssuer {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            self.attempts.set(self.attempts.get() + 1);
            if self.down.get() {
                return Err(HttpError("connection refused".into()));
            }
            let body = if request.url.ends_with("/.well-known/openid-configuration") {
                self.discovery_fetches.set(self.discovery_fetches.get() + 1);
                json!({
                    "issuer": ISS,
                    "authorization_endpoint": format!("{ISS}/authorize"),
                    "token_endpoint": format!("{ISS}/token"),
                    "jwks_uri": format!("{ISS}/jwks"),
                })
                .to_string()
            } else if request.url.ends_with("/jwks") {
                self.jwks_fetches.set(self.jwks_fetches.get() + 1);
                self.jwks.borrow().clone()
            } else {
                return Ok(HttpResponse {
                    status: 404,
                    body: String::new(),
                });
            };
            Ok(HttpResponse { status: 200, body })
        }
    }

    async fn verified(p: &Provider, issuer: &FakeIssuer, token: &str, source: Source, now: u64) {
        p.verify(issuer, &RustCrypto, token, source, now)
            .await
            .unwrap();
    }

    fn provider() -> Provider {
        Provider::new(ISS, &format!("{ISS}/.well-known/openid-configuration"))
    }

    /// An issuer with key 0 and a provider that has verified one token at 1_000.
    fn warm(source: Source) -> (FakeIssuer, Provider) {
        let issuer = FakeIssuer::new(jwks(&[rsa_jwk(rsa_key(0))]));
        let p = provider();
        pollster::block_on(verified(&p, &issuer, &token(0), source, 1_000));
        (issuer, p)
    }

    /// The issuer replaces its key with key `n`.
    fn rotate(issuer: &FakeIssuer, n: u64) {
        *issuer.jwks.borrow_mut() = jwks(&[rsa_jwk(rsa_key(n))]);
    }

    /// The issuer rotates to key `n`; a token signed with it is accepted at `now`.
    async fn rotated(p: &Provider, issuer: &FakeIssuer, n: u64, source: Source, now: u64) {
        rotate(issuer, n);
        verified(p, issuer, &token(n), source, now).await;
    }

    fn token(n: u64) -> String {
        let key = rsa_key(n);
        sign_rs256(key, Some(&key.kid), &json!({ "sub": "x" }))
    }

    #[test]
    fn caches_discovery_and_keys() {
        let (issuer, p) = warm(Source::Issuer);
        pollster::block_on(async {
            verified(&p, &issuer, &token(0), Source::Client, 1_010).await;
        });
        assert_eq!(
            (issuer.discovery_fetches.get(), issuer.jwks_fetches.get()),
            (1, 1)
        );
    }

    #[test]
    fn unknown_kid_refetches_once_then_rate_limits_client_tokens() {
        let (issuer, p) = warm(Source::Client);
        pollster::block_on(async {
            rotated(&p, &issuer, 1, Source::Client, 1_001).await;
            assert_eq!(issuer.jwks_fetches.get(), 2);
            // Made-up kids from clients do not cause more fetches within the minute.
            let bogus = sign_rs256(rsa_key(0), Some("bogus"), &json!({}));
            let refused = p
                .verify(&issuer, &RustCrypto, &bogus, Source::Client, 1_002)
                .await;
            assert!(matches!(
                refused,
                Err(TokenVerifyError::Token(JwsError::UnknownKey(_)))
            ));
            assert_eq!(issuer.jwks_fetches.get(), 2);
            let later = p
                .verify(
                    &issuer,
                    &RustCrypto,
                    &bogus,
                    Source::Client,
                    1_001 + REFETCH_EVERY,
                )
                .await;
            assert!(later.is_err());
            assert_eq!(issuer.jwks_fetches.get(), 3);
        });
    }

    #[test]
    fn tokens_from_the_issuer_always_refetch_on_an_unknown_kid() {
        let (issuer, p) = warm(Source::Issuer);
        pollster::block_on(async {
            // Two rotations within seconds (to key 1, then back to key 0).
            rotated(&p, &issuer, 1, Source::Issuer, 1_001).await;
            rotated(&p, &issuer, 0, Source::Issuer, 1_002).await;
            assert_eq!(issuer.jwks_fetches.get(), 3);
        });
    }

    #[test]
    fn stale_copies_serve_while_the_issuer_is_down_for_a_bounded_time() {
        let (issuer, p) = warm(Source::Issuer);
        pollster::block_on(async {
            issuer.down.set(true);
            let stale = p
                .verify(
                    &issuer,
                    &RustCrypto,
                    &token(0),
                    Source::Issuer,
                    1_000 + FRESH_FOR + 1,
                )
                .await;
            assert!(stale.is_ok());
            let too_old = p
                .verify(
                    &issuer,
                    &RustCrypto,
                    &token(0),
                    Source::Issuer,
                    1_000 + STALE_FOR,
                )
                .await;
            assert!(matches!(
                too_old,
                Err(TokenVerifyError::Issuer(OidcError::Unreachable(_)))
            ));
        });
    }

    #[test]
    fn issuer_down_from_the_start_is_reported() {
        let issuer = FakeIssuer::new(String::new());
        issuer.down.set(true);
        let p = provider();
        assert!(matches!(
            pollster::block_on(p.metadata(&issuer, 1)),
            Err(OidcError::Unreachable(_))
        ));
    }

    #[test]
    fn strangers_kids_cannot_keep_a_real_rotation_out() {
        let issuer = FakeIssuer::new(jwks(&[rsa_jwk(rsa_key(0))]));
        let p = provider();
        let stranger = |n: u64| sign_rs256(rsa_key(0), Some(&format!("made-up-{n}")), &json!({}));
        pollster::block_on(async {
            verified(&p, &issuer, &token(0), Source::Client, 1_000).await;
            let mut accepted_at = None;
            for now in 1_001..1_200u64 {
                // A stranger posts a token with a fresh made-up kid every five seconds.
                if now % 5 == 0 {
                    let _ = p
                        .verify(&issuer, &RustCrypto, &stranger(now), Source::Client, now)
                        .await;
                }
                if now == 1_042 {
                    // The issuer rotates to key 1.
                    rotate(&issuer, 1);
                }
                if now > 1_042 && accepted_at.is_none() {
                    let real = p
                        .verify(&issuer, &RustCrypto, &token(1), Source::Client, now)
                        .await;
                    if real.is_ok() {
                        accepted_at = Some(now);
                    }
                }
            }
            let at = accepted_at.expect("the rotated key is accepted");
            assert!(at <= 1_042 + REFETCH_EVERY + 1, "accepted at {at}");
            // Refetches are bounded: at most one per REFETCH_EVERY, whatever the kids.
            assert!(issuer.jwks_fetches.get() <= 2 + 200 / REFETCH_EVERY as u32);
            // A kid that stayed unknown after a refetch costs nothing when repeated.
            let before = issuer.jwks_fetches.get();
            let _ = p
                .verify(
                    &issuer,
                    &RustCrypto,
                    &stranger(1_195),
                    Source::Client,
                    1_260,
                )
                .await;
            assert_eq!(issuer.jwks_fetches.get(), before);
        });
    }

    #[test]
    fn during_an_outage_the_issuer_is_not_asked_on_every_request() {
        let (issuer, p) = warm(Source::Issuer);
        pollster::block_on(async {
            issuer.down.set(true);
            let stale = 1_000 + FRESH_FOR + 1;
            let before = issuer.attempts.get();
            for i in 0..50 {
                verified(&p, &issuer, &token(0), Source::Issuer, stale + i).await;
            }
            // One failed refresh of discovery (the keys wait behind it), then none for a minute.
            assert!(
                issuer.attempts.get() - before <= 2,
                "{}",
                issuer.attempts.get() - before
            );
            verified(
                &p,
                &issuer,
                &token(0),
                Source::Issuer,
                stale + RETRY_AFTER + 1,
            )
            .await;
            assert!(issuer.attempts.get() - before <= 4);
        });
    }
}
