//! Portcullis's cookies, built and recognised in one place.
//!
//! Names carry the RFC 6265bis prefixes, so browsers enforce their attributes:
//! `__Host-` (host-only, `Secure`, `Path=/`) unless `cookie_domain` shares the session
//! across subdomains, where the session cookie is `__Secure-` with `Domain=`.

use cookie::time::Duration;
use cookie::{Cookie, SameSite};

/// Session cookie when it is host-only.
pub const SESSION_HOST_ONLY: &str = "__Host-portcullis-session";
/// Session cookie when it is shared through `cookie_domain`.
pub const SESSION_SHARED: &str = "__Secure-portcullis-session";
/// Pending-login cookies: this prefix plus a per-login suffix, so parallel logins in
/// several tabs do not overwrite each other.
pub const LOGIN_PREFIX: &str = "__Host-portcullis-login-";

/// Every cookie whose name starts like this is Portcullis's and never reaches an app.
const OWN_PREFIXES: [&str; 2] = ["__host-portcullis", "__secure-portcullis"];

/// The session cookie's name: shared through `cookie_domain`, or host-only.
pub fn session_cookie_name(cookie_domain: Option<&str>) -> &'static str {
    if cookie_domain.is_some() {
        SESSION_SHARED
    } else {
        SESSION_HOST_ONLY
    }
}

/// Whether a cookie name belongs to Portcullis (compared case-insensitively, as browsers
/// compare the prefixes).
pub fn is_own(name: &str) -> bool {
    // The prefixes hold no white space, so trailing white space cannot change the answer.
    let name = name.trim_start().as_bytes();
    // An app's cookie is told by its first byte: this runs for every cookie of every
    // proxied request.
    if name.first() != Some(&b'_') {
        return false;
    }
    OWN_PREFIXES.iter().any(|p| {
        name.get(..p.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// The `(name, value)` pairs of one `Cookie` header. Unparseable segments are skipped.
///
/// Each segment is read by the first step of the `cookie` crate's `Cookie::parse` (split
/// at the first `=`, trim both sides, refuse an empty name), without building a whole
/// `Cookie` (attributes, expiry) for each of a browser's cookies on every request; a
/// property test holds it to `Cookie::parse`.
pub fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|segment| {
        let (name, value) = segment.split_once('=')?;
        let name = name.trim();
        (!name.is_empty()).then(|| (name, value.trim()))
    })
}

/// Appends the `Cookie` header without Portcullis's cookies to `out` (other segments
/// byte for byte, `; `-separated from what `out` already holds): one string for all of a
/// request's `Cookie` headers, built in one pass.
pub fn strip_own(header: &str, out: &mut String) {
    for segment in header.split(';').map(str::trim) {
        let name = segment.split_once('=').map_or(segment, |(name, _)| name);
        if segment.is_empty() || is_own(name) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(segment);
    }
}

fn build(name: &str, value: &str, max_age: i64, domain: Option<&str>) -> String {
    let mut c = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        // Lax: the cookie comes along on the top-level GET back from the issuer.
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(max_age));
    if let Some(domain) = domain {
        c = c.domain(domain);
    }
    c.build().to_string()
}

pub fn set_session(cookie_domain: Option<&str>, value: &str, max_age: u64) -> String {
    let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
    build(
        session_cookie_name(cookie_domain),
        value,
        max_age,
        cookie_domain,
    )
}

pub fn clear_session(cookie_domain: Option<&str>) -> String {
    build(session_cookie_name(cookie_domain), "", 0, cookie_domain)
}

/// Clears a host-only cookie of this name (a copy planted without `Domain`).
pub fn clear_host_only(name: &str) -> String {
    build(name, "", 0, None)
}

pub fn set_login(name: &str, value: &str, max_age: u64) -> String {
    build(name, value, i64::try_from(max_age).unwrap_or(0), None)
}

pub fn clear_login(name: &str) -> String {
    build(name, "", 0, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_own_cookies() {
        let stripped = |header: &str| {
            let mut kept = String::new();
            strip_own(header, &mut kept);
            kept
        };
        let header = "app=1; __Host-portcullis-session=abc.def; theme=dark; __Host-portcullis-login-xyz=q; __SECURE-portcullis-session=z";
        assert_eq!(stripped(header), "app=1; theme=dark");
        assert_eq!(stripped("__Host-portcullis-session=a"), "");
        assert_eq!(stripped("a=\"quoted; value\""), "a=\"quoted; value\"");
        let mut both = String::new();
        strip_own("a=1; __Host-portcullis-session=x", &mut both);
        strip_own(";; __Host-portcullis-login-1=y; b=2", &mut both);
        assert_eq!(both, "a=1; b=2");
    }

    #[test]
    fn pairs_are_parsed() {
        let got: Vec<_> = pairs("a=1; b = 2;bad; c=; =x; d=\"q=1\"").collect();
        assert_eq!(got, [("a", "1"), ("b", "2"), ("c", ""), ("d", "\"q=1\"")]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// What the `cookie` crate reads from each segment of a `Cookie` header.
        fn by_the_crate(header: &str) -> Vec<(&str, &str)> {
            header
                .split(';')
                .filter_map(|segment| {
                    let c = Cookie::parse(segment.trim()).ok()?;
                    Some((c.name_raw()?, c.value_raw()?))
                })
                .collect()
        }

        proptest! {
            #[test]
            fn pairs_read_what_the_cookie_crate_reads(
                header in "([ \t]{0,2}[a-zA-Z_=\"-]{0,6}[ \t]{0,2}(=[ \t]{0,2}[a-zA-Z0-9=\" .]{0,8})?;?){0,6}"
            ) {
                prop_assert_eq!(pairs(&header).collect::<Vec<_>>(), by_the_crate(&header));
            }
        }
    }

    #[test]
    fn attributes() {
        let c = set_login("__Host-portcullis-login-abc", "v", 600);
        assert!(c.starts_with("__Host-portcullis-login-abc=v"), "{c}");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!c.contains("Domain"), "{c}");
        assert!(clear_login("__Host-portcullis-login-abc").contains("Max-Age=0"));
    }
}
