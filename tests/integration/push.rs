//! `ocipack push`: against Debian's real `docker-registry` (anonymous and htpasswd basic
//! auth), read back with skopeo; and against a small in-test HTTP server for the answers a
//! real registry gives rarely (5xx, 404, 413, bearer tokens).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::cli::stderr;
use common::fake::{Behaviour, Fake};
use common::oci::sha256;
use common::{
    Registry, assert_exit, build_hello, build_noise_image, hello_layout, index_digest, ocipack,
    push, require_tools, run_bounded, skopeo,
};

const LIMIT: Duration = Duration::from_secs(120);

fn push_with_stdin(args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
    let mut c = ocipack();
    c.arg("push").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Every blob file of a layout, by name.
fn blobs(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn push_preserves_the_digest_and_a_second_push_uploads_nothing() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    // An uncompressed layer: `skopeo copy` without --preserve-digests would gzip it and
    // change the manifest digest; ocipack must not.
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &["--compression", "none"]);

    let reference = format!("{}/hello:v1", reg.host());
    let o = push(&[layout.to_str().unwrap(), &reference, "--also-tag", "latest"]);
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);

    for tag in ["v1", "latest"] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/hello:{tag}", reg.host()),
        ]);
        assert_eq!(sha256(&raw.stdout), digest, "tag {tag}");
    }
    let copy = t.path().join("copy");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:v1", copy.display()),
    ]);
    assert_eq!(blobs(&copy), blobs(&layout));
    assert_eq!(index_digest(&copy), digest);

    // Again: every blob is found by HEAD, nothing is uploaded, the manifest is re-put.
    let posts = reg.requests("POST", "/v2/hello/blobs/uploads");
    assert_eq!(posts, 2, "first push: one upload per blob\n{}", reg.log());
    let o = push(&[layout.to_str().unwrap(), &reference, "--json"]);
    assert_exit(&o, 0);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str());
    let listed = report["blobs"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|b| b["uploaded"] == false), "{report}");
    assert_eq!(reg.requests("POST", "/v2/hello/blobs/uploads"), posts);
    assert_eq!(reg.requests("PATCH", "/v2/hello/blobs/uploads"), 0);
    assert_eq!(reg.requests("HEAD", "/v2/hello/blobs/"), 4);
}

#[test]
fn chunked_uploads_against_the_real_registry() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let (layout, digest) = build_noise_image(t.path(), 300_000, &[]);
    let layer_size = blobs(&layout).values().map(Vec::len).max().unwrap();
    assert!(layer_size > 300_000);

    let reference = format!("{}/chunky:1", reg.host());
    let o = push(&[
        layout.to_str().unwrap(),
        &reference,
        "--chunk-size",
        "65536",
    ]);
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    // The layer in ceil(size / 64 KiB) chunks, the config (small) in one.
    let expected = layer_size.div_ceil(65536) + 1;
    assert_eq!(
        reg.requests("PATCH", "/v2/chunky/blobs/uploads/"),
        expected,
        "{}",
        reg.log()
    );
    let copy = t.path().join("copy");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:1", copy.display()),
    ]);
    assert_eq!(blobs(&copy), blobs(&layout));
}

#[test]
fn basic_auth_registry_credentials_from_stdin_and_docker_config() {
    if !require_tools(&["docker-registry", "skopeo", "htpasswd"]) {
        return;
    }
    let password = "S3cret-Pw-7f3a9";
    let wrong = "Wr0ng-Pw-c41e2";
    let reg = Registry::start_with_htpasswd("alice", password);
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    let l = layout.to_str().unwrap();
    let reference = format!("{}/private/hello:1", reg.host());
    // An empty Docker config directory, so that the runner's own file cannot interfere.
    let empty = t.path().join("empty-docker-config");
    fs::create_dir(&empty).unwrap();

    // No credentials: one line naming registry and step, exit 1, no tag created.
    let o = push_with_stdin(&[l, &reference], "", &[("DOCKER_CONFIG", &empty)]);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains(&format!(
            "pushing to {}/private/hello: checking blob sha256:",
            reg.host()
        )),
        "{e}"
    );
    assert!(
        e.contains("401 Unauthorized") && e.contains("requires credentials"),
        "{e}"
    );

    // Wrong password: refused, and the password appears nowhere.
    let o = push_with_stdin(
        &[l, &reference, "--username", "alice", "--password-stdin"],
        &format!("{wrong}\n"),
        &[("DOCKER_CONFIG", &empty)],
    );
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains("401 Unauthorized") && e.contains("\"alice\""),
        "{e}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{wrong}"));
    assert!(!e.contains(wrong) && !e.contains(&basic), "{e}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains(wrong));

    // Right password from stdin.
    let o = push_with_stdin(
        &[l, &reference, "--username", "alice", "--password-stdin"],
        &format!("{password}\n"),
        &[("DOCKER_CONFIG", &empty)],
    );
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    assert!(!stderr(&o).contains(password));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("alice:{password}"),
        &format!("docker://{reference}"),
    ]);
    assert_eq!(sha256(&raw.stdout), digest);

    // Credentials from $DOCKER_CONFIG/config.json, and from ~/.docker/config.json.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    let config = format!(
        r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
        reg.host()
    );
    let dc = t.path().join("docker-config");
    fs::create_dir(&dc).unwrap();
    fs::write(dc.join("config.json"), &config).unwrap();
    let o = push_with_stdin(
        &[l, &format!("{}/private/hello:2", reg.host())],
        "",
        &[("DOCKER_CONFIG", &dc)],
    );
    assert_exit(&o, 0);
    let home = t.path().join("home");
    fs::create_dir_all(home.join(".docker")).unwrap();
    fs::write(home.join(".docker/config.json"), &config).unwrap();
    let mut c = ocipack();
    c.env_remove("DOCKER_CONFIG").env("HOME", &home).args([
        "push",
        l,
        &format!("{}/private/hello:3", reg.host()),
    ]);
    let o = run_bounded(&mut c, LIMIT);
    assert_exit(&o, 0);
    for tag in ["2", "3"] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("alice:{password}"),
            &format!("docker://{}/private/hello:{tag}", reg.host()),
        ]);
        assert_eq!(sha256(&raw.stdout), digest);
    }
}

#[test]
fn a_corrupt_blob_is_never_completed_and_no_tag_is_created() {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let (layout, _) = build_noise_image(t.path(), 200_000, &[]);
    // Flip one byte in the middle of the layer (the largest blob).
    let (name, mut bytes) = blobs(&layout)
        .into_iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    bytes[100_000] ^= 1;
    let corrupt = t.path().join("corrupt");
    fs::write(&corrupt, &bytes).unwrap();
    let blob = layout.join("blobs/sha256").join(&name);
    let reference = format!("{}/broken:1", reg.host());

    // Corrupt before the push: the layout is refused whole and nothing is sent.
    let good = fs::read(&blob).unwrap();
    fs::write(&blob, &bytes).unwrap();
    let o = push(&[layout.to_str().unwrap(), reference.as_str()]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("is not a valid layout") && e.contains("tampered or corrupt"),
        "{e}"
    );
    assert_eq!(reg.requests("POST", "/v2/"), 0, "{}", reg.log());
    fs::write(&blob, &good).unwrap();

    // Corrupted after the layout was verified, while the push runs: the upload stream
    // withholds the blob's last bytes, so the registry never completes it.
    for chunk in [None, Some("50000")] {
        let mut args = vec![layout.to_str().unwrap(), reference.as_str()];
        if let Some(c) = chunk {
            args.extend(["--chunk-size", c]);
        }
        let mut c = ocipack();
        c.env(
            "OCIPACK_TEST_HOOK_AFTER_VERIFY",
            format!("cp '{}' '{}'", corrupt.display(), blob.display()),
        )
        .arg("push")
        .args(&args);
        let o = run_bounded(&mut c, LIMIT);
        fs::write(&blob, &good).unwrap();
        assert_exit(&o, 1);
        let e = stderr(&o);
        assert!(
            e.contains(&format!("uploading blob sha256:{name}")) && e.contains("hashes to"),
            "{e}"
        );
    }
    assert_eq!(reg.requests("PUT", "/v2/broken/manifests/"), 0);
    let o = run_bounded(
        Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]),
        LIMIT,
    );
    assert!(!o.status.success(), "the tag exists after a failed push");
    // The registry completed no upload of the corrupt layer.
    let completed = reg
        .log()
        .lines()
        .filter(|l| l.contains("\"PUT /v2/broken/blobs/uploads/") && l.contains("\" 201 "))
        .count();
    assert_eq!(completed, 0, "{}", reg.log());
}

#[test]
fn closed_port_and_bad_input() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    let l = layout.to_str().unwrap();

    let port = common::free_port();
    let o = push(&[l, &format!("127.0.0.1:{port}/hello")]);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains(&format!(
            "pushing to 127.0.0.1:{port}/hello: checking blob sha256:"
        )) && e.to_lowercase().contains("connection refused"),
        "{e}"
    );

    // Usage and input errors: exit 2.
    let other = sha256(b"other");
    for args in [
        vec![l, "127.0.0.1:1/Bad"],
        vec![l, "127.0.0.1:1/x:-bad"],
        vec![l, "127.0.0.1:1/x", "--also-tag", "no/slash"],
        vec![l, "127.0.0.1:1/x", "--chunk-size", "0"],
        vec![l, "127.0.0.1:1/x", "--username", "u"],
    ] {
        assert_exit(&push(&args), 2);
    }
    let o = push(&[l, &format!("127.0.0.1:1/x@{other}")]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains(&digest), "{}", stderr(&o));

    // Two images in one index: refused, naming the count.
    let index = fs::read_to_string(layout.join("index.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&index).unwrap();
    let entry = v["manifests"][0].clone();
    let two = serde_json::json!({"schemaVersion": 2, "mediaType": v["mediaType"], "manifests": [entry.clone(), entry]});
    fs::write(layout.join("index.json"), two.to_string()).unwrap();
    let o = push(&[l, "127.0.0.1:1/x"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("lists 2 manifests"), "{}", stderr(&o));
}

fn fake_push(fake: &Fake, layout: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        layout.to_str().unwrap().to_string(),
        format!("127.0.0.1:{}/hello:v1", fake.port),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = tempfile::tempdir().unwrap();
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", t.path()).arg("push").args(&refs);
    run_bounded(&mut c, LIMIT)
}

#[test]
fn fake_registry_receives_exact_bytes_and_the_manifest_last() {
    let (_t, layout, digest) = hello_layout();
    let fake = Fake::start(Behaviour::default());
    let o = fake_push(&fake, &layout, &["--also-tag", "extra"]);
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    let st = fake.state.lock().unwrap();
    for (name, bytes) in blobs(&layout) {
        if format!("sha256:{name}") == digest {
            assert_eq!(st.manifests["v1"], bytes);
            assert_eq!(st.manifests["extra"], bytes);
        } else {
            assert_eq!(st.blobs[&format!("sha256:{name}")], bytes);
        }
    }
    let reqs = &st.requests;
    let first_manifest = reqs
        .iter()
        .position(|r| r.path.contains("/manifests/"))
        .unwrap();
    assert!(
        reqs[first_manifest..]
            .iter()
            .all(|r| r.path.contains("/manifests/"))
    );
    // Monolithic uploads sent Content-Length (no chunked transfer encoding).
    for r in reqs
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/upload/"))
    {
        assert!(r.header("transfer-encoding").is_none());
        assert_eq!(r.header("content-length").unwrap(), r.body_len.to_string());
    }
}

#[test]
fn server_errors_name_the_registry_and_the_step_and_leave_no_tag() {
    let (_t, layout, _) = hello_layout();
    for (fail, step, status) in [
        (
            ("PUT", "/upload/", 500),
            "uploading blob sha256:",
            "500 Internal Server Error",
        ),
        (
            ("POST", "/blobs/uploads/", 404),
            "starting the upload of blob sha256:",
            "404 Not Found",
        ),
        (
            ("HEAD", "/blobs/", 500),
            "checking blob sha256:",
            "500 Internal Server Error",
        ),
        (
            ("PUT", "/manifests/", 500),
            "pushing manifest sha256:",
            "500 Internal Server Error",
        ),
    ] {
        let fake = Fake::start(Behaviour {
            fail: Some(fail),
            ..Behaviour::default()
        });
        let o = fake_push(&fake, &layout, &[]);
        assert_exit(&o, 1);
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        let prefix = format!(
            "ocipack: error: pushing to 127.0.0.1:{}/hello: {step}",
            fake.port
        );
        assert!(e.starts_with(&prefix), "{e}\nexpected {prefix}");
        assert!(e.contains(status), "{e}");
        // The registry's error detail is quoted (a HEAD answer has no body to carry one).
        assert_eq!(
            e.contains("(INJECTED: injected failure)"),
            fail.0 != "HEAD",
            "{e}"
        );
        if fail.1 != "/manifests/" {
            assert!(
                fake.requests()
                    .iter()
                    .all(|r| !r.path.contains("/manifests/")),
                "a manifest was sent after a failed blob"
            );
        }
    }
}

#[test]
fn a_registry_refusing_monolithic_uploads_gets_chunks() {
    let t = tempfile::tempdir().unwrap();
    let (layout, digest) = build_noise_image(t.path(), 40_000, &[]);
    let fake = Fake::start(Behaviour {
        refuse_monolithic: true,
        ..Behaviour::default()
    });
    let o = fake_push(&fake, &layout, &[]);
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    let reqs = fake.requests();
    assert!(reqs.iter().any(|r| r.method == "PUT"
        && r.path.starts_with("/upload/")
        && r.header("content-length") != Some("0")));
    assert!(reqs.iter().any(|r| r.method == "PATCH"));
    // The refused PUT sent no body (Expect: 100-continue), the refused session was cancelled.
    assert!(reqs.iter().any(|r| r.method == "DELETE"));
    let st = fake.state.lock().unwrap();
    for (name, bytes) in blobs(&layout) {
        if format!("sha256:{name}") != digest {
            assert_eq!(st.blobs[&format!("sha256:{name}")], bytes);
        }
    }
}

#[test]
fn bearer_token_flow_and_no_secret_in_errors() {
    let (_t, layout, digest) = hello_layout();
    let password = "Pw-for-token-5521";
    let fake = Fake::start(Behaviour {
        bearer: Some(("tok-abc-123", password)),
        ..Behaviour::default()
    });
    let home = tempfile::tempdir().unwrap();
    let o = push_with_stdin(
        &[
            layout.to_str().unwrap(),
            &format!("127.0.0.1:{}/hello:v1", fake.port),
            "--username",
            "alice",
            "--password-stdin",
        ],
        &format!("{password}\n"),
        &[("DOCKER_CONFIG", home.path())],
    );
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    let reqs = fake.requests();
    let token_reqs: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect();
    assert_eq!(token_reqs.len(), 1, "one token for the whole push");
    let q = &token_reqs[0].path;
    assert!(q.contains("service=fake.test"), "{q}");
    assert!(q.contains("scope=repository%3Ahello%3Apull%2Cpush"), "{q}");
    // Basic credentials go to the token realm only; the registry sees the token.
    for r in reqs.iter().filter(|r| !r.path.starts_with("/token")) {
        let a = r.header("authorization").unwrap_or("");
        assert!(!a.starts_with("Basic"), "credentials sent to {}", r.path);
    }
    assert!(fake.state.lock().unwrap().manifests.contains_key("v1"));

    // A wrong password: the token realm refuses; one line, no secret.
    let fake = Fake::start(Behaviour {
        bearer: Some(("tok-abc-123", password)),
        ..Behaviour::default()
    });
    let o = push_with_stdin(
        &[
            layout.to_str().unwrap(),
            &format!("127.0.0.1:{}/hello:v1", fake.port),
            "--username",
            "alice",
            "--password-stdin",
        ],
        "not-the-Pw-9931\n",
        &[("DOCKER_CONFIG", home.path())],
    );
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains("authenticating at http://127.0.0.1:") && e.contains("401 Unauthorized"),
        "{e}"
    );
    assert!(
        !e.contains("not-the-Pw-9931") && !e.contains(password),
        "{e}"
    );
    assert!(fake.state.lock().unwrap().manifests.is_empty());
}

// ---------------------------------------------------------------------------------------
// Docker credential helpers and identity tokens.

/// Writes `docker-credential-NAME` scripts (`body` after a `#!/bin/sh` line) into `dir`.
fn credential_helpers(dir: &Path, scripts: &[(&str, String)]) {
    use std::os::unix::fs::PermissionsExt;
    for (name, body) in scripts {
        let p = dir.join(format!("docker-credential-{name}"));
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `ocipack push ARGS` with `config` as the Docker config file and `bin` first on PATH.
fn push_with_config(args: &[&str], config: &str, bin: &Path) -> (Output, std::time::Duration) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), config).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", dir.path())
        .env("PATH", path)
        .arg("push")
        .args(args);
    let start = std::time::Instant::now();
    let o = run_bounded(&mut c, LIMIT);
    (o, start.elapsed())
}

#[test]
fn credential_helpers_are_resolved_as_docker_does() {
    if !require_tools(&["docker-registry", "htpasswd"]) {
        return;
    }
    let password = "Helper-Pw-8d2e61";
    let wrong = "Wrong-Pw-3a9f07";
    let reg = Registry::start_with_htpasswd("alice", password);
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    let l = layout.to_str().unwrap();
    let bin = t.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let answer = |user: &str, secret: &str| {
        format!(
            "[ \"$1\" = get ] || exit 3\ncat > \"$0.stdin\"\n\
             printf '{{\"ServerURL\":\"x\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}'"
        )
    };
    credential_helpers(
        &bin,
        &[
            ("good", answer("alice", password)),
            ("wrong", answer("alice", wrong)),
            (
                "notfound",
                "echo 'credentials not found in native keychain'; exit 1".to_string(),
            ),
            (
                "failing",
                format!("echo 'the secret is {password}'; echo '{password}' >&2; exit 1"),
            ),
            ("garbage", format!("echo 'alice:{password}'")),
            ("hanging", "exec sleep 600".to_string()),
        ],
    );
    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(format!("alice:{p}"));
    let auths = |p: &str| format!(r#""auths":{{"{host}":{{"auth":"{}"}}}}"#, b64(p));
    let mut n = 0;
    let mut run = |config: String, extra: &[&str]| {
        n += 1;
        let reference = format!("{host}/private/hello:{n}");
        let mut args = vec![l, reference.as_str()];
        args.extend(extra);
        let (o, elapsed) = push_with_config(&args, &config, &bin);
        let e = stderr(&o);
        assert!(!e.contains(password) && !e.contains(&b64(password)), "{e}");
        (o, e, elapsed)
    };

    // credHelpers[registry] wins over credsStore, which wins over auths.
    let (o, ..) = run(
        format!(
            r#"{{"credHelpers":{{"{host}":"good","other:1":"wrong"}},"credsStore":"wrong",{}}}"#,
            auths(wrong)
        ),
        &[],
    );
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    // The helper was asked for the bare host[:port], on stdin.
    assert_eq!(
        fs::read_to_string(bin.join("docker-credential-good.stdin")).unwrap(),
        host
    );
    let (o, ..) = run(
        format!(
            r#"{{"credHelpers":{{"other:1":"wrong"}},"credsStore":"good",{}}}"#,
            auths(wrong)
        ),
        &[],
    );
    assert_exit(&o, 0);
    for config in [
        format!(
            r#"{{"credHelpers":{{"{host}":"wrong"}},"credsStore":"good",{}}}"#,
            auths(password)
        ),
        format!(r#"{{"credsStore":"wrong",{}}}"#, auths(password)),
    ] {
        let (o, e, _) = run(config, &[]);
        assert_exit(&o, 1);
        assert!(
            e.contains(r#"the credentials of user "alice" were not accepted"#),
            "{e}"
        );
    }
    // An empty credHelpers entry skips the helpers for that registry: auths is used.
    let (o, ..) = run(
        format!(
            r#"{{"credHelpers":{{"{host}":""}},"credsStore":"wrong",{}}}"#,
            auths(password)
        ),
        &[],
    );
    assert_exit(&o, 0);

    // "credentials not found": anonymous (auths is not consulted), and the registry says no.
    let (o, e, _) = run(
        format!(r#"{{"credsStore":"notfound",{}}}"#, auths(password)),
        &[],
    );
    assert_exit(&o, 1);
    assert!(
        e.contains("401 Unauthorized") && e.contains("requires credentials"),
        "{e}"
    );

    // Failures name the helper and never show its output.
    for (helper, why) in [
        ("failing", "exit status 1"),
        ("garbage", "not JSON"),
        ("missing", "not found on PATH"),
    ] {
        let (o, e, _) = run(format!(r#"{{"credsStore":"{helper}"}}"#), &[]);
        assert_exit(&o, 1);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(
            e.contains(&format!("credential helper docker-credential-{helper}"))
                && e.contains(why)
                && e.contains(&host),
            "{e}"
        );
        assert!(!e.contains("the secret is") && !e.contains("alice:"), "{e}");
    }
    // A helper that never answers is killed after --timeout. The bound is the feature, not
    // a speed claim: the helper would answer after 600 s, and ocipack must end at the 3 s
    // deadline; 60 s leaves room for a loaded machine.
    let (o, e, elapsed) = run(
        r#"{"credsStore":"hanging"}"#.to_string(),
        &["--timeout", "3"],
    );
    assert_exit(&o, 1);
    assert!(
        e.contains("docker-credential-hanging") && e.contains("no answer within 3 s"),
        "{e}"
    );
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}

#[test]
fn identity_tokens_are_refresh_tokens_for_the_token_realm() {
    let (_t, layout, digest) = hello_layout();
    let refresh = "refresh-Ident-7c31b0e2";
    let bin = tempfile::tempdir().unwrap();
    credential_helpers(
        bin.path(),
        &[
            (
                "tok",
                format!(r#"printf '{{"Username":"<token>","Secret":"{refresh}"}}'"#),
            ),
            (
                "badtok",
                r#"printf '{"Username":"<token>","Secret":"refresh-WRONG-6b1d"}'"#.to_string(),
            ),
        ],
    );
    let behaviour = || Behaviour {
        bearer: Some(("tok-from-refresh", "unused-password")),
        refresh: Some(refresh),
        ..Behaviour::default()
    };
    // From a credential helper (user name <token>) and from auths' identitytoken.
    for config in [
        r#"{"credsStore":"tok"}"#.to_string(),
        format!(r#"{{"auths":{{"127.0.0.1:PORT":{{"identitytoken":"{refresh}"}}}}}}"#),
    ] {
        let fake = Fake::start(behaviour());
        let config = config.replace("PORT", &fake.port.to_string());
        let reference = format!("127.0.0.1:{}/hello:v1", fake.port);
        let (o, _) = push_with_config(&[layout.to_str().unwrap(), &reference], &config, bin.path());
        assert_exit(&o, 0);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
        let st = fake.state.lock().unwrap();
        assert!(st.manifests.contains_key("v1"));
        assert_eq!(st.forms.len(), 1, "one token for the whole push");
        assert!(
            st.forms[0].contains(&format!("refresh_token={refresh}")),
            "{:?}",
            st.forms
        );
        // The identity token goes to the realm only; no basic credentials anywhere.
        for r in &st.requests {
            let a = r.header("authorization").unwrap_or("");
            assert!(!a.starts_with("Basic") && !a.contains(refresh), "{r:?}");
            assert!(!r.path.contains(refresh), "{r:?}");
        }
    }
    // A token the realm refuses (and echoes): one line, the token nowhere.
    for config in [
        r#"{"credsStore":"badtok"}"#.to_string(),
        r#"{"auths":{"127.0.0.1:PORT":{"identitytoken":"refresh-WRONG-6b1d"}}}"#.to_string(),
    ] {
        let fake = Fake::start(behaviour());
        let config = config.replace("PORT", &fake.port.to_string());
        let reference = format!("127.0.0.1:{}/hello:v1", fake.port);
        let (o, _) = push_with_config(&[layout.to_str().unwrap(), &reference], &config, bin.path());
        assert_exit(&o, 1);
        let e = stderr(&o);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(
            e.contains("authenticating at http://127.0.0.1:") && e.contains("400 Bad Request"),
            "{e}"
        );
        assert!(e.contains("bad grant <redacted>"), "{e}");
        assert!(!e.contains("WRONG-6b1d"), "{e}");
        assert!(fake.state.lock().unwrap().manifests.is_empty());
    }
}

#[test]
fn a_credential_helper_runs_only_when_the_registry_asks() {
    let (_t, layout, digest) = hello_layout();
    let bin = tempfile::tempdir().unwrap();
    credential_helpers(
        bin.path(),
        &[("ran", "touch \"$0.ran\"; exit 1".to_string())],
    );
    for helper in ["ran", "missing"] {
        let fake = Fake::start(Behaviour::default());
        let reference = format!("127.0.0.1:{}/hello:v1", fake.port);
        let config = format!(r#"{{"credsStore":"{helper}"}}"#);
        let (o, _) = push_with_config(&[layout.to_str().unwrap(), &reference], &config, bin.path());
        assert_exit(&o, 0);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    }
    assert!(!bin.path().join("docker-credential-ran.ran").exists());
}
