//! Request paths as access rules see them, and the patterns those rules are written in.
//!
//! Rules are matched on the same normalised path that is forwarded to the origin, so the
//! origin can never see a different path than the one the rule judged. Normalising:
//! percent-encoded unreserved characters are decoded (`%61` → `a`), `.`/`..` segments are
//! resolved, and duplicate slashes collapsed. What different servers read differently is
//! refused instead: an encoded `/` or `\`, a double-encoded `.`, `/` or `\` (`%252e`), NUL
//! or other control characters, and segments
//! that some servers treat as `..` (`..;`, `.%2e;x`: path parameters after a dot segment).
//! Matching is case-sensitive: `/SHARE/x` is not `/share/**` (and is therefore protected).

use std::fmt;

/// Why a path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousPath(pub &'static str);

impl fmt::Display for AmbiguousPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// One segment with encoded unreserved characters decoded (other escapes kept, in upper
/// case), and its fully decoded bytes (for the ambiguity checks). `None` when a `%` does
/// not start an escape: decoding around it can form a new escape (`%%32%65` becomes
/// `%2e`), which an origin would decode again.
fn decode_segment(segment: &str) -> Option<(String, Vec<u8>)> {
    let bytes = segment.as_bytes();
    let mut kept = String::with_capacity(segment.len());
    let mut full = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |at: usize| bytes.get(at).copied().and_then(hex);
            let (Some(h), Some(l)) = (digit(i + 1), digit(i + 2)) else {
                return None;
            };
            let b = h * 16 + l;
            full.push(b);
            if is_unreserved(b) {
                kept.push(b as char);
            } else {
                kept.push('%');
                kept.push(char::from(bytes[i + 1]).to_ascii_uppercase());
                kept.push(char::from(bytes[i + 2]).to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        full.push(bytes[i]);
        // Copy one whole UTF-8 character.
        let len = segment[i..].chars().next().map_or(1, char::len_utf8);
        kept.push_str(&segment[i..i + len]);
        full.extend_from_slice(&bytes[i + 1..i + len]);
        i += len;
    }
    Some((kept, full))
}

/// Whether a once-decoded segment still encodes `.`, `/` or `\` (`%252e` → `%2e`): an
/// origin that decodes twice would see a dot segment or a separator the rules never saw.
fn double_encoded(decoded: &[u8]) -> bool {
    decoded.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (hex(w[1]), hex(w[2])),
                (Some(h), Some(l)) if matches!(h * 16 + l, b'.' | b'/' | b'\\')
            )
    })
}

/// The normalised path, or why it is refused. `path` is the path part of a URL (no query).
pub fn normalize(path: &str) -> Result<String, AmbiguousPath> {
    // Most paths have nothing to normalise: no escape, backslash or control character, no
    // empty segment and no segment starting with a dot. Such a path is its own normal
    // form, and is taken as it is without splitting and re-assembling it (a property test
    // holds this to the full algorithm).
    let plain = path.starts_with('/')
        && !path.contains("//")
        && !path.contains("/.")
        && path
            .bytes()
            .all(|b| b != b'%' && b != b'\\' && b >= 0x20 && b != 0x7f);
    if plain {
        return Ok(path.to_string());
    }
    normalize_segments(path)
}

/// [`normalize`] segment by segment.
pub(crate) fn normalize_segments(path: &str) -> Result<String, AmbiguousPath> {
    if !path.starts_with('/') {
        return Err(AmbiguousPath("path does not start with /"));
    }
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() {
            continue; // duplicate slashes collapse
        }
        let Some((segment, decoded)) = decode_segment(raw) else {
            return Err(AmbiguousPath("a % that does not start an escape"));
        };
        if decoded.iter().any(|&b| b == b'/' || b == b'\\') {
            return Err(AmbiguousPath("encoded slash or backslash in the path"));
        }
        if double_encoded(&decoded) {
            return Err(AmbiguousPath(
                "double-encoded dot, slash or backslash in the path",
            ));
        }
        if decoded.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(AmbiguousPath("control character in the path"));
        }
        let before_params = decoded.split(|&b| b == b';').next().unwrap_or_default();
        let is_dot = before_params == b"." || before_params == b"..";
        if is_dot && decoded.len() != before_params.len() {
            return Err(AmbiguousPath("dot segment with path parameters"));
        }
        match decoded.as_slice() {
            b"." => {}
            b".." => {
                out.pop();
            }
            _ if is_dot => return Err(AmbiguousPath("encoded dot segment")),
            _ => out.push(segment),
        }
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in &out {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() || (trailing_slash && !out.is_empty()) {
        normalized.push('/');
    }
    Ok(normalized)
}

/// A path pattern: an exact path, `*` for exactly one segment, `**` (last only) for any
/// number of segments, including none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Part>,
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Exact(String),
    One,
}

impl PathPattern {
    /// Parses a pattern as written in the configuration.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let fix = "write a path such as \"/favicon.ico\", \"/api/shared-link/*\" or \"/share/**\"";
        if !text.starts_with('/') {
            return Err(format!("\"{text}\" does not start with /; {fix}"));
        }
        if text.contains(['?', '#']) {
            return Err(format!(
                "\"{text}\" has a query or fragment; patterns match paths only"
            ));
        }
        let normalized = normalize(text).map_err(|e| format!("\"{text}\": {e}"))?;
        let parts: Vec<&str> = normalized.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::new();
        let mut rest = false;
        for (i, part) in parts.iter().enumerate() {
            match *part {
                "**" if i + 1 == parts.len() => rest = true,
                "**" => return Err(format!("\"{text}\": ** is allowed only as the last segment")),
                "*" => segments.push(Part::One),
                p if p.contains('*') => {
                    return Err(format!(
                        "\"{text}\": * stands for a whole segment (no regex or partial wildcards); {fix}"
                    ))
                }
                p => segments.push(Part::Exact(p.to_string())),
            }
        }
        Ok(PathPattern {
            text: text.to_string(),
            segments,
            rest,
        })
    }

    /// Whether a normalised path matches.
    pub fn matches(&self, normalized: &str) -> bool {
        let mut parts = normalized.split('/').filter(|s| !s.is_empty());
        for want in &self.segments {
            match (want, parts.next()) {
                (Part::Exact(w), Some(p)) if w == p => {}
                (Part::One, Some(_)) => {}
                _ => return false,
            }
        }
        self.rest || parts.next().is_none()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//a", "/a"),
            ("/a/b/", "/a/b/"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../b", "/b"),
            ("/a/%2e%2E/b", "/b"),
            ("/sh%61re/x", "/share/x"),
            ("/a%7eb", "/a~b"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/café", "/café"),
            ("/a;jsessionid=1/b", "/a;jsessionid=1/b"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refuses_what_servers_read_differently() {
        for raw in [
            // Found by fuzzing (fuzz/fuzz_targets/path.rs): no leading slash, escapes.
            "shiK%e1E%1E%5",
            // Found by fuzzing: a stray % next to an escape forms a new escape once
            // decoded (`%%300` → `%00`), which an origin decodes again.
            "/%2E%2E100%%%300?%",
            "/share/%%32%65%%32%65/admin",
            "/share/x%%32%66..%%32%66admin",
            "/100%",
            "/%",
            "/a%2",
            "/share%2f..%2fadmin",
            "/share%2F..%2Fadmin",
            "/share/%5c../admin",
            "/share/..;/admin",
            "/share/.;x/admin",
            "/share/%2e%2e;/admin",
            "/share/%2e%2e%3b/admin",
            "/a%00b",
            "/a%0d%0ab",
            "/a%7f",
            "share",
        ] {
            assert!(normalize(raw).is_err(), "{raw} must be refused");
        }
    }

    #[test]
    fn patterns() {
        let p = |t| PathPattern::parse(t).unwrap();
        assert!(p("/favicon.ico").matches("/favicon.ico"));
        assert!(!p("/favicon.ico").matches("/favicon.ico/x"));
        assert!(!p("/favicon.ico").matches("/favicon.icox"));
        assert!(p("/api/shared-link/*").matches("/api/shared-link/abc"));
        assert!(p("/api/shared-link/*").matches("/api/shared-link/abc/"));
        assert!(!p("/api/shared-link/*").matches("/api/shared-link"));
        assert!(!p("/api/shared-link/*").matches("/api/shared-link/a/b"));
        assert!(p("/share/**").matches("/share"));
        assert!(p("/share/**").matches("/share/"));
        assert!(p("/share/**").matches("/share/a/b/c"));
        assert!(!p("/share/**").matches("/shared/a"));
        assert!(!p("/share/**").matches("/SHARE/a"));
        assert!(p("/**").matches("/anything/at/all"));
        assert!(p("/*/public").matches("/x/public"));
        assert!(
            p("/sh%61re/**").matches("/share/x"),
            "patterns are normalised too"
        );
    }

    #[test]
    fn bad_patterns_are_explained() {
        for (bad, needle) in [
            ("share/**", "does not start with /"),
            ("/a/**/b", "only as the last segment"),
            ("/api/v*", "whole segment"),
            ("/a?x=1", "query"),
            ("/a%2fb", "encoded slash"),
        ] {
            let e = PathPattern::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    /// Bypass attempts against `public_paths = ["/share/**", "/favicon.ico"]`: each is either
    /// refused, or normalised to a path that is judged (and forwarded) as what it is.
    #[test]
    fn bypass_corpus() {
        let public = [
            PathPattern::parse("/share/**").unwrap(),
            PathPattern::parse("/favicon.ico").unwrap(),
        ];
        let is_public =
            |raw: &str| normalize(raw).map(|n| (public.iter().any(|p| p.matches(&n)), n));
        // Ways out of the public prefix that resolve to the private `/admin`.
        let to_admin = [
            "/share/../admin",
            "/share/%2e%2e/admin",
            "/share/%2E%2E/admin",
            "/share/.%2e/admin",
            "/share;x/../admin",
            "/share/x/../../admin",
            "/share//../admin",
        ];
        // Paths an origin could read another way: refused outright.
        let refused = [
            "/share%2f..%2fadmin",
            "/share/..%2fadmin",
            "/share/..%5cadmin",
            "/share/..;/admin",
            "/share/..;x=1/admin",
            "/share/%2e%2e;/admin",
            // Finding 8: double encoding is ambiguous to an origin that decodes twice.
            "/share/%252e%252e/admin",
            "/share/%252E%252E/admin",
            "/share%252f..%252fadmin",
            "/share/..%255cadmin",
            "/share%00/x",
            "/favicon.ico%00.php",
        ];
        // (raw path, public?, forwarded path)
        let others = [
            ("//share/x", true, "/share/x"),
            ("/SHARE/x", false, "/SHARE/x"),
            ("/./share/x", true, "/share/x"),
            ("/sh%61re/x", true, "/share/x"),
            ("/share/%2525", true, "/share/%2525"),
            ("/favicon.ico/", true, "/favicon.ico/"),
            ("/favicon.ico;.js", false, "/favicon.ico;.js"),
            ("/admin/../favicon.ico", true, "/favicon.ico"),
        ];
        for raw in refused {
            assert!(is_public(raw).is_err(), "{raw} must be refused");
        }
        let expected = to_admin.iter().map(|raw| (*raw, false, "/admin"));
        for (raw, public, forwarded) in expected.chain(others) {
            assert_eq!(is_public(raw), Ok((public, forwarded.to_string())), "{raw}");
        }
    }
}
