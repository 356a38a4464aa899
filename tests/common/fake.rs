//! A small registry in the test process: enough of the distribution API for ocipack, plus
//! switches for the failures under test (the answers a real registry gives rarely: 5xx,
//! 404, 413, bearer tokens, a manifest stored under another digest). One request per
//! connection. Its repository is `hello`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ocipack::digest::Digest;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct Behaviour {
    /// (method, path fragment, status): answer that status instead.
    pub fail: Option<(&'static str, &'static str, u16)>,
    /// Answer 413 to a PUT that carries a blob (monolithic upload).
    pub refuse_monolithic: bool,
    /// Require `Bearer <token>`, handed out by /token to alice:<password>.
    pub bearer: Option<(&'static str, &'static str)>,
    /// With `bearer`: /token also hands the token out to an OAuth2 POST with this refresh
    /// token (docker's identity token flow); a wrong one is refused, echoed.
    pub refresh: Option<&'static str>,
    /// Answer a PUT of an image index with a Docker-Content-Digest that is not its digest
    /// (as if the registry had rewritten it).
    pub rewrite_index: bool,
}

#[derive(Default)]
pub struct State {
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub uploads: BTreeMap<String, Vec<u8>>,
    pub manifests: BTreeMap<String, Vec<u8>>,
    pub requests: Vec<Req>,
    pub next_upload: u32,
    /// The bodies of OAuth2 token requests.
    pub forms: Vec<String>,
}

pub struct Fake {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start(behaviour: Behaviour) -> Fake {
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

    pub fn requests(&self) -> Vec<Req> {
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

pub fn respond(c: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
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
            let mut d = Digest::sha256_of(&body).to_string();
            let index = req
                .header("content-type")
                .is_some_and(|t| t == "application/vnd.oci.image.index.v1+json");
            if b.rewrite_index && index {
                d = Digest::sha256_of(b"rewritten").to_string();
            }
            st.manifests
                .insert(p["/v2/hello/manifests/".len()..].to_string(), body);
            respond(&mut c, 201, &[("Docker-Content-Digest", d)], b"");
        }
        ("HEAD", p) if p.starts_with("/v2/hello/manifests/") => {
            let r = &p["/v2/hello/manifests/".len()..];
            let known = st.manifests.contains_key(r)
                || st
                    .manifests
                    .values()
                    .any(|m| Digest::sha256_of(m).to_string() == r);
            respond(&mut c, if known { 200 } else { 404 }, &[], b"");
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
