//! URL helpers of the registry client: the host a URL points to, whether a URL is on the
//! registry's own origin (credentials never leave it), and percent-encoding.
//!
//! Pure functions at the bottom of the registry module: the client builds requests with
//! them, and the redactor encodes secrets with `percent_encode` to find them in every form
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

/// Hosts named one by one by [`shown_hosts`].
pub const MAX_HOSTS_SHOWN: usize = 5;

/// The hosts `urls` point to, as messages name them (a foreign layer's): each once, in the
/// order met, escaped, never with a user or password a URL carries; past
/// [`MAX_HOSTS_SHOWN`], the rest counted (`3 more hosts`).
pub fn shown_hosts(urls: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for u in urls {
        let h = crate::show::text(&host_of(u));
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    if hosts.len() > MAX_HOSTS_SHOWN {
        let rest = hosts.len() - MAX_HOSTS_SHOWN;
        hosts.truncate(MAX_HOSTS_SHOWN);
        hosts.push(format!(
            "{rest} more host{}",
            if rest == 1 { "" } else { "s" }
        ));
    }
    hosts
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
    fn hosts_are_shown_once_without_credentials_and_bounded() {
        let mut urls: Vec<String> = vec![
            "https://user:secret@A.example/x".into(),
            "https://a.example/y?token=z".into(),
            "http://b.example:8080/\u{1b}[2J".into(),
        ];
        assert_eq!(shown_hosts(&urls), ["a.example", "b.example:8080"]);
        urls.extend((0..10).map(|i| format!("https://h{i}.example/")));
        let shown = shown_hosts(&urls);
        assert_eq!(shown.len(), MAX_HOSTS_SHOWN + 1);
        assert_eq!(shown[MAX_HOSTS_SHOWN], "7 more hosts");
        assert!(shown_hosts(&["http://e\u{7}vil/".into()])[0].contains("\\u{7}"));
    }

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
