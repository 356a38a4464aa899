//! `ocipack push` against registries that misbehave: error bodies and headers that echo the
//! credentials or tokens, Docker config files with malformed entries, and registries that
//! trickle or withhold their answers. Served by a small scriptable HTTP server in the test
//! process (one thread per connection, one request per connection).

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::cli::stderr;
use common::fake::{Exchange, Server, error_body};
use common::oci::sha256;
use common::{
    Registry, assert_exit, build_noise_image, hello_layout, ocipack, require_tools, run_bounded,
};

const LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// The scriptable server: common::fake::Server.

/// How long a connection may take to send each part of its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Enough of the distribution API for a push that succeeds: every blob is missing, every
/// upload and manifest is accepted.
fn registry_ok(ex: &mut Exchange) {
    let method = ex.req.method.clone();
    let path = ex.req.path.clone();
    if method == "HEAD" {
        ex.respond(404, &[], b"");
    } else if method == "POST" && path.contains("/blobs/uploads/") {
        ex.respond(202, &[("Location", "/upload/1".to_string())], b"");
    } else if method == "PUT" && path.starts_with("/upload/") {
        ex.body();
        ex.respond(201, &[], b"");
    } else if method == "PUT" && path.contains("/manifests/") {
        let body = ex.body();
        let d = sha256(&body);
        ex.respond(201, &[("Docker-Content-Digest", d)], b"");
    } else {
        ex.respond(404, &[], b"");
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A Docker config directory holding `config` as config.json.
fn docker_config(config: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("config.json"), config).unwrap();
    d
}

fn push(layout: &Path, reference: &str, config_dir: &Path, extra: &[&str]) -> Output {
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", config_dir)
        .arg("push")
        .arg(layout)
        .arg(reference)
        .args(extra);
    run_bounded(&mut c, LIMIT)
}

/// Every form in which `user:password` travels, to look for in output.
fn encodings(user_password: &str) -> Vec<String> {
    let b = user_password.as_bytes();
    vec![
        STANDARD.encode(b),
        STANDARD_NO_PAD.encode(b),
        URL_SAFE.encode(b),
        URL_SAFE_NO_PAD.encode(b),
    ]
}

/// Asserts that `text` holds none of `secrets` and no 12-character piece of any of them.
fn assert_clean(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{s:?} in:\n{text}");
        let chars: Vec<char> = s.chars().collect();
        for w in chars.windows(12) {
            let piece: String = w.iter().collect();
            assert!(!text.contains(&piece), "{piece:?} (of {s:?}) in:\n{text}");
        }
    }
}

// A password whose base64 (with the user name) differs between the standard and URL-safe
// alphabets, so that both forms are exercised.
const USER: &str = "alice";
const PASSWORD: &str = "p>?w~~?>S3cr3t-Echo-91";

fn secrets() -> Vec<String> {
    let up = format!("{USER}:{PASSWORD}");
    let mut s = encodings(&up);
    s.push(PASSWORD.to_string());
    s.push(up);
    s
}

/// Pushes `layout` to `server` as `hello:v1` with `USER:PASSWORD` in the Docker config
/// entry for it; asserts exit 1 and one line on stderr (`what` names the case). Returns the
/// output and its stderr.
fn push_with_credentials(server: &Server, layout: &Path, what: &str) -> (Output, String) {
    let config = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        server.host(),
        STANDARD.encode(format!("{USER}:{PASSWORD}"))
    ));
    let o = push(
        layout,
        &format!("{}/hello:v1", server.host()),
        config.path(),
        &[],
    );
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{what}: {e}");
    (o, e)
}

// ---------------------------------------------------------------------------------------
// (a) Echoed credentials and tokens never reach the output.

#[derive(Clone, Copy, Debug)]
enum Echo {
    /// `Authorization: Basic <base64>` as received.
    Header,
    /// The base64 alone.
    Base64,
    /// The base64 in the URL-safe alphabet, without padding.
    UrlSafe,
    /// The first 20 characters of the base64.
    Prefix,
    /// The password.
    Password,
    /// The base64, with control characters around it.
    Control,
    /// The base64 as the stored manifest digest (a header, not a body).
    DigestHeader,
}

fn echo_basic(echo: Echo) -> impl Fn(&mut Exchange) + Send + Sync + 'static {
    move |ex: &mut Exchange| {
        let Some(auth) = ex.req.header("authorization").map(str::to_string) else {
            ex.respond(
                401,
                &[("WWW-Authenticate", r#"Basic realm="fake""#.to_string())],
                b"",
            );
            return;
        };
        let b64 = auth.strip_prefix("Basic ").unwrap_or(&auth).to_string();
        let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(&b64).unwrap_or_default());
        let message = match echo {
            Echo::Header => format!("you sent Authorization: {auth}"),
            Echo::Base64 => format!("bad token {b64}"),
            Echo::UrlSafe => format!("bad token {url_safe}"),
            Echo::Prefix => format!("bad token {}...", &b64[..20]),
            Echo::Password => format!("wrong password {PASSWORD}"),
            Echo::Control => format!("line one\n\u{1b}[31m{b64}\u{1b}[0m\r\nline two"),
            Echo::DigestHeader => {
                if ex.req.method == "HEAD" {
                    // Every blob is there: straight to the manifest.
                    ex.respond(200, &[], b"");
                } else {
                    ex.body();
                    ex.respond(201, &[("Docker-Content-Digest", b64)], b"");
                }
                return;
            }
        };
        if ex.req.method == "HEAD" {
            ex.respond(404, &[], b"");
            return;
        }
        ex.body();
        ex.respond(400, &[], &error_body("DENIED", &message));
    }
}

#[test]
fn credentials_echoed_by_the_registry_never_reach_stderr() {
    let (_t, layout, _) = hello_layout();
    let up = format!("{USER}:{PASSWORD}");
    assert_ne!(
        STANDARD.encode(&up),
        URL_SAFE.encode(&up),
        "pick another password"
    );
    for echo in [
        Echo::Header,
        Echo::Base64,
        Echo::UrlSafe,
        Echo::Prefix,
        Echo::Password,
        Echo::Control,
        Echo::DigestHeader,
    ] {
        let server = Server::start(READ_TIMEOUT, echo_basic(echo));
        let (o, e) = push_with_credentials(&server, &layout, &format!("{echo:?}"));
        assert!(!e.contains('\u{1b}') && !e.contains('\r'), "{echo:?}: {e}");
        assert_clean(&e, &secrets());
        assert!(!String::from_utf8_lossy(&o.stdout).contains(PASSWORD));
        // The credentials were sent (the echo is not a refusal of the wrong ones).
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.header("authorization").is_some()),
            "{echo:?}"
        );
        match echo {
            Echo::DigestHeader => assert!(e.contains("stored the manifest as"), "{e}"),
            _ => assert!(e.contains("400") && e.contains("DENIED"), "{echo:?}: {e}"),
        }
    }
}

/// A token realm on the same server: `/token` hands out `TOKEN` (and a refresh token) to the
/// right basic credentials; the registry then echoes what it received.
const TOKEN: &str = "bearer-Tok3n-a8f1c2e9d7b6";
const REFRESH: &str = "refresh-Tok3n-55e1f0c9a2";

#[derive(Clone, Copy, Debug)]
enum TokenEcho {
    /// The registry echoes `Authorization: Bearer <token>`.
    Header,
    /// The registry echoes the token alone.
    Token,
    /// The token realm refuses, echoing the basic credentials it received.
    RealmEchoesBasic,
    /// The token realm answers with a body that is not a token response, quoting the
    /// credentials.
    RealmGarbage,
    /// The registry echoes the refresh token the realm handed out.
    Refresh,
}

fn echo_bearer(echo: TokenEcho) -> impl Fn(&mut Exchange) + Send + Sync + 'static {
    move |ex: &mut Exchange| {
        let auth = ex.req.header("authorization").unwrap_or("").to_string();
        if ex.req.path.starts_with("/token") {
            let b64 = auth.strip_prefix("Basic ").unwrap_or("").to_string();
            match echo {
                TokenEcho::RealmEchoesBasic => {
                    let body = error_body("DENIED", &format!("who is {b64}? you sent {auth}"));
                    ex.respond(401, &[], &body);
                }
                TokenEcho::RealmGarbage => {
                    let body = format!(r#"{{"token": ["{b64}"], "expires_in": "{b64}"}}"#);
                    ex.respond(200, &[], body.as_bytes());
                }
                _ => {
                    let body = format!(r#"{{"token":"{TOKEN}","refresh_token":"{REFRESH}"}}"#);
                    ex.respond(200, &[], body.as_bytes());
                }
            }
            return;
        }
        if auth != format!("Bearer {TOKEN}") {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{}/token",service="fake.test""#,
                ex.port
            );
            ex.respond(401, &[("WWW-Authenticate", challenge)], b"");
            return;
        }
        if ex.req.method == "HEAD" {
            ex.respond(404, &[], b"");
            return;
        }
        let message = match echo {
            TokenEcho::Header => format!("you sent Authorization: {auth}"),
            TokenEcho::Token => format!("token {TOKEN} expired"),
            TokenEcho::Refresh => format!("use {REFRESH} instead"),
            _ => unreachable!(),
        };
        ex.body();
        ex.respond(400, &[], &error_body("DENIED", &message));
    }
}

#[test]
fn tokens_echoed_by_the_registry_or_the_realm_never_reach_stderr() {
    let (_t, layout, _) = hello_layout();
    let mut all = secrets();
    all.extend([TOKEN.to_string(), REFRESH.to_string()]);
    for echo in [
        TokenEcho::Header,
        TokenEcho::Token,
        TokenEcho::RealmEchoesBasic,
        TokenEcho::RealmGarbage,
        TokenEcho::Refresh,
    ] {
        let server = Server::start(READ_TIMEOUT, echo_bearer(echo));
        let (_, e) = push_with_credentials(&server, &layout, &format!("{echo:?}"));
        assert_clean(&e, &all);
        match echo {
            TokenEcho::RealmEchoesBasic | TokenEcho::RealmGarbage => {
                assert!(e.contains("authenticating at http://127.0.0.1:"), "{e}")
            }
            _ => assert!(e.contains("DENIED"), "{echo:?}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// (b) Docker config files: other registries' entries are never looked at; a malformed
// entry for the target is one clear error that quotes no value.

#[test]
fn malformed_entries_for_other_registries_are_ignored() {
    if !require_tools(&["docker-registry", "htpasswd"]) {
        return;
    }
    let password = "Target-Pw-4c1d8e";
    let reg = Registry::start_with_htpasswd("alice", password);
    let (_t, layout, _) = hello_layout();
    let other_up = format!("bob:{PASSWORD}");
    let other = STANDARD.encode(&other_up);
    let mine = STANDARD.encode(format!("alice:{password}"));
    let target = format!(r#""http://{}":{{"auth":"{mine}"}}"#, reg.host());
    let mut forbidden = encodings(&other_up);
    forbidden.extend([PASSWORD.to_string(), other_up.clone()]);
    for (i, entry) in [
        format!(r#""other.example:5000":"{other}""#),
        r#""other.example:5000":{"auth":5}"#.to_string(),
        format!(r#""other.example:5000":{{"auth":"{other}","username":5}}"#),
        format!(r#""other.example:5000":["{other}"]"#),
    ]
    .iter()
    .enumerate()
    {
        let config = docker_config(&format!(
            r#"{{"auths":{{{entry},{target}}},"credHelpers":{{"other.example:5000":5}}}}"#
        ));
        let o = push(
            &layout,
            &format!("{}/private/hello:{i}", reg.host()),
            config.path(),
            &[],
        );
        assert_exit(&o, 0);
        assert_clean(&stderr(&o), &forbidden);
    }
}

#[test]
fn a_malformed_entry_for_the_target_registry_is_named_without_its_value() {
    let (_t, layout, _) = hello_layout();
    let server = Server::start(READ_TIMEOUT, registry_ok);
    let host = server.host();
    let b64 = STANDARD.encode(format!("{USER}:{PASSWORD}"));
    // Each config, and what the error must name.
    for (config, names) in [
        (
            format!(r#"{{"auths":{{"{host}":"{b64}"}}}}"#),
            vec!["auths".to_string(), host.clone()],
        ),
        (
            format!(r#"{{"auths":{{"{host}":{{"auth":5}}}}}}"#),
            vec!["auths".to_string(), host.clone(), "auth".to_string()],
        ),
        (
            format!(r#"{{"auths":{{"http://{host}":{{"auth":"{b64}","username":5}}}}}}"#),
            vec![
                format!("auths"),
                format!("http://{host}"),
                "username".into(),
            ],
        ),
        (
            format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}!"}}}}}}"#),
            vec!["auths".to_string(), host.clone(), "auth".to_string()],
        ),
        (format!(r#"{{"auths":"{b64}"}}"#), vec!["auths".to_string()]),
        (
            format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}"#),
            vec!["JSON".to_string()],
        ),
        (format!(r#"["{b64}"]"#), vec!["JSON object".to_string()]),
    ] {
        let dir = docker_config(&config);
        let o = push(&layout, &format!("{host}/hello:v1"), dir.path(), &[]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{config}: {e}");
        assert!(e.contains("config.json"), "{e}");
        for n in &names {
            assert!(e.contains(n.as_str()), "{config}: {n:?} not in {e}");
        }
        assert_clean(&e, &secrets());
    }
    assert!(server.requests().is_empty(), "nothing is sent");
}

/// A Docker config file that is a FIFO (opening it to read would wait for a writer
/// forever), `/dev/zero` (endless) or a directory is refused by its type before it is
/// read, and one over 1 MiB by its size: exit 2, naming the file and the reason.
#[test]
fn a_docker_config_that_is_a_fifo_or_endless_is_refused_by_its_type() {
    let (_t, layout, _) = hello_layout();
    let server = Server::start(READ_TIMEOUT, registry_ok);
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let big = d.path().join("big");
    fs::create_dir(&big).unwrap();
    fs::write(
        big.join("config.json"),
        format!(r#"{{"auths":{{}},"pad":"{}"}}"#, "x".repeat(2 << 20)),
    )
    .unwrap();
    for (name, target, kind) in [
        ("fifo", fifo.as_path(), "a FIFO"),
        ("zero", Path::new("/dev/zero"), "a character device"),
        ("dir", d.path(), "a directory"),
    ] {
        let dir = d.path().join(format!("config-{name}"));
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join("config.json")).unwrap();
        // `push` bounds the run (a FIFO opened for reading would hang it); the message
        // shows the file was refused by its type, never opened for reading.
        let o = push(&layout, &format!("{}/hello:v1", server.host()), &dir, &[]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(
            e.contains("config.json: is ") && e.contains(&format!("is {kind}, not a regular file")),
            "{name}: {e}"
        );
    }
    let o = push(&layout, &format!("{}/hello:v1", server.host()), &big, &[]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("config.json: is 2097173 bytes, more than the 1048576 ocipack reads"),
        "{e}"
    );
    assert!(server.requests().is_empty(), "nothing is sent");
}

// ---------------------------------------------------------------------------------------
// (c) Deadlines: a registry that trickles or withholds its answer cannot keep a push
// running past --timeout's bounds.

#[derive(Clone, Copy, Debug)]
enum Slow {
    /// `POST …/blobs/uploads/` answered 500 with a huge body, one byte per second.
    ErrorBody,
    /// The monolithic blob `PUT` (after its body was sent) answered the same way.
    UploadErrorBody,
    /// A response head that never ends, one byte per second.
    Head,
    /// The same, after the blob of a monolithic `PUT` was received.
    UploadHead,
    /// The token realm trickles its answer.
    TokenBody,
    /// The connection is accepted and the request read, but nothing is ever answered.
    Silent,
}

fn slow(kind: Slow) -> impl Fn(&mut Exchange) + Send + Sync + 'static {
    move |ex: &mut Exchange| {
        let (method, path) = (ex.req.method.clone(), ex.req.path.clone());
        let trickle_500 = |ex: &mut Exchange| {
            let _ = ex.conn.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000000\r\n\r\n",
            );
            ex.trickle(br#"{"errors":[{"code":"SLOW","message":"#);
        };
        match kind {
            Slow::ErrorBody if method == "POST" => trickle_500(ex),
            Slow::UploadErrorBody if method == "PUT" && path.starts_with("/upload/") => {
                ex.body();
                trickle_500(ex)
            }
            Slow::Head if method == "HEAD" => {
                let _ = ex.conn.write_all(b"HTTP/1.1 200 OK\r\n");
                ex.trickle(b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
            }
            Slow::UploadHead if method == "PUT" && path.starts_with("/upload/") => {
                ex.body();
                let _ = ex.conn.write_all(b"HTTP/1.1 201 Created\r\n");
                ex.trickle(b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
            }
            Slow::TokenBody if path.starts_with("/token") => {
                let _ = ex
                    .conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n");
                ex.trickle(br#"{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"#);
            }
            Slow::TokenBody => {
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="fake.test""#,
                    ex.port
                );
                ex.respond(401, &[("WWW-Authenticate", challenge)], b"");
            }
            Slow::Silent => ex.silence(),
            _ => registry_ok(ex),
        }
    }
}

/// With `--timeout 5`, every wait for an answer ends within 5 s (10 s for an upload's
/// answer), however the registry trickles or withholds it: the push fails with exit 1 and
/// one "timed out" line. The time bounds below are the feature, not a speed claim: without
/// the deadline these pushes never end (the server trickles forever), so an upper bound of
/// 60 s (12 × the timeout, room for a loaded 2-core machine running six pushes at once)
/// separates the two; the lower bound shows the push waited for the deadline rather than
/// failing early for another reason, and no load can break it.
#[test]
fn trickled_or_withheld_answers_end_within_the_deadline() {
    let (_t, layout, _) = hello_layout();
    let layout = Arc::new(layout);
    let threads: Vec<_> = [
        Slow::ErrorBody,
        Slow::UploadErrorBody,
        Slow::Head,
        Slow::UploadHead,
        Slow::TokenBody,
        Slow::Silent,
    ]
    .into_iter()
    .map(|kind| {
        let layout = layout.clone();
        std::thread::spawn(move || {
            let server = Server::start(READ_TIMEOUT, slow(kind));
            let empty = tempfile::tempdir().unwrap();
            let mut c = ocipack();
            c.env("DOCKER_CONFIG", empty.path())
                .arg("push")
                .arg(&*layout)
                .arg(format!("{}/hello:v1", server.host()))
                .args(["--timeout", "5"]);
            let start = Instant::now();
            let o = run_bounded(&mut c, LIMIT);
            let elapsed = start.elapsed();
            (kind, o, elapsed)
        })
    })
    .collect();
    for t in threads {
        let (kind, o, elapsed) = t.join().unwrap();
        assert_exit(&o, 1);
        let e = stderr(&o);
        eprintln!("{kind:?} ({elapsed:?}): {e}");
        assert!(
            elapsed < Duration::from_secs(60),
            "{kind:?}: {elapsed:?} {e}"
        );
        assert!(
            elapsed >= Duration::from_secs(4),
            "{kind:?}: {elapsed:?} {e}"
        );
        assert!(e.contains("timed out"), "{kind:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{kind:?}: {e}");
    }
}

/// `--timeout` bounds each wait, not an upload that keeps flowing: a blob the registry
/// takes slowly but steadily (a pause of 1 s between pieces, under the 3 s timeout) for 16 s
/// is pushed. The lower time bound is a check that the server really throttled the upload
/// for longer than the timeout (load can only lengthen it), not a speed claim.
#[test]
fn an_upload_that_keeps_flowing_may_take_longer_than_the_timeout() {
    // 32 MiB of noise, uncompressed: far more than the socket buffers hold, so that the
    // upload lasts as long as the server's slow reading.
    let t = tempfile::tempdir().unwrap();
    let (layout, _) = build_noise_image(t.path(), 32 << 20, &["--compression", "none"]);

    // The server takes the first 16 MiB in 1 MiB steps a second apart (each pause shorter
    // than the timeout), then the rest at once.
    let server = Server::start(READ_TIMEOUT, |ex: &mut Exchange| {
        if ex.req.method == "PUT" && ex.req.path.starts_with("/upload/") {
            let len: usize = ex.req.header("content-length").unwrap().parse().unwrap();
            if len > 16 << 20 {
                let _ = ex.conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                let mut chunk = vec![0u8; 1 << 20];
                for _ in 0..16 {
                    std::thread::sleep(Duration::from_secs(1));
                    if ex.reader.read_exact(&mut chunk).is_err() {
                        return;
                    }
                }
                let mut rest = vec![0u8; len - (16 << 20)];
                if ex.reader.read_exact(&mut rest).is_err() {
                    return;
                }
                ex.respond(201, &[], b"");
                return;
            }
        }
        registry_ok(ex)
    });
    let empty = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = push(
        &layout,
        &format!("{}/hello:v1", server.host()),
        empty.path(),
        &["--timeout", "3"],
    );
    assert_exit(&o, 0);
    assert!(
        start.elapsed() > Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
