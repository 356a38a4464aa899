//! Credentials from the Docker client's config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`).
//!
//! The file is read through the guarded layer's bounded read of a named file
//! ([`read_named`], at most [`CONFIG_LIMIT`] bytes): opened with `O_NONBLOCK`, and refused
//! unless `fstat` of the opened file says it is a regular file, so that a FIFO or a device
//! (`/dev/zero`) can neither block nor grow memory.
//!
//! It is decoded as a map of raw JSON values, and only the entry for the registry in
//! question is decoded further: an entry for another registry, malformed or not, is never
//! looked at beyond its key. Errors name keys, never values, and no JSON parser message is
//! ever shown (they can quote the input); they are built by the redactor (`redact.rs`).
//!
//! Credentials are resolved as docker/cli resolves them (`cli/config/configfile/file.go`):
//!
//! 1. `credHelpers[KEY]`, where KEY is `https://index.docker.io/v1/` for Docker Hub and the
//!    registry's `host[:port]` otherwise: the credential helper `docker-credential-NAME`
//!    (see `helper.rs`). An empty name skips the helpers for this registry.
//! 2. else `credsStore`: the helper for every registry.
//! 3. else `auths`, keyed by registry (`host[:port]`, optionally with a scheme and a path;
//!    Docker Hub as `https://index.docker.io/v1/`): `auth` = base64 of `user:password`, or
//!    `username` and `password`; `identitytoken`, an OAuth2 refresh token for the token realm.
//!
//! When a helper is configured for the registry, its answer is final: "credentials not
//! found" means an anonymous push, and `auths` is not consulted (docker's behaviour too).
//! Unlike docker, ocipack runs the helper only when the registry asks for credentials (a
//! 401), so pushing to an anonymous registry never runs it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::store::root::{OpenError, read_named};

use super::auth::Credentials;
use super::redact::Redactor;
use super::reference::DOCKER_HUB;

/// The largest config file read.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;

/// The key Docker uses for Docker Hub's credentials.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The Docker client config file: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` when neither variable is set.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".docker").join("config.json"))
}

/// The key under which Docker stores the credentials of `registry` (as in a reference:
/// `host[:port]`, or `docker.io`).
pub fn server_key(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

/// Where the credentials for a registry come from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// The credential helper `docker-credential-NAME`.
    Helper(String),
    /// The `auths` entry: its credentials, or none.
    Stored(Option<Credentials>),
}

/// Where the Docker config file says the credentials for `registry` come from (no file, or
/// no entry: `Stored(None)`). The file is read and checked at once; a helper it names is
/// run by the client when the registry first asks for credentials.
pub fn source_for(registry: &str) -> Result<Source> {
    let Some(path) = config_path() else {
        return Ok(Source::Stored(None));
    };
    let Some(bytes) = read_config(&path)? else {
        return Ok(Source::Stored(None));
    };
    lookup(&bytes, registry).map_err(|why| Redactor::new().input(&path, &why))
}

/// The bytes of the config file at `path`; `None` if there is none. Read through the
/// guarded layer's bounded read of a named file ([`read_named`]).
fn read_config(path: &Path) -> Result<Option<Vec<u8>>> {
    match read_named(path, CONFIG_LIMIT) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(OpenError::NotFound) => Ok(None),
        Err(e) => Err(Redactor::new().input(path, &e.to_string())),
    }
}

/// `key` as shown in a message: `auths["key"]`.
fn entry_name(section: &str, key: &str) -> String {
    format!("{section}[{}]", quoted_key(key))
}

/// A key of the file, quoted and bounded (keys are shown; values never are).
fn quoted_key(key: &str) -> String {
    format!("\"{}\"", super::redact::bound(key, 200))
}

/// The config file's top-level object. Errors say where the file is not JSON, nothing more.
fn parse(config: &[u8]) -> std::result::Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(config) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a Docker config file: the top level is not a JSON object".into()),
        Err(e) => Err(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}

/// A string field of an object; `None` when absent or `null`; an error naming it otherwise.
fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    name: impl Fn() -> String,
) -> std::result::Result<Option<&'a str>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{}.{field} is not a string", name())),
    }
}

/// The registry a config key names: scheme and path dropped, Docker Hub's aliases unified.
fn normalize_key(key: &str) -> String {
    let no_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = no_scheme.split('/').next().unwrap_or_default();
    match host.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        h => h.to_string(),
    }
}

/// Where a config file (its bytes) says the credentials for `registry` (as in a reference:
/// `host[:port]` or `docker.io`) come from. Only the entries for `registry` are decoded; the
/// error text names keys only.
pub fn lookup(config: &[u8], registry: &str) -> std::result::Result<Source, String> {
    let top = parse(config)?;
    let key = server_key(registry);
    match top.get("credHelpers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(helpers)) => match helpers.get(key) {
            None => {}
            // Present but empty: no helper for this registry, not even credsStore.
            Some(Value::Null) => return Ok(Source::Stored(from_auths(&top, registry)?)),
            Some(Value::String(name)) if name.is_empty() => {
                return Ok(Source::Stored(from_auths(&top, registry)?));
            }
            Some(Value::String(name)) => return Ok(Source::Helper(name.clone())),
            Some(_) => {
                return Err(format!(
                    "{} is not a string",
                    entry_name("credHelpers", key)
                ));
            }
        },
        Some(_) => return Err("credHelpers is not a JSON object".into()),
    }
    match top.get("credsStore") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) if name.is_empty() => {}
        Some(Value::String(name)) => return Ok(Source::Helper(name.clone())),
        Some(_) => return Err("credsStore is not a string".into()),
    }
    Ok(Source::Stored(from_auths(&top, registry)?))
}

/// The credentials of `auths[registry]`, if any.
fn from_auths(
    top: &Map<String, Value>,
    registry: &str,
) -> std::result::Result<Option<Credentials>, String> {
    let auths = match top.get("auths") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("auths is not a JSON object".into()),
    };
    // Docker's own key first, then the registry's name, then any key that names the same
    // registry once normalised (scheme and path dropped).
    let wanted = registry.to_ascii_lowercase();
    let found = [server_key(registry), registry]
        .into_iter()
        .find_map(|k| auths.get_key_value(k))
        .or_else(|| auths.iter().find(|(k, _)| normalize_key(k) == wanted));
    let Some((key, entry)) = found else {
        return Ok(None);
    };
    let name = || entry_name("auths", key);
    let Value::Object(entry) = entry else {
        return Err(format!("{} is not a JSON object", name()));
    };
    let auth = string_field(entry, "auth", name)?;
    let username = string_field(entry, "username", name)?;
    let password = string_field(entry, "password", name)?;
    let token = string_field(entry, "identitytoken", name)?.unwrap_or_default();
    let usable = |c: Credentials| {
        let c = c.with_identity_token(token);
        c.is_usable().then_some(c)
    };
    if let Some(auth) = auth.filter(|a| !a.is_empty()) {
        let not_base64 = || format!("{}.auth is not base64 of user:password", name());
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(not_base64)?;
        let (user, pass) = decoded.split_once(':').ok_or_else(not_base64)?;
        if user.is_empty() {
            return Err(not_base64());
        }
        return Ok(usable(Credentials::new(user, pass.trim_matches('\0'))));
    }
    Ok(usable(Credentials::new(
        username.unwrap_or_default(),
        password.unwrap_or_default(),
    )))
}

/// Standard base64, padded or not (Docker writes it padded; hand-made files vary).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::*;

    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn auths_lookup() {
        let auth = STANDARD.encode("alice:s3cr:et");
        let cfg = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "http://127.0.0.1:5000":{{"username":"bob","password":"pw"}},
                "other:1":{{"auth":"!!!"}}, "other:2": "{auth}", "other:3": {{"auth": 5}}}}}}"#
        );
        let stored = |registry: &str| match lookup(cfg.as_bytes(), registry).unwrap() {
            Source::Stored(c) => c,
            other => panic!("{other:?}"),
        };
        let c = stored("docker.io").unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("alice", "s3cr:et"));
        let c = stored("127.0.0.1:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("bob", "pw"));
        assert_eq!(stored("127.0.0.1:5001"), None);
        let e = lookup(cfg.as_bytes(), "other:1").unwrap_err();
        assert_eq!(e, r#"auths["other:1"].auth is not base64 of user:password"#);
        let e = lookup(cfg.as_bytes(), "other:2").unwrap_err();
        assert_eq!(e, r#"auths["other:2"] is not a JSON object"#);
        let e = lookup(cfg.as_bytes(), "other:3").unwrap_err();
        assert_eq!(e, r#"auths["other:3"].auth is not a string"#);
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn errors_never_quote_values() {
        let secret = STANDARD.encode("alice:hunter2-Secret");
        for cfg in [
            format!(r#"{{"auths":"{secret}"}}"#),
            format!(r#"["{secret}"]"#),
            format!(r#""{secret}""#),
            format!(r#"{{"auths":{{"r:1":{{"auth":"{secret}"}}"#),
            format!(r#"{{"auths":{{"r:1":{{"auth":"{secret}","username":["{secret}"]}}}}}}"#),
            format!(r#"{{"auths":{{"r:1":{{"auth":"{secret}x"}}}}}}"#),
            format!(r#"{{"auths":{{"r:1":{{"auth":"{secret}"}}}}"#),
            format!(r#"{{"auths":{{"r:1":{{"auth":"{secret}\u0001"}}}}}}"#),
        ] {
            let e = lookup(cfg.as_bytes(), "r:1").unwrap_err();
            assert!(!e.contains(&secret[..12]) && !e.contains("hunter2"), "{e}");
        }
        // Another registry's entry is never looked at, whatever it holds.
        let cfg = format!(
            r#"{{"auths":{{"r:2":"{secret}","r:3":[1],"r:4":{{"auth":5}}}},
                "credHelpers":{{"r:2":5,"r:3":["{secret}"]}}}}"#
        );
        assert_eq!(lookup(cfg.as_bytes(), "r:1").unwrap(), Source::Stored(None));
        for cfg in [
            format!(r#"{{"credHelpers":{{"r:1":["{secret}"]}}}}"#),
            format!(r#"{{"credHelpers":"{secret}"}}"#),
            format!(r#"{{"credsStore":{{"x":"{secret}"}}}}"#),
        ] {
            let e = lookup(cfg.as_bytes(), "r:1").unwrap_err();
            assert!(!e.contains(&secret[..12]), "{e}");
            assert!(e.contains("credHelpers") || e.contains("credsStore"), "{e}");
        }
    }

    #[test]
    fn helpers_then_store_then_auths() {
        let auths = r#""auths":{"r:1":{"username":"u","password":"p"},
            "https://index.docker.io/v1/":{"identitytoken":"refresh-1"}}"#;
        let find = |extra: &str, registry: &str| {
            lookup(format!("{{{auths}{extra}}}").as_bytes(), registry).unwrap()
        };
        let helper = |n: &str| Source::Helper(n.to_string());
        let both = r#","credHelpers":{"r:1":"one","https://index.docker.io/v1/":"hub"},
            "credsStore":"store""#;
        assert_eq!(find(both, "r:1"), helper("one"));
        assert_eq!(find(both, "docker.io"), helper("hub"));
        assert_eq!(find(both, "r:2"), helper("store"));
        assert_eq!(find(r#","credsStore":"store""#, "r:1"), helper("store"));
        // An empty helper name skips the helpers for that registry, as docker does.
        let skip = r#","credHelpers":{"r:1":""},"credsStore":"store""#;
        let Source::Stored(Some(c)) = find(skip, "r:1") else {
            panic!()
        };
        assert_eq!((c.username.as_str(), c.password()), ("u", "p"));
        let Source::Stored(Some(c)) = find("", "docker.io") else {
            panic!()
        };
        assert_eq!(c.identity_token(), Some("refresh-1"));
        assert!(c.basic_authorization().is_none());
        assert_eq!(find(r#","credsStore":"""#, "r:2"), Source::Stored(None));
    }

    #[test]
    fn normalised_keys() {
        assert_eq!(normalize_key("https://Index.Docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(normalize_key("ghcr.io"), "ghcr.io");
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("ghcr.io"), "ghcr.io");
    }
}
