//! Registry credentials and authentication challenges.
//!
//! Credentials come from the command line or from the Docker client's config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): its `auths` map, keyed by
//! registry (`host[:port]`, optionally with a scheme and a path, Docker Hub as
//! `https://index.docker.io/v1/`), each entry holding `auth` = base64 of `user:password`
//! (or `username` and `password`). Credential helpers (`credsStore`, `credHelpers`) are not
//! run. A password never appears in `Debug` output or in any message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::error::{Error, Result};

use super::reference::DOCKER_HUB;

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (shown in messages).
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password (never print it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_authorization(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The Docker client config file: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` when neither variable is set.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".docker").join("config.json"))
}

/// Credentials for `registry` from the Docker config file, if it exists and has an entry.
pub fn from_docker_config(registry: &str) -> Result<Option<Credentials>> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            lookup(&bytes, registry).map_err(|why| Error::input(path.display().to_string(), why))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::input_io("reading", &path, e)),
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The registry a config key names: scheme and path dropped, Docker Hub's aliases unified.
fn normalize_key(key: &str) -> String {
    let no_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = no_scheme.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        h => h.to_ascii_lowercase(),
    }
}

/// Finds `registry` (as in a reference: `host[:port]` or `docker.io`) in a config file's
/// bytes. The error text never contains a credential.
pub fn lookup(config: &[u8], registry: &str) -> std::result::Result<Option<Credentials>, String> {
    let cfg: DockerConfig = serde_json::from_slice(config).map_err(|e| {
        // serde_json's messages quote no input, only positions.
        format!("invalid Docker config file: {e}")
    })?;
    let wanted = registry.to_ascii_lowercase();
    // An exact key wins over a key that only matches once normalised.
    let entry = cfg.auths.get(registry).or_else(|| {
        cfg.auths
            .iter()
            .find(|(k, _)| normalize_key(k) == wanted)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("auths[{registry:?}].auth is not base64 of user:password"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| format!("auths[{registry:?}].auth is not base64 of user:password"))?;
        return Ok(Some(Credentials::new(user, pass)));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials::new(u.clone(), p.clone()))),
        _ => Ok(None),
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, names lowercased (`realm`, `service`, `scope`).
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` header value into its challenges (RFC 7235 syntax:
/// `Scheme name=value, name="quoted, value", Scheme2 ...`). Unparseable tails are ignored.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let is_token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c);
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < b.len() && set.contains(&b[*i]) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, b" \t,");
        if i >= b.len() {
            return out;
        }
        let start = i;
        while i < b.len() && is_token(b[i]) {
            i += 1;
        }
        if start == i {
            return out;
        }
        let token = &header[start..i];
        let after = i;
        skip(&mut i, b" \t");
        if i < b.len() && b[i] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            i += 1;
            skip(&mut i, b" \t");
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                header[vs..i].trim().to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            i = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token");
        assert_eq!(c[0].params["service"], "reg.example");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");

        let c = parse_challenges(r#"Basic realm="Registry Realm", Bearer realm=x , error=y"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].params["realm"], "x");
        assert_eq!(c[1].params["error"], "y");
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn docker_config_lookup() {
        let auth = BASE64.encode("alice:s3cr:et");
        let cfg = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "http://127.0.0.1:5000":{{"username":"bob","password":"pw"}},
                "other:1":{{"auth":"!!!"}}}},"credsStore":"desktop"}}"#
        );
        let c = lookup(cfg.as_bytes(), "docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("alice", "s3cr:et"));
        let c = lookup(cfg.as_bytes(), "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("bob", "pw"));
        assert_eq!(lookup(cfg.as_bytes(), "127.0.0.1:5001").unwrap(), None);
        let e = lookup(cfg.as_bytes(), "other:1").unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        assert!(!format!("{c:?}").contains("pw"));
        assert_eq!(
            c.basic_authorization(),
            format!("Basic {}", BASE64.encode("bob:pw"))
        );
    }
}
