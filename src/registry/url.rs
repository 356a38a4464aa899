//! URL helpers of the registry client: the host a URL points to, whether a URL is on the
//! registry's own origin (credentials never leave it), and percent-encoding.
//!
//! Pure functions at the bottom of the registry module: the client builds requests with
//! them, and the redactor encodes secrets with [`percent_encode`] to find them in every form
//! in which they travel.

/// The `host[:port]` of an absolute URL, without any `user:password@` before it (so that
/// `http://localhost:x@evil.example/` is `evil.example`, not loopback).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_ascii_lowercase()
}

/// True if `url` is on the registry's host *and* scheme: credentials never follow a
/// redirect to another host, nor from https down to plain http.
pub(super) fn same_origin(url: &str, base: &str, host: &str) -> bool {
    let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    host_of(url) == host.to_ascii_lowercase() && scheme(url) == scheme(base)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            host_of("https://Auth.example:8443/token?x"),
            "auth.example:8443"
        );
        let base = "http://127.0.0.1:5000";
        assert!(same_origin(
            "http://127.0.0.1:5000/v2/",
            base,
            "127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:5001/v2/",
            base,
            "127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "http://reg.example/v2/",
            "https://reg.example",
            "reg.example"
        ));
        assert_eq!(host_of("http://localhost:x@evil.example/t"), "evil.example");
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
