//! The admin console through the whole gate: who may open it, the fresh login it needs,
//! what it lists, and its three actions (each confirmed, each audited with the admin).

use super::*;

const CONSOLE: &str = "https://auth.example.com/.portcullis/admin";
const ALICE_ADMIN: &str = r#"{ "auth_time": 1700000000, "groups": ["family", "admins"] }"#;

/// A world with an auth host, `admin_groups = ["admins"]` and app passwords on photos.
fn world() -> World {
    World::new(
        json!({
            "cookie_domain": "example.com",
            "auth_host": "auth.example.com",
            "admin_groups": ["admins"],
            "session_cache": "0s",
            "apps": [
                { "host": "photos.example.com", "app_passwords": true },
                { "host": "sonarr.example.com" },
            ],
        }),
        Some("s"),
    )
}

/// Signs in on the auth host, in a fresh browser, with these claims; the session cookie.
fn login_as(w: &World, claims: Value) -> String {
    *w.issuer.overrides.borrow_mut() = claims;
    let at_auth = w.open(
        "https://auth.example.com/.portcullis/login?rd=https%3A%2F%2Fphotos.example.com%2F",
        "",
    );
    let done = complete_login(w, &at_auth);
    assert_eq!(done.status, 303, "{}", done.body);
    cookie_pair(&done, "__Secure-portcullis-session=")
}

fn alice(w: &World) -> String {
    let mut claims: Value = serde_json::from_str(ALICE_ADMIN).unwrap();
    claims["auth_time"] = json!(NOW - 5);
    login_as(w, claims)
}

fn bob(w: &World) -> String {
    login_as(
        w,
        json!({ "sub": "bob-1", "email": "bob@example.com", "preferred_username": "bob",
                "name": "Bob", "groups": ["family"], "auth_time": NOW - 5 }),
    )
}

/// A world where bob and then alice (an admin) have signed in: their session cookies.
fn bob_and_admin() -> (World, String, String) {
    let w = world();
    let bob = bob(&w);
    let admin = alice(&w);
    (w, bob, admin)
}

/// A form posted from the console's own page.
fn form(cookie: &str, fields: &[(&str, &str)]) -> RequestHead {
    form_from("same-origin", cookie, fields)
}

/// A form posted from the console's own page to `url`.
fn form_at(url: &str, cookie: &str, fields: &[(&str, &str)]) -> RequestHead {
    let mut head = form(cookie, fields);
    head.url = Url::parse(url).unwrap();
    head
}

/// A form posted from a page whose relation to the console is `site` (`Sec-Fetch-Site`).
fn form_from(site: &str, cookie: &str, fields: &[(&str, &str)]) -> RequestHead {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut head = request(
        "POST",
        CONSOLE,
        &[
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
            ("sec-fetch-site", site),
            ("sec-fetch-mode", "navigate"),
        ],
    );
    head.body = Some(body);
    head
}

fn bob_session_hash(w: &World, admin: &str) -> String {
    let json = w.reply(&request(
        "GET",
        CONSOLE,
        &[("cookie", admin), ("accept", "application/json")],
    ));
    assert_eq!(json.status, 200, "{}", json.body);
    let v: Value = serde_json::from_str(&json.body).unwrap();
    let bob = v["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sub"] == "bob-1")
        .expect("bob is listed");
    assert_eq!(bob["name"], "Bob");
    assert_eq!(bob["email"], "bob@example.com");
    bob["sessions"][0]["session_id_hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_admin_ends_another_persons_session_after_confirming_and_is_named_in_the_log() {
    let (w, bob, admin) = bob_and_admin();
    let page = w.open(CONSOLE, &admin);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Admin console"));
    assert!(page.body.contains("Bob") && page.body.contains("bob-1"));
    assert!(page.body.contains("Signing key IDs") && page.body.contains("rsa-0"));
    let hash = bob_session_hash(&w, &admin);
    assert!(page.body.contains(&format!("data-session=\"{hash}\"")));
    let csrf = csrf_of(&page);

    // The first post asks; nothing has ended yet.
    let ask = w.reply(&form(&admin, &[("csrf", &csrf), ("end_session", &hash)]));
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("End this session?"));
    assert!(ask.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(w.proxied(&api_get(&bob)));

    let confirmed = form(
        &admin,
        &[("csrf", &csrf), ("end_session", &hash), ("confirm", "yes")],
    );
    let (handled, _) = w.handle_at(&confirmed, NOW);
    let Outcome::Reply(done) = handled.outcome else {
        panic!("a reply")
    };
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some("/.portcullis/admin"));
    let audit = handled
        .log
        .iter()
        .find(|l| l.contains("admin_action"))
        .unwrap_or_else(|| panic!("{:?}", handled.log));
    assert!(audit.contains("\"admin\":\"alice-1\"") && audit.contains("end_session"));
    assert!(audit.contains(&hash));
    assert_eq!(w.reply(&api_get(&bob)).status, 401, "bob's session ended");
    assert!(w.proxied(&api_get(&admin)));
}

#[test]
fn signing_a_person_out_of_everything_ends_their_app_passwords_too() {
    let w = world();
    let bob = bob(&w);
    // Bob creates an app password on the account page (his login is recent).
    let account = w.open("https://auth.example.com/.portcullis/account", &bob);
    let fields = [
        ("csrf", csrf_of(&account)),
        ("app", "photos.example.com".into()),
        ("label", "Phone".into()),
        ("lifetime", "30d".into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = w.reply(&form_at(
        "https://auth.example.com/.portcullis/app-passwords",
        &bob,
        &fields,
    ));
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(w.store.holds_any("app-password:"));

    let admin = alice(&w);
    let page = w.open(CONSOLE, &admin);
    assert!(page.body.contains("data-app-password=\"ap_"), "listed");
    let fields = [
        ("csrf", csrf_of(&page)),
        ("sign_out", "bob-1".to_string()),
        ("confirm", "yes".to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(w.reply(&form(&admin, &fields)).status, 303);
    assert_eq!(w.reply(&api_get(&bob)).status, 401);
    assert!(
        !w.store.holds_any("app-password:"),
        "the app password went too"
    );
}

#[test]
fn a_member_of_no_admin_group_gets_403() {
    let w = world();
    let bob = bob(&w);
    let page = w.open(CONSOLE, &bob);
    assert_eq!(page.status, 403);
    assert!(page.body.contains("admin_groups"), "{}", page.body);
    let json = w.reply(&request(
        "GET",
        CONSOLE,
        &[("cookie", &bob), ("accept", "application/json")],
    ));
    assert_eq!(json.status, 403);
    assert!(json.body.contains("not_an_admin"));
}

#[test]
fn an_admin_whose_login_is_older_than_ten_minutes_goes_through_the_issuer_first() {
    let w = world();
    let mut claims: Value = serde_json::from_str(ALICE_ADMIN).unwrap();
    claims["auth_time"] = json!(NOW - 3_600);
    let admin = login_as(&w, claims.clone());
    let start = w.open(CONSOLE, &admin);
    assert_eq!(start.status, 303);
    let location = start.header("location").unwrap();
    assert!(
        location.starts_with("https://id.example.com/authorize?"),
        "{location}"
    );
    assert!(location.contains("prompt=login") && location.contains("max_age=600"));
    let json = w.reply(&request(
        "GET",
        CONSOLE,
        &[("cookie", &admin), ("accept", "application/json")],
    ));
    assert_eq!(json.status, 403, "a program is refused, not redirected");
    assert!(json.body.contains("recent_login_required"));

    // The issuer does not authenticate afresh: refused, not sent round again.
    let stale = complete_login(&w, &start);
    assert_eq!(stale.status, 403, "{}", stale.body);
    assert!(stale.body.contains("10 minutes"));

    // It does: back on the console, which now opens.
    claims["auth_time"] = json!(NOW);
    *w.issuer.overrides.borrow_mut() = claims;
    let again = w.open(CONSOLE, &admin);
    let done = complete_login(&w, &again);
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some(CONSOLE));
    let fresh = cookie_pair(&done, "__Secure-portcullis-session=");
    assert_eq!(w.open(CONSOLE, &fresh).status, 200);
}

#[test]
fn the_console_is_served_only_on_the_auth_host_and_only_with_admin_groups() {
    let w = world();
    let admin = alice(&w);
    let there = w.open("https://photos.example.com/.portcullis/admin", &admin);
    assert_eq!(there.status, 303);
    assert_eq!(there.header("location"), Some(CONSOLE));
    let fields = [("sign_out", "bob-1"), ("confirm", "yes")];
    let post = form_at(
        "https://photos.example.com/.portcullis/admin",
        &admin,
        &fields,
    );
    assert_eq!(w.reply(&post).status, 404);

    let none = World::new(
        json!({ "cookie_domain": "example.com", "auth_host": "auth.example.com" }),
        Some("s"),
    );
    let cookie = alice(&none);
    assert_eq!(none.open(CONSOLE, &cookie).status, 404);
}

#[test]
fn console_forms_need_their_csrf_token_and_their_own_origin() {
    let (w, bob, admin) = bob_and_admin();
    let page = w.open(CONSOLE, &admin);
    let csrf = csrf_of(&page);
    let fields = [("sign_out", "bob-1"), ("confirm", "yes")];
    let forged = form(&admin, &[&[("csrf", "forged")][..], &fields].concat());
    assert_eq!(w.reply(&forged).status, 403);
    let from_an_app = form_from(
        "same-site",
        &admin,
        &[&[("csrf", csrf.as_str())][..], &fields].concat(),
    );
    assert_eq!(w.reply(&from_an_app).status, 403);
    let script = request(
        "GET",
        CONSOLE,
        &[("cookie", &admin), ("sec-fetch-mode", "cors")],
    );
    assert_eq!(
        w.reply(&script).status,
        403,
        "a script cannot read the page"
    );
    assert!(w.proxied(&api_get(&bob)));
    let bad = form(
        &admin,
        &[("csrf", &csrf), ("end_session", "x"), ("confirm", "yes")],
    );
    assert_eq!(w.reply(&bad).status, 400);
}

#[test]
fn a_program_with_the_admins_session_reads_the_data_and_acts_with_its_token() {
    let (w, bob, admin) = bob_and_admin();
    let json = w.reply(&request(
        "GET",
        CONSOLE,
        &[("cookie", &admin), ("accept", "application/json")],
    ));
    let v: Value = serde_json::from_str(&json.body).unwrap();
    let csrf = v["csrf"].as_str().expect("the token is in the data");
    let body = format!("csrf={csrf}&sign_out=bob-1&confirm=yes");
    let mut post = request(
        "POST",
        CONSOLE,
        &[("cookie", &admin), ("accept", "application/json")],
    );
    post.body = Some(body);
    let done = w.reply(&post);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body, r#"{"revoked":1}"#);
    assert_eq!(w.reply(&api_get(&bob)).status, 401);
}

#[test]
fn once_admin_groups_is_removed_a_form_from_the_console_finds_nothing() {
    let (w, bob, admin) = bob_and_admin();
    let csrf = csrf_of(&w.open(CONSOLE, &admin));
    // The owner removes admin_groups; a console page left open posts its form.
    let without = World {
        gate: gate(
            json!({
                "cookie_domain": "example.com", "auth_host": "auth.example.com",
                "session_cache": "0s",
            }),
            Some("s"),
        ),
        store: w.store.clone(),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    };
    let post = form(
        &admin,
        &[("csrf", &csrf), ("sign_out", "bob-1"), ("confirm", "yes")],
    );
    assert_eq!(without.reply(&post).status, 404);
    assert!(without.proxied(&api_get(&bob)), "nothing was revoked");
}
