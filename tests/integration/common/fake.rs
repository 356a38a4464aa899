//! HTTP servers in the test process standing in for a registry, one request per connection:
//! [`Fake`], enough of the distribution API for ocipack, plus switches for the failures
//! under test (the answers a real registry gives rarely: 5xx, 404, 413, bearer tokens, a
//! manifest stored under another digest), its repository `hello`; and [`Server`], which
//! answers each request with a handler of the test's own (echoing credentials, trickling
//! or withholding answers).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::oci::sha256;
use base64::Engine as _;
use ocipack::digest::Digest;

/// A request as received: its line, its headers.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET`, `PUT`, … (empty if the client sent no request line).
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The length of the body [`Fake`] read (0 where it answered before reading it, and in
    /// [`Server`]'s records, which are taken before the body).
    pub body_len: usize,
}

impl Req {
    /// The value of the first header called `name` (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Length` the request declares (0 without one).
    pub fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// True if the client waits for `100 Continue` before it sends the body.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// Reads a request line and the headers (a missing method or path reads as empty).
pub fn read_head(r: &mut impl BufRead) -> std::io::Result<Req> {
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
    Ok(Req {
        method,
        path,
        headers,
        body_len: 0,
    })
}

/// The reason phrase the servers send with `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
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
    }
}

/// A registry error body: `{"errors":[{"code":CODE,"message":MESSAGE}]}`, the message
/// escaped as JSON.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"errors": [{"code": code, "message": message}]})
        .to_string()
        .into_bytes()
}

/// What [`Fake`] does differently from a well-behaved registry (by default, nothing).
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

/// What [`Fake`] has stored and received.
#[derive(Default)]
pub struct State {
    /// Stored blobs, by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Uploads in progress, by id.
    pub uploads: BTreeMap<String, Vec<u8>>,
    /// Stored manifests, by the tag or digest they were put under.
    pub manifests: BTreeMap<String, Vec<u8>>,
    /// Every request, in order.
    pub requests: Vec<Req>,
    /// The id of the last upload started.
    pub next_upload: u32,
    /// The bodies of OAuth2 token requests.
    pub forms: Vec<String>,
}

/// The stateful fake registry on a free 127.0.0.1 port, serving one connection at a time;
/// stopped on drop.
pub struct Fake {
    /// The port it listens on.
    pub port: u16,
    /// What it has stored and received.
    pub state: Arc<Mutex<State>>,
    _acceptor: Acceptor,
}

impl Fake {
    /// Starts the registry, behaving as `behaviour` says.
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
            _acceptor: Acceptor {
                port,
                stop,
                thread: Some(thread),
            },
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Req> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// A server's accepting thread, which returns at the first connection once `stop` is set:
/// on drop, sets it, wakes the thread with a connection and joins it.
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a whole response: the status line, `headers`, `Content-Length` and `body`.
pub fn respond(c: &mut impl Write, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason(status)
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(body);
}

fn serve(mut c: TcpStream, port: u16, b: &Behaviour, state: &Mutex<State>) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut req = read_head(&mut r)?;
    let len = req.content_length();
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
                    &error_body("UNAUTHORIZED", "bad credentials"),
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
            &error_body("INJECTED", "injected failure"),
        );
        return Ok(());
    }
    if b.refuse_monolithic && is_upload && req.method == "PUT" && len > 0 {
        record(&req);
        respond(&mut c, 413, &[], b"");
        return Ok(());
    }
    if req.expects_continue() {
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
            let got = sha256(&data);
            if Some(&got) == digest_param.as_ref() {
                st.blobs.insert(got, data);
                respond(&mut c, 201, &[], b"");
            } else {
                respond(
                    &mut c,
                    400,
                    &[],
                    &error_body("DIGEST_INVALID", "digest mismatch"),
                );
            }
        }
        ("DELETE", p) if is_upload => {
            st.uploads.remove(&p["/upload/".len()..]);
            respond(&mut c, 204, &[], b"");
        }
        ("PUT", p) if p.starts_with("/v2/hello/manifests/") => {
            let mut d = sha256(&body);
            let index = req
                .header("content-type")
                .is_some_and(|t| t == "application/vnd.oci.image.index.v1+json");
            if b.rewrite_index && index {
                d = sha256(b"rewritten");
            }
            st.manifests
                .insert(p["/v2/hello/manifests/".len()..].to_string(), body);
            respond(&mut c, 201, &[("Docker-Content-Digest", d)], b"");
        }
        ("HEAD", p) if p.starts_with("/v2/hello/manifests/") => {
            let r = &p["/v2/hello/manifests/".len()..];
            let known =
                st.manifests.contains_key(r) || st.manifests.values().any(|m| sha256(m) == r);
            respond(&mut c, if known { 200 } else { 404 }, &[], b"");
        }
        _ => respond(&mut c, 404, &[], &error_body("NOT_FOUND", "no route")),
    }
    Ok(())
}

/// One request on one connection of a [`Server`], for its handler to answer.
pub struct Exchange {
    /// The request line and headers (the body is left to [`Exchange::body`]).
    pub req: Req,
    /// The connection, to write raw answers to.
    pub conn: TcpStream,
    /// The connection's reading side, past the headers.
    pub reader: BufReader<TcpStream>,
    /// The server's port (for absolute URLs, e.g. a token realm on the same server).
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Exchange {
    /// The request body (after `100 Continue` when the client asked for it).
    pub fn body(&mut self) -> Vec<u8> {
        let len = self.req.content_length();
        if self.req.expects_continue() {
            let _ = self.conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = vec![0u8; len];
        let _ = self.reader.read_exact(&mut body);
        body
    }

    /// Answers with `status`, `headers` and `body` (no body to a `HEAD`).
    pub fn respond(&mut self, status: u16, headers: &[(&str, String)], body: &[u8]) {
        let body = if self.req.method == "HEAD" { b"" } else { body };
        respond(&mut self.conn, status, headers, body);
    }

    /// Writes `bytes` over and over, one byte per second, until the client goes away or the
    /// server is dropped.
    pub fn trickle(&mut self, bytes: &[u8]) {
        self.trickle_iter(bytes.iter().copied().cycle());
    }

    /// Writes `bytes` one per second until they run out, the client goes away or the
    /// server is dropped.
    pub fn trickle_iter(&mut self, bytes: impl IntoIterator<Item = u8>) {
        for b in bytes {
            if self.stop.load(Ordering::SeqCst) || self.conn.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Keeps the connection open without a word until the client closes it.
    pub fn silence(&mut self) {
        self.conn.set_read_timeout(None).ok();
        let mut buf = [0u8; 1024];
        while matches!(self.reader.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A [`Server`]'s handler: answers one exchange.
pub type Handler = dyn Fn(&mut Exchange) + Send + Sync;

/// A scriptable HTTP server on a free 127.0.0.1 port: each connection on its own thread,
/// its request recorded and handed to the handler. Stopped on drop.
pub struct Server {
    /// The port it listens on.
    pub port: u16,
    requests: Arc<Mutex<Vec<Req>>>,
    _acceptor: Acceptor,
}

impl Server {
    /// Starts a server answering every request with `handler`; a connection is given
    /// `read_timeout` for each read of its request.
    pub fn start(
        read_timeout: Duration,
        handler: impl Fn(&mut Exchange) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, st) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (handler, reqs, stop) = (handler.clone(), reqs.clone(), st.clone());
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(read_timeout)).ok();
                    let Ok(read_half) = conn.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(read_half);
                    let Ok(req) = read_head(&mut reader) else {
                        return;
                    };
                    if req.method.is_empty() || req.path.is_empty() {
                        return;
                    }
                    reqs.lock().unwrap().push(req.clone());
                    let mut ex = Exchange {
                        req,
                        conn,
                        reader,
                        port,
                        stop,
                    };
                    handler(&mut ex);
                });
            }
        });
        Server {
            port,
            requests,
            _acceptor: Acceptor {
                port,
                stop,
                thread: Some(thread),
            },
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far (line and headers), in the order they were read.
    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }
}

/// The bearer token [`Hub`] hands to anyone.
pub const HUB_TOKEN: &str = "hub-anonymous-token-0123456789";

/// The repository [`Hub`] serves.
pub const HUB_REPOSITORY: &str = "library/hello";

/// What a [`Hub`] serves: manifests by tag or digest (content type, bytes), blobs by digest.
#[derive(Default)]
pub struct HubContent {
    /// Manifests, by tag or digest: (Content-Type, bytes).
    pub manifests: BTreeMap<String, (String, Vec<u8>)>,
    /// Blobs, by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// Docker Hub's read path in miniature, on three 127.0.0.1 ports: a registry (repository
/// [`HUB_REPOSITORY`]) that answers every request without `Bearer HUB_TOKEN` with a 401 and
/// a challenge naming a token service on another port; that service, handing [`HUB_TOKEN`]
/// to anyone (anonymous pull tokens); and a "CDN" the registry redirects every blob `GET`
/// to (307, under the host name `localhost` and with a signed-looking query), as Hub sends
/// blobs from Cloudflare. Each server records its requests, so that a test can assert that
/// the CDN never saw an `Authorization` header.
pub struct Hub {
    /// The registry.
    pub registry: Server,
    /// The token service.
    pub auth: Server,
    /// The blob store the registry redirects to.
    pub cdn: Server,
    /// What it serves.
    pub content: Arc<Mutex<HubContent>>,
}

impl Hub {
    /// Starts the three servers, serving nothing yet.
    pub fn start() -> Hub {
        let content = Arc::new(Mutex::new(HubContent::default()));
        let c = content.clone();
        let cdn = Server::start(Duration::from_secs(10), move |ex| {
            let path = ex
                .req
                .path
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string();
            let blob = path
                .strip_prefix("/blobs/")
                .and_then(|d| c.lock().unwrap().blobs.get(d).cloned());
            match blob {
                Some(b) => ex.respond(
                    200,
                    &[("Content-Type", "application/octet-stream".into())],
                    &b,
                ),
                None => ex.respond(404, &[], b"no such blob"),
            }
        });
        let auth = Server::start(Duration::from_secs(10), |ex| {
            let body = format!(r#"{{"token":"{HUB_TOKEN}","expires_in":300}}"#);
            if ex.req.path.starts_with("/token?") {
                ex.respond(
                    200,
                    &[("Content-Type", "application/json".into())],
                    body.as_bytes(),
                );
            } else {
                ex.respond(404, &[], b"");
            }
        });
        let (c, auth_port, cdn_port) = (content.clone(), auth.port, cdn.port);
        let registry = Server::start(Duration::from_secs(10), move |ex| {
            if ex.req.header("authorization") != Some(format!("Bearer {HUB_TOKEN}").as_str()) {
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{auth_port}/token",service="registry.fake-hub.test",scope="repository:{HUB_REPOSITORY}:pull""#
                );
                ex.respond(
                    401,
                    &[("WWW-Authenticate", challenge)],
                    &error_body("UNAUTHORIZED", "authentication required"),
                );
                return;
            }
            let path = ex.req.path.clone();
            let prefix = format!("/v2/{HUB_REPOSITORY}/");
            let Some(rest) = path.strip_prefix(&prefix) else {
                ex.respond(404, &[], &error_body("NAME_UNKNOWN", "no such repository"));
                return;
            };
            if let Some(r) = rest.strip_prefix("manifests/") {
                let m = c.lock().unwrap().manifests.get(r).cloned();
                match m {
                    Some((t, b)) => {
                        let d = Digest::sha256_of(&b).to_string();
                        ex.respond(
                            200,
                            &[("Content-Type", t), ("Docker-Content-Digest", d)],
                            &b,
                        )
                    }
                    None => ex.respond(404, &[], &error_body("MANIFEST_UNKNOWN", "unknown")),
                }
            } else if let Some(d) = rest.strip_prefix("blobs/") {
                let location =
                    format!("http://localhost:{cdn_port}/blobs/{d}?verify=1700000000-signature");
                ex.respond(307, &[("Location", location)], b"");
            } else {
                ex.respond(404, &[], &error_body("NOT_FOUND", "no route"));
            }
        });
        Hub {
            registry,
            auth,
            cdn,
            content,
        }
    }

    /// `127.0.0.1:PORT/library/hello`, the repository as a reference names it.
    pub fn repository(&self) -> String {
        format!("{}/{HUB_REPOSITORY}", self.registry.host())
    }

    /// Serves `bytes` as a manifest under `tag` and under its digest, with `content_type`.
    pub fn put_manifest(&self, tag: &str, content_type: &str, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        let mut c = self.content.lock().unwrap();
        for key in [tag.to_string(), d.to_string()] {
            c.manifests
                .insert(key, (content_type.to_string(), bytes.to_vec()));
        }
        d
    }

    /// Serves `bytes` as a blob; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        self.content
            .lock()
            .unwrap()
            .blobs
            .insert(d.to_string(), bytes.to_vec());
        d
    }
}
