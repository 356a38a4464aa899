//! Image references: `[docker://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]`, as docker, podman
//! and skopeo read them (skopeo's transport prefix `docker://` is accepted and dropped).
//!
//! The first path component is a registry when it contains `.` or `:`, is `localhost`, or
//! has an uppercase letter; otherwise the registry is Docker Hub (`docker.io`), where a
//! one-component repository gets the `library/` prefix. Repository components are
//! lowercase alphanumerics joined by `.`, `_`, `__` or dashes; a tag is at most 128
//! characters of `[A-Za-z0-9_.-]` not starting with `.` or `-`. Without tag or digest the
//! tag is `latest`. Docker Hub's other names, `index.docker.io` and `registry-1.docker.io`,
//! are `docker.io` (so `debian`, `docker.io/debian` and `index.docker.io/library/debian` are
//! one reference).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// skopeo's transport prefix for a registry reference.
pub const DOCKER_TRANSPORT: &str = "docker://";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, `docker.io` for Docker Hub.
    pub registry: String,
    /// The repository path, e.g. `library/hello-world`.
    pub repository: String,
    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub tag: Option<String>,
    /// The digest, if any.
    pub digest: Option<Digest>,
}

impl Reference {
    /// The host (and port) to talk to: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when there is one (a tag beside it is
    /// only a name), else the tag.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `docker://registry/repository[:tag][@digest]`: the reference as skopeo spells it.
    pub fn with_transport(&self) -> String {
        format!("{DOCKER_TRANSPORT}{self}")
    }
}

impl Reference {
    /// A repository as written, `[docker://][REGISTRY/]REPOSITORY`, without a tag or a
    /// digest (its tag is `None`): what names the repository of several images, each under
    /// its own tag. One with a tag or a digest is an input error naming `what` (the option).
    pub fn repository_only(s: &str, what: &str) -> Result<Reference, Error> {
        let r: Reference = s.parse()?;
        let raw = s.strip_prefix(DOCKER_TRANSPORT).unwrap_or(s);
        let last = raw.rsplit('/').next().unwrap_or(raw);
        if r.digest.is_some() || last.contains(':') {
            return Err(Error::input(
                format!("{what} \"{}\"", crate::show::text(s)),
                "names a tag or a digest; it must name a repository (each image is checked \
                 under its own first tag)",
            ));
        }
        Ok(Reference { tag: None, ..r })
    }
}

/// True if `host[:port]` names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// True if the reference text `s` names a tag or a digest itself (false: only a repository,
/// whose tag `latest` is the parser's default). `ocipack push DIR REPOSITORY` takes the tags
/// from the project when none is written.
pub fn names_tag_or_digest(s: &str) -> bool {
    if s.contains('@') {
        return true;
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    last.contains(':')
}

/// True if `tag` is a valid tag.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    // Separators: one '.', one or two '_', or any number of '-', between alphanumerics.
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_registry(r: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = r.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (host.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        };
        (host.split('.').all(label_ok), port)
    };
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.strip_prefix(DOCKER_TRANSPORT).unwrap_or(s);
        // A URL with credentials (`https://user:token@host/…`) is a mistake worth a clear
        // message, and the text is not echoed: it may hold a secret.
        // (A digest never holds '/'; what follows `user:token@` is a host and a path.)
        if s.contains("://") || s.split_once('@').is_some_and(|(_, b)| b.contains('/')) {
            return Err(Error::input(
                "the image reference",
                "is not of the form [REGISTRY/]REPOSITORY[:TAG][@DIGEST]: it has no scheme \
                 (https://) and no user or password (give credentials with --username and \
                 --password-stdin or a Docker config); it is not repeated here, as it may \
                 hold a secret",
            ));
        }
        let shown = format!("image reference \"{}\"", crate::show::text(s));
        let bad = |why: &str| Error::input(shown.clone(), why.to_string());
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| Error::input(shown.clone(), e.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                "invalid tag: at most 128 of A-Z a-z 0-9 _ . -, not starting with . or -",
            ));
        }
        if name.len() > 255 {
            return Err(bad("the name is longer than 255 characters"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_registry(first) {
                    return Err(bad("invalid registry host[:port]"));
                }
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if !path.split('/').all(valid_component) {
            return Err(bad(
                "invalid repository: lowercase letters and digits, separated by '.', '_', '__', '-' or '/'",
            ));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repository_alone() {
        let r = Reference::repository_only("docker://localhost:5000/busybox", "--against").unwrap();
        assert_eq!((r.registry.as_str(), r.tag), ("localhost:5000", None));
        assert_eq!(
            Reference::repository_only("busybox", "--against")
                .unwrap()
                .repository,
            "library/busybox"
        );
        for bad in [
            "busybox:latest",
            "localhost:5000/b:1",
            "b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let e = Reference::repository_only(bad, "--against").unwrap_err();
            assert!(e.to_string().contains("names a tag or a digest"), "{e}");
        }
    }

    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn registry_repository_tag() {
        let r = parse("127.0.0.1:5055/hello");
        assert_eq!(r.registry, "127.0.0.1:5055");
        assert_eq!(r.repository, "hello");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(is_loopback_host(&r.registry));
        assert_eq!(r.to_string(), "127.0.0.1:5055/hello:latest");

        let r = parse("localhost/a/b-c__d.e:v1.0_x");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "a/b-c__d.e")
        );
        assert_eq!(r.tag.as_deref(), Some("v1.0_x"));
        assert!(is_loopback_host(&r.registry));

        let r = parse("[::1]:5000/x:y");
        assert_eq!(r.registry, "[::1]:5000");
        assert!(is_loopback_host(&r.registry));

        let r = parse("registry.example.org/team/app");
        assert!(!is_loopback_host(&r.registry));
        assert_eq!(r.api_host(), "registry.example.org");
    }

    #[test]
    fn a_written_tag_or_digest_is_told_from_the_default() {
        for (s, named) in [
            ("debian", false),
            ("docker.io/library/debian", false),
            ("localhost:5000/a/b", false),
            ("[::1]:5000/x", false),
            ("debian:bookworm", true),
            ("localhost:5000/a/b:v1", true),
            ("[::1]:5000/x:y", true),
            (
                "x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                true,
            ),
        ] {
            assert_eq!(names_tag_or_digest(s), named, "{s}");
            if !named {
                assert_eq!(parse(s).tag.as_deref(), Some("latest"), "{s}");
            }
        }
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("hello-world");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/hello-world");
        assert_eq!(r.api_host(), DOCKER_HUB_API);
        let r = parse("someone/app:1");
        assert_eq!(r.repository, "someone/app");
        assert_eq!(r.tag.as_deref(), Some("1"));
    }

    #[test]
    fn skopeo_transport_and_docker_hub_names() {
        for s in [
            "docker://debian",
            "debian",
            "docker.io/debian",
            "docker://index.docker.io/library/debian:latest",
            "registry-1.docker.io/library/debian",
        ] {
            let r = parse(s);
            assert_eq!(r.to_string(), "docker.io/library/debian:latest", "{s}");
        }
        let r = parse(
            "docker://127.0.0.1:5000/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.tag_or_digest(), r.digest.as_ref().unwrap().to_string());
        assert_eq!(
            parse("docker://localhost:5000/x:1").with_transport(),
            "docker://localhost:5000/x:1"
        );
        // Only the exact prefix is a transport; anything else with :// is refused.
        assert!("docker:/x".parse::<Reference>().is_err());
        assert!("oci://x".parse::<Reference>().is_err());
        assert!("docker://docker://x".parse::<Reference>().is_err());
    }

    #[test]
    fn digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = parse(&format!("localhost:5000/x@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().to_string(), d);
        let r = parse(&format!("localhost:5000/x:t@{d}"));
        assert_eq!(r.tag.as_deref(), Some("t"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Hello",
            "localhost:5000/UPPER",
            "a//b",
            "a/",
            "x:",
            "x:-tag",
            "x:.tag",
            "a..b",
            "a___b",
            "-a",
            "host:99999/x",
            "host:/x",
            "x@sha256:abc",
            "[zz]:5000/x",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
        assert!(
            format!("x:{}", "t".repeat(129))
                .parse::<Reference>()
                .is_err()
        );
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_echoing_it() {
        for bad in [
            "https://bob:s3cr3t-T0ken@ghcr.io/x/y:1",
            "bob:s3cr3t-T0ken@ghcr.io/x/y:1",
            "http://ghcr.io/x/y",
        ] {
            let e = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(!e.contains("s3cr3t") && !e.contains("bob"), "{e}");
            assert!(e.contains("no scheme"), "{e}");
        }
        // A tag and a digest together is no credential.
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(format!("ubuntu:22.04@{d}").parse::<Reference>().is_ok());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:1",
            "127.0.0.1:5",
            "127.9.9.9",
            "[::1]:80",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.org",
            "10.0.0.1:5000",
            "localhost.example.org",
            "[::2]:1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
