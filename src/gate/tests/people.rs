//! Revocation through the persons' objects (`PEOPLE`): two locations share the objects;
//! the other one's KV lags (its own copy of the store, taken before the revocation) and it
//! holds the session in its isolate cache. Within `revocation_check` it refuses.

use super::*;

/// A world with `PEOPLE` bound and `revocation_check` of 2 s; the session cache at its
/// default 30 s.
fn bound_world() -> World {
    let mut w = World::new(json!({ "revocation_check": "2s" }), Some("s"));
    w.people.absent = false;
    w
}

/// Another location: its own gate (session cache 30 s), the same persons' objects, and a
/// KV that still shows what the store holds now.
fn lagging_location(w: &World) -> World {
    let lagging = MemoryStore::default();
    *lagging.records.borrow_mut() = w.store.records.borrow().clone();
    World {
        gate: gate(json!({ "revocation_check": "2s" }), Some("s")),
        store: std::rc::Rc::new(lagging),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    }
}

fn sign_in(w: &World) -> String {
    let start = w.open("https://photos.example.com/", "");
    let done = complete_login(w, &start);
    cookie_pair(&done, "__Host-portcullis-session=")
}

/// A session signed in at one location and cached at another whose KV lags.
fn two_locations() -> (World, World, String) {
    let w = bound_world();
    let cookie = sign_in(&w);
    let elsewhere = lagging_location(&w);
    assert!(admitted(&elsewhere, &cookie, NOW), "cached there now");
    (w, elsewhere, cookie)
}

fn admitted(w: &World, cookie: &str, now: u64) -> bool {
    matches!(
        w.handle_at(&api_get(cookie), now).0.outcome,
        Outcome::Proxy(_)
    )
}

#[test]
fn a_sign_out_reaches_another_location_within_revocation_check() {
    let (w, elsewhere, cookie) = two_locations();
    assert_eq!(w.reply(&same_site_logout(&cookie)).status, 303);
    assert!(
        elsewhere.store.holds_any("session:"),
        "the other location's KV still has the session"
    );
    assert!(
        !admitted(&elsewhere, &cookie, NOW + 2),
        "refused within revocation_check"
    );
    assert!(!admitted(&elsewhere, &cookie, NOW + 3), "and stays refused");
}

#[test]
fn without_people_the_other_location_serves_its_cache() {
    // What the persons' objects change: the same sign-out, no `PEOPLE` binding.
    let w = World::new(json!({ "revocation_check": "2s" }), Some("s"));
    let cookie = sign_in(&w);
    let elsewhere = lagging_location(&w);
    assert!(admitted(&elsewhere, &cookie, NOW));
    assert_eq!(w.reply(&same_site_logout(&cookie)).status, 303);
    assert!(
        admitted(&elsewhere, &cookie, NOW + 2),
        "until session_cache"
    );
    assert_eq!(w.people.asked.get(), 0);
}

#[test]
fn the_object_is_asked_at_most_once_per_revocation_check() {
    let w = bound_world();
    let cookie = sign_in(&w);
    let asked = || w.people.asked.get();
    assert!(admitted(&w, &cookie, NOW));
    assert_eq!(asked(), 1, "the first request asks");
    assert!(admitted(&w, &cookie, NOW + 1));
    assert_eq!(asked(), 1, "within revocation_check: no question");
    assert!(admitted(&w, &cookie, NOW + 2));
    assert_eq!(asked(), 2, "then once more");
    let anonymous = w.handle_at(&api_get(""), NOW + 10);
    assert!(!matches!(anonymous.0.outcome, Outcome::Proxy(_)));
    assert_eq!(asked(), 2, "never for a request without credentials");
}

#[test]
fn a_person_signed_out_of_everything_is_refused_everywhere() {
    let (w, elsewhere, cookie) = two_locations();
    // As back-channel logout by `sub` and the admin API by person do.
    let io = IoParts::new(&*w.store, &w.issuer, &RustCrypto, &SystemRandom).with_people(&w.people);
    let env = crate::context::Env::new(&io, NOW);
    pollster::block_on(crate::grant::revoke_everything_of(&env, "alice-1"));
    assert!(!admitted(&elsewhere, &cookie, NOW + 2));
    assert!(!admitted(&w, &cookie, NOW + 2), "here too");
    // A login a second later is not affected.
    let later = World {
        gate: gate(json!({ "revocation_check": "2s" }), Some("s")),
        store: w.store.clone(),
        issuer: FakeIssuer::default(),
        people: w.people.clone(),
    };
    let start = later.reply_at(&navigate("https://photos.example.com/", ""), NOW + 1);
    let login_cookie = cookie_pair(&start, "__Host-portcullis-login-");
    let (code, state) = later.issuer.authorize(start.header("location").unwrap());
    let redirect_uri = later.issuer.codes.borrow()[&code].2.clone();
    let callback = format!("{redirect_uri}?code={code}&state={state}");
    let done = later.reply_at(&navigate(&callback, &login_cookie), NOW + 1);
    let again = cookie_pair(&done, "__Host-portcullis-session=");
    assert!(admitted(&later, &again, NOW + 2));
}

#[test]
fn kv_failing_on_writes_still_ends_the_session_everywhere() {
    let (w, elsewhere, cookie) = two_locations();
    w.store.failing.borrow_mut().extend(["put", "delete"]);
    let (handled, _) = w.handle_at(&same_site_logout(&cookie), NOW);
    assert!(
        matches!(&handled.outcome, Outcome::Reply(r) if r.status == 303),
        "{:?}",
        handled.outcome
    );
    assert!(
        logged(&handled.log, "revoked_in_person_object_only"),
        "{:?}",
        handled.log
    );
    assert!(!admitted(&elsewhere, &cookie, NOW + 2));
}

#[test]
fn an_unreachable_object_falls_back_to_kv_and_says_so_once_a_minute() {
    let w = bound_world();
    let cookie = sign_in(&w);
    w.people.down.set(true);
    let (handled, _) = w.handle_at(&api_get(&cookie), NOW);
    assert!(
        matches!(handled.outcome, Outcome::Proxy(_)),
        "KV's word stands"
    );
    let said = |h: &Handled| {
        h.log
            .iter()
            .any(|l| l.contains("person_object_unreachable"))
    };
    assert!(said(&handled), "{:?}", handled.log);
    let (again, _) = w.handle_at(&api_get(&cookie), NOW + 5);
    assert!(!said(&again), "not again within the minute");
    let (later, _) = w.handle_at(&api_get(&cookie), NOW + 61);
    assert!(said(&later));
}

fn upgrade(host: &str, cookie: &str) -> RequestHead {
    request(
        "GET",
        &format!("https://{host}/ws"),
        &[
            ("cookie", cookie),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
        ],
    )
}

fn relayed(w: &World, head: &RequestHead) -> Option<crate::people::relay::Standing> {
    match w.handle_at(head, NOW + 1).0.outcome {
        Outcome::Proxy(plan) => plan.relay,
        Outcome::Reply(r) => panic!("refused: {} {}", r.status, r.body),
    }
}

#[test]
fn a_websocket_upgrade_is_relayed_with_people_unless_the_app_passes_it() {
    let extra = json!({
        "revocation_check": "2s",
        "apps": [
            { "host": "photos.example.com" },
            { "host": "sonarr.example.com", "websockets": "pass" },
        ],
    });
    let mut w = World::new(extra, Some("s"));
    w.people.absent = false;
    let cookie = sign_in(&w);
    let standing = relayed(&w, &upgrade("photos.example.com", &cookie)).expect("relayed");
    assert_eq!(standing.sub, "alice-1");
    assert_eq!(standing.kind, crate::people::relay::GrantKind::Session);
    assert_eq!(standing.app, "photos.example.com");
    assert!(standing.expires > NOW);
    assert_eq!(
        relayed(&w, &upgrade("sonarr.example.com", &cookie)),
        None,
        "pass"
    );
    assert_eq!(relayed(&w, &photos_get(&cookie)), None, "not an upgrade");
    w.people.absent = true;
    assert_eq!(
        relayed(&w, &upgrade("photos.example.com", &cookie)),
        None,
        "no PEOPLE"
    );
}

#[test]
fn relay_without_people_is_a_configuration_error() {
    let settings = |apps: Value| {
        crate::model::Settings::parse(Some(
            &json!({ "issuer": ISS, "client_id": "c", "apps": apps }),
        ))
        .unwrap()
    };
    let relay = settings(json!([{ "host": "a.example.com", "websockets": "relay" }]));
    let problems = crate::config::binding_problems(&relay, false);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "PORTCULLIS.apps[0].websockets");
    assert!(crate::config::binding_problems(&relay, true).is_empty());
    let default = settings(json!([{ "host": "a.example.com" }]));
    assert!(crate::config::binding_problems(&default, false).is_empty());
    let bad = crate::model::Settings::parse(Some(&json!({
        "issuer": ISS, "client_id": "c", "apps": [{ "host": "a.example.com", "websockets": "always" }],
    })));
    assert!(bad.is_err());
}

/// Location b of a revalidating world: its own gate, the same issuer and objects, and a
/// KV that keeps showing the records as they are now.
struct LocationB {
    gate: Gate,
    store: MemoryStore,
}

impl LocationB {
    fn of(w: &World, extra: Value) -> Self {
        let store = MemoryStore::default();
        *store.records.borrow_mut() = w.store.records.borrow().clone();
        Self {
            gate: gate(extra, Some("s")),
            store,
        }
    }

    /// Handles the request at `now` and runs its background work, as the edge does.
    fn serve(&self, w: &World, head: &RequestHead, now: u64) -> bool {
        w.people.now.set(now);
        let io =
            IoParts::new(&self.store, &w.issuer, &RustCrypto, &SystemRandom).with_people(&w.people);
        let route = self.gate.route(head);
        let handled = pollster::block_on(self.gate.handle(head, route, &io, now));
        for task in handled.tasks {
            pollster::block_on(self.gate.run(task, &io, now));
        }
        matches!(handled.outcome, Outcome::Proxy(_))
    }
}

/// Two locations find the session due at once, against an issuer that rotates refresh
/// tokens and refuses a used one; b's KV never sees a's rotation.
fn due_at_once(people: bool) -> (World, LocationB, String, u64) {
    let extra =
        json!({ "revalidate_every": "15m", "session_cache": "0s", "revocation_check": "2s" });
    let mut w = World::new(extra.clone(), Some("s"));
    w.people.absent = !people;
    let cookie = revalidating_login(&w);
    let b = LocationB::of(&w, extra);
    let at = NOW + 16 * 60;
    let head = api_get(&cookie);
    let (served, tasks) = w.handle_at(&head, at);
    assert!(matches!(served.outcome, Outcome::Proxy(_)));
    assert!(
        b.serve(&w, &head, at),
        "b serves it too, and re-validates it"
    );
    w.run(tasks, at);
    (w, b, cookie, at)
}

#[test]
fn with_people_two_locations_due_at_once_refresh_once_and_the_session_lives() {
    let (w, b, cookie, at) = due_at_once(true);
    assert_eq!(
        *w.issuer.refreshes.borrow(),
        1,
        "the issuer sees one refresh"
    );
    let head = api_get(&cookie);
    assert!(admitted(&w, &cookie, at + 1));
    assert!(b.serve(&w, &head, at + 1));
    // The next round: b, whose KV still shows the first refresh token, refreshes from the
    // record the object holds; a then takes b's result.
    let next = at + 16 * 60;
    assert!(b.serve(&w, &head, next));
    assert_eq!(*w.issuer.refreshes.borrow(), 2);
    let (served, tasks) = w.handle_at(&head, next + 1);
    assert!(matches!(served.outcome, Outcome::Proxy(_)));
    w.run(tasks, next + 1);
    assert_eq!(
        *w.issuer.refreshes.borrow(),
        2,
        "a refreshed nothing: b's result stood"
    );
    assert!(admitted(&w, &cookie, next + 2) && b.serve(&w, &head, next + 2));
}

#[test]
fn without_people_the_second_refresh_is_a_reuse_and_ends_the_session() {
    // What the lease changes: the same two locations, no `PEOPLE`.
    let (w, _b, cookie, at) = due_at_once(false);
    assert_eq!(*w.issuer.refreshes.borrow(), 2, "both refreshed");
    assert!(
        !admitted(&w, &cookie, at + 1),
        "the reuse ended the session"
    );
}

#[test]
fn a_refresh_before_the_response_rides_on_the_one_object_request() {
    let extra =
        json!({ "revalidate_every": "15m", "session_cache": "0s", "revocation_check": "2s" });
    let mut w = World::new(extra, Some("s"));
    w.people.absent = false;
    let cookie = revalidating_login(&w);
    let long_overdue = NOW + 31 * 60;
    let asked = w.people.asked.get();
    let (handled, tasks) = w.handle_at(&api_get(&cookie), long_overdue);
    assert!(matches!(handled.outcome, Outcome::Proxy(_)));
    assert_eq!(
        *w.issuer.refreshes.borrow(),
        1,
        "refreshed before the response"
    );
    assert_eq!(
        w.people.asked.get() - asked,
        1,
        "one object request: the refresh's own"
    );
    assert!(
        tasks.iter().any(|t| matches!(t, Task::Person { .. })),
        "the renewed record goes to the object after the response: {tasks:?}"
    );
    w.run(tasks, long_overdue);
    // The next request within revocation_check asks nothing; the checks go on after it.
    let asked = w.people.asked.get();
    assert!(admitted(&w, &cookie, long_overdue + 1));
    assert_eq!(w.people.asked.get(), asked);
    assert!(admitted(&w, &cookie, long_overdue + 3));
    assert_eq!(w.people.asked.get(), asked + 1);
}

#[test]
fn kv_failing_on_writes_the_admin_api_still_ends_the_session_everywhere() {
    const TOKEN: &str = "admin-token-0123456789abcdef0123456789";
    let config = Config::from_inputs(&Inputs {
        portcullis: Some(json!({
            "issuer": ISS, "client_id": "portcullis", "revocation_check": "2s",
            "apps": [{ "host": "photos.example.com" }],
        })),
        oidc_client_secret: Some("s".into()),
        session_secret: Some(SECRET.into()),
        assertion_key: None,
        admin_token: Some(TOKEN.into()),
    })
    .unwrap();
    let mut w = World::new(json!({}), Some("s"));
    w.gate = Gate::new(config);
    w.people.absent = false;
    let cookie = sign_in(&w);
    let elsewhere = lagging_location(&w);
    assert!(admitted(&elsewhere, &cookie, NOW));
    w.store.failing.borrow_mut().extend(["put", "delete"]);
    for body in [r#"{"sub":"alice-1"}"#, r#"{"all":true}"#] {
        let mut head = request(
            "POST",
            "https://photos.example.com/.portcullis/admin/revoke",
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/json"),
            ],
        );
        head.body = Some(body.into());
        let reply = w.reply(&head);
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
    }
    assert!(!admitted(&elsewhere, &cookie, NOW + 2), "refused elsewhere");
}

#[test]
fn a_tombstone_seen_next_to_a_live_record_removes_the_record() {
    // A record written back elsewhere after its revocation (KV's edge cache answered that
    // location's check): the next re-validation that sees both removes the record.
    let (w, cookie) = revalidating_world();
    let key = w
        .store
        .records
        .borrow()
        .keys()
        .find(|k| k.starts_with("session:"))
        .cloned()
        .unwrap();
    let hash = key.trim_start_matches("session:").to_string();
    pollster::block_on(crate::store::Store::put(
        &*w.store,
        &format!("revoked:{hash}"),
        crate::store::Entry::new("revoked", 3600),
    ))
    .unwrap();
    let at = NOW + 16 * 60;
    w.after(&api_get(&cookie), at);
    assert!(!w.store.records.borrow().contains_key(&key), "removed");
    assert!(!admitted(&w, &cookie, at + 1));
}

#[test]
fn a_relayed_upgrade_leaves_the_check_to_the_object() {
    let w = bound_world();
    let cookie = sign_in(&w);
    let asked = w.people.asked.get();
    assert!(relayed(&w, &upgrade("photos.example.com", &cookie)).is_some());
    assert_eq!(
        w.people.asked.get(),
        asked,
        "the gate asked nothing: the object checks before it relays (one request, not two)"
    );
    assert!(admitted(&w, &cookie, NOW + 1));
    assert_eq!(
        w.people.asked.get(),
        asked + 1,
        "a plain request is checked by the gate"
    );
}

#[test]
fn with_the_lease_a_refused_refresh_ends_the_grant_even_where_kv_shows_an_older_record() {
    let extra =
        json!({ "revalidate_every": "15m", "session_cache": "0s", "revocation_check": "2s" });
    let mut w = World::new(extra.clone(), Some("s"));
    w.people.absent = false;
    let cookie = revalidating_login(&w);
    let b = LocationB::of(&w, extra);
    let head = api_get(&cookie);
    // a refreshes first: its KV and the object have the rotated token; b's KV never does.
    let at = NOW + 16 * 60;
    w.after(&head, at);
    assert_eq!(*w.issuer.refreshes.borrow(), 1);
    // The grant is then revoked at the issuer. b refreshes from the object's record; the
    // refusal must not be taken for "someone else rotated it" because b's KV differs.
    *w.issuer.refresh_token.borrow_mut() = None;
    let next = at + 16 * 60;
    b.serve(&w, &head, next);
    assert!(!b.serve(&w, &head, next + 1), "ended at b");
    assert!(
        !admitted(&w, &cookie, next + 3),
        "and at a, within revocation_check"
    );
}
