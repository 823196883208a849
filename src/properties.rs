//! Property tests of the invariants the access rules rest on, over generated inputs
//! (paths made of the characters and escapes that path tricks use, and return URLs).

use proptest::prelude::*;
use url::Url;

use crate::config::Inputs;
use crate::model::{classify, Config};
use crate::path::normalize;
use crate::proxy::upstream_url;
use crate::request::RequestHead;
use crate::return_to;

/// Path pieces that path tricks are made of.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E".to_string()),
        Just("%2f".to_string()),
        Just("%5c".to_string()),
        Just("%25".to_string()),
        Just("%252e".to_string()),
        Just(";".to_string()),
        Just("\\\\".to_string()),
        Just("%61".to_string()),
        Just("%00".to_string()),
        Just("share".to_string()),
        Just("admin".to_string()),
        Just("favicon.ico".to_string()),
        "[a-zA-Z0-9_~-]{1,4}",
        "[ -~]{1,3}",
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|parts| format!("/{}", parts.concat()))
}

fn config() -> Config {
    Config::from_inputs(&Inputs {
        portcullis: Some(serde_json::json!({
            "issuer": "https://id.example.com", "client_id": "portcullis",
            "apps": [
                { "host": "photos.example.com", "public_paths": ["/share/**", "/favicon.ico"] },
                { "host": "sonarr.example.com", "origin": "http://127.0.0.1:8989" },
            ],
        })),
        session_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// A normalised path normalises to itself.
    #[test]
    fn the_plain_path_shortcut_agrees_with_the_full_algorithm(
        raw in prop_oneof![raw_path(), "/?[a-z./;\\\\%\\x01\\x7f\t ä-]{0,16}"]
    ) {
        prop_assert_eq!(normalize(&raw), crate::path::normalize_segments(&raw));
    }

    #[test]
    fn a_normalised_path_is_a_fixed_point(raw in raw_path()) {
        if let Ok(once) = normalize(&raw) {
            prop_assert_eq!(normalize(&once), Ok(once.clone()));
        }
    }

    /// What the rules judge is byte for byte what the origin receives.
    #[test]
    fn the_path_judged_is_the_path_forwarded(raw in raw_path()) {
        let config = config();
        let Ok(url) = Url::parse(&format!("https://photos.example.com{raw}?q=1")) else {
            return Ok(());
        };
        let head = RequestHead::new("GET", url, Vec::new());
        if head.ambiguous_path.is_some() {
            return Ok(()); // refused with 400, never forwarded
        }
        let app = &config.settings.apps[0];
        let judged = head.url.path().to_string();
        let _ = classify(app, &judged);
        let forwarded = Url::parse(&upstream_url(&head.url, app)).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(forwarded.path(), judged.as_str());
        let other = &config.settings.apps[1];
        let forwarded = Url::parse(&upstream_url(&head.url, other)).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(forwarded.path(), judged.as_str());
    }

    /// No return URL leaves the configured hosts.
    #[test]
    fn no_return_url_leaves_the_configured_hosts(
        rd in prop_oneof![
            raw_path(),
            "[ -~]{0,40}",
            "(https?|javascript|data)://[a-z.]{1,20}(:[0-9]{1,5})?/[ -~]{0,10}",
            "//[ -~]{0,20}",
            "/\\\\[ -~]{0,20}",
        ]
    ) {
        let config = config();
        let current = Url::parse("https://photos.example.com/x").unwrap_or_else(|e| panic!("{e}"));
        let target = return_to::resolve(Some(&rd), &current, &config);
        let url = Url::parse(&target).unwrap_or_else(|e| panic!("{target}: {e}"));
        let host = url.host_str().unwrap_or_default();
        prop_assert!(config.settings.serves_host(host), "{rd:?} → {target}");
        prop_assert!(matches!(url.scheme(), "https" | "http"), "{rd:?} → {target}");
    }
}
