//! A small HTTP client for one repository of one registry (OCI distribution API), built
//! on `ureq`: authentication on demand, one-line errors that name the registry and the step,
//! and no secret in any message.
//!
//! The client owns a [`Redactor`] that knows every secret in play (the credentials from the
//! start, each token as it is received) and builds every error of a push through it
//! ([`Client::fail`]): whatever the registry or the token realm said — status, error body,
//! header values, transport errors — is redacted, escaped and bounded there. Bodies from
//! outside are never quoted through a JSON parser's error message.
//!
//! Authentication follows the challenge a registry sends with a 401: `Bearer` (fetch a token
//! from the realm for `repository:NAME:pull,push`: with an identity token, an OAuth2
//! `POST` with `grant_type=refresh_token`, as docker does; otherwise a `GET` with basic
//! credentials if we have any) or `Basic` (send the credentials). Credentials are never sent
//! unasked, and an identity token only to the realm. A realm is asked over https; over plain
//! HTTP only when it is on loopback itself, or `--plain-http` or `--tls-verify=false` allows
//! it (a loopback registry, spoken to over plain HTTP, does not: its challenge could send the
//! credentials in clear text to any host). A request is retried after
//! authenticating only if none of its body was sent yet.
//!
//! Two limits bound every request, both the `--timeout` value T:
//!
//! - an **idle timeout**: any single read or write on the network that waits longer than T
//!   fails (connecting: at most T, and at most 30 s);
//! - a **deadline**: a request that carries no blob — `HEAD`, `POST`, manifest `PUT`, the
//!   final `PUT` of a chunked upload, token requests — must be complete within T from the
//!   start, answer head and body included. A request that carries a blob (the monolithic
//!   `PUT`, each `PATCH`) may send for as long as data keeps flowing, however long a
//!   multi-GB upload takes; once its last byte is sent, the answer's head must arrive
//!   within T and the answer's body within T after the head.
//!
//! So a registry that trickles an answer, or its head, one byte at a time cannot keep a push
//! running: every wait for an answer ends within T (2T for an upload's answer). Answer
//! bodies are also bounded in size (64 KiB of an error, 1 MiB of a token response).

use std::io::Read;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::http::{self, Response, StatusCode};
use ureq::{Agent, SendBody};

use crate::error::{Error, Result};
use crate::image::blob::Verified;

use super::auth::{self, Credentials};
use super::helper;
use super::redact::{self, Redactor};
use super::reference::{Reference, is_loopback_host};
use super::tls::Trust;
use super::url::{host_of, percent_encode, same_origin};

/// How much of an error response body is read to explain the error.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// How much of a token response is read.
const TOKEN_BODY_LIMIT: u64 = 1024 * 1024;

/// How many characters of a registry's error detail are shown.
const DETAIL_LIMIT: usize = 300;

/// The body of a request.
pub(crate) enum Body<'a, R: Read> {
    /// No body (`Content-Length: 0` for methods that carry one).
    Empty,
    /// In-memory bytes with their content type.
    Bytes(&'a [u8], &'a str),
    /// The next `len` bytes of a verified stream, as `application/octet-stream`.
    Stream(&'a mut Verified<R>, u64),
}

impl<R: Read> Body<'_, R> {
    fn position(&self) -> u64 {
        match self {
            Body::Stream(v, _) => v.position(),
            _ => 0,
        }
    }
}

/// A connection to one repository.
pub(crate) struct Client {
    agent: Agent,
    /// `http://host:port` or `https://host`.
    base: String,
    /// The host and port requests go to.
    host: String,
    repository: String,
    /// `registry/repository`, the prefix of every message.
    shown: String,
    /// Plain HTTP is spoken to the registry (`--plain-http`, or a loopback registry).
    plain_http: bool,
    /// `--plain-http` was given: plain HTTP is allowed for other hosts too (a token realm).
    /// A loopback registry's own plain HTTP is not: its realm on another host gets
    /// credentials only over https.
    plain_http_asked: bool,
    credentials: Option<Credentials>,
    /// A credential helper (`docker-credential-NAME`, server URL) to ask for the
    /// credentials when the registry first asks for them.
    helper: Option<(String, String)>,
    authorization: Option<String>,
    /// Every secret in play; every error goes through it.
    redactor: Redactor,
    /// The idle timeout and the deadline (see the module documentation).
    timeout: Duration,
    /// TLS trust; its note ("(--tls-verify=false)") ends every message's registry name.
    trust: Trust,
    /// How messages start: "pushing to" or "reading from".
    verb: &'static str,
    /// The actions of the token scope asked for: "pull,push" or "pull".
    actions: &'static str,
    /// One deadline for every request, for the read client (see `fetch.rs`).
    deadline: Option<Instant>,
}

/// The `client_id` of OAuth2 token requests.
const OAUTH_CLIENT_ID: &str = "ocipack";

/// The longest wait for a connection, whatever the timeout.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct ErrorsResponse {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Client {
    /// A client for `reference`'s repository. Plain HTTP is used when `plain_http` is set,
    /// and for loopback registries unless TLS was configured for them (`trust`); HTTPS
    /// otherwise (under `--tls-verify=false` possibly replaced by plain HTTP: see
    /// [`Client::settle_scheme`]).
    pub(crate) fn new(
        reference: &Reference,
        plain_http: bool,
        credentials: Option<Credentials>,
        timeout: Duration,
        trust: &Trust,
    ) -> Client {
        let host = reference.api_host().to_string();
        let loopback = is_loopback_host(&host) && !trust.configured() && trust.verify();
        let scheme = if plain_http || loopback {
            "http"
        } else {
            "https"
        };
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("ocipack/", env!("CARGO_PKG_VERSION")))
            // The idle timeout.
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            // Every phase but sending the body has a total budget; requests without a
            // blob also get one deadline for the whole exchange ([`Client::run`]).
            .timeout_resolve(Some(timeout.min(CONNECT_LIMIT)))
            .timeout_connect(Some(timeout.min(CONNECT_LIMIT)))
            .timeout_send_request(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .max_redirects(5)
            .tls_config(trust.tls_config());
        if is_loopback_host(&host) {
            config = config.proxy(None);
        }
        let redactor = Redactor::for_credentials(credentials.as_ref());
        Client {
            agent: config.build().new_agent(),
            base: format!("{scheme}://{host}"),
            host,
            repository: reference.repository.clone(),
            shown: reference.name(),
            plain_http: plain_http || loopback,
            plain_http_asked: plain_http,
            credentials,
            helper: None,
            authorization: None,
            redactor,
            timeout,
            trust: trust.clone(),
            verb: "pushing to",
            actions: "pull,push",
            deadline: None,
        }
    }

    /// Takes the credentials from the credential helper `docker-credential-NAME`, asked for
    /// `server` on the registry's first 401 (never before: an anonymous registry never
    /// runs it).
    pub(crate) fn use_helper(&mut self, name: &str, server: &str) {
        self.helper = Some((name.to_string(), server.to_string()));
    }

    /// Runs the credential helper, if one is pending; the redactor learns its answer.
    fn ask_helper(&mut self, step: &str) -> Result<()> {
        if let Some((name, server)) = self.helper.take() {
            let found =
                helper::get(&name, &server, self.timeout).map_err(|why| self.fail(step, &why))?;
            if let Some(c) = &found {
                self.redactor.add_credentials(c);
            }
            self.credentials = found;
        }
        Ok(())
    }

    /// `https://host/v2/REPOSITORY/` followed by `rest`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    /// Resolves a `Location` header against the registry.
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Sends one request; after a 401 it authenticates and retries once if no body byte
    /// was sent. Returns the response whatever its status.
    pub(crate) fn send<R: Read>(
        &mut self,
        step: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_, R>,
    ) -> Result<Response<ureq::Body>> {
        let mut retried = false;
        loop {
            let before = body.position();
            let resp = self.send_once(step, method, url, headers, &mut body)?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && !retried
                && body.position() == before
                && self.authenticate(step, &resp)?
            {
                retried = true;
                continue;
            }
            return Ok(resp);
        }
    }

    fn send_once<R: Read>(
        &self,
        step: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &mut Body<'_, R>,
    ) -> Result<Response<ureq::Body>> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = &self.authorization
            && same_origin(url, &self.base, &self.host)
        {
            b = b.header("Authorization", a.as_str());
        }
        let carries_body = matches!(method, "PUT" | "POST" | "PATCH");
        let result = match body {
            Body::Empty if carries_body => b
                .header("Content-Length", "0")
                .body(SendBody::none())
                .map(|r| self.run(r, false)),
            Body::Empty => b.body(SendBody::none()).map(|r| self.run(r, false)),
            Body::Bytes(bytes, content_type) => b
                .header("Content-Type", *content_type)
                .body(*bytes)
                .map(|r| self.run(r, false)),
            Body::Stream(reader, len) => {
                let mut part = (&mut **reader).take(*len);
                b.header("Content-Type", "application/octet-stream")
                    .header("Content-Length", len.to_string())
                    .header("Expect", "100-continue")
                    .body(SendBody::from_reader(&mut part))
                    .map(|r| self.run(r, true))
            }
        };
        match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(self.fail(step, &self.transport_message(e))),
            Err(e) => Err(self.fail(step, &format!("invalid request: {e}"))),
        }
    }

    /// Runs one request. One that carries no blob gets the deadline for the whole exchange
    /// (`timeout_global`, which also covers reading the answer's body); a blob upload keeps
    /// the agent's phase budgets only, so that its body may take as long as it flows.
    fn run(
        &self,
        req: http::Request<impl ureq::AsSendBody>,
        carries_blob: bool,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let deadline = (!carries_blob).then_some(self.remaining());
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(deadline)
            .build();
        self.agent.run(req)
    }

    /// A transport error as one line, naming the limit that ended a wait (or what a TLS
    /// failure means).
    pub(super) fn transport_message(&self, e: ureq::Error) -> String {
        if let Some(tls) = self.trust.explain(&e) {
            return tls;
        }
        let t = self.timeout.as_secs_f64();
        let c = self.timeout.min(CONNECT_LIMIT).as_secs_f64();
        match e {
            ureq::Error::Timeout(kind) => match kind {
                ureq::Timeout::PerRead => format!("timed out: nothing received for {t} s"),
                ureq::Timeout::PerWrite => format!("timed out: nothing could be sent for {t} s"),
                ureq::Timeout::Resolve | ureq::Timeout::Connect => {
                    format!("timed out: no connection within {c} s")
                }
                ureq::Timeout::RecvResponse => {
                    format!("timed out: the answer did not arrive within {t} s")
                }
                ureq::Timeout::RecvBody => {
                    format!("timed out: the answer's body did not arrive within {t} s")
                }
                ureq::Timeout::Global | ureq::Timeout::PerCall => {
                    format!("timed out: the request was not answered completely within {t} s")
                }
                other => format!("timed out ({other})"),
            },
            other => transport_message(other),
        }
    }

    /// Handles a 401: returns true if new authorization was obtained and a retry makes sense.
    pub(super) fn authenticate(&mut self, step: &str, resp: &Response<ureq::Body>) -> Result<bool> {
        self.ask_helper(step)?;
        let header = resp
            .headers()
            .get_all("WWW-Authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = auth::parse_challenges(&header);
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let Some(realm) = bearer.params.get("realm") else {
                return Ok(false);
            };
            let token = self.fetch_token(step, realm, bearer)?;
            let value = format!("Bearer {token}");
            let changed = self.authorization.as_deref() != Some(value.as_str());
            self.authorization = Some(value);
            return Ok(changed);
        }
        if challenges.iter().any(|c| c.scheme == "basic")
            && let Some(value) = self
                .credentials
                .as_ref()
                .and_then(Credentials::basic_authorization)
        {
            if self.authorization.as_deref() == Some(value.as_str()) {
                return Ok(false);
            }
            self.authorization = Some(value);
            return Ok(true);
        }
        Ok(false)
    }

    fn fetch_token(&mut self, step: &str, realm: &str, c: &auth::Challenge) -> Result<String> {
        let step = format!("{step}: authenticating at {realm}");
        let realm_host = host_of(realm);
        if !realm.starts_with("https://") {
            // Plain HTTP to the realm only on loopback, or when asked for: a loopback
            // registry spoken to over plain HTTP does not make a realm elsewhere local.
            let insecure_ok = realm.starts_with("http://")
                && (self.plain_http_asked || !self.trust.verify() || is_loopback_host(&realm_host));
            if !insecure_ok {
                return Err(self.fail(
                    &step,
                    "the token realm is not an https:// URL (pass --plain-http to allow http)",
                ));
            }
        }
        let ours = format!("repository:{}:{}", self.repository, self.actions);
        let mut scopes = vec![ours.as_str()];
        if let Some(scope) = c.params.get("scope").filter(|s| **s != ours) {
            scopes.push(scope);
        }
        let service = c.params.get("service");
        let refresh = self.credentials.as_ref().and_then(|c| c.identity_token());
        let result = if let Some(refresh) = refresh {
            // OAuth2: the identity token is a refresh token (docker's form fields).
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", OAUTH_CLIENT_ID),
            ];
            if let Some(service) = service {
                form.push(("service", service));
            }
            let scope = scopes.join(" ");
            form.push(("scope", &scope));
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            http::Request::builder()
                .method("POST")
                .uri(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.into_bytes())
                .map(|r| self.run(r, false))
        } else {
            let mut query = Vec::new();
            if let Some(service) = service {
                query.push(format!("service={}", percent_encode(service)));
            }
            for scope in &scopes {
                query.push(format!("scope={}", percent_encode(scope)));
            }
            let sep = if realm.contains('?') { '&' } else { '?' };
            let url = format!("{realm}{sep}{}", query.join("&"));
            let mut b = http::Request::builder().method("GET").uri(&url);
            if let Some(basic) = self
                .credentials
                .as_ref()
                .and_then(Credentials::basic_authorization)
            {
                b = b.header("Authorization", basic);
            }
            b.body(SendBody::none()).map(|r| self.run(r, false))
        };
        let mut resp = match result {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(self.fail(&step, &self.transport_message(e))),
            Err(e) => return Err(self.fail(&step, &format!("invalid request: {e}"))),
        };
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(&step, &mut resp));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(TOKEN_BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| self.fail(&step, &self.transport_message(e)))?;
        let token = self.read_token_response(&body);
        token.ok_or_else(|| {
            self.fail(
                &step,
                "the token response is not a JSON object with a token or access_token string",
            )
        })
    }

    /// The token in a token response; the redactor learns every token in it first (also
    /// a refresh token). Nothing of the body is ever quoted.
    fn read_token_response(&mut self, body: &[u8]) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let field = |name: &str| {
            v.get(name)
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        for name in ["token", "access_token", "refresh_token"] {
            if let Some(t) = field(name) {
                self.redactor.add(&t);
            }
        }
        field("token").or_else(|| field("access_token"))
    }

    /// An error for an unexpected response: `REGISTRY/REPO: STEP: 500 Internal Server Error: CODE: message`.
    pub(crate) fn status_error(&self, step: &str, resp: &mut Response<ureq::Body>) -> Error {
        let status = resp.status();
        let mut msg = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string();
        if status == StatusCode::UNAUTHORIZED {
            match &self.credentials {
                // The read commands take credentials from the Docker config file only.
                None if self.reading() => msg.push_str(
                    ": the registry requires credentials (log in, e.g. with docker login, so \
                     that the Docker config file has them: ocipack reads them from there)",
                ),
                None => msg.push_str(
                    ": the registry requires credentials (pass --username and --password-stdin, \
                     or log in so that the Docker config file has them)",
                ),
                Some(c) if c.basic_authorization().is_none() => {
                    msg.push_str(": the identity token was not accepted")
                }
                Some(c) => msg.push_str(&format!(
                    ": the credentials of user \"{}\" were not accepted",
                    crate::show::text(&c.username)
                )),
            }
        } else if status == StatusCode::FORBIDDEN {
            msg.push_str(": access denied");
        }
        let body = match resp
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_LIMIT)
            .read_to_vec()
        {
            Ok(body) => body,
            Err(e @ ureq::Error::Timeout(_)) => {
                // The status is the error; say why there is no detail.
                msg.push_str(&format!(" ({})", self.transport_message(e)));
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        if let Ok(e) = serde_json::from_slice::<ErrorsResponse>(&body)
            && let Some(first) = e.errors.first()
        {
            // Redacted before it is cut, so that the cut cannot leave a piece of a secret.
            let detail = self
                .redactor
                .redact(&format!("{}: {}", first.code, first.message));
            msg.push_str(&format!(" ({})", redact::bound(&detail, DETAIL_LIMIT)));
        } else if status == StatusCode::BAD_REQUEST
            && self.base.starts_with("http://")
            && is_loopback_host(&self.host)
        {
            // What an HTTPS server answers to plain HTTP (Go's, without a registry error).
            msg.push_str(
                " (if this registry speaks HTTPS: a registry on loopback is spoken to over \
                 plain HTTP unless --ca-cert or a certs.d directory is given for it)",
            );
        }
        self.fail(step, &msg)
    }

    /// An error naming the registry and the step: the only way a push fails remotely. The
    /// whole message goes through the redactor (secrets removed, control characters
    /// escaped, length bounded), whatever the registry put into `step` or `problem`.
    pub(crate) fn fail(&self, step: &str, problem: &str) -> Error {
        self.redactor.error(&format!(
            "{} {}{}: {step}: {problem}",
            self.verb,
            self.shown,
            self.trust.note()
        ))
    }
}

// For the read client (`fetch.rs`) and `--tls-verify=false`.
impl Client {
    /// Makes this a read client: messages say "reading from", tokens are asked for `pull`
    /// only, and every request (token requests included) must end by `deadline`.
    pub(super) fn for_reading(&mut self, deadline: Instant) {
        self.verb = "reading from";
        self.actions = "pull";
        self.deadline = Some(deadline);
    }

    /// True for the read client ([`Client::for_reading`]).
    fn reading(&self) -> bool {
        self.deadline.is_some()
    }

    /// The time a request may take: the timeout, or less when a deadline is nearer.
    fn remaining(&self) -> Duration {
        match self.deadline {
            Some(d) => self
                .timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => self.timeout,
        }
    }

    /// True if `url` is on the registry's scheme, host and port (credentials go nowhere else).
    pub(super) fn is_registry_url(&self, url: &str) -> bool {
        same_origin(url, &self.base, &self.host)
    }

    /// True if a redirect may lead from https to plain http (`--plain-http`, a loopback
    /// registry, or `--tls-verify=false`).
    pub(super) fn plain_http_allowed(&self) -> bool {
        self.plain_http || !self.trust.verify()
    }

    /// One request as given, without a body: `Authorization` only to the registry's own
    /// origin, no redirect followed, within the deadline. The transport error is returned
    /// as is, for the caller to decide on a retry.
    pub(super) fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = &self.authorization
            && self.is_registry_url(url)
        {
            b = b.header("Authorization", a.as_str());
        }
        let req = b.body(SendBody::none()).map_err(ureq::Error::Http)?;
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(self.remaining()))
            .max_redirects(0)
            .build();
        self.agent.run(req)
    }

    /// Under `--tls-verify=false` (and without `--plain-http`), falls back to plain HTTP as
    /// skopeo does: asks `https://HOST/v2/`, and if that fails at the transport (not with an
    /// HTTP status), asks `http://HOST/v2/` and uses plain HTTP if that answers with any
    /// status but 400 (what HTTPS servers, Go's and nginx, answer to plain HTTP: a TLS
    /// registry that wants a client certificate stays on https). Nothing is sent otherwise.
    pub(crate) fn settle_scheme(&mut self) {
        if self.trust.verify() || !self.base.starts_with("https://") {
            return;
        }
        let ping = |base: &str| {
            let req = http::Request::builder()
                .method("GET")
                .uri(format!("{base}/v2/"))
                .body(SendBody::none())
                .ok()?;
            let req = self
                .agent
                .configure_request(req)
                .timeout_global(Some(self.remaining().min(CONNECT_LIMIT)))
                .max_redirects(0)
                .build();
            self.agent.run(req).ok().map(|r| r.status().as_u16())
        };
        if ping(&self.base).is_some() {
            return;
        }
        let http = format!("http://{}", self.host);
        if ping(&http).is_some_and(|status| status != 400) {
            self.base = http;
            self.plain_http = true;
        }
    }
}

/// A transport error as one line (ureq's messages name the operation and the OS error).
fn transport_message(e: ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default trust, without certs.d directories.
    fn trust(registry: &str) -> Trust {
        Trust::with_certs_d(registry, &super::super::tls::TlsOptions::default(), &[]).unwrap()
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_asked() {
        let t = Duration::from_secs(1);
        let client = |r: &str, plain| {
            let reference: Reference = r.parse().unwrap();
            Client::new(&reference, plain, None, t, &trust(&reference.registry))
        };
        assert_eq!(client("example.org/x", false).base, "https://example.org");
        assert_eq!(
            client("example.org:5000/x", true).base,
            "http://example.org:5000"
        );
        assert_eq!(
            client("localhost:5000/x", false).base,
            "http://localhost:5000"
        );
        assert_eq!(
            client("127.0.0.1:5000/x", false).base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            client("hello-world", false).base,
            "https://registry-1.docker.io"
        );
        assert_eq!(
            client("127.0.0.1:5000/a/b", false).url("blobs/uploads/"),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
        );
        let c = client("127.0.0.1:5000/a", false);
        assert_eq!(c.resolve("/v2/a/x?y"), "http://127.0.0.1:5000/v2/a/x?y");
        assert_eq!(c.resolve("https://cdn.example/u"), "https://cdn.example/u");
    }

    #[test]
    fn messages_never_carry_secrets() {
        let creds = Credentials::new("alice", "hunter2-pw");
        let basic = creds.basic_authorization().unwrap();
        let c = Client::new(
            &"127.0.0.1:1/x".parse().unwrap(),
            false,
            Some(creds),
            Duration::from_secs(1),
            &trust("127.0.0.1:1"),
        );
        let b64 = basic.strip_prefix("Basic ").unwrap();
        let e = c.fail(
            "step",
            &format!(
                "echoed hunter2-pw and {basic}\nsecond line {b64} {}",
                &b64[2..16]
            ),
        );
        let text = e.to_string();
        assert!(
            !text.contains("hunter2-pw") && !text.contains(b64) && !text.contains(&b64[2..16]),
            "{text}"
        );
        assert!(text.starts_with("pushing to 127.0.0.1:1/x: step: echoed <redacted>"));
        assert!(
            text.contains("\\nsecond line <redacted> <redacted>"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
