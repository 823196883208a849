//! The return-URL resolver: whatever `rd` is, the result stays on a configured host.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::config::Inputs;
use portcullis::model::Config;
use std::sync::OnceLock;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_inputs(&Inputs {
            portcullis: Some(serde_json::json!({
                "issuer": "https://id.example.com", "client_id": "c",
                "apps": [{ "host": "photos.example.com" }, { "host": "sonarr.example.com" }],
            })),
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            ..Default::default()
        })
        .expect("a valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    let current = url::Url::parse("https://photos.example.com/x").expect("a URL");
    let target = portcullis::return_to::resolve(Some(rd), &current, config());
    let url = url::Url::parse(&target).expect("an absolute URL");
    assert!(config().settings.serves_host(url.host_str().unwrap_or_default()), "{rd:?} -> {target}");
});
