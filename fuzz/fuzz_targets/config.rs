//! The configuration parser: any `PORTCULLIS` text gives a configuration or errors that
//! name a key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::config::Inputs;
use portcullis::model::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let inputs = Inputs {
        portcullis: Some(serde_json::Value::String(text.to_string())),
        session_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    };
    if let Err(errors) = Config::from_inputs(&inputs) {
        assert!(!errors.0.is_empty());
        assert!(errors.0.iter().all(|e| !e.key.is_empty()));
    }
});
