//! The gate's decisions, natively: a fake issuer that really signs ID tokens and checks
//! PKCE, the in-memory store, and requests built by hand.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;
use crate::config::Inputs;
use crate::context::IoParts;
use crate::crypto::{b64url, sha256, SystemRandom};
use crate::http::HttpClient;
use crate::http::{HttpError, HttpRequest, HttpResponse};
use crate::jose::jwks::testing::{jwks, rsa_jwk, rsa_key, sign_rs256};
use crate::jose::signature::RustCrypto;
use crate::login::MAX_PENDING_LOGINS;
use crate::people::testing::FakePeople;
use crate::session::Session;
use crate::store::MemoryStore;
use std::future::Future;

const ISS: &str = "https://id.example.com";
const NOW: u64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Codes the fake issuer has handed out: code → (nonce, PKCE challenge, redirect_uri).
#[derive(Default)]
struct FakeIssuer {
    codes: RefCell<HashMap<String, (String, String, String)>>,
    token_requests: RefCell<Vec<HttpRequest>>,
    /// Claims to put in (or override in) the next ID token.
    overrides: RefCell<Value>,
    /// The one refresh token currently valid (rotated on every use), and how often it was used.
    refresh_token: RefCell<Option<String>>,
    refreshes: RefCell<u32>,
    /// `scopes_supported` for the discovery document (absent when `None`).
    scopes_supported: RefCell<Option<Value>>,
    /// Issue no refresh token at login (an issuer that wants `offline_access` for one).
    no_refresh_token: std::cell::Cell<bool>,
    /// How discovery answers: "" (normally), "500", "garbage" (not JSON), "timeout".
    discovery_fault: RefCell<&'static str>,
    /// Serve a key set that is not one.
    jwks_garbage: std::cell::Cell<bool>,
    /// Never answer a refresh (the issuer hangs; the edge abandons the work).
    stall_refresh: std::cell::Cell<bool>,
    /// Runs while a refresh is at the issuer (e.g. a revoke elsewhere, meanwhile).
    during_refresh: RefCell<Option<Box<dyn Fn()>>>,
    /// With a `revocation_endpoint` (RFC 7009); the tokens revoked there.
    revocation: std::cell::Cell<bool>,
    revoked_tokens: RefCell<Vec<String>>,
    /// Every request the revocation endpoint received, refused ones too.
    revoke_requests: RefCell<Vec<HttpRequest>>,
    /// `token_endpoint_auth_methods_supported` for the discovery document.
    auth_methods: RefCell<Option<Value>>,
    /// With a `userinfo_endpoint` answering this (status, JSON body) to the access token.
    userinfo: RefCell<Option<(u16, Value)>>,
    /// The requests the UserInfo endpoint received.
    userinfo_requests: RefCell<Vec<HttpRequest>>,
    /// Take the client secret only in the form (`client_secret_post`), and only this one.
    secret_in_form: RefCell<Option<&'static str>>,
    /// Refuse a client secret sent in the form.
    basic_only: std::cell::Cell<bool>,
    /// Answer refreshes without an ID token (OIDC Core §12.2: Google, older Pocket ID).
    refresh_without_id_token: std::cell::Cell<bool>,
}

/// RFC 6749 §5.2: the client's authentication was refused.
fn invalid_client() -> HttpResponse {
    let body = json!({ "error": "invalid_client" }).to_string();
    HttpResponse { status: 401, body }
}

impl FakeIssuer {
    /// With `secret_in_form`: the refusal of a client that sent its secret any other way.
    fn client_refused(
        &self,
        request: &HttpRequest,
        form: &HashMap<String, String>,
    ) -> Option<HttpResponse> {
        let secret = (*self.secret_in_form.borrow())?;
        (sent_basic(request) || form.get("client_secret").map(String::as_str) != Some(secret))
            .then(invalid_client)
    }

    /// Applies `overrides` to the claims of an ID token: each replaces or adds a claim, and
    /// `null` leaves one out.
    fn override_claims(&self, claims: &mut Value) {
        if let (Value::Object(extra), Value::Object(claims)) =
            (self.overrides.borrow().clone(), claims)
        {
            for (k, v) in extra {
                if v.is_null() {
                    claims.remove(&k);
                } else {
                    claims.insert(k, v);
                }
            }
        }
    }

    /// What the issuer does when the browser arrives with this authorize URL: the user
    /// signs in and a code is issued.
    fn authorize(&self, authorize_url: &str) -> (String, String) {
        let url = Url::parse(authorize_url).unwrap();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let code = format!("code-{}", self.codes.borrow().len());
        self.codes.borrow_mut().insert(
            code.clone(),
            (
                q["nonce"].clone(),
                q["code_challenge"].clone(),
                q["redirect_uri"].clone(),
            ),
        );
        (code, q["state"].clone())
    }
}

impl HttpClient for FakeIssuer {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let ok = |body: String| Ok(HttpResponse { status: 200, body });
        if request.url.ends_with("/.well-known/openid-configuration") {
            match *self.discovery_fault.borrow() {
                "500" => {
                    return Ok(HttpResponse {
                        status: 500,
                        body: "Internal Server Error".into(),
                    })
                }
                "garbage" => return ok("<html>not json".into()),
                // What the edge reports when its 10 s abort signal fires.
                "timeout" => {
                    return Err(HttpError("The operation was aborted due to timeout".into()))
                }
                _ => {}
            }
            let mut doc = json!({
                "issuer": ISS,
                "authorization_endpoint": format!("{ISS}/authorize"),
                "token_endpoint": format!("{ISS}/token"),
                "jwks_uri": format!("{ISS}/jwks"),
                "end_session_endpoint": format!("{ISS}/logout"),
            });
            if let Some(scopes) = self.scopes_supported.borrow().clone() {
                doc["scopes_supported"] = scopes;
            }
            if self.revocation.get() {
                doc["revocation_endpoint"] = format!("{ISS}/revoke").into();
            }
            if self.userinfo.borrow().is_some() {
                doc["userinfo_endpoint"] = format!("{ISS}/userinfo").into();
            }
            if let Some(methods) = self.auth_methods.borrow().clone() {
                doc["token_endpoint_auth_methods_supported"] = methods;
            }
            return ok(doc.to_string());
        }
        if request.url.ends_with("/userinfo") {
            self.userinfo_requests.borrow_mut().push(request.clone());
            let (status, body) = self.userinfo.borrow().clone().unwrap_or((404, json!({})));
            let bearer = request
                .headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == "Bearer at");
            let (status, body) = if bearer {
                (status, body)
            } else {
                (401, json!({}))
            };
            return Ok(HttpResponse {
                status,
                body: body.to_string(),
            });
        }
        if request.url.ends_with("/revoke") {
            self.revoke_requests.borrow_mut().push(request.clone());
            let form = form_of(&request);
            if let Some(refused) = self.client_refused(&request, &form) {
                return Ok(refused);
            }
            self.revoked_tokens.borrow_mut().push(form["token"].clone());
            if self.refresh_token.borrow().as_deref() == Some(form["token"].as_str()) {
                *self.refresh_token.borrow_mut() = None;
            }
            return ok(String::new());
        }
        if request.url.ends_with("/jwks") {
            if self.jwks_garbage.get() {
                return ok(json!({ "keys": [{ "kty": "RSA", "n": "!!", "e": 3 }] }).to_string());
            }
            return ok(jwks(&[rsa_jwk(rsa_key(0))]));
        }
        if request.url.ends_with("/token") {
            self.token_requests.borrow_mut().push(request.clone());
            let form = form_of(&request);
            if self.basic_only.get() && form.contains_key("client_secret") {
                return Ok(invalid_client());
            }
            if let Some(refused) = self.client_refused(&request, &form) {
                return Ok(refused);
            }
            if form["grant_type"] == "refresh_token" {
                *self.refreshes.borrow_mut() += 1;
                if self.stall_refresh.get() {
                    std::future::pending::<()>().await;
                }
                if let Some(meanwhile) = self.during_refresh.borrow().as_ref() {
                    meanwhile();
                }
                if self.refresh_token.borrow().as_deref() != Some(form["refresh_token"].as_str()) {
                    let body = json!({ "error": "invalid_grant" }).to_string();
                    return Ok(HttpResponse { status: 400, body });
                }
                let rotated = format!("rt-{}", self.refreshes.borrow());
                *self.refresh_token.borrow_mut() = Some(rotated.clone());
                let mut claims = json!({
                    "iss": ISS, "aud": "portcullis", "sub": "alice-1", "iat": NOW, "exp": NOW + 86_400,
                    "email": "alice@example.com", "email_verified": true, "preferred_username": "alice",
                    "groups": ["family"],
                });
                self.override_claims(&mut claims);
                let id_token = sign_rs256(rsa_key(0), Some("rsa-0"), &claims);
                let mut body =
                    json!({ "id_token": id_token, "access_token": "at", "refresh_token": rotated });
                if self.refresh_without_id_token.get() {
                    body.as_object_mut().map(|b| b.remove("id_token"));
                }
                return ok(body.to_string());
            }
            let refused = || {
                Ok(HttpResponse {
                    status: 400,
                    body: json!({ "error": "invalid_grant" }).to_string(),
                })
            };
            let Some((nonce, challenge, redirect_uri)) =
                self.codes.borrow_mut().remove(&form["code"])
            else {
                return refused();
            };
            // RFC 7636 §4.6: the verifier must hash to the challenge; the redirect URI must match.
            if b64url(&sha256(form["code_verifier"].as_bytes())) != challenge
                || form["redirect_uri"] != redirect_uri
            {
                return refused();
            }
            let mut claims = json!({
                "iss": ISS, "aud": "portcullis", "sub": "alice-1", "nonce": nonce,
                "iat": NOW, "exp": NOW + 3600, "email": "alice@example.com", "email_verified": true,
                "preferred_username": "alice", "groups": ["family"], "sid": "op-sid",
            });
            self.override_claims(&mut claims);
            let id_token = sign_rs256(rsa_key(0), Some("rsa-0"), &claims);
            if self.no_refresh_token.get() {
                let body =
                    json!({ "id_token": id_token, "access_token": "at", "token_type": "Bearer" });
                return ok(body.to_string());
            }
            *self.refresh_token.borrow_mut() = Some("rt-0".into());
            let body = json!({ "id_token": id_token, "access_token": "at", "token_type": "Bearer", "refresh_token": "rt-0" });
            return ok(body.to_string());
        }
        Err(HttpError(format!("unexpected request to {}", request.url)))
    }
}

fn gate(extra: Value, client_secret: Option<&str>) -> Gate {
    let mut portcullis = json!({
        "issuer": ISS,
        "client_id": "portcullis",
        "apps": [{ "host": "photos.example.com" }, { "host": "sonarr.example.com" }],
    });
    for (k, v) in extra.as_object().unwrap() {
        portcullis[k] = v.clone();
    }
    Gate::new(
        Config::from_inputs(&Inputs {
            portcullis: Some(portcullis),
            oidc_client_secret: client_secret.map(String::from),
            session_secret: Some(SECRET.into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap(),
    )
}

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead::of(method, url, headers)
}

/// The fields of a form posted to the issuer.
fn form_of(request: &HttpRequest) -> HashMap<String, String> {
    let body = request.body.as_deref().unwrap_or_default();
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn navigate(url: &str, cookie: &str) -> RequestHead {
    request("GET", url, &[("accept", "text/html"), ("cookie", cookie)])
}

struct World {
    gate: Gate,
    store: std::rc::Rc<MemoryStore>,
    issuer: FakeIssuer,
    /// The persons' objects; absent (no `PEOPLE` binding) unless a test binds them.
    people: FakePeople,
}

impl World {
    /// The default configuration, a confidential client.
    fn plain() -> Self {
        Self::new(json!({}), Some("s"))
    }

    fn new(extra: Value, client_secret: Option<&str>) -> Self {
        Self {
            gate: gate(extra, client_secret),
            store: std::rc::Rc::new(MemoryStore::default()),
            issuer: FakeIssuer::default(),
            people: FakePeople::absent(),
        }
    }

    fn handle(&self, head: &RequestHead) -> Handled {
        self.handle_at(head, NOW).0
    }

    /// Handles a request at `now`; also returns the background tasks it scheduled.
    fn handle_at(&self, head: &RequestHead, now: u64) -> (Handled, Vec<Task>) {
        self.people.now.set(now);
        let io = IoParts::new(&*self.store, &self.issuer, &RustCrypto, &SystemRandom)
            .with_people(&self.people);
        let route = self.gate.route(head);
        let mut handled = pollster::block_on(self.gate.handle(head, route, &io, now));
        let tasks = std::mem::take(&mut handled.tasks);
        (handled, tasks)
    }

    /// Runs background tasks as the edge would after the response.
    fn run(&self, tasks: Vec<Task>, now: u64) -> Vec<String> {
        self.people.now.set(now);
        let io = IoParts::new(&*self.store, &self.issuer, &RustCrypto, &SystemRandom)
            .with_people(&self.people);
        tasks
            .into_iter()
            .flat_map(|t| pollster::block_on(self.gate.run(t, &io, now)))
            .collect()
    }

    /// Handles `head` at `now` and runs what it left for after the response; returns
    /// what that logged.
    fn after(&self, head: &RequestHead, now: u64) -> Vec<String> {
        let (_, tasks) = self.handle_at(head, now);
        self.run(tasks, now)
    }

    /// The groups passed to the app for `head` at `now`; `None` when it is not proxied.
    fn groups_at(&self, head: &RequestHead, now: u64) -> Option<String> {
        proxied_groups(self.handle_at(head, now).0)
    }

    fn reply(&self, head: &RequestHead) -> Reply {
        self.reply_at(head, NOW)
    }

    /// A browser opens `url` with `cookie`.
    fn open(&self, url: &str, cookie: &str) -> Reply {
        self.reply(&navigate(url, cookie))
    }

    /// Whether the request is let through to the app.
    fn proxied(&self, head: &RequestHead) -> bool {
        matches!(self.handle(head).outcome, Outcome::Proxy(_))
    }

    /// Another isolate (a fresh gate, reading KV on every request) on the same store.
    fn another_isolate(&self) -> World {
        World {
            gate: gate(json!({ "session_cache": "0s" }), Some("s")),
            store: self.store.clone(),
            issuer: FakeIssuer::default(),
            people: self.people.clone(),
        }
    }

    fn reply_at(&self, head: &RequestHead, now: u64) -> Reply {
        match self.handle_at(head, now).0.outcome {
            Outcome::Reply(r) => r,
            Outcome::Proxy(p) => panic!("expected a reply, got a proxy plan to {}", p.url),
        }
    }
}

fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `name=value` of the first Set-Cookie whose name starts with `prefix`.
fn cookie_pair(reply: &Reply, prefix: &str) -> String {
    set_cookies(reply)
        .into_iter()
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie in {:?}", reply.headers))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Runs a login from `start` (a navigation) through the fake issuer; returns the callback reply.
fn complete_login(w: &World, start: &Reply) -> Reply {
    assert_eq!(start.status, 303);
    let login_cookie = cookie_pair(start, "__Host-portcullis-login-");
    let (code, state) = w.issuer.authorize(start.header("location").unwrap());
    let redirect_uri = w.issuer.codes.borrow()[&code].2.clone();
    w.open(
        &format!("{redirect_uri}?code={code}&state={state}"),
        &login_cookie,
    )
}

#[test]
fn signing_in_again_ends_the_session_the_browser_carried() {
    let (w, old) = signed_in_world();
    assert!(w.proxied(&api_get(&old)));
    // "Sign in as someone else" (or again) from the same browser.
    let start = w.open(
        "https://photos.example.com/.portcullis/login?switch=1",
        &old,
    );
    let login_cookie = cookie_pair(&start, "__Host-portcullis-login-");
    let (code, state) = w.issuer.authorize(start.header("location").unwrap());
    let redirect_uri = w.issuer.codes.borrow()[&code].2.clone();
    let (handled, _) = w.handle_at(
        &navigate(
            &format!("{redirect_uri}?code={code}&state={state}"),
            &format!("{old}; {login_cookie}"),
        ),
        NOW,
    );
    let Outcome::Reply(done) = handled.outcome else {
        panic!("a reply")
    };
    assert_eq!(done.status, 303);
    let new = cookie_pair(&done, "__Host-portcullis-session=");
    assert_ne!(new, old);
    assert!(
        handled.log.iter().any(|l| l.contains("new_login")),
        "{:?}",
        handled.log
    );
    assert_eq!(w.reply(&api_get(&old)).status, 401, "the old session ended");
    assert!(w.proxied(&api_get(&new)));
}

#[test]
fn login_creates_a_session_and_the_session_is_proxied() {
    let w = World::new(json!({}), Some("s3cret"));
    let start = w.open("https://photos.example.com/albums?x=1", "");
    assert_eq!(
        w.store.writes(),
        0,
        "nothing written before the issuer vouches"
    );
    let done = complete_login(&w, &start);
    assert_eq!(done.status, 303);
    assert_eq!(
        done.header("location"),
        Some("https://photos.example.com/albums?x=1")
    );
    assert_eq!(
        w.store.writes(),
        3,
        "the session, its user index and its sid index"
    );
    let records = w.store.records.borrow();
    let (key, (_, ttl, _)) = records
        .iter()
        .find(|(k, _)| k.starts_with("session:"))
        .unwrap();
    assert_eq!(*ttl, 7 * 86_400, "KV TTL is the session lifetime");
    assert!(records.contains_key(&format!(
        "sid:{}:{}",
        b64url(&sha256(b"op-sid")),
        &key["session:".len()..]
    )));
    drop(records);
    // PKCE verifier and client authentication reached the token endpoint.
    let token_request = w.issuer.token_requests.borrow()[0].clone();
    assert!(token_request
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));

    let session = cookie_pair(&done, "__Host-portcullis-session=");
    match w.handle(&photos_get(&session)).outcome {
        Outcome::Proxy(plan) => {
            assert!(plan
                .set
                .contains(&("x-auth-request-user", "alice@example.com".into())));
            assert!(plan
                .set
                .contains(&("x-auth-request-groups", "family".into())));
        }
        Outcome::Reply(r) => panic!("not proxied: {} {}", r.status, r.body),
    }
}

#[test]
fn public_clients_authenticate_with_pkce_alone() {
    let w = World::new(json!({}), None);
    let start = w.open("https://photos.example.com/", "");
    assert_eq!(complete_login(&w, &start).status, 303);
    let token_request = w.issuer.token_requests.borrow()[0].clone();
    assert!(token_request
        .headers
        .iter()
        .all(|(k, _)| k != "authorization"));
    assert!(token_request.body.unwrap().contains("client_id=portcullis"));
}

#[test]
fn cookie_domain_shares_the_session_cookie() {
    let w = World::new(json!({ "cookie_domain": "example.com" }), Some("s"));
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    let cookie = set_cookies(&done)
        .into_iter()
        .find(|c| c.starts_with("__Secure-portcullis-session="))
        .unwrap()
        .to_string();
    assert!(cookie.contains("Domain=example.com"), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // The same cookie opens the other app.
    let pair = cookie.split(';').next().unwrap();
    let on_sonarr = w.handle(&request(
        "GET",
        "https://sonarr.example.com/",
        &[("cookie", pair)],
    ));
    assert!(matches!(on_sonarr.outcome, Outcome::Proxy(_)));
}

#[test]
fn auth_host_does_every_login_on_one_host() {
    let w = World::new(
        json!({ "cookie_domain": "example.com", "auth_host": "auth.example.com" }),
        Some("s"),
    );
    let start = w.open("https://photos.example.com/albums", "");
    assert_eq!(start.status, 303);
    let to_auth = Url::parse(start.header("location").unwrap()).unwrap();
    assert_eq!(to_auth.host_str(), Some("auth.example.com"));
    assert_eq!(to_auth.path(), "/.portcullis/login");
    assert_eq!(
        to_auth.query_pairs().find(|(k, _)| k == "rd").unwrap().1,
        "https://photos.example.com/albums"
    );
    assert!(
        set_cookies(&start).is_empty(),
        "no login state on the app host"
    );

    let at_auth = w.open(to_auth.as_str(), "");
    let authorize = Url::parse(at_auth.header("location").unwrap()).unwrap();
    let redirect_uri = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        redirect_uri,
        "https://auth.example.com/.portcullis/callback"
    );
    let done = complete_login(&w, &at_auth);
    assert_eq!(
        done.header("location"),
        Some("https://photos.example.com/albums")
    );
    assert!(
        set_cookies(&done)
            .iter()
            .any(|c| c.starts_with("__Secure-portcullis-session=")
                && c.contains("Domain=example.com"))
    );

    // Only Portcullis's endpoints live on the auth host.
    assert_eq!(w.open("https://auth.example.com/", "").status, 404);
}

#[test]
fn self_service_lives_only_on_the_auth_host() {
    let w = World::new(
        json!({ "cookie_domain": "example.com", "auth_host": "auth.example.com" }),
        Some("s"),
    );
    let at_auth = w.open(
        "https://auth.example.com/.portcullis/login?rd=https%3A%2F%2Fphotos.example.com%2F",
        "",
    );
    let done = complete_login(&w, &at_auth);
    let cookie = cookie_pair(&done, "__Secure-portcullis-session=");
    // An app host sends a person to the auth host, and serves none of the forms.
    let there = w.open(
        "https://photos.example.com/.portcullis/account?x=1",
        &cookie,
    );
    assert_eq!(there.status, 303);
    assert_eq!(
        there.header("location"),
        Some("https://auth.example.com/.portcullis/account?x=1")
    );
    for path in ["sessions", "app-passwords", "app-passwords/revoke"] {
        let post = request(
            "POST",
            &format!("https://photos.example.com/.portcullis/{path}"),
            &[("cookie", &cookie)],
        );
        assert_eq!(w.reply(&post).status, 404, "{path}");
    }
    // Signing out stays available everywhere.
    assert_eq!(
        w.reply(&request(
            "GET",
            "https://photos.example.com/.portcullis/logout",
            &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
        ))
        .status,
        303
    );
}

#[test]
fn a_self_service_form_is_taken_only_from_its_own_origin() {
    let (w, cookie) = signed_in_world();
    // A second session, so the page has a form to sign it out.
    let start = w.open("https://photos.example.com/", "");
    complete_login(&w, &start);
    let page = w.open("https://photos.example.com/.portcullis/account", &cookie);
    assert_eq!(page.status, 200);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let form = |site: Option<&str>| {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        if let Some(site) = site {
            headers.push(("sec-fetch-site", site));
            headers.push(("sec-fetch-mode", "navigate"));
        }
        let mut head = request(
            "POST",
            "https://photos.example.com/.portcullis/sessions",
            &headers,
        );
        head.body = Some(format!("csrf={csrf}&others=1"));
        w.reply(&head).status
    };
    assert_eq!(
        form(Some("same-site")),
        403,
        "an app's page on a sibling host"
    );
    assert_eq!(form(Some("cross-site")), 403);
    assert_eq!(form(Some("same-origin")), 303);
    assert_eq!(form(None), 303, "an old client without Sec-Fetch-*");
}

#[test]
fn the_account_page_lists_app_passwords_only_where_an_app_takes_them() {
    let (w, cookie) = signed_in_world();
    let lists = w.store.lists();
    let page = w.open("https://photos.example.com/.portcullis/account", &cookie);
    assert_eq!(page.status, 200);
    assert_eq!(
        w.store.lists() - lists,
        1,
        "the sessions only: no app takes app passwords"
    );
}

#[test]
fn a_token_for_another_login_is_refused_and_nothing_is_stored() {
    let w = World::plain();
    *w.issuer.overrides.borrow_mut() = json!({ "nonce": "someone-elses-nonce" });
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    assert_eq!(done.status, 400);
    assert!(done.body.contains("Sign-in did not complete"));
    assert_eq!(w.store.writes(), 0);
    assert!(set_cookies(&done)
        .iter()
        .any(|c| c.starts_with("__Host-portcullis-login-") && c.contains("Max-Age=0")));
}

#[test]
fn a_wrong_pkce_verifier_is_refused_by_the_issuer() {
    // A login cookie from one login cannot redeem the code of another.
    let w = World::plain();
    let first = w.open("https://photos.example.com/", "");
    let second = w.open("https://photos.example.com/", "");
    let (code, _) = w.issuer.authorize(first.header("location").unwrap());
    let (_, second_state) = w.issuer.authorize(second.header("location").unwrap());
    let cookie = cookie_pair(&second, "__Host-portcullis-login-");
    let reply = w.open(
        &format!(
            "https://photos.example.com/.portcullis/callback?code={code}&state={second_state}"
        ),
        &cookie,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(w.store.writes(), 0);
}

#[test]
fn abandoned_logins_do_not_pile_up_cookies() {
    let w = World::plain();
    let cookies: Vec<String> = (0..MAX_PENDING_LOGINS)
        .map(|i| format!("__Host-portcullis-login-{i:0>16}=x"))
        .collect();
    let reply = w.open("https://photos.example.com/", &cookies.join("; "));
    let cleared = set_cookies(&reply)
        .iter()
        .filter(|c| c.contains("Max-Age=0"))
        .count();
    assert_eq!(cleared, MAX_PENDING_LOGINS);
}

#[test]
fn the_issuer_mix_up_parameter_must_name_our_issuer() {
    let w = World::plain();
    let start = w.open("https://photos.example.com/", "");
    let cookie = cookie_pair(&start, "__Host-portcullis-login-");
    let (code, state) = w.issuer.authorize(start.header("location").unwrap());
    let reply = w.open(
        &format!("https://photos.example.com/.portcullis/callback?code={code}&state={state}&iss=https%3A%2F%2Fevil.example.org"),
        &cookie,
    );
    assert_eq!(reply.status, 400);
}

#[test]
fn methods_outside_the_endpoints_contract_are_refused() {
    let w = World::plain();
    for (method, endpoint) in [("POST", "callback"), ("DELETE", "me")] {
        let url = format!("https://photos.example.com/.portcullis/{endpoint}");
        assert_eq!(
            w.reply(&request(method, &url, &[])).status,
            405,
            "{method} {url}"
        );
    }
}

fn proxied_groups(handled: Handled) -> Option<String> {
    match handled.outcome {
        Outcome::Proxy(plan) => plan
            .set
            .iter()
            .find(|(k, _)| *k == "x-auth-request-groups")
            .map(|(_, v)| v.clone()),
        Outcome::Reply(_) => None,
    }
}

/// Signs in with `revalidate_every = 15m`; returns the session cookie pair.
/// A world that re-validates every 15 minutes and reads KV on every request, with a
/// signed-in session cookie.
fn revalidating_world() -> (World, String) {
    let w = World::new(
        json!({ "revalidate_every": "15m", "session_cache": "0s" }),
        Some("s"),
    );
    let cookie = revalidating_login(&w);
    (w, cookie)
}

fn revalidating_login(w: &World) -> String {
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(w, &start);
    cookie_pair(&done, "__Host-portcullis-session=")
}

#[test]
fn the_refresh_token_is_stored_encrypted() {
    let w = World::new(
        json!({ "revalidate_every": "15m", "session_cache": "0s" }),
        Some("s"),
    );
    let _ = revalidating_login(&w);
    let records = w.store.records.borrow();
    let (_, (record, _, _)) = records
        .iter()
        .find(|(k, _)| k.starts_with("session:"))
        .unwrap();
    assert!(!record.contains("rt-0"), "never in the clear: {record}");
    let session: Session = serde_json::from_str(record).unwrap();
    assert!(session.refresh.is_some());
}

#[test]
fn due_sessions_are_revalidated_after_the_response_and_pick_up_new_claims() {
    let (w, cookie) = revalidating_world();
    let head = photos_get(&cookie);
    let (fresh, tasks) = w.handle_at(&head, NOW + 60);
    assert!(tasks.is_empty(), "not due yet");
    assert_eq!(proxied_groups(fresh).as_deref(), Some("family"));

    *w.issuer.overrides.borrow_mut() = json!({ "groups": ["family", "admins"] });
    let writes = w.store.writes();
    let (served, tasks) = w.handle_at(&head, NOW + 16 * 60);
    assert_eq!(
        proxied_groups(served).as_deref(),
        Some("family"),
        "served at once, with what it had"
    );
    assert_eq!(tasks.len(), 1);
    w.run(tasks, NOW + 16 * 60);
    assert_eq!(*w.issuer.refreshes.borrow(), 1);
    assert_eq!(w.store.writes() - writes, 1, "one KV write: the record");
    let (after, tasks) = w.handle_at(&head, NOW + 17 * 60);
    assert_eq!(
        proxied_groups(after).as_deref(),
        Some("family,admins"),
        "the new groups apply"
    );
    assert!(tasks.is_empty(), "validated again: not due");
}

#[test]
fn a_refresh_keeps_the_logins_id_token_for_the_logout_hint() {
    let (w, cookie) = revalidating_world();
    let id_token = |w: &World| -> (String, u64) {
        let records = w.store.records.borrow();
        let (_, (record, _, _)) = records
            .iter()
            .find(|(k, _)| k.starts_with("session:"))
            .unwrap();
        let session: serde_json::Value = serde_json::from_str(record).unwrap();
        (
            session["id_token"].as_str().unwrap().to_string(),
            session["validated"].as_u64().unwrap(),
        )
    };
    let (at_login, validated) = id_token(&w);
    w.after(&photos_get(&cookie), NOW + 16 * 60);
    let (after, revalidated) = id_token(&w);
    assert!(revalidated > validated, "the refresh happened");
    assert_eq!(
        after, at_login,
        "the hint is the login's ID token, not the refresh's"
    );
}

#[test]
fn a_refresh_without_an_id_token_takes_the_claims_from_userinfo() {
    let (w, cookie) = userinfo_revalidating_world();
    w.issuer.refresh_without_id_token.set(true);
    // The issuer removes alice from "family"; its UserInfo says so (and nothing of email).
    *w.issuer.userinfo.borrow_mut() =
        Some((200, json!({ "sub": "alice-1", "groups": ["guests"] })));
    let asked = w.issuer.userinfo_requests.borrow().len();
    let head = photos_get(&cookie);
    w.after(&head, NOW + 16 * 60);
    assert_eq!(
        w.issuer.userinfo_requests.borrow().len(),
        asked + 1,
        "asked once"
    );
    assert_eq!(
        w.groups_at(&head, NOW + 17 * 60).as_deref(),
        Some("guests"),
        "the group change is seen"
    );
    let (after, _) = w.handle_at(&api_get(&cookie), NOW + 17 * 60);
    let Outcome::Proxy(plan) = after.outcome else {
        panic!("proxied")
    };
    assert!(
        plan.set
            .iter()
            .any(|(n, v)| *n == "x-auth-request-email" && v == "alice@example.com"),
        "what UserInfo did not carry stays: {:?}",
        plan.set
    );
}

#[test]
fn a_refresh_without_an_id_token_or_userinfo_says_so_once() {
    let (w, cookie) = revalidating_world();
    w.issuer.refresh_without_id_token.set(true);
    let head = photos_get(&cookie);
    let log = w.after(&head, NOW + 16 * 60);
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("claims_not_refreshed"))
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        w.groups_at(&head, NOW + 17 * 60).as_deref(),
        Some("family"),
        "kept as it was"
    );
    let log = w.after(&head, NOW + 33 * 60);
    assert!(
        !log.iter().any(|l| l.contains("claims_not_refreshed")),
        "once: {log:?}"
    );
}

#[test]
fn long_overdue_sessions_are_revalidated_before_the_response() {
    let (w, cookie) = revalidating_world();
    *w.issuer.overrides.borrow_mut() = json!({ "groups": ["admins"] });
    let head = photos_get(&cookie);
    let (served, tasks) = w.handle_at(&head, NOW + 31 * 60);
    assert!(tasks.is_empty());
    assert_eq!(proxied_groups(served).as_deref(), Some("admins"));
}

#[test]
fn a_refused_refresh_ends_the_session() {
    let (w, cookie) = revalidating_world();
    *w.issuer.refresh_token.borrow_mut() = None; // the grant is revoked at the issuer
    let head = api_get(&cookie);
    let log = w.after(&head, NOW + 16 * 60);
    assert!(
        log.iter()
            .any(|l| l.contains("revalidation_failed") && l.contains("invalid_grant")),
        "{log:?}"
    );
    let (after, _) = w.handle_at(&head, NOW + 16 * 60 + 1);
    assert!(matches!(after.outcome, Outcome::Reply(r) if r.status == 401));
    let keys: Vec<String> = w.store.records.borrow().keys().cloned().collect();
    assert!(
        keys.iter().all(|k| k.starts_with("revoked:")),
        "record and index keys are gone: {keys:?}"
    );
    assert_eq!(keys.len(), 1, "a tombstone stays: {keys:?}");
}

#[test]
fn concurrent_requests_refresh_once() {
    let (w, cookie) = revalidating_world();
    let head = photos_get(&cookie);
    // Many requests arrive before the first background refresh runs; each schedules one.
    let tasks: Vec<Task> = (0..5)
        .flat_map(|_| w.handle_at(&head, NOW + 16 * 60).1)
        .collect();
    assert_eq!(tasks.len(), 5);
    w.run(tasks, NOW + 16 * 60);
    assert_eq!(
        *w.issuer.refreshes.borrow(),
        1,
        "the others find the session already re-validated"
    );
    let (after, _) = w.handle_at(&head, NOW + 16 * 60 + 1);
    assert!(
        matches!(after.outcome, Outcome::Proxy(_)),
        "the session lives on"
    );
}

#[test]
fn a_cross_site_cookieless_logout_post_clears_nothing() {
    let w = World::plain();
    let logout = "https://photos.example.com/.portcullis/logout";
    let cross = w.reply(&request(
        "POST",
        logout,
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example.org"),
        ],
    ));
    assert_eq!(cross.status, 403, "the confirmation page");
    assert!(cross.body.contains("csrf") || cross.body.contains("Sign out"));
    assert!(set_cookies(&cross).is_empty(), "no cookie is cleared");
    let old_browser = w.reply(&request(
        "POST",
        logout,
        &[("origin", "https://evil.example.org")],
    ));
    assert!(set_cookies(&old_browser).is_empty());
    // From this site (or a client that is no browser), the sign-out goes through.
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("origin", "https://photos.example.com")],
        vec![],
    ] {
        let same = w.reply(&request("POST", logout, &headers));
        assert_eq!(same.status, 303, "{headers:?}");
        assert!(set_cookies(&same)
            .iter()
            .any(|c| c.starts_with("__Host-portcullis-session=;")));
    }
}

#[test]
fn the_issuers_error_is_shown_only_for_a_pending_login_and_only_as_oauth_allows() {
    let w = World::plain();
    // A crafted link without a login in progress: a generic page, nothing from the URL.
    let crafted = w.open(
        "https://photos.example.com/.portcullis/callback?state=abcdefghijklmnopqrst&error=access_denied&error_description=Call%20%2B1-555-0100%20to%20restore%20your%20account",
        "",
    );
    assert_eq!(crafted.status, 400);
    assert!(!crafted.body.contains("555"), "{}", crafted.body);
    assert!(!crafted.body.contains("access_denied"));
    // A real pending login: the error is shown, restricted to RFC 6749's characters.
    let start = w.open("https://photos.example.com/", "");
    let cookie = cookie_pair(&start, "__Host-portcullis-login-");
    let (_, state) = w.issuer.authorize(start.header("location").unwrap());
    let long = "x".repeat(500);
    let reply = w.open(
        &format!("https://photos.example.com/.portcullis/callback?state={state}&error=access_denied&error_description=no%22%5C%C3%A9%0A{long}"),
        &cookie,
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("access_denied"));
    assert!(!reply.body.contains("&quot;") && !reply.body.contains('\\'));
    assert!(!reply.body.contains(&"x".repeat(201)), "shortened");
    assert!(reply.body.contains(&format!("no{}", "x".repeat(190))));
}

#[test]
fn a_dead_cookie_costs_one_kv_read_a_minute() {
    let (w, cookie) = signed_in_world();
    // The session ends elsewhere (another location's revoke); the browser keeps the cookie.
    w.store.records.borrow_mut().clear();
    let reads = w.store.reads();
    for i in 0..5 {
        assert_eq!(w.reply_at(&api_get(&cookie), NOW + i).status, 401);
    }
    assert_eq!(w.store.reads() - reads, 1, "remembered as missing");
    assert_eq!(w.reply_at(&api_get(&cookie), NOW + 61).status, 401);
    assert_eq!(w.store.reads() - reads, 2, "asked again after a minute");
}

#[test]
fn logout_with_a_dead_cookie_costs_no_delete() {
    let w = World::plain();
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    let session = cookie_pair(&done, "__Host-portcullis-session=");
    // The session ends elsewhere (another location's revoke); this cookie is now dead.
    w.store.records.borrow_mut().clear();
    *w.store.deletes.borrow_mut() = 0;
    let reply = w.reply(&request(
        "POST",
        "https://photos.example.com/.portcullis/logout",
        &[("cookie", &session), ("sec-fetch-site", "same-origin")],
    ));
    assert_eq!(
        reply.status, 403,
        "a POST without the CSRF token is confirmed first"
    );
    let logout = w.reply(&same_site_logout(&session));
    assert_eq!(logout.status, 303);
    assert_eq!(w.store.deletes(), 0, "nothing existed, nothing deleted");
}

#[test]
fn a_tossed_second_session_cookie_signs_out_and_is_cleared() {
    let w = World::new(json!({ "cookie_domain": "example.com" }), Some("s"));
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    let session = cookie_pair(&done, "__Secure-portcullis-session=");
    let head = |cookie: &str| {
        request(
            "GET",
            "https://photos.example.com/x",
            &[("cookie", cookie), ("accept", "application/json")],
        )
    };
    assert!(w.proxied(&head(&session)));
    // A sibling subdomain planted its own copy: which one is meant is unknown.
    for tossed in [
        format!("__Secure-portcullis-session=planted; {session}"),
        format!("{session}; __Secure-portcullis-session=planted"),
    ] {
        let reply = w.reply(&head(&tossed));
        assert_eq!(reply.status, 401, "treated as signed out");
        let cleared = set_cookies(&reply);
        assert!(cleared
            .iter()
            .any(|c| c.starts_with("__Secure-portcullis-session=;")
                && c.contains("Domain=example.com")));
        assert!(cleared
            .iter()
            .any(|c| c.starts_with("__Secure-portcullis-session=;") && !c.contains("Domain")));
    }
}

#[test]
fn an_issuer_without_offline_access_gets_no_such_scope_and_sessions_last() {
    let w = World::new(
        json!({ "revalidate_every": "15m", "session_cache": "0s" }),
        Some("s"),
    );
    *w.issuer.scopes_supported.borrow_mut() = Some(json!(["openid", "profile", "email", "groups"]));
    w.issuer.no_refresh_token.set(true);
    let start = w.open("https://photos.example.com/", "");
    let location = start.header("location").unwrap().to_string();
    assert!(!location.contains("offline_access"), "{location}");
    let (code, state) = w.issuer.authorize(&location);
    let login_cookie = cookie_pair(&start, "__Host-portcullis-login-");
    let redirect_uri = w.issuer.codes.borrow()[&code].2.clone();
    let (done, _) = w.handle_at(
        &navigate(
            &format!("{redirect_uri}?code={code}&state={state}"),
            &login_cookie,
        ),
        NOW,
    );
    assert!(
        done.log.iter().any(|l| l.contains("no_refresh_token")),
        "{:?}",
        done.log
    );
    let Outcome::Reply(done) = done.outcome else {
        panic!("a redirect")
    };
    let session = cookie_pair(&done, "__Host-portcullis-session=");
    let head = photos_get(&session);
    // Long past revalidate_every, the session is kept (until its lifetime ends).
    let (served, tasks) = w.handle_at(&head, NOW + 3 * 3600);
    assert!(tasks.is_empty());
    assert!(matches!(served.outcome, Outcome::Proxy(_)));
    // An issuer that lists offline_access (or no scopes at all) is asked for it.
    let w = World::new(json!({ "revalidate_every": "15m" }), Some("s"));
    let start = w.open("https://photos.example.com/", "");
    assert!(start.header("location").unwrap().contains("offline_access"));
}

#[test]
fn a_revoke_during_a_refresh_sticks() {
    let (w, cookie) = revalidating_world();
    let hash = {
        let records = w.store.records.borrow();
        let key = records.keys().find(|k| k.starts_with("session:")).unwrap();
        crate::store::keys::SessionHash::parse(key.trim_start_matches("session:")).unwrap()
    };
    // While the refresh is at the issuer, another location revokes the session.
    let store = w.store.clone();
    let revoked_hash = hash.clone();
    *w.issuer.during_refresh.borrow_mut() = Some(Box::new(move || {
        let records = crate::session::registry::Records(&*store);
        let revoke = crate::grant::tombstone::revoke_stored(
            &records,
            &crate::people::Unbound,
            &revoked_hash,
            None,
            NOW,
        );
        let (_, recorded) = pollster::block_on(revoke).unwrap();
        assert_eq!(recorded.tombstoned, crate::grant::Tombstoned::Yes);
    }));
    let head = api_get(&cookie);
    let (_, tasks) = w.handle_at(&head, NOW + 16 * 60);
    assert_eq!(tasks.len(), 1, "the refresh runs after the response");
    w.run(tasks, NOW + 16 * 60);
    assert_eq!(
        *w.issuer.refreshes.borrow(),
        1,
        "the refresh did reach the issuer"
    );
    let keys: Vec<String> = w.store.records.borrow().keys().cloned().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(&*hash) && !k.starts_with("revoked:")),
        "the session was not written back: {keys:?}"
    );
    let (after, _) = w.handle_at(&head, NOW + 16 * 60 + 1);
    assert!(matches!(after.outcome, Outcome::Reply(r) if r.status == 401));
}

#[test]
fn revoking_a_session_revokes_its_grant_at_the_issuer() {
    let w = World::new(json!({ "revalidate_every": "15m" }), Some("s"));
    w.issuer.revocation.set(true);
    let cookie = revalidating_login(&w);
    assert_eq!(w.issuer.refresh_token.borrow().as_deref(), Some("rt-0"));
    let logout = w.reply(&same_site_logout(&cookie));
    assert_eq!(logout.status, 303);
    assert_eq!(*w.issuer.revoked_tokens.borrow(), ["rt-0"]);
    assert_eq!(
        *w.issuer.refresh_token.borrow(),
        None,
        "the grant ended at the issuer"
    );
}

#[test]
fn an_abandoned_refresh_does_not_stop_re_validation_for_good() {
    let (w, cookie) = revalidating_world();
    let head = api_get(&cookie);
    let due = NOW + 16 * 60;
    let (_, tasks) = w.handle_at(&head, due);
    assert_eq!(tasks.len(), 1);
    // The edge starts the refresh; the issuer hangs and the work is abandoned (the
    // future is dropped after its first poll, as when waitUntil is cut short).
    w.issuer.stall_refresh.set(true);
    {
        let io =
            IoParts::new(&*w.store, &w.issuer, &RustCrypto, &SystemRandom).with_people(&w.people);
        let task = tasks.into_iter().next().unwrap();
        let mut run = std::pin::pin!(w.gate.run(task, &io, due));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(run.as_mut().poll(&mut cx).is_pending());
    }
    w.issuer.stall_refresh.set(false);
    // Meanwhile the session counts as being refreshed...
    let (_, tasks) = w.handle_at(&head, due + 1);
    assert!(tasks.is_empty());
    // ...but not forever: later the session is re-validated again.
    let (_, tasks) = w.handle_at(&head, due + 120);
    assert_eq!(tasks.len(), 1, "the marker expired");
}

#[test]
fn audit_lines_from_the_sessions_page_are_kept() {
    let (w, cookie) = revalidating_world();
    *w.issuer.refresh_token.borrow_mut() = None; // the grant is revoked at the issuer
    let page = navigate("https://photos.example.com/.portcullis/account", &cookie);
    // Long overdue: re-validated before the answer, and refused.
    let (handled, _) = w.handle_at(&page, NOW + 31 * 60);
    assert!(
        logged(&handled.log, "revalidation_failed"),
        "{:?}",
        handled.log
    );
}

/// A sign-out link followed on this site (GET, `Sec-Fetch-Site: same-origin`).
fn same_site_logout(cookie: &str) -> RequestHead {
    request(
        "GET",
        "https://photos.example.com/.portcullis/logout",
        &[("cookie", cookie), ("sec-fetch-site", "same-origin")],
    )
}

/// A plain GET to the photos app with this cookie.
fn photos_get(cookie: &str) -> RequestHead {
    request("GET", "https://photos.example.com/x", &[("cookie", cookie)])
}

/// An API call (JSON, never redirected) to the photos app with this cookie.
fn api_get(cookie: &str) -> RequestHead {
    request(
        "GET",
        "https://photos.example.com/x",
        &[("cookie", cookie), ("accept", "application/json")],
    )
}

/// Signs in on a fresh world (KV read on every request); returns it and the cookie pair.
fn signed_in_world() -> (World, String) {
    let w = World::new(json!({ "session_cache": "0s" }), Some("s"));
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    let cookie = cookie_pair(&done, "__Host-portcullis-session=");
    (w, cookie)
}

/// Signed in, then KV fails the `operations` named: the world, the session cookie, and an
/// API request made with it.
fn signed_in_then_kv_fails(operations: &[&'static str]) -> (World, String, RequestHead) {
    let (w, cookie) = signed_in_world();
    let api = api_get(&cookie);
    w.store.failing.borrow_mut().extend(operations);
    (w, cookie, api)
}

#[test]
fn kv_failing_on_read_refuses_with_503_and_keeps_the_session() {
    let (w, cookie, api) = signed_in_then_kv_fails(&["get"]);
    let reply = w.reply(&api);
    assert_eq!(reply.status, 503);
    assert!(
        reply.body.contains("session_store_unavailable"),
        "{}",
        reply.body
    );
    let page = w.open("https://photos.example.com/x", &cookie);
    assert_eq!(page.status, 503);
    assert!(page.body.contains("Sessions are unavailable"));
    assert!(!page.body.contains("simulated"), "no internals on the page");
    // KV is back: the session was never lost.
    w.store.failing.borrow_mut().clear();
    assert!(w.proxied(&api));
}

#[test]
fn kv_failing_on_write_fails_the_login_cleanly() {
    let w = World::plain();
    let start = w.open("https://photos.example.com/", "");
    w.store.failing.borrow_mut().push("put");
    let done = complete_login(&w, &start);
    assert_eq!(done.status, 503);
    assert!(done.body.contains("Sessions are unavailable"));
    assert!(
        !set_cookies(&done)
            .iter()
            .any(|c| c.starts_with("__Host-portcullis-session=") && !c.contains("Max-Age=0")),
        "no session cookie for a session that was not stored"
    );
}

#[test]
fn kv_failing_on_delete_still_revokes() {
    let (w, cookie, api) = signed_in_then_kv_fails(&["delete"]);
    let logout = w.reply(&same_site_logout(&cookie));
    assert_eq!(logout.status, 303, "the revocation took effect");
    // Refused here, and by any other isolate reading KV (a fresh gate on the same store).
    assert_eq!(w.reply(&api).status, 401);
    let elsewhere = w.another_isolate();
    assert_eq!(
        elsewhere.reply(&api).status,
        401,
        "the record was overwritten"
    );
    // With writes failing too, the revoke is refused — and this isolate still refuses it.
    let (w, cookie, api) = signed_in_then_kv_fails(&["delete", "put"]);
    let logout = w.reply(&same_site_logout(&cookie));
    assert_eq!(logout.status, 503);
    assert_eq!(
        w.reply(&api).status,
        401,
        "never kept because a quota ran out"
    );
}

#[test]
fn kv_writes_failing_still_revoke_everywhere() {
    // The Free plan's 1,000 writes a day spent: no tombstone can be written, but the record
    // and its index keys are deleted (deletes have their own quota), so sign-out works.
    let (w, cookie, api) = signed_in_then_kv_fails(&["put"]);
    let (handled, _) = w.handle_at(&same_site_logout(&cookie), NOW);
    let Outcome::Reply(logout) = handled.outcome else {
        panic!("a reply")
    };
    assert_eq!(logout.status, 303, "signed out, not a 503");
    assert!(
        logged(&handled.log, "revoked_without_tombstone"),
        "said in the log: {:?}",
        handled.log
    );
    let elsewhere = w.another_isolate();
    assert_eq!(
        elsewhere.reply(&api).status,
        401,
        "refused by every isolate"
    );
    assert!(
        !w.store
            .records
            .borrow()
            .keys()
            .any(|k| k.starts_with("session:") || k.starts_with("user:")),
        "record and index keys gone: {:?}",
        w.store.records.borrow().keys()
    );
}

#[test]
fn issuer_faults_give_clear_pages_and_keep_sessions() {
    let (w, cookie) = signed_in_world();
    let app = api_get(&cookie);
    for fault in ["500", "garbage", "timeout"] {
        *w.issuer.discovery_fault.borrow_mut() = fault;
        // A fresh gate has no cached discovery: a new login cannot start.
        let cold = World {
            gate: gate(json!({}), Some("s")),
            store: w.store.clone(),
            issuer: FakeIssuer::default(),
            people: w.people.clone(),
        };
        *cold.issuer.discovery_fault.borrow_mut() = fault;
        let start = cold.open("https://photos.example.com/", "");
        assert_eq!(start.status, 503, "{fault}");
        assert!(start.body.contains("Sign-in is unavailable"), "{fault}");
        assert!(!start.body.contains("aborted") && !start.body.contains("<html>not"));
        // Existing sessions keep working.
        assert!(w.proxied(&app), "{fault}");
    }
    *w.issuer.discovery_fault.borrow_mut() = "";
    // A garbage key set: the login is refused with a clear page, nothing is stored.
    let fresh = World::new(json!({}), Some("s"));
    fresh.issuer.jwks_garbage.set(true);
    let start = fresh.open("https://photos.example.com/", "");
    let done = complete_login(&fresh, &start);
    assert!(matches!(done.status, 400 | 503), "{}", done.status);
    assert!(done.body.contains("Sign-in"), "{}", done.body);
    assert!(!fresh.store.holds_any("session:"));
}

/// The CSRF token of the first form on a page.
fn csrf_of(page: &Reply) -> String {
    let at = page.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    page.body[at..at + page.body[at..].find('"').unwrap()].to_string()
}

/// Whether a log line mentions `what`.
fn logged(log: &[String], what: &str) -> bool {
    log.iter().any(|l| l.contains(what))
}

mod app_passwords;
mod console;
mod people;

/// A session record as an older release wrote it, stored under a fresh, validly signed ID;
/// returns the cookie pair.
fn plant_session(w: &World, record: &str) -> String {
    let id = crate::session::SessionId::generate(&SystemRandom).unwrap();
    let keys = crate::secret::SigningKeys::new(vec![SECRET.as_bytes().to_vec()]).unwrap();
    let key = crate::store::keys::session_key(&id.hash());
    w.store
        .records
        .borrow_mut()
        .insert(key, (record.to_string(), 3600, None));
    format!("__Host-portcullis-session={}", id.to_cookie_value(&keys))
}

#[test]
fn a_record_written_by_the_previous_release_is_honoured() {
    let w = World::plain();
    // Format 1 before `auth_time` existed (and before `validated`).
    let old = json!({
        "v": 1,
        "identity": { "sub": "alice-1", "email": "alice@example.com", "email_verified": true, "groups": ["family"] },
        "created": NOW - 60, "expires": NOW + 3600, "host": "photos.example.com",
        "sid": "op-sid", "id_token": "eyJ.old.token", "user_agent": "Mozilla/5.0",
    });
    let cookie = plant_session(&w, &old.to_string());
    match w.handle(&photos_get(&cookie)).outcome {
        Outcome::Proxy(plan) => assert!(plan
            .set
            .contains(&("x-auth-request-user", "alice@example.com".into()))),
        Outcome::Reply(r) => panic!("not honoured: {} {}", r.status, r.body),
    }
}

#[test]
fn a_record_in_an_unknown_or_broken_format_ends_cleanly_with_a_login() {
    let w = World::plain();
    for record in [
        json!({ "v": 0, "identity": { "sub": "a" }, "created": 1, "expires": NOW + 60, "host": "h" }).to_string(),
        json!({ "v": 2, "identity": { "sub": "a" }, "created": 1, "expires": NOW + 60, "host": "h", "new": true }).to_string(),
        json!({ "version": 1, "user": "alice" }).to_string(),
        "not json".to_string(),
        String::new(),
    ] {
        let cookie = plant_session(&w, &record);
        let nav = w.open("https://photos.example.com/albums", &cookie);
        assert_eq!(nav.status, 303, "{record}: {}", nav.body);
        assert!(nav
            .header("location")
            .is_some_and(|l| l.starts_with("https://id.example.com/authorize")));
        let api = w.reply(&api_get(&cookie));
        assert_eq!(api.status, 401, "{record}");
    }
}

/// What the proxy plan sets under `name`.
fn plan_header(handled: Handled, name: &str) -> Option<String> {
    match handled.outcome {
        Outcome::Proxy(plan) => plan
            .set
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()),
        Outcome::Reply(_) => None,
    }
}

/// An issuer that keeps the scope claims out of its ID tokens and returns them from its
/// UserInfo endpoint (OpenID Connect Core §5.4), with these groups.
fn userinfo_issuer(w: &World, sub: &str, groups: Value) {
    *w.issuer.overrides.borrow_mut() = json!({
        "email": null, "email_verified": null, "preferred_username": null, "groups": null,
    });
    *w.issuer.userinfo.borrow_mut() = Some((
        200,
        json!({
            "sub": sub, "email": "alice@example.com", "email_verified": true,
            "preferred_username": "alice", "name": "Alice", "groups": groups,
        }),
    ));
}

#[test]
fn identity_claims_the_id_token_lacks_come_from_userinfo_and_decide_access() {
    let w = World::new(
        json!({ "apps": [{ "host": "photos.example.com",
                           "allow_groups": ["admins"] }] }),
        Some("s"),
    );
    userinfo_issuer(&w, "alice-1", json!(["family", "admins"]));
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    assert_eq!(done.status, 303, "{}", done.body);
    let requests = w.issuer.userinfo_requests.borrow().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, crate::http::Method::Get);
    let cookie = cookie_pair(&done, "__Host-portcullis-session=");
    let handled = w.handle(&photos_get(&cookie));
    assert_eq!(
        plan_header(handled, "x-auth-request-groups").as_deref(),
        Some("family,admins"),
        "admitted by a group only UserInfo named"
    );
    let handled = w.handle(&photos_get(&cookie));
    assert_eq!(
        plan_header(handled, "x-auth-request-email").as_deref(),
        Some("alice@example.com")
    );
    let handled = w.handle(&photos_get(&cookie));
    assert_eq!(
        plan_header(handled, "remote-name").as_deref(),
        Some("Alice")
    );
}

#[test]
fn an_id_token_with_every_claim_costs_no_userinfo_request() {
    let w = World::plain();
    *w.issuer.userinfo.borrow_mut() = Some((200, json!({ "sub": "alice-1" })));
    *w.issuer.overrides.borrow_mut() = json!({ "name": "Alice" });
    let start = w.open("https://photos.example.com/", "");
    assert_eq!(complete_login(&w, &start).status, 303);
    assert!(w.issuer.userinfo_requests.borrow().is_empty());
}

#[test]
fn userinfo_about_someone_else_or_refused_fails_the_login_and_stores_nothing() {
    for (status, sub) in [(200, "mallory"), (401, "alice-1"), (500, "alice-1")] {
        let w = World::plain();
        userinfo_issuer(&w, sub, json!(["admins"]));
        w.issuer.userinfo.borrow_mut().as_mut().unwrap().0 = status;
        let start = w.open("https://photos.example.com/", "");
        let done = complete_login(&w, &start);
        assert!(
            done.status >= 400,
            "{status} {sub}: {} {}",
            done.status,
            done.body
        );
        assert_eq!(w.store.writes(), 0, "{status} {sub}");
        assert!(!set_cookies(&done)
            .iter()
            .any(|c| c.starts_with("__Host-portcullis-session=")));
    }
}

/// [`revalidating_world`] with an issuer that leaves the claims to UserInfo, which says
/// alice is in `family`.
fn userinfo_revalidating_world() -> (World, String) {
    let w = World::new(
        json!({ "revalidate_every": "15m", "session_cache": "0s" }),
        Some("s"),
    );
    userinfo_issuer(&w, "alice-1", json!(["family"]));
    let cookie = revalidating_login(&w);
    (w, cookie)
}

#[test]
fn a_refresh_completes_its_id_token_from_userinfo_too() {
    let (w, cookie) = userinfo_revalidating_world();
    let head = photos_get(&cookie);
    assert_eq!(w.groups_at(&head, NOW + 60).as_deref(), Some("family"));

    userinfo_issuer(&w, "alice-1", json!(["family", "admins"]));
    let (_, tasks) = w.handle_at(&head, NOW + 16 * 60);
    assert_eq!(tasks.len(), 1);
    w.run(tasks, NOW + 16 * 60);
    assert_eq!(*w.issuer.refreshes.borrow(), 1);
    assert_eq!(
        w.issuer.userinfo_requests.borrow().len(),
        2,
        "at login and at the refresh"
    );
    assert_eq!(
        w.groups_at(&head, NOW + 17 * 60).as_deref(),
        Some("family,admins")
    );
}

/// UserInfo refusing the access token a refresh has just issued (401) means the issuer no
/// longer stands behind the grant (LemonLDAP::NG answers so once the person's session there
/// has ended): the session ends, as on `invalid_grant`. UserInfo naming another person ends
/// it too. A server error or `insufficient_scope` (403) says nothing about the person: the
/// session is kept and re-validated later.
#[test]
fn a_refresh_whose_userinfo_disowns_the_grant_ends_the_session() {
    for (status, sub, ends) in [
        (401, "alice-1", true),
        (200, "mallory", true),
        (403, "alice-1", false),
        (503, "alice-1", false),
    ] {
        let (w, cookie) = userinfo_revalidating_world();
        let head = api_get(&cookie);
        userinfo_issuer(&w, sub, json!(["family"]));
        w.issuer.userinfo.borrow_mut().as_mut().unwrap().0 = status;
        let log = w.after(&head, NOW + 16 * 60);
        assert_eq!(*w.issuer.refreshes.borrow(), 1, "{status} {sub}");
        assert_eq!(
            log.iter().any(|l| l.contains("revalidation_failed")),
            ends,
            "{status} {sub}: {log:?}"
        );
        let (after, _) = w.handle_at(&head, NOW + 16 * 60 + 1);
        let refused = matches!(&after.outcome, Outcome::Reply(r) if r.status == 401);
        assert_eq!(refused, ends, "{status} {sub}");
        if !ends {
            assert_eq!(
                proxied_groups(after).as_deref(),
                Some("family"),
                "{status}: kept as it was"
            );
        }
    }
}

#[test]
fn an_issuer_taking_the_client_secret_only_in_the_form_is_answered_so_from_then_on() {
    let w = World::new(json!({}), Some("s3cret"));
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    let login = || {
        let start = w.open("https://photos.example.com/", "");
        complete_login(&w, &start)
    };
    assert_eq!(login().status, 303);
    let sent = |i: usize| {
        let r = w.issuer.token_requests.borrow()[i].clone();
        (
            sent_basic(&r),
            r.body.unwrap_or_default().contains("client_secret=s3cret"),
        )
    };
    assert_eq!(w.issuer.token_requests.borrow().len(), 2);
    assert_eq!((sent(0), sent(1)), ((true, false), (false, true)));
    // The next login goes straight to the form.
    assert_eq!(login().status, 303);
    assert_eq!(w.issuer.token_requests.borrow().len(), 3);
    assert_eq!(sent(2), (false, true));
}

#[test]
fn a_client_secret_refused_both_ways_fails_the_login_and_basic_is_kept() {
    let w = World::new(json!({}), Some("wrong"));
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    for round in 1..=2 {
        let start = w.open("https://photos.example.com/", "");
        let done = complete_login(&w, &start);
        assert!(done.status >= 400, "{}", done.status);
        assert_eq!(w.store.writes(), 0);
        let requests = w.issuer.token_requests.borrow().clone();
        assert_eq!(requests.len(), 2 * round, "one retry per login, no more");
        assert!(
            sent_basic(&requests[2 * round - 2]),
            "Basic again: the form did not work either"
        );
    }
}

#[test]
fn a_public_client_is_never_asked_to_retry() {
    let w = World::new(json!({}), None);
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(&w, &start);
    assert!(done.status >= 400);
    assert_eq!(w.issuer.token_requests.borrow().len(), 1);
}

#[test]
fn a_client_re_registered_for_basic_is_followed_back() {
    let w = World::new(json!({}), Some("s3cret"));
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    let login = || {
        let start = w.open("https://photos.example.com/", "");
        complete_login(&w, &start).status
    };
    assert_eq!(login(), 303);
    // The owner registers the client for client_secret_basic again.
    *w.issuer.secret_in_form.borrow_mut() = None;
    w.issuer.basic_only.set(true);
    assert_eq!(login(), 303);
    let basic = |i: usize| sent_basic(&w.issuer.token_requests.borrow()[i]);
    assert_eq!(w.issuer.token_requests.borrow().len(), 4);
    assert_eq!(
        (basic(2), basic(3)),
        (false, true),
        "the form, refused, then Basic"
    );
    assert_eq!(login(), 303);
    assert_eq!(
        w.issuer.token_requests.borrow().len(),
        5,
        "Basic straight away"
    );
    assert!(basic(4));
}

/// Whether an issuer request carried HTTP Basic client authentication.
fn sent_basic(request: &HttpRequest) -> bool {
    request.headers.iter().any(|(k, _)| k == "authorization")
}

#[test]
fn an_isolate_that_has_not_learnt_the_way_yet_still_revokes_the_grant() {
    let w = World::new(json!({ "revalidate_every": "15m" }), Some("s3cret"));
    w.issuer.revocation.set(true);
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    let cookie = revalidating_login(&w);
    // The sign-out reaches another isolate, which has made no token request yet.
    let elsewhere = World {
        gate: gate(json!({ "revalidate_every": "15m" }), Some("s3cret")),
        store: w.store.clone(),
        people: w.people.clone(),
        issuer: w.issuer,
    };
    assert_eq!(elsewhere.reply(&same_site_logout(&cookie)).status, 303);
    assert_eq!(*elsewhere.issuer.revoked_tokens.borrow(), ["rt-0"]);
    let sent: Vec<bool> = elsewhere
        .issuer
        .revoke_requests
        .borrow()
        .iter()
        .map(sent_basic)
        .collect();
    assert_eq!(sent, [true, false], "Basic, refused, then the form");
    // The way that worked is kept for this isolate's token requests too.
    let start = elsewhere.open("https://photos.example.com/", "");
    let before = elsewhere.issuer.token_requests.borrow().len();
    assert_eq!(complete_login(&elsewhere, &start).status, 303);
    let requests = elsewhere.issuer.token_requests.borrow();
    assert_eq!(requests.len(), before + 1);
    assert!(!sent_basic(&requests[before]));
}

#[test]
fn a_revocation_refused_for_another_reason_is_not_retried() {
    let w = World::new(json!({ "revalidate_every": "15m" }), Some("s3cret"));
    w.issuer.revocation.set(true);
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    let cookie = revalidating_login(&w);
    // The owner rotates the secret at the issuer: refused both ways, one retry only,
    // and the session still ends.
    *w.issuer.secret_in_form.borrow_mut() = Some("rotated");
    assert_eq!(w.reply(&same_site_logout(&cookie)).status, 303);
    assert_eq!(w.issuer.revoke_requests.borrow().len(), 2);
    assert!(w.issuer.revoked_tokens.borrow().is_empty());
    assert_eq!(w.reply(&api_get(&cookie)).status, 401);
}

#[test]
fn an_issuer_listing_only_client_secret_post_gets_the_form_first() {
    let w = World::new(json!({}), Some("s3cret"));
    *w.issuer.secret_in_form.borrow_mut() = Some("s3cret");
    *w.issuer.auth_methods.borrow_mut() = Some(json!(["client_secret_post", "private_key_jwt"]));
    let start = w.open("https://photos.example.com/", "");
    assert_eq!(complete_login(&w, &start).status, 303);
    let requests = w.issuer.token_requests.borrow();
    assert_eq!(requests.len(), 1, "no refused attempt first");
    assert!(!sent_basic(&requests[0]));
}

#[test]
fn an_issuer_listing_both_ways_gets_basic_first() {
    let w = World::new(json!({}), Some("s3cret"));
    w.issuer.basic_only.set(true);
    *w.issuer.auth_methods.borrow_mut() =
        Some(json!(["client_secret_post", "client_secret_basic"]));
    let start = w.open("https://photos.example.com/", "");
    assert_eq!(complete_login(&w, &start).status, 303);
    let requests = w.issuer.token_requests.borrow();
    assert_eq!(requests.len(), 1);
    assert!(sent_basic(&requests[0]));
}

#[test]
fn an_issuer_adding_audiences_of_its_own_is_trusted_only_for_those_configured() {
    let zitadel = json!({ "aud": ["portcullis", "project-1"], "azp": "portcullis" });
    let w = World::plain();
    *w.issuer.overrides.borrow_mut() = zitadel.clone();
    let start = w.open("https://photos.example.com/", "");
    let handled = {
        let login_cookie = cookie_pair(&start, "__Host-portcullis-login-");
        let (code, state) = w.issuer.authorize(start.header("location").unwrap());
        w.handle(&navigate(
            &format!("https://photos.example.com/.portcullis/callback?code={code}&state={state}"),
            &login_cookie,
        ))
    };
    let Outcome::Reply(refused) = &handled.outcome else {
        panic!("a login with an untrusted audience was let through");
    };
    assert!(refused.status >= 400, "{}", refused.status);
    assert!(
        handled
            .log
            .iter()
            .any(|l| l.contains("project-1") && l.contains("id_token_audiences")),
        "the log names the audience and the key: {:?}",
        handled.log
    );
    assert_eq!(w.store.writes(), 0);

    let w = World::new(json!({ "id_token_audiences": ["project-1"] }), Some("s"));
    *w.issuer.overrides.borrow_mut() = zitadel;
    let start = w.open("https://photos.example.com/", "");
    assert_eq!(complete_login(&w, &start).status, 303);
}
