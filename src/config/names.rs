//! Host names and URLs as they may appear in the configuration.

use url::Url;

/// Checks a bare DNS host name (`photos.example.com`) and returns it lower-cased.
pub fn host_name(text: &str) -> Result<String, String> {
    let fix = "write a bare host name such as photos.example.com";
    if text.contains("://") || text.contains('/') {
        return Err(format!(
            "\"{text}\" is not a host name; {fix}, without scheme or path"
        ));
    }
    if text.contains(':') {
        return Err(format!(
            "\"{text}\" is not a host name; {fix}, without a port (the port is ignored when matching)"
        ));
    }
    let host = text.trim_end_matches('.').to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(format!("\"{text}\" is not a host name; {fix}"));
    }
    Ok(host)
}

/// `host` equals `domain` or is a subdomain of it.
pub fn is_within(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// Loopback hosts, where plain `http` is acceptable for local development.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "127.0.0.1"
        || host == "[::1]"
        || host == "::1"
}

/// An absolute `https` URL (or `http` on a loopback host) without query or fragment.
/// Whether the host part of an absolute URL's text is plain: no `%` escapes, which URL
/// parsers would decode into characters no configured host has (and route through IDNA).
pub fn plain_authority(text: &str) -> bool {
    // As URL parsers read special schemes: the scheme ends at the first `:`, and the host
    // follows any number of `/` or `\`.
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    let authority = after_scheme
        .trim_start_matches(['/', '\\'])
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default();
    !authority.contains('%')
}

pub fn web_url(text: &str, example: &str) -> Result<Url, String> {
    if !text.is_ascii() || !plain_authority(text) {
        return Err(format!(
            "\"{text}\" has non-ASCII characters; write an international host name in its xn-- (punycode) form, e.g. \"{example}\""
        ));
    }
    let url = Url::parse(text)
        .map_err(|e| format!("\"{text}\" is not a URL ({e}); write e.g. \"{example}\""))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(format!(
                "\"{text}\" uses http; use https (plain http is accepted only for localhost)"
            ))
        }
        other => return Err(format!("\"{text}\" has scheme {other}; use https")),
    }
    if host.is_empty() {
        return Err(format!("\"{text}\" has no host; write e.g. \"{example}\""));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("\"{text}\" contains credentials; remove them"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("\"{text}\" has a query or fragment; remove it"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(
            host_name("Photos.Example.COM").unwrap(),
            "photos.example.com"
        );
        assert_eq!(host_name("photos.localhost").unwrap(), "photos.localhost");
        assert!(host_name("https://photos.example.com")
            .unwrap_err()
            .contains("without scheme"));
        assert!(host_name("photos.example.com:443")
            .unwrap_err()
            .contains("port"));
        assert!(host_name("").is_err());
        assert!(host_name("bad_host.example.com").is_err());
        assert!(host_name("-a.example.com").is_err());
        assert!(host_name("a..b").is_err());
    }

    #[test]
    fn within() {
        assert!(is_within("example.com", "example.com"));
        assert!(is_within("photos.example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        assert!(!is_within("example.com.evil", "example.com"));
    }

    #[test]
    fn urls() {
        assert!(web_url("https://id.example.com", "x").is_ok());
        assert!(web_url("http://localhost:9000", "x").is_ok());
        assert!(web_url("http://id.example.com", "x")
            .unwrap_err()
            .contains("https"));
        assert!(web_url("https://id.example.com/?a=b", "x")
            .unwrap_err()
            .contains("query"));
        assert!(web_url("ftp://id.example.com", "x").is_err());
        assert!(web_url("https://u:p@id.example.com", "x").is_err());
        assert!(web_url("id.example.com", "x").is_err());
    }
}
