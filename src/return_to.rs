//! Where to send the browser after login. Only a path on the current host or a URL on a
//! configured host is honoured; anything else (other hosts, `//evil`, `/\evil`,
//! `javascript:`, control characters, encoded tricks) falls back to `/` of the current
//! host. The result is always an absolute URL, so browsers cannot reinterpret it.

use url::Url;

use crate::config::plain_authority;
use crate::model::Config;
use crate::router::{Endpoint, PREFIX};

/// The absolute URL to return to for a requested `rd` value, seen from `current`.
pub fn resolve(requested: Option<&str>, current: &Url, config: &Config) -> String {
    let fallback = || format!("{}/", current.origin().ascii_serialization());
    let Some(raw) = requested.filter(|r| !r.is_empty()) else {
        return fallback();
    };
    // Only printable ASCII: configured hosts are ASCII (punycode), and non-ASCII hosts
    // (look-alike letters) are never a way back to one.
    if raw.len() > 4096
        || raw
            .chars()
            .any(|c| !c.is_ascii() || c.is_control() || c.is_whitespace() || c == '\\')
    {
        return fallback();
    }
    let target = if raw.starts_with('/') {
        if raw.starts_with("//") {
            return fallback();
        }
        match current.join(raw) {
            Ok(url) if url.origin() == current.origin() => url,
            _ => return fallback(),
        }
    } else {
        if !plain_authority(raw) {
            return fallback();
        }
        match Url::parse(raw) {
            Ok(url) if acceptable_elsewhere(&url, current, config) => url,
            _ => return fallback(),
        }
    };
    // Never back into the login machinery itself (a loop) or to a logout; the pages a
    // person visits (sessions, me) are fine.
    let looping = [
        Endpoint::Login,
        Endpoint::Callback,
        Endpoint::Logout,
        Endpoint::SignedOut,
    ]
    .iter()
    .any(|e| target.path() == e.path());
    if looping || (target.path().starts_with(PREFIX) && target.path().contains("/admin/")) {
        return format!("{}/", target.origin().ascii_serialization());
    }
    let mut target = target;
    target.set_fragment(None);
    target.into()
}

/// An absolute URL on one of the protected hosts, with the scheme of this deployment.
fn acceptable_elsewhere(url: &Url, current: &Url, config: &Config) -> bool {
    let scheme_ok = url.scheme() == "https" || url.scheme() == current.scheme();
    let is_web = matches!(url.scheme(), "https" | "http");
    let host = url.host_str().unwrap_or_default();
    is_web
        && scheme_ok
        && url.username().is_empty()
        && url.password().is_none()
        && config.settings.serves_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inputs;

    fn config() -> Config {
        Config::from_inputs(&Inputs {
            portcullis: Some(serde_json::json!({
                "issuer": "https://id.example.com", "client_id": "c",
                "cookie_domain": "example.com", "auth_host": "auth.example.com",
                "apps": [{ "host": "photos.example.com" }, { "host": "sonarr.example.com" }]
            })),
            oidc_client_secret: None,
            session_secret: Some("0123456789abcdef0123456789abcdef".into()),
            assertion_key: None,
            admin_token: None,
        })
        .unwrap()
    }

    fn at(current: &str, rd: Option<&str>) -> String {
        resolve(rd, &Url::parse(current).unwrap(), &config())
    }

    const HERE: &str = "https://photos.example.com/x";

    #[test]
    fn paths_on_this_host_are_kept() {
        assert_eq!(
            at(HERE, Some("/album/1?sort=date")),
            "https://photos.example.com/album/1?sort=date"
        );
        assert_eq!(at(HERE, Some("/a/../b")), "https://photos.example.com/b");
        assert_eq!(at(HERE, Some("/a#frag")), "https://photos.example.com/a");
        assert_eq!(at(HERE, None), "https://photos.example.com/");
        assert_eq!(
            at("http://photos.localhost:8787/", Some("/p")),
            "http://photos.localhost:8787/p"
        );
    }

    #[test]
    fn configured_hosts_are_allowed() {
        assert_eq!(
            at(HERE, Some("https://sonarr.example.com/queue")),
            "https://sonarr.example.com/queue"
        );
        assert_eq!(
            at(
                "https://auth.example.com/.portcullis/login",
                Some("https://photos.example.com/a")
            ),
            "https://photos.example.com/a"
        );
    }

    #[test]
    fn everything_else_falls_back() {
        let home = "https://photos.example.com/";
        for rd in [
            "https://evil.example.org/",
            "//evil.example.org/",
            "/\\evil.example.org",
            "\\\\evil.example.org",
            "/\t/evil.example.org",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://photos.example.com.evil.org/",
            "https://user@photos.example.com/",
            "http://photos.example.com/",
            "evil.example.org",
            "https:evil.example.org",
            "https://example.com/",
            "/%0d%0aSet-Cookie:x=y",
            "",
            // Found by fuzzing (fuzz/fuzz_targets/return_to.rs): a non-ASCII host.
            "ws:Z\u{40d}M.o",
            "ws:*N%E2%1E&ws-e/i&e",
            "ws:/!+002E%90002s://",
            "https://photos.example.com%2eevil.org/",
            "https://photos.\u{435}xample.com/",
        ] {
            let got = at(HERE, Some(rd));
            assert!(
                got == home || got.starts_with("https://photos.example.com/%"),
                "{rd:?} gave {got}"
            );
        }
        // Percent-encoded slashes stay a path on this host, never another host.
        assert_eq!(
            at(HERE, Some("/%2F%2Fevil.example.org")),
            "https://photos.example.com/%2F%2Fevil.example.org"
        );
    }

    #[test]
    fn own_endpoints_are_not_return_targets() {
        assert_eq!(
            at(HERE, Some("/.portcullis/logout")),
            "https://photos.example.com/"
        );
        assert_eq!(
            at(HERE, Some("https://sonarr.example.com/.portcullis/login")),
            "https://sonarr.example.com/"
        );
    }
}
