//! Registry credentials and authentication challenges.
//!
//! Credentials come from the command line or from the Docker client's config file (read by
//! `registry::docker`, which builds them with this module's types). A password never
//! appears in `Debug` output or in any message.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A user name and password, and/or an identity token.
///
/// An identity token (Docker's `identitytoken`, or a credential helper's answer with the
/// user name `<token>`) is an OAuth2 refresh token: it is exchanged at the token realm for
/// a bearer token, and never sent to the registry itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (shown in messages; empty with an identity token alone).
    pub username: String,
    password: String,
    identity_token: Option<String>,
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    /// An identity token alone.
    pub fn from_identity_token(token: impl Into<String>) -> Self {
        Credentials::new("", "").with_identity_token(token)
    }

    /// These credentials with an identity token (ignored if empty).
    pub fn with_identity_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.identity_token = (!token.is_empty()).then_some(token);
        self
    }

    /// The password (never print it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The identity token, if any (never print it).
    pub fn identity_token(&self) -> Option<&str> {
        self.identity_token.as_deref()
    }

    /// The value of an `Authorization: Basic …` header; `None` unless there are both a user
    /// name and a password (as docker requires).
    pub fn basic_authorization(&self) -> Option<String> {
        if self.username.is_empty() || self.password.is_empty() {
            return None;
        }
        Some(format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        ))
    }

    /// True if there is anything to authenticate with.
    pub fn is_usable(&self) -> bool {
        self.basic_authorization().is_some() || self.identity_token.is_some()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
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
}
