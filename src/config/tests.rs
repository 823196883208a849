use super::*;
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn inputs(portcullis: serde_json::Value) -> Inputs {
    Inputs {
        portcullis: Some(portcullis),
        oidc_client_secret: Some("client-secret".into()),
        session_secret: Some(SECRET.into()),
        assertion_key: None,
        admin_token: None,
    }
}

fn minimal() -> serde_json::Value {
    json!({
        "issuer": "https://id.example.com",
        "client_id": "portcullis",
        "apps": [{ "host": "photos.example.com" }]
    })
}

fn errors(value: serde_json::Value) -> Vec<String> {
    Config::from_inputs(&inputs(value))
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Whether the minimal configuration with these settings is refused with a problem under
/// `key` that mentions `needle`.
fn refused(settings: &serde_json::Value, key: &str, needle: &str) -> bool {
    let mut v = minimal();
    for (k, value) in settings.as_object().into_iter().flatten() {
        v[k] = value.clone();
    }
    has(&errors(v), key, needle)
}

/// Each case is refused with its message: (settings as a JSON object, the key named, the
/// text).
fn refusals_of(cases: &[(serde_json::Value, &str, &str)]) {
    for (settings, key, needle) in cases {
        assert!(
            refused(settings, key, needle),
            "{settings}: expected {key}: …{needle}…"
        );
    }
}

fn has(errors: &[String], key: &str, needle: &str) -> bool {
    errors
        .iter()
        .any(|e| e.starts_with(key) && e.contains(needle))
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = Config::from_inputs(&inputs(minimal())).unwrap();
    assert_eq!(c.settings.issuer, "https://id.example.com");
    assert_eq!(
        c.settings.discovery_url.as_str(),
        "https://id.example.com/.well-known/openid-configuration"
    );
    assert_eq!(
        c.settings.scopes.all(),
        ["openid", "profile", "email", "groups"]
    );
    assert_eq!(c.settings.session_lifetime, 7 * 86_400);
    assert_eq!(c.settings.session_cache, 30);
    assert_eq!(c.settings.groups_claim, "groups");
    assert!(c.settings.id_token_audiences.is_empty());
    assert_eq!(c.settings.cookie_domain, None);
    assert_eq!(c.settings.apps[0].host, "photos.example.com");
    assert_eq!(c.settings.apps[0].origin, None);
    assert!(c.secrets.client_secret.is_some());
    assert_eq!(c.secrets.signing_keys.len(), 1);
    assert!(c.settings.app("photos.example.com").is_some());
    assert!(c.settings.app("other.example.com").is_none());
}

#[test]
fn issuer_with_a_path_keeps_its_trailing_slash() {
    let mut v = minimal();
    v["issuer"] = json!("https://auth.example.com/application/o/photos/");
    let c = Config::from_inputs(&inputs(v)).unwrap();
    assert_eq!(
        c.settings.issuer,
        "https://auth.example.com/application/o/photos/"
    );
    assert_eq!(
        c.settings.discovery_url.as_str(),
        "https://auth.example.com/application/o/photos/.well-known/openid-configuration"
    );
}

#[test]
fn openid_is_always_sent_once() {
    let mut v = minimal();
    v["scopes"] = json!(["email", "openid", "email"]);
    let c = Config::from_inputs(&inputs(v)).unwrap();
    assert_eq!(c.settings.scopes.all(), ["openid", "email"]);
}

#[test]
fn full_config_parses() {
    let v = json!({
        "issuer": "https://id.example.com",
        "client_id": "portcullis",
        "scopes": ["openid", "email"],
        "session_lifetime": "12h",
        "session_cache": "0s",
        "groups_claim": "roles",
        "cookie_domain": "example.com",
        "auth_host": "auth.example.com",
        "apps": [
            { "host": "Photos.Example.com", "origin": "https://photos-origin.example.com" },
            { "host": "sonarr.example.com" }
        ]
    });
    let c = Config::from_inputs(&inputs(v)).unwrap();
    assert_eq!(c.settings.session_lifetime, 43_200);
    assert_eq!(c.settings.session_cache, 0);
    assert_eq!(c.settings.auth_host.as_deref(), Some("auth.example.com"));
    assert_eq!(c.settings.apps[0].host, "photos.example.com");
    assert_eq!(
        c.settings.apps[0].origin.as_ref().unwrap().as_str(),
        "https://photos-origin.example.com"
    );
    assert!(c.settings.serves_host("auth.example.com"));
    assert!(c.settings.serves_host("sonarr.example.com"));
    assert!(!c.settings.serves_host("example.com"));
}

#[test]
fn config_may_be_a_json_string() {
    let v = serde_json::Value::String(minimal().to_string());
    assert!(Config::from_inputs(&inputs(v)).is_ok());
    // Problems in a string are named by key, as in a table.
    let mut bad = minimal();
    bad["apps"][0]["allow_groups"] = json!("family");
    let as_string = errors(serde_json::Value::String(bad.to_string()));
    assert_eq!(as_string, errors(bad));
    assert!(
        as_string[0].starts_with("PORTCULLIS.apps[0].allow_groups"),
        "{as_string:?}"
    );
    let broken = errors(serde_json::Value::String("{\"issuer\": ".into()));
    assert!(
        broken[0].starts_with("PORTCULLIS: is not valid JSON"),
        "{broken:?}"
    );
}

#[test]
fn missing_variable_says_where_to_add_it() {
    let e = Config::from_inputs(&Inputs {
        portcullis: None,
        oidc_client_secret: None,
        session_secret: Some(SECRET.into()),
        assertion_key: None,
        admin_token: None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("[vars.PORTCULLIS]"), "{e}");
}

#[test]
fn missing_required_keys_are_all_reported() {
    let e = errors(json!({}));
    assert!(has(&e, "PORTCULLIS.issuer", "is required"), "{e:?}");
    assert!(has(&e, "PORTCULLIS.client_id", "is required"), "{e:?}");
    assert!(has(&e, "PORTCULLIS.apps", "is required"), "{e:?}");
}

#[test]
fn unknown_keys_are_named() {
    let mut v = minimal();
    v["sesion_lifetime"] = json!("7d");
    let e = errors(v);
    assert!(
        has(&e, "PORTCULLIS", "unknown field `sesion_lifetime`"),
        "{e:?}"
    );
    let mut v = minimal();
    v["apps"][0]["hots"] = json!("x");
    let e = errors(v);
    assert!(
        has(&e, "PORTCULLIS.apps[0]", "unknown field `hots`"),
        "{e:?}"
    );
}

#[test]
fn wrong_types_are_named() {
    let mut v = minimal();
    v["scopes"] = json!("openid email");
    let e = errors(v);
    assert!(has(&e, "PORTCULLIS.scopes", "expected a sequence"), "{e:?}");
}

/// Each case is refused with its message: (setting, its value, the key named, the text).
fn refusals(cases: &[(&str, serde_json::Value, &str, &str)]) {
    for (setting, value, key, needle) in cases {
        assert!(
            refused(&json!({ *setting: value }), key, needle),
            "{setting} = {value}: expected {key}: …{needle}…"
        );
    }
}

#[test]
fn bad_durations_are_named() {
    refusals(&[
        (
            "session_lifetime",
            json!("7 days"),
            "PORTCULLIS.session_lifetime",
            "e.g. \"7d\"",
        ),
        (
            "session_lifetime",
            json!("30s"),
            "PORTCULLIS.session_lifetime",
            "minimum 5m",
        ),
        (
            "session_cache",
            json!("1h"),
            "PORTCULLIS.session_cache",
            "maximum 5m",
        ),
        (
            "revalidate_every",
            json!("10s"),
            "PORTCULLIS.revalidate_every",
            "minimum 30s",
        ),
    ]);
}

#[test]
fn apps_are_checked() {
    let app = |v: serde_json::Value| json!([v]);
    refusals(&[
        (
            "apps",
            app(json!({ "origin": "https://x.example.com" })),
            "PORTCULLIS.apps[0].host",
            "is required",
        ),
        (
            "apps",
            json!([{ "host": "a.example.com" }, { "host": "A.example.com" }]),
            "PORTCULLIS.apps[1].host",
            "configured twice",
        ),
        (
            "apps",
            app(json!({ "host": "https://a.example.com/" })),
            "PORTCULLIS.apps[0].host",
            "without scheme",
        ),
        (
            "apps",
            app(json!({ "host": "a.example.com", "origin": "https://o.example.com/sub" })),
            "PORTCULLIS.apps[0].origin",
            "has a path",
        ),
        (
            "apps",
            app(json!({ "host": "a.example.com", "origin": "http://o.example.com" })),
            "PORTCULLIS.apps[0].origin",
            "https",
        ),
        ("apps", json!([]), "PORTCULLIS.apps", "is empty"),
        (
            "issuer",
            json!("http://id.example.com"),
            "PORTCULLIS.issuer",
            "use https",
        ),
    ]);
}

#[test]
fn admin_groups_need_an_auth_host() {
    refusals_of(&[
        (
            json!({ "admin_groups": ["admins"] }),
            "PORTCULLIS.admin_groups",
            "needs auth_host",
        ),
        (
            json!({
                "cookie_domain": "example.com",
                "auth_host": "auth.example.com",
                "admin_groups": ["admins", " "],
            }),
            "PORTCULLIS.admin_groups[1]",
            "is empty",
        ),
    ]);
}

#[test]
fn auth_host_needs_a_cookie_domain_that_contains_it() {
    refusals_of(&[
        (
            json!({ "auth_host": "auth.example.com" }),
            "PORTCULLIS.auth_host",
            "needs cookie_domain",
        ),
        (
            json!({ "cookie_domain": "example.com", "auth_host": "auth.example.org" }),
            "PORTCULLIS.auth_host",
            "not within cookie_domain",
        ),
        (
            json!({ "cookie_domain": ".example.com" }),
            "PORTCULLIS.cookie_domain",
            "starts with a dot",
        ),
        (
            json!({ "cookie_domain": "example.org" }),
            "PORTCULLIS.apps[0].host",
            "not within cookie_domain",
        ),
    ]);
}

#[test]
fn issuer_must_be_https() {
    // (http elsewhere: apps_are_checked.)
    let mut v = minimal();
    v["issuer"] = json!("http://127.0.0.1:9000");
    assert!(
        Config::from_inputs(&inputs(v)).is_ok(),
        "loopback http is fine for development"
    );
}

#[test]
fn secrets_are_checked_without_being_echoed() {
    let mut i = inputs(minimal());
    i.session_secret = None;
    let e = Config::from_inputs(&i).unwrap_err().to_string();
    assert!(e.contains("SESSION_SECRET: is not set"), "{e}");
    assert!(e.contains("wrangler secret put SESSION_SECRET"), "{e}");

    i.session_secret = Some("short-secret".into());
    let e = Config::from_inputs(&i).unwrap_err().to_string();
    assert!(e.contains("12 bytes"), "{e}");
    assert!(
        !e.contains("short-secret"),
        "the secret must not be echoed: {e}"
    );

    i.session_secret = Some(format!("{SECRET},tooshort"));
    let e = Config::from_inputs(&i).unwrap_err().to_string();
    assert!(e.contains("key 2 of 2"), "{e}");

    i.session_secret = Some(format!("{SECRET}, {SECRET}x"));
    let c = Config::from_inputs(&i).unwrap();
    assert_eq!(c.secrets.signing_keys.len(), 2);
    assert_eq!(c.secrets.signing_keys.current(), SECRET.as_bytes());

    i.oidc_client_secret = Some(String::new());
    let e = Config::from_inputs(&i).unwrap_err().to_string();
    assert!(e.contains("OIDC_CLIENT_SECRET"), "{e}");

    i.oidc_client_secret = None;
    assert!(Config::from_inputs(&i)
        .unwrap()
        .secrets
        .client_secret
        .is_none());
}

#[test]
fn settings_and_secret_errors_are_reported_together() {
    let e = Config::from_inputs(&Inputs {
        portcullis: Some(json!({ "client_id": "x", "apps": [{ "host": "a.example.com" }] })),
        oidc_client_secret: None,
        session_secret: None,
        assertion_key: None,
        admin_token: None,
    })
    .unwrap_err();
    assert_eq!(e.0.len(), 2, "{e}");
}

#[test]
fn revalidation_has_a_floor() {
    // Whether `offline_access` is requested is decided at login, from the issuer's
    // discovery (oidc::pending_login tests).
    let mut v = minimal();
    v["revalidate_every"] = json!("15m");
    let c = Config::from_inputs(&inputs(v)).unwrap();
    assert_eq!(c.settings.revalidate_every, Some(900));
    // (Below the floor: bad_durations_are_named.)
    let c = Config::from_inputs(&inputs(minimal())).unwrap();
    assert_eq!(c.settings.revalidate_every, None);
    assert!(!c
        .settings
        .scopes
        .all()
        .contains(&"offline_access".to_string()));
}

#[test]
fn the_user_claim_is_set_per_app_with_a_top_level_default() {
    let c = Config::from_inputs(&inputs(json!({
        "issuer": "https://id.example.com",
        "client_id": "portcullis",
        "user_claim": "sub",
        "apps": [
            { "host": "a.example.com" },
            { "host": "b.example.com", "user_claim": "preferred_username" },
        ],
    })))
    .unwrap();
    assert_eq!(c.settings.apps[0].user_claim, UserClaim::Sub);
    assert_eq!(c.settings.apps[1].user_claim, UserClaim::PreferredUsername);
    let d = Config::from_inputs(&inputs(minimal())).unwrap();
    assert_eq!(
        d.settings.apps[0].user_claim,
        UserClaim::Email,
        "the default"
    );
    let e = errors(json!({
        "issuer": "https://id.example.com",
        "client_id": "portcullis",
        "user_claim": "name",
        "apps": [{ "host": "a.example.com", "user_claim": "nickname" }],
    }));
    assert!(
        has(&e, "PORTCULLIS.user_claim", "\"name\" is not a user claim"),
        "{e:?}"
    );
    assert!(
        has(&e, "PORTCULLIS.apps[0].user_claim", "use \"email\""),
        "{e:?}"
    );
}

#[test]
fn non_ascii_urls_are_refused_with_a_clear_message() {
    // Found by fuzzing (fuzz/fuzz_targets/config.rs).
    let e = errors(json!({
        "issuer": "https://iRhttspRR\u{40c}0:.exampl5Xcom",
        "client_id": "c",
        "apps": [{ "host": "a.example.com", "origin": "https://\u{444}.example.com" }],
    }));
    assert!(has(&e, "PORTCULLIS.issuer", "punycode"), "{e:?}");
    assert!(has(&e, "PORTCULLIS.apps[0].origin", "punycode"), "{e:?}");
    let e = errors(json!({
        "issuer": format!("https:{}%B7:m./]", "G".repeat(120)),
        "client_id": "c",
        "apps": [{ "host": "a.example.com" }],
    }));
    assert!(has(&e, "PORTCULLIS.issuer", "punycode"), "{e:?}");
    let e = errors(json!({
        "issuer": "https:/%66.PPPP%b6.0:/X.66.://00:/X.6//0Xom",
        "client_id": "c",
        "apps": [{ "host": "a.example.com" }],
    }));
    assert!(has(&e, "PORTCULLIS.issuer", "punycode"), "{e:?}");
}

#[test]
fn id_token_audiences_are_a_list_of_names() {
    let mut v = minimal();
    v["id_token_audiences"] = json!(["170086774599581953", " 170086774599581953 "]);
    let c = Config::from_inputs(&inputs(v)).unwrap();
    assert_eq!(c.settings.id_token_audiences, ["170086774599581953"]);
    refusals(&[
        (
            "id_token_audiences",
            json!(["a", ""]),
            "PORTCULLIS.id_token_audiences[1]",
            "is empty",
        ),
        (
            "id_token_audiences",
            json!("a"),
            "PORTCULLIS",
            "id_token_audiences",
        ),
    ]);
}
