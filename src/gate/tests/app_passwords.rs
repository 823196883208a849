//! App passwords through the whole gate: created on the account page (at once after a
//! recent login, else through the issuer), used as a header pair or Basic, refused
//! without touching KV where that is promised, and revoked every way.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::*;
use crate::context::AppPasswordTask;

/// photos takes app passwords under `/api/**`; sonarr everywhere; grafana never.
fn config(extra: Value) -> Value {
    let mut config = json!({
        "session_cache": "0s",
        "cookie_domain": "example.com",
        "auth_host": "auth.example.com",
        "apps": [
            { "host": "photos.example.com", "app_passwords": true, "app_password_paths": ["/api/**"] },
            { "host": "sonarr.example.com", "app_passwords": true, "allow_groups": ["family"] },
            { "host": "grafana.example.com" },
        ],
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// A world whose issuer says the user authenticated at `auth_time`, and a session cookie.
fn signed_in(extra: Value, auth_time: u64) -> (World, String) {
    let w = World::new(config(extra), Some("s"));
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": auth_time });
    let cookie = login(&w);
    (w, cookie)
}

/// A login from the photos app, done on the auth host; the session cookie (shared by
/// every host under the cookie domain).
fn login(w: &World) -> String {
    let start = w.open("https://photos.example.com/", "");
    let at_auth = w.open(start.header("location").unwrap(), "");
    let done = complete_login(w, &at_auth);
    cookie_pair(&done, "__Secure-portcullis-session=")
}

fn attribute(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find('<').unwrap();
    rest[start..end].to_string()
}

fn csrf(w: &World, cookie: &str) -> String {
    let page = w.open("https://auth.example.com/.portcullis/account", cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    csrf_of(&page)
}

fn post(url: &str, cookie: &str, body: &str) -> RequestHead {
    let mut head = request(
        "POST",
        url,
        &[
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    );
    head.body = Some(body.to_string());
    head
}

/// The creation form: `[app, label, lifetime]`.
fn create_request(cookie: &str, csrf: &str, [app, label, lifetime]: [&str; 3]) -> RequestHead {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("app", app)
        .append_pair("label", label)
        .append_pair("lifetime", lifetime)
        .append_pair("csrf", csrf)
        .finish();
    post(
        "https://auth.example.com/.portcullis/app-passwords",
        cookie,
        &body,
    )
}

/// Posts the creation form and returns the answer.
fn ask_create(w: &World, cookie: &str, csrf: &str, fields: [&str; 3]) -> Reply {
    w.reply(&create_request(cookie, csrf, fields))
}

/// Posts the revocation form for app password `id` and returns the answer.
fn ask_revoke(w: &World, cookie: &str, csrf: &str, id: &str) -> Reply {
    let body = format!("id={id}&csrf={csrf}");
    let url = "https://auth.example.com/.portcullis/app-passwords/revoke";
    w.reply(&post(url, cookie, &body))
}

/// Creates one (directly: the login is recent) and returns (client ID, secret).
fn create(w: &World, cookie: &str, app: &str, label: &str) -> (String, String) {
    let token = csrf(w, cookie);
    let reply = ask_create(w, cookie, &token, [app, label, "30d"]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    credentials(&reply)
}

/// The issuer signs the person in for the login `start` began; returns the callback's
/// answer in the browser holding `cookie` (the session) and the login cookie.
fn through_issuer(w: &World, start: &Reply, cookie: &str) -> Reply {
    let login_cookie = cookie_pair(start, "__Host-portcullis-login-");
    let (code, state) = w.issuer.authorize(start.header("location").unwrap());
    let callback =
        format!("https://auth.example.com/.portcullis/callback?code={code}&state={state}");
    w.open(&callback, &format!("{cookie}; {login_cookie}"))
}

fn credentials(reply: &Reply) -> (String, String) {
    (
        attribute(&reply.body, "data-client-id"),
        attribute(&reply.body, "data-secret"),
    )
}

fn with_pair(url: &str, id: &str, secret: &str) -> RequestHead {
    request(
        "GET",
        url,
        &[
            ("portcullis-client-id", id),
            ("portcullis-client-secret", secret),
        ],
    )
}

fn with_basic(url: &str, id: &str, secret: &str) -> RequestHead {
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    request("GET", url, &[("authorization", &basic)])
}

/// The secret with one character in the middle changed.
fn tampered(secret: &str) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    chars[20] = if chars[20] == 'x' { 'y' } else { 'x' };
    chars.into_iter().collect()
}

fn ops(w: &World) -> u32 {
    w.store.reads() + w.store.writes() + w.store.deletes() + w.store.lists()
}

fn plan(handled: Handled) -> ProxyPlan {
    match handled.outcome {
        Outcome::Proxy(plan) => plan,
        Outcome::Reply(r) => panic!("not proxied: {} {}", r.status, r.body),
    }
}

fn refusal(w: &World, head: &RequestHead) -> (u16, String) {
    let r = w.reply(head);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("location").is_none());
    (r.status, r.body)
}

fn header<'a>(plan: &'a ProxyPlan, name: &str) -> Option<&'a str> {
    plan.header(name)
}

#[test]
fn a_script_can_neither_read_the_account_page_nor_post_its_forms() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    // What JavaScript on a protected app sends: fetch() and XHR are `Sec-Fetch-Mode: cors`.
    let page = request(
        "GET",
        "https://auth.example.com/.portcullis/account",
        &[
            ("cookie", &cookie),
            ("accept", "text/html"),
            ("sec-fetch-mode", "cors"),
        ],
    );
    let refused = w.reply(&page);
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains("name=\"csrf\""), "no CSRF token");
    // Even with a token it got elsewhere, its POST is refused, and nothing is created.
    let token = csrf(&w, &cookie);
    let form = |label: &str, mode: &str| {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("app", "photos.example.com")
            .append_pair("label", label)
            .append_pair("lifetime", "30d")
            .append_pair("csrf", &token)
            .finish();
        let mut head = request(
            "POST",
            "https://auth.example.com/.portcullis/app-passwords",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
                ("sec-fetch-mode", mode),
            ],
        );
        head.body = Some(body);
        head
    };
    let writes = w.store.writes();
    let answer = w.reply(&form("stolen", "cors"));
    assert_eq!(answer.status, 403);
    assert!(!answer.body.contains("data-secret"));
    assert_eq!(w.store.writes(), writes, "nothing created");
    // The same form submitted by a person (a navigation) works.
    assert_eq!(w.reply(&form("mine", "navigate")).status, 200);
}

#[test]
fn created_after_a_recent_login_and_used_as_a_header_pair_or_basic() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let (id, secret) = create(&w, &cookie, "sonarr.example.com", "nzb360 on Pixel 8");
    assert!(id.starts_with("ap_"));
    // KV holds the hash, never the secret.
    let stored: String = w
        .store
        .records
        .borrow()
        .values()
        .map(|(v, _, m)| format!("{v}{}", m.clone().unwrap_or_default()))
        .collect();
    assert!(!stored.contains(&secret));
    assert!(stored.contains(&b64url(&sha256(secret.as_bytes()))));

    let p = plan(w.handle(&with_pair(
        "https://sonarr.example.com/api/v3/queue",
        &id,
        &secret,
    )));
    assert_eq!(header(&p, "x-auth-request-user"), Some("alice@example.com"));
    assert_eq!(
        header(&p, "x-auth-request-credential"),
        Some("nzb360 on Pixel 8")
    );
    assert!(p.remove.iter().any(|h| h == "portcullis-client-secret"));

    let p = plan(w.handle(&with_basic("https://sonarr.example.com/", &id, &secret)));
    assert_eq!(header(&p, "remote-user"), Some("alice@example.com"));
    assert!(
        p.remove.iter().any(|h| h == "authorization"),
        "Basic consumed"
    );

    // The account page lists it, without the secret; JSON too.
    let json = w.reply(&request(
        "GET",
        "https://auth.example.com/.portcullis/account",
        &[("cookie", &cookie), ("accept", "application/json")],
    ));
    let v: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["app_passwords"][0]["id"], id.as_str());
    assert_eq!(v["app_passwords"][0]["label"], "nzb360 on Pixel 8");
    assert_eq!(v["app_passwords"][0]["app"], "sonarr.example.com");
    assert!(v["app_passwords"][0]["expires"].as_u64().unwrap() > NOW);
    assert!(!json.body.contains(&secret));
    assert!(v["sessions"].as_array().unwrap().len() == 1);
}

#[test]
fn refusals_cost_no_kv_operation_where_promised() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let (id, secret) = create(&w, &cookie, "photos.example.com", "Immich");
    let before = ops(&w);
    let cases = [
        // A wrong secret (well-formed or not).
        with_pair("https://photos.example.com/api/x", &id, "wrong"),
        with_pair("https://photos.example.com/api/x", &id, &tampered(&secret)),
        // An unknown ID.
        with_pair(
            "https://photos.example.com/api/x",
            "ap_000000000000000000000000",
            &secret,
        ),
        // Another app, and an app without app passwords.
        with_pair("https://sonarr.example.com/api/x", &id, &secret),
        with_pair("https://grafana.example.com/", &id, &secret),
        // Outside app_password_paths.
        with_pair("https://photos.example.com/albums", &id, &secret),
        with_basic("https://photos.example.com/", &id, &secret),
    ];
    for head in &cases {
        let (status, body) = refusal(&w, head);
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(ops(&w), before, "no KV operation for any of them");
    // A malformed ID is not an app password at all: a service-token refusal, no KV either.
    let (status, _) = refusal(
        &w,
        &with_pair("https://photos.example.com/api/x", "ap_xyz", &secret),
    );
    assert_eq!(status, 401);
    assert_eq!(ops(&w), before);
}

#[test]
fn a_valid_one_costs_at_most_one_read_and_last_used_is_written_once_a_day() {
    let (w, cookie) = signed_in(json!({ "session_cache": "30s" }), NOW - 60);
    let (id, secret) = create(&w, &cookie, "photos.example.com", "Immich");
    let head = with_pair("https://photos.example.com/api/x", &id, &secret);
    let (reads, writes) = (w.store.reads(), w.store.writes());
    let (handled, tasks) = w.handle_at(&head, NOW);
    plan(handled);
    assert_eq!(w.store.reads() - reads, 1, "one read");
    plan(w.handle(&head));
    assert_eq!(w.store.reads() - reads, 1, "then cached");
    assert_eq!(
        tasks.len(),
        1,
        "first use: last_used recorded after the response"
    );
    w.run(tasks, NOW);
    let wrote = w.store.writes() - writes;
    assert_eq!(wrote, 2, "the record and its index key");
    // Later the same day, from a cold cache: one read, no write, no task.
    let reads = w.store.reads();
    let (handled, tasks) = w.handle_at(&head, NOW + 3_600);
    plan(handled);
    assert_eq!(w.store.reads() - reads, 1);
    assert!(tasks.is_empty());
    // Seen on the account page.
    let json = w.reply(&request(
        "GET",
        "https://auth.example.com/.portcullis/account",
        &[("cookie", &cookie), ("accept", "application/json")],
    ));
    let v: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["app_passwords"][0]["last_used"], NOW);
}

#[test]
fn an_old_login_goes_through_the_issuer_first() {
    let (w, cookie) = signed_in(json!({}), NOW - 3_600);
    let token = csrf(&w, &cookie);
    let start = ask_create(&w, &cookie, &token, ["photos.example.com", "Immich", "90d"]);
    assert_eq!(start.status, 303);
    let location = start.header("location").unwrap();
    assert!(location.starts_with("https://id.example.com/authorize?"));
    assert!(location.contains("prompt=login") && location.contains("max_age=600"));
    assert!(!w.store.holds_any("app-password:"));

    // The issuer answers without a fresh authentication: refused.
    let stale = through_issuer(&w, &start, &cookie);
    assert_eq!(stale.status, 403, "{}", stale.body);

    // With a fresh one, it is created and shown.
    let start = ask_create(&w, &cookie, &token, ["photos.example.com", "Immich", "90d"]);
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW - 5 });
    let done = through_issuer(&w, &start, &cookie);
    assert_eq!(done.status, 200, "{}", done.body);
    let (id, secret) = credentials(&done);
    plan(w.handle(&with_pair("https://photos.example.com/api/x", &id, &secret)));

    // Another person's login cannot complete this person's request.
    let start = ask_create(&w, &cookie, &token, ["photos.example.com", "X", "90d"]);
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW, "sub": "mallory" });
    let other = through_issuer(&w, &start, &cookie);
    assert_eq!(other.status, 403);
}

#[test]
fn the_form_is_checked() {
    let (w, cookie) = signed_in(json!({ "max_app_passwords": 1 }), NOW - 60);
    let token = csrf(&w, &cookie);
    for (app, label, lifetime, status) in [
        ("grafana.example.com", "x", "1d", 400),
        ("nowhere.example.com", "x", "1d", 400),
        ("photos.example.com", "", "1d", 400),
        ("photos.example.com", "x", "91d", 400),
        ("photos.example.com", "x", "10m", 400),
        ("photos.example.com", "x", "soon", 400),
    ] {
        let r = ask_create(&w, &cookie, &token, [app, label, lifetime]);
        assert_eq!(r.status, status, "{app} {label} {lifetime}: {}", r.body);
    }
    let r = ask_create(&w, &cookie, "forged", ["photos.example.com", "x", "1d"]);
    assert_eq!(r.status, 403, "CSRF");
    create(&w, &cookie, "photos.example.com", "one");
    let r = ask_create(&w, &cookie, &token, ["photos.example.com", "two", "1d"]);
    assert_eq!(r.status, 409, "max_app_passwords");
}

#[test]
fn expired_and_revoked_ones_are_refused() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let token = csrf(&w, &cookie);
    let reply = ask_create(&w, &cookie, &token, ["photos.example.com", "Immich", "1d"]);
    let (id, secret) = credentials(&reply);
    let head = with_pair("https://photos.example.com/api/x", &id, &secret);
    let (handled, _) = w.handle_at(&head, NOW + 86_400);
    match handled.outcome {
        Outcome::Reply(r) => assert!(
            r.status == 401 && r.body.contains("app_password_expired"),
            "{}",
            r.body
        ),
        Outcome::Proxy(_) => panic!("expired, yet proxied"),
    }

    // Revoked by the person: the very next request is refused, and it is gone from KV.
    let (id, secret) = create(&w, &cookie, "photos.example.com", "Pixel");
    let head = with_pair("https://photos.example.com/api/x", &id, &secret);
    plan(w.handle(&head));
    let r = ask_revoke(&w, &cookie, &token, &id);
    assert_eq!(r.status, 303);
    let (status, body) = refusal(&w, &head);
    assert_eq!(status, 401, "{body}");
    let records = w.store.records.borrow();
    assert!(!records.contains_key(&format!("app-password:{id}")));
    assert!(records.contains_key(&format!("revoked:{id}")));
    assert!(!records
        .keys()
        .any(|k| k.starts_with("user-app-password:") && k.ends_with(&id)));
}

#[test]
fn a_person_cannot_revoke_someone_elses() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let (id, secret) = create(&w, &cookie, "photos.example.com", "Pixel");
    // Bob signs in on the same gate.
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW, "sub": "bob" });
    let bob = login(&w);
    let token = csrf(&w, &bob);
    let r = ask_revoke(&w, &bob, &token, &id);
    assert_eq!(r.status, 400);
    plan(w.handle(&with_pair("https://photos.example.com/api/x", &id, &secret)));
}

#[test]
fn access_rules_apply_to_the_stored_claims_on_every_request() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let (id, secret) = create(&w, &cookie, "sonarr.example.com", "nzb360");
    let head = with_pair("https://sonarr.example.com/api", &id, &secret);
    plan(w.handle(&head));
    // The owner narrows sonarr to admins: the same KV, a new configuration.
    let mut changed = config(json!({}));
    changed["apps"][1]["allow_groups"] = json!(["admins"]);
    let w2 = World {
        gate: gate(changed, Some("s")),
        store: w.store.clone(),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    };
    let r = w2.reply(&head);
    assert_eq!(r.status, 403);
}

/// With `revalidate_every`: an app password for photos, created through the issuer for a
/// grant of its own; the request that uses it.
fn with_own_grant(w: &World, cookie: &str) -> RequestHead {
    let token = csrf(w, cookie);
    // Even after a recent login: through the issuer for a grant of its own (no prompt).
    let start = ask_create(w, cookie, &token, ["photos.example.com", "Immich", "30d"]);
    assert_eq!(start.status, 303);
    let location = start.header("location").unwrap().to_string();
    assert!(location.contains("max_age=600") && !location.contains("prompt=login"));
    let done = through_issuer(w, &start, cookie);
    assert_eq!(done.status, 200, "{}", done.body);
    let (id, secret) = credentials(&done);
    with_pair("https://photos.example.com/api/x", &id, &secret)
}

#[test]
fn with_revalidate_every_each_gets_its_own_grant_and_a_refused_refresh_ends_it() {
    let (w, cookie) = signed_in(json!({ "revalidate_every": "15m" }), NOW - 60);
    let head = with_own_grant(&w, &cookie);

    // Due: re-validated after the response with its own refresh token.
    let (handled, tasks) = w.handle_at(&head, NOW + 16 * 60);
    plan(handled);
    let revalidate: Vec<Task> = tasks
        .into_iter()
        .filter(|t| matches!(t, Task::AppPassword(AppPasswordTask::Revalidate { .. })))
        .collect();
    assert_eq!(revalidate.len(), 1);
    let refreshes = *w.issuer.refreshes.borrow();
    w.run(revalidate, NOW + 16 * 60);
    assert_eq!(*w.issuer.refreshes.borrow(), refreshes + 1);
    plan(w.handle_at(&head, NOW + 17 * 60).0);

    // The person is disabled at the issuer: the next refresh is refused, and it ends.
    *w.issuer.refresh_token.borrow_mut() = None;
    let (handled, tasks) = w.handle_at(&head, NOW + 32 * 60);
    plan(handled);
    let log = w.run(tasks, NOW + 32 * 60);
    assert!(
        log.iter()
            .any(|l| l.contains("app_password_revoked") && l.contains("revalidation")),
        "{log:?}"
    );
    let (status, _) = refusal(&w, &head);
    assert_eq!(status, 401);
}

#[test]
fn a_refresh_whose_userinfo_refuses_the_new_access_token_ends_it() {
    let w = World::new(config(json!({ "revalidate_every": "15m" })), Some("s"));
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW - 60 });
    *w.issuer.userinfo.borrow_mut() = Some((200, json!({ "sub": "alice-1" })));
    let cookie = login(&w);
    let head = with_own_grant(&w, &cookie);
    // From now on the ID tokens leave the email to UserInfo, which refuses the access token
    // the refresh has just issued: the person's session at the issuer has ended.
    *w.issuer.overrides.borrow_mut() =
        json!({ "auth_time": NOW - 60, "email": null, "email_verified": null });
    *w.issuer.userinfo.borrow_mut() = Some((401, json!({})));
    let (handled, tasks) = w.handle_at(&head, NOW + 16 * 60);
    plan(handled);
    let log = w.run(tasks, NOW + 16 * 60);
    assert!(
        log.iter().any(|l| l.contains("app_password_revoked")
            && l.contains("revalidation")
            && l.contains("answered 401")),
        "{log:?}"
    );
    let (status, _) = refusal(&w, &head);
    assert_eq!(status, 401);
}

#[test]
fn the_admin_api_lists_and_revokes_them() {
    let w = World {
        gate: Gate::new(
            Config::from_inputs(&Inputs {
                portcullis: Some(
                    json!({ "issuer": ISS, "client_id": "portcullis" })
                        .as_object()
                        .unwrap()
                        .clone()
                        .into_iter()
                        .chain(config(json!({})).as_object().unwrap().clone())
                        .collect::<serde_json::Map<_, _>>()
                        .into(),
                ),
                oidc_client_secret: Some("s".into()),
                session_secret: Some(SECRET.into()),
                assertion_key: None,
                admin_token: Some("admin-token-0123456789abcdef0123456789".into()),
            })
            .unwrap(),
        ),
        store: std::rc::Rc::new(MemoryStore::default()),
        issuer: FakeIssuer::default(),
        people: FakePeople::absent(),
    };
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW });
    let cookie = login(&w);
    let (a, a_secret) = create(&w, &cookie, "photos.example.com", "one");
    let (b, b_secret) = create(&w, &cookie, "sonarr.example.com", "two");
    let admin = [(
        "authorization",
        "Bearer admin-token-0123456789abcdef0123456789",
    )];
    let list = w.reply(&request(
        "GET",
        "https://photos.example.com/.portcullis/admin/app-passwords?sub=alice-1",
        &admin,
    ));
    let v: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(
        v["app_passwords"].as_array().unwrap().len(),
        2,
        "{}",
        list.body
    );
    assert!(!list.body.contains(&a_secret));
    let keys: Vec<&String> = v["app_passwords"][0].as_object().unwrap().keys().collect();
    let expected = "app created email expires id label last_used sub";
    assert_eq!(
        keys,
        expected.split(' ').collect::<Vec<_>>(),
        "what is listed"
    );
    // A `sub` is taken only as a subject: not empty, no control characters.
    for bad in ["", "%01x", "a%0Ab"] {
        for listing in ["app-passwords", "sessions"] {
            let url = format!("https://photos.example.com/.portcullis/admin/{listing}?sub={bad}");
            let r = w.reply(&request("GET", &url, &admin));
            assert_eq!(r.status, 400, "{listing} ?sub={bad}: {}", r.body);
        }
    }

    // Only their own forms are taken: both become parts of KV keys.
    let writes = w.store.writes();
    for body in [
        json!({ "app_password": a.to_uppercase() }),
        json!({ "app_password": format!("{a}:x") }),
        json!({ "session": "x".repeat(600) }),
        json!({ "session": format!("{}:", "A".repeat(42)) }),
    ] {
        let mut bad = request(
            "POST",
            "https://photos.example.com/.portcullis/admin/revoke",
            &admin,
        );
        bad.body = Some(body.to_string());
        let r = w.reply(&bad);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains("takes"), "{}", r.body);
    }
    assert_eq!(w.store.writes(), writes, "nothing written");

    let mut by_id = request(
        "POST",
        "https://photos.example.com/.portcullis/admin/revoke",
        &admin,
    );
    by_id.body = Some(json!({ "app_password": a }).to_string());
    let r = w.reply(&by_id);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap()["revoked"],
        1
    );
    refusal(
        &w,
        &with_pair("https://photos.example.com/api/x", &a, &a_secret),
    );

    let mut by_sub = request(
        "POST",
        "https://photos.example.com/.portcullis/admin/revoke",
        &admin,
    );
    by_sub.body = Some(json!({ "sub": "alice-1" }).to_string());
    let r = w.reply(&by_sub);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["revoked"], 2,
        "the session and the app password: {}",
        r.body
    );
    let (status, _) = refusal(&w, &with_pair("https://sonarr.example.com/", &b, &b_secret));
    assert_eq!(status, 401);
}

#[test]
fn the_old_sessions_address_leads_to_the_account_page() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let r = w.open("https://auth.example.com/.portcullis/sessions", &cookie);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/.portcullis/account"));
}

#[test]
fn with_people_a_revocation_reaches_another_location_within_revocation_check() {
    let extra = json!({ "revocation_check": "2s", "session_cache": "30s" });
    let (mut w, cookie) = signed_in(extra.clone(), NOW - 60);
    w.people.absent = false;
    let (id, secret) = create(&w, &cookie, "photos.example.com", "Pixel");
    // Another location: the same persons' objects, its own KV copy from before the
    // revocation (lagging), the app password cached there.
    let lagging = MemoryStore::default();
    *lagging.records.borrow_mut() = w.store.records.borrow().clone();
    let elsewhere = World {
        gate: gate(config(extra), Some("s")),
        store: std::rc::Rc::new(lagging),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    };
    let head = with_pair("https://photos.example.com/api/x", &id, &secret);
    plan(elsewhere.handle_at(&head, NOW).0);
    let token = csrf(&w, &cookie);
    let r = ask_revoke(&w, &cookie, &token, &id);
    assert_eq!(r.status, 303);
    assert!(elsewhere
        .store
        .records
        .borrow()
        .contains_key(&format!("app-password:{id}")));
    match elsewhere.handle_at(&head, NOW + 2).0.outcome {
        Outcome::Reply(r) => assert_eq!(r.status, 401, "{}", r.body),
        Outcome::Proxy(_) => panic!("revoked, yet proxied elsewhere"),
    }
}

#[test]
fn without_an_auth_host_none_can_be_created_and_those_made_before_keep_working() {
    let (w, cookie) = signed_in(json!({}), NOW - 60);
    let (id, secret) = create(&w, &cookie, "sonarr.example.com", "nzb360");
    // The owner removes auth_host: the account page lives on every app's origin again.
    let mut without = config(json!({}));
    let settings = without.as_object_mut().unwrap();
    settings.remove("auth_host");
    settings.remove("cookie_domain");
    let w = World {
        gate: gate(without, Some("s")),
        store: w.store.clone(),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    };
    *w.issuer.overrides.borrow_mut() = json!({ "auth_time": NOW - 60 });
    let start = w.open("https://photos.example.com/", "");
    let cookie = cookie_pair(&complete_login(&w, &start), "__Host-portcullis-session=");
    let page = w.open("https://photos.example.com/.portcullis/account", &cookie);
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Create app password"), "no form");
    assert!(page.body.contains("auth_host"), "says how to get one");
    assert!(page.body.contains("nzb360"), "the existing one is listed");
    let token = csrf_of(&page);
    let mut post = create_request(&cookie, &token, ["sonarr.example.com", "another", "1d"]);
    post.url = Url::parse("https://photos.example.com/.portcullis/app-passwords").unwrap();
    let refused = w.reply(&post);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("auth_host"));
    let used = w.handle(&with_basic("https://sonarr.example.com/api", &id, &secret));
    assert!(matches!(used.outcome, Outcome::Proxy(_)), "still works");
}
