//! Path normalisation and pattern matching: no panic, a fixed point, and what is judged
//! is what is forwarded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::path::{normalize, PathPattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or(("/share/**", text));
    if let Ok(normalized) = normalize(path) {
        assert_eq!(normalize(&normalized).as_deref(), Ok(normalized.as_str()));
        if let Ok(p) = PathPattern::parse(pattern) {
            let _ = p.matches(&normalized);
        }
    }
    // Only what a runtime hands over: a path (workerd gives the host as ASCII/punycode).
    if !path.starts_with('/') {
        return;
    }
    if let Ok(url) = url::Url::parse(&format!("https://h.example.com{path}")) {
        let head = portcullis::request::RequestHead::new("GET", url, Vec::new());
        if head.ambiguous_path.is_none() {
            assert_eq!(normalize(head.url.path()).as_deref(), Ok(head.url.path()));
        }
    }
});
