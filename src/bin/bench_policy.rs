//! Part of `scripts/bench`: the cost of what Portcullis evaluates per request for access
//! rules (path normalisation, path classification, allow rules), measured natively.

use std::hint::black_box;
use std::time::Instant;

use portcullis::config::Inputs;
use portcullis::identity::{Identity, Subject};
use portcullis::model::classify;
use portcullis::model::Config;
use portcullis::path::normalize;

fn main() {
    let config = match Config::from_inputs(&Inputs {
        portcullis: Some(serde_json::json!({
            "issuer": "https://id.example.com",
            "client_id": "portcullis",
            "apps": [{
                "host": "photos.example.com",
                "allow_groups": ["staff", "ops", "family"],
                "allow_emails": ["someone@example.org"],
                "allow_email_domains": ["example.net"],
                "public_paths": ["/share/**", "/favicon.ico", "/api/shared-link/*", "/manifest.json"],
                "api_paths": ["/api/**", "/feed/**"],
            }],
        })),
        session_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    }) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let app = &config.settings.apps[0];
    let paths = [
        "/api/assets/123/thumbnail",
        "/share/abc/def",
        "/photos/2024/06/img.jpg",
        "/favicon.ico",
        "//sh%61re/x/../y",
    ];
    let person = |sub: &str| Subject::parse(sub).map(Identity::new);
    let (Some(a), Some(b), Some(c)) = (person("a"), person("b"), person("c")) else {
        eprintln!("the sample subjects are not subjects");
        std::process::exit(1);
    };
    let people = [
        Identity {
            groups: vec!["family".into()],
            ..a
        },
        Identity {
            email: Some("x@example.net".into()),
            email_verified: true,
            ..b
        },
        Identity {
            groups: vec!["guests".into()],
            ..c
        },
    ];
    const N: usize = 2_000_000;
    let start = Instant::now();
    for i in 0..N {
        let normalized = normalize(black_box(paths[i % paths.len()])).unwrap_or_default();
        black_box(classify(app, &normalized));
        black_box(app.allow.admits(black_box(&people[i % people.len()])));
    }
    let per = start.elapsed().as_nanos() as f64 / N as f64;
    println!("Access rules per request (normalise the path, classify it, check the allow rules; native, {N} runs): {per:.0} ns.");
}
