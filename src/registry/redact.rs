//! The one redaction step between outside text and an error message.
//!
//! Every text that came from a registry, a token realm, a credential helper or a Docker
//! config file — status texts, error bodies, header values, transport error messages, token
//! responses, keys — reaches an [`Error`] only through [`Redactor::error`] (a failure,
//! exit code 1) or [`Redactor::input`] (an unusable config file, exit code 2), the only
//! constructors of registry errors (a unit test checks that no other file of this module
//! builds `Error::Remote`, and that the config reader builds no `Error::Input`). Each message is:
//!
//! 1. **redacted**: every secret in play is replaced by `<redacted>`, in every form in which it
//!    travels — as is, percent-encoded, and base64 in the standard and URL-safe alphabets,
//!    with and without padding (so `user:password`, its base64 and the whole
//!    `Authorization: Basic …` value; passwords; bearer, refresh and identity tokens). A
//!    piece of [`WINDOW`] or more characters of any of those forms is redacted too (an echo
//!    cut short, or split by a bound), except where the piece is derived from the user name
//!    alone;
//! 2. **escaped** with [`crate::show::text`] (no control character survives);
//! 3. **bounded** to [`MAX_MESSAGE`] characters.
//!
//! Redaction happens before anything is cut, so no bound can leave a fragment behind.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::error::Error;

use super::auth::Credentials;
use super::url::percent_encode;

/// Pieces of a secret this long or longer are redacted wherever they appear.
pub const WINDOW: usize = 12;

/// The longest message, in characters (longer ones end in `…`).
pub const MAX_MESSAGE: usize = 1000;

/// What replaces a secret.
const MARK: &str = "<redacted>";

/// Knows every secret in play and cleans text before it can become an error.
#[derive(Default, Clone)]
pub struct Redactor {
    /// Whole forms of every secret, matched exactly (whatever their length).
    whole: Vec<Vec<u8>>,
    /// Every [`WINDOW`]-byte piece of every form that holds secret material.
    pieces: HashSet<Vec<u8>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.whole.len())
    }
}

impl Redactor {
    /// A redactor that knows no secret yet.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// A redactor that knows `credentials`' secrets.
    pub fn for_credentials(credentials: Option<&Credentials>) -> Self {
        let mut r = Redactor::new();
        if let Some(c) = credentials {
            r.add_credentials(c);
        }
        r
    }

    /// Adds the password, `user:password` and the identity token of `c`.
    pub fn add_credentials(&mut self, c: &Credentials) {
        self.add(c.password());
        if !c.password().is_empty() {
            // The user name is public: pieces made of it alone stay readable.
            self.add_with_public_prefix(
                &format!("{}:{}", c.username, c.password()),
                c.username.len() + 1,
            );
        }
        if let Some(t) = c.identity_token() {
            self.add(t);
        }
    }

    /// Adds a secret (a password, a token), in all its forms.
    pub fn add(&mut self, secret: &str) {
        self.add_with_public_prefix(secret, 0);
    }

    /// Adds `secret`, whose first `public` bytes are not secret on their own.
    fn add_with_public_prefix(&mut self, secret: &str, public: usize) {
        if secret.is_empty() {
            return;
        }
        let raw = secret.as_bytes();
        self.add_form(raw.to_vec(), public);
        let public_str = secret.get(..public).unwrap_or(secret);
        self.add_form(
            percent_encode(secret).into_bytes(),
            percent_encoded_len(public_str),
        );
        // A base64 character is fixed by the public prefix alone when all six of its bits
        // lie within it.
        let public64 = public * 8 / 6;
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            self.add_form(engine.encode(raw).into_bytes(), public64);
        }
    }

    fn add_form(&mut self, form: Vec<u8>, public: usize) {
        if form.is_empty() || self.whole.contains(&form) {
            return;
        }
        if form.len() >= WINDOW {
            for (start, w) in form.windows(WINDOW).enumerate() {
                // Only pieces that hold at least one byte past the public prefix.
                if start + WINDOW > public {
                    self.pieces.insert(w.to_vec());
                }
            }
        }
        self.whole.push(form);
    }

    /// `text` with every secret replaced by `<redacted>` (nothing escaped, nothing cut).
    pub fn redact(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut hidden = vec![false; b.len()];
        for form in &self.whole {
            let mut from = 0;
            while let Some(at) = find(&b[from..], form) {
                let start = from + at;
                hidden[start..start + form.len()].fill(true);
                from = start + 1;
            }
        }
        if b.len() >= WINDOW && !self.pieces.is_empty() {
            for (start, w) in b.windows(WINDOW).enumerate() {
                if self.pieces.contains(w) {
                    hidden[start..start + WINDOW].fill(true);
                }
            }
        }
        // A mark already in the text (a message redacted once, cleaned again on its way up)
        // stays whole: it is constant text, and hiding pieces of it only garbles the message
        // when a secret is short (a one-letter token from a hostile token server).
        let mark = MARK.as_bytes();
        let mut from = 0;
        while let Some(at) = find(&b[from..], mark) {
            let start = from + at;
            hidden[start..start + mark.len()].fill(false);
            from = start + mark.len();
        }
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < b.len() {
            if !hidden[i] {
                let mut end = i;
                while end < b.len() && !hidden[end] {
                    end += 1;
                }
                // A run of shown bytes may start or end inside a character whose other
                // bytes are hidden: show only whole characters.
                let (s, e) = (ceil_char(text, i), floor_char(text, end));
                if s < e {
                    out.push_str(&text[s..e]);
                }
                i = end;
            } else {
                while i < b.len() && hidden[i] {
                    i += 1;
                }
                out.push_str(MARK);
            }
        }
        out
    }

    /// `text` redacted, escaped and bounded to `max` characters: the one way outside text
    /// becomes part of a message.
    pub fn clean(&self, text: &str, max: usize) -> String {
        bound(&crate::show::text(&self.redact(text)), max)
    }

    /// A failure of a registry, a token realm or a credential helper (exit code 1), with
    /// `message` cleaned.
    pub fn error(&self, message: &str) -> Error {
        Error::Remote(self.clean(message, MAX_MESSAGE))
    }

    /// An unusable Docker config file at `path` (exit code 2), `problem` cleaned.
    pub fn input(&self, path: &std::path::Path, problem: &str) -> Error {
        Error::input(
            format!("Docker config file {}", crate::show::path(path)),
            self.clean(problem, MAX_MESSAGE / 2),
        )
    }
}

/// The first `max` characters of `s`, and `…` if anything was cut.
pub fn bound(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn percent_encoded_len(s: &str) -> usize {
    percent_encode(s).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("alice", "p>?w~~?>S3cr3t-Echo-91")
    }

    #[test]
    fn a_short_secret_does_not_garble_marks_already_there() {
        let mut r = Redactor::new();
        r.add("e");
        let once = r.redact("the token expired");
        assert_eq!(
            once,
            "th<redacted> tok<redacted>n <redacted>xpir<redacted>d"
        );
        // Redacted again, as a message is on its way up: the marks stay readable, and no
        // `e` of the text comes back.
        assert_eq!(r.redact(&once), once);
        assert_eq!(
            r.redact(&format!("{once}; retried")),
            format!("{once}; r<redacted>tri<redacted>d")
        );
    }

    #[test]
    fn every_form_of_the_credentials_is_redacted() {
        let c = creds();
        let r = Redactor::for_credentials(Some(&c));
        let up = "alice:p>?w~~?>S3cr3t-Echo-91";
        let forms = [
            up.to_string(),
            STANDARD.encode(up),
            STANDARD_NO_PAD.encode(up),
            URL_SAFE.encode(up),
            URL_SAFE_NO_PAD.encode(up),
            c.basic_authorization().unwrap(),
            c.password().to_string(),
            percent_encode(c.password()),
            STANDARD.encode(c.password()),
        ];
        for f in &forms {
            let text = format!("you sent [{f}] ok");
            let out = r.redact(&text);
            assert_eq!(out.matches(MARK).count(), 1, "{f}: {out}");
            assert!(
                out.starts_with("you sent [") && out.ends_with("] ok"),
                "{out}"
            );
            // A piece cut out of the middle, and one at the end of a truncated echo.
            let chars: Vec<char> = f.chars().collect();
            if chars.len() >= WINDOW + 2 && !f.starts_with("Basic ") {
                let mid: String = chars[1..1 + WINDOW].iter().collect();
                let out = r.redact(&format!("x {mid} y"));
                assert_eq!(out, format!("x {MARK} y"), "{f}");
            }
        }
    }

    #[test]
    fn the_user_name_alone_stays_readable() {
        let c = Credentials::new("oauth2accesstoken", "ya29.secret-value-123");
        let r = Redactor::for_credentials(Some(&c));
        let text = "the credentials of user \"oauth2accesstoken\" were not accepted";
        assert_eq!(r.redact(text), text);
        // Its base64 prefix (fixed by the name alone) too.
        let b64 = STANDARD.encode("oauth2accesstoken:ya29.secret-value-123");
        let public = &b64[..("oauth2accesstoken:".len() * 8 / 6)];
        assert_eq!(r.redact(public), public);
        assert_eq!(r.redact(&b64), MARK);
    }

    #[test]
    fn tokens_overlaps_and_unicode() {
        let mut r = Redactor::new();
        r.add("tok-ABCDEFGHIJKLMNOP");
        r.add("é-secret-ü-secret-ö");
        assert_eq!(r.redact("a tok-ABCDEFGHIJKLMNOP b"), format!("a {MARK} b"));
        assert_eq!(
            r.redact("tok-ABCDEFGHIJKLMNOPtok-ABCDEFGHIJKLMNOP!"),
            format!("{MARK}!")
        );
        // A piece that starts inside a multi-byte character hides that whole character.
        let out = r.redact("xx-secret-ü-secret-ö yy");
        assert!(out.ends_with(" yy") && out.contains(MARK), "{out}");
        assert!(r.redact("nothing to hide: é ü") == "nothing to hide: é ü");
        // Short secrets are matched whole.
        let mut r = Redactor::new();
        r.add("pw");
        assert_eq!(r.redact("a pw b"), format!("a {MARK} b"));
    }

    #[test]
    fn clean_escapes_and_bounds_after_redacting() {
        let mut r = Redactor::new();
        r.add("SECRET-TOKEN-0123456789");
        let text = format!("{}\n\u{1b}[31mSECRET-TOKEN-0123456789", "x".repeat(10));
        let out = r.clean(&text, 60);
        assert!(!out.chars().any(char::is_control), "{out}");
        assert!(out.contains(MARK) && !out.contains("SECRET"), "{out}");
        // A bound that falls inside a secret leaves no piece of it.
        let out = r.clean("abc SECRET-TOKEN-0123456789 def", 12);
        assert_eq!(out, "abc <redacte…");
        assert_eq!(bound("abcdef", 3), "abc…");
        assert_eq!(bound("abc", 3), "abc");
    }

    #[test]
    fn only_this_module_builds_registry_errors() {
        for (name, src) in [
            ("auth.rs", include_str!("auth.rs")),
            ("client.rs", include_str!("client.rs")),
            ("push.rs", include_str!("push.rs")),
            ("reference.rs", include_str!("reference.rs")),
            ("mod.rs", include_str!("mod.rs")),
            ("docker.rs", include_str!("docker.rs")),
            ("helper.rs", include_str!("helper.rs")),
            ("url.rs", include_str!("url.rs")),
            ("tls.rs", include_str!("tls.rs")),
            ("fetch.rs", include_str!("fetch.rs")),
        ] {
            assert!(
                !src.contains(concat!("Error::", "Remote")),
                "{name} builds a registry error without the redactor"
            );
        }
        // What is read from a config file becomes an error only through the redactor.
        let docker = include_str!("docker.rs");
        for constructor in [concat!("Error::", "input("), concat!("Error::", "Input")] {
            assert!(!docker.contains(constructor), "docker.rs: {constructor}");
        }
    }
}
