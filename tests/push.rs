//! `ocipack push`: against Debian's real `docker-registry` (anonymous and htpasswd basic
//! auth), read back with skopeo; and against a small in-test HTTP server for the answers a
//! real registry gives rarely (5xx, 404, 413, bearer tokens).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{Registry, assert_exit, build_hello, index_digest, ocipack, run_bounded, sha256sum};
use ocipack::digest::Digest;

const LIMIT: Duration = Duration::from_secs(120);

fn push(args: &[&str]) -> Output {
    run_bounded(ocipack().arg("push").args(args), LIMIT)
}

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn skopeo(args: &[&str]) -> Output {
    let o = run_bounded(Command::new("skopeo").args(args), LIMIT);
    assert!(o.status.success(), "skopeo {args:?}: {}", stderr(&o));
    o
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

fn tools(names: &[&str]) -> bool {
    names.iter().all(|t| common::require_tool(t))
}

#[test]
fn push_preserves_the_digest_and_a_second_push_uploads_nothing() {
    if !tools(&["docker-registry", "skopeo"]) {
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
        assert_eq!(sha256sum(&raw.stdout), digest, "tag {tag}");
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

/// A deterministic incompressible file of `len` bytes.
fn noise(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(path, bytes).unwrap();
}

fn build_noise_image(t: &Path, len: usize) -> (std::path::PathBuf, String) {
    let file = t.join("noise.bin");
    noise(&file, len);
    let layout = t.join("noise");
    let o = ocipack()
        .args(["image", "--file"])
        .arg(format!("{}:/noise.bin:0644", file.display()))
        .args(["--arch", "amd64", "--created", "@1700000000", "-o"])
        .arg(&layout)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let digest = index_digest(&layout);
    (layout, digest)
}

#[test]
fn chunked_uploads_against_the_real_registry() {
    if !tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let (layout, digest) = build_noise_image(t.path(), 300_000);
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
    if !tools(&["docker-registry", "skopeo", "htpasswd"]) {
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
    assert_eq!(sha256sum(&raw.stdout), digest);

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
        assert_eq!(sha256sum(&raw.stdout), digest);
    }
}

#[test]
fn a_corrupt_blob_is_never_completed_and_no_tag_is_created() {
    if !tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let (layout, _) = build_noise_image(t.path(), 200_000);
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
    let other = Digest::sha256_of(b"other");
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

// ---------------------------------------------------------------------------------------
// A small registry in the test process: enough of the distribution API for ocipack, plus
// switches for the failures under test. One request per connection.

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body_len: usize,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Behaviour {
    /// (method, path fragment, status): answer that status instead.
    fail: Option<(&'static str, &'static str, u16)>,
    /// Answer 413 to a PUT that carries a blob (monolithic upload).
    refuse_monolithic: bool,
    /// Require `Bearer <token>`, handed out by /token to alice:<password>.
    bearer: Option<(&'static str, &'static str)>,
    /// With `bearer`: /token also hands the token out to an OAuth2 POST with this refresh
    /// token (docker's identity token flow); a wrong one is refused, echoed.
    refresh: Option<&'static str>,
}

#[derive(Default)]
struct State {
    blobs: BTreeMap<String, Vec<u8>>,
    uploads: BTreeMap<String, Vec<u8>>,
    manifests: BTreeMap<String, Vec<u8>>,
    requests: Vec<Req>,
    next_upload: u32,
    /// The bodies of OAuth2 token requests.
    forms: Vec<String>,
}

struct Fake {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let _ = serve(c, port, &behaviour, &s);
                }
            }
        });
        Fake {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Req> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(c: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(body);
}

fn serve(mut c: TcpStream, port: u16, b: &Behaviour, state: &Mutex<State>) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Req {
        method,
        path,
        headers,
        body_len: 0,
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let record = |req: &Req| state.lock().unwrap().requests.push(req.clone());
    let is_upload = req.path.starts_with("/upload/");

    // Answers given before the body is read (a real server does so after Expect: 100-continue).
    if let Some((token, password)) = b.bearer {
        if req.path.starts_with("/token") && req.method == "POST" {
            let mut body = vec![0u8; len];
            r.read_exact(&mut body)?;
            req.body_len = len;
            record(&req);
            let form = String::from_utf8_lossy(&body).into_owned();
            let fields: BTreeMap<&str, String> = form
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| {
                    (
                        k,
                        v.replace("%3A", ":")
                            .replace("%20", " ")
                            .replace("%2C", ","),
                    )
                })
                .collect();
            state.lock().unwrap().forms.push(form.clone());
            let field = |k: &str| fields.get(k).map(String::as_str);
            let ok = b.refresh.is_some()
                && field("refresh_token") == b.refresh
                && field("grant_type") == Some("refresh_token")
                && field("client_id") == Some("ocipack")
                && field("service") == Some("fake.test")
                && field("scope").is_some_and(|s| s.contains("repository:hello:pull,push"));
            if ok {
                let body = format!(r#"{{"access_token":"{token}","refresh_token":"next-1"}}"#);
                respond(&mut c, 200, &[], body.as_bytes());
            } else {
                let echo = format!(
                    r#"{{"errors":[{{"code":"DENIED","message":"bad grant {}"}}]}}"#,
                    field("refresh_token").unwrap_or_default()
                );
                respond(&mut c, 400, &[], echo.as_bytes());
            }
            return Ok(());
        }
        if req.path.starts_with("/token") {
            record(&req);
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
            );
            if req.header("authorization") == Some(want.as_str()) {
                let body = format!(r#"{{"access_token":"{token}","expires_in":300}}"#);
                respond(&mut c, 200, &[], body.as_bytes());
            } else {
                respond(
                    &mut c,
                    401,
                    &[],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                );
            }
            return Ok(());
        }
        if req.header("authorization") != Some(format!("Bearer {token}").as_str()) {
            record(&req);
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake.test",scope="repository:hello:pull""#
            );
            respond(&mut c, 401, &[("WWW-Authenticate", challenge)], b"");
            return Ok(());
        }
    }
    if let Some((m, frag, status)) = b.fail
        && req.method == m
        && req.path.contains(frag)
    {
        record(&req);
        respond(
            &mut c,
            status,
            &[],
            br#"{"errors":[{"code":"INJECTED","message":"injected failure"}]}"#,
        );
        return Ok(());
    }
    if b.refuse_monolithic && is_upload && req.method == "PUT" && len > 0 {
        record(&req);
        respond(&mut c, 413, &[], b"");
        return Ok(());
    }
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    req.body_len = len;
    record(&req);

    let mut st = state.lock().unwrap();
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let path = path.to_string();
    let digest_param = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("digest="))
        .map(|d| d.replace("%3A", ":"));
    match (req.method.as_str(), path.as_str()) {
        ("HEAD", p) if p.starts_with("/v2/hello/blobs/") => {
            let d = &p["/v2/hello/blobs/".len()..];
            let status = if st.blobs.contains_key(d) { 200 } else { 404 };
            respond(&mut c, status, &[], b"");
        }
        ("POST", "/v2/hello/blobs/uploads/") => {
            st.next_upload += 1;
            let id = st.next_upload.to_string();
            st.uploads.insert(id.clone(), Vec::new());
            // A relative Location.
            respond(&mut c, 202, &[("Location", format!("/upload/{id}"))], b"");
        }
        ("PATCH", p) if is_upload => {
            let id = p["/upload/".len()..].to_string();
            let data = st.uploads.get_mut(&id).unwrap();
            let start: usize = req
                .header("content-range")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            if start != data.len() {
                respond(&mut c, 416, &[], b"");
                return Ok(());
            }
            data.extend_from_slice(&body);
            // An absolute Location.
            respond(
                &mut c,
                202,
                &[(
                    "Location",
                    format!("http://127.0.0.1:{port}/upload/{id}?n={}", data.len()),
                )],
                b"",
            );
        }
        ("PUT", p) if is_upload => {
            let id = p["/upload/".len()..].to_string();
            let mut data = st.uploads.remove(&id).unwrap_or_default();
            data.extend_from_slice(&body);
            let got = Digest::sha256_of(&data).to_string();
            if Some(&got) == digest_param.as_ref() {
                st.blobs.insert(got, data);
                respond(&mut c, 201, &[], b"");
            } else {
                respond(
                    &mut c,
                    400,
                    &[],
                    br#"{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch"}]}"#,
                );
            }
        }
        ("DELETE", p) if is_upload => {
            st.uploads.remove(&p["/upload/".len()..]);
            respond(&mut c, 204, &[], b"");
        }
        ("PUT", p) if p.starts_with("/v2/hello/manifests/") => {
            let d = Digest::sha256_of(&body).to_string();
            st.manifests
                .insert(p["/v2/hello/manifests/".len()..].to_string(), body);
            respond(&mut c, 201, &[("Docker-Content-Digest", d)], b"");
        }
        _ => respond(
            &mut c,
            404,
            &[],
            br#"{"errors":[{"code":"NOT_FOUND","message":"no route"}]}"#,
        ),
    }
    Ok(())
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

fn hello_layout() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    (t, layout, digest)
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
    let (layout, digest) = build_noise_image(t.path(), 40_000);
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
    let mut c = ocipack();
    let home = tempfile::tempdir().unwrap();
    c.env("DOCKER_CONFIG", home.path()).args([
        "push",
        layout.to_str().unwrap(),
        &format!("127.0.0.1:{}/hello:v1", fake.port),
        "--username",
        "alice",
        "--password-stdin",
    ]);
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
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
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
    if !tools(&["docker-registry", "htpasswd"]) {
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
            ("hanging", "exec sleep 30".to_string()),
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
    // A helper that never answers is killed after --timeout.
    let (o, e, elapsed) = run(
        r#"{"credsStore":"hanging"}"#.to_string(),
        &["--timeout", "3"],
    );
    assert_exit(&o, 1);
    assert!(
        e.contains("docker-credential-hanging") && e.contains("no answer within 3 s"),
        "{e}"
    );
    assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
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
