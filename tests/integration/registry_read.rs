//! The registry read client (`ocipack::registry::fetch`) and TLS for registries.
//!
//! The read client is exercised here through the library (its commands, `ocipack pull` and
//! the `docker://` sources, are tested in `pull.rs`) against in-process servers
//! (`common::fake`): a miniature Docker Hub
//! (anonymous bearer tokens from another port, blobs redirected to a CDN on a third port,
//! which must never see a credential), and scripted registries that lie about digests,
//! sizes and media types, trickle, never end, fail with 429/503 or reset the connection.
//! TLS is tested through `ocipack push` against Debian's real `docker-registry` serving
//! HTTPS with a CA made here by openssl (with and without client certificates required),
//! with certs.d found below a temporary HOME: nothing outside the test's directories is
//! read for trust, and nothing is written anywhere else.

use crate::common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use common::cli::stderr;
use common::fake::{Exchange, HUB_TOKEN, Hub, Server, error_body};
use common::{Registry, assert_exit, build_hello, ocipack, require_tools, run_bounded};
use ocipack::digest::Digest;
use ocipack::registry::fetch::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, FetchOptions, Fetcher, MANIFEST_LIMIT, ManifestKind,
};
use ocipack::registry::{Credentials, Reference, TlsOptions};
use ocipack::spec::Descriptor;

const LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// Content served by the fakes.

/// A Docker image: a layer, a config, a Docker v2 manifest, and a Docker manifest list
/// holding it.
struct DockerImage {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
    list: Vec<u8>,
}

fn docker_image() -> DockerImage {
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": Digest::sha256_of(&config).to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": layer.len(), "digest": Digest::sha256_of(&layer).to_string()}]
    })
    .to_string()
    .into_bytes();
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "size": manifest.len(),
                       "digest": Digest::sha256_of(&manifest).to_string(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    })
    .to_string()
    .into_bytes();
    DockerImage {
        layer,
        config,
        manifest,
        list,
    }
}

fn opts(timeout: u64) -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(timeout),
        ..FetchOptions::default()
    }
}

fn connect(reference: &str, o: &FetchOptions) -> Fetcher {
    let r: Reference = reference.parse().unwrap();
    Fetcher::connect(&r, o).unwrap()
}

/// A descriptor of `bytes`.
fn desc(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
}

/// A scripted registry for repository `r` on a free port; `handler` answers each request.
fn scripted(handler: impl Fn(&mut Exchange) + Send + Sync + 'static) -> Server {
    Server::start(Duration::from_secs(10), handler)
}

// ---------------------------------------------------------------------------------------
// Docker Hub's flow.

#[test]
fn anonymous_bearer_token_and_blobs_from_a_cdn_without_credentials() {
    let hub = Hub::start();
    let img = docker_image();
    let list_digest = hub.put_manifest("latest", DOCKER_MANIFEST_LIST, &img.list);
    hub.put_manifest("amd64", DOCKER_MANIFEST, &img.manifest);
    hub.put_blob(&img.config);
    hub.put_blob(&img.layer);

    let mut f = connect(&format!("{}:latest", hub.repository()), &opts(60));
    // The tag names a Docker manifest list, and it is read as one.
    let list = f.manifest("latest").unwrap();
    assert_eq!(list.kind, ManifestKind::DockerList);
    assert_eq!(list.media_type(), DOCKER_MANIFEST_LIST);
    assert_eq!(list.digest, list_digest);
    assert_eq!(list.bytes, img.list);
    // Its child, through its descriptor.
    let child: serde_json::Value = serde_json::from_slice(&list.bytes).unwrap();
    let d: Descriptor = serde_json::from_value(child["manifests"][0].clone()).unwrap();
    let m = f.manifest_for(&d).unwrap();
    assert_eq!(m.kind, ManifestKind::DockerManifest);
    assert_eq!(m.bytes, img.manifest);
    // The config in memory, the layer into a file.
    let config = f
        .blob_to_vec(
            &desc(
                "application/vnd.docker.container.image.v1+json",
                &img.config,
            ),
            1 << 20,
        )
        .unwrap();
    assert_eq!(config, img.config);
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("layer");
    let mut file = std::fs::File::create(&path).unwrap();
    f.blob(&desc("application/octet-stream", &img.layer), &mut file)
        .unwrap();
    drop(file);
    assert_eq!(std::fs::read(&path).unwrap(), img.layer);

    // The token was asked for anonymously, for pull only.
    let token_reqs = hub.auth.requests();
    assert_eq!(token_reqs.len(), 1, "{token_reqs:?}");
    assert!(token_reqs[0].header("authorization").is_none());
    let scope = format!(
        "scope={}",
        "repository:library/hello:pull"
            .replace(':', "%3A")
            .replace('/', "%2F")
    );
    assert!(
        token_reqs[0].path.contains(&scope)
            && token_reqs[0]
                .path
                .contains("service=registry.fake-hub.test"),
        "{}",
        token_reqs[0].path
    );
    assert!(
        !token_reqs[0].path.contains("push"),
        "{}",
        token_reqs[0].path
    );
    // The registry saw the token; the CDN got both blobs, and never a credential.
    let bearer = format!("Bearer {HUB_TOKEN}");
    let reg = hub.registry.requests();
    assert!(
        reg.iter()
            .any(|r| r.header("authorization") == Some(bearer.as_str()))
    );
    let cdn = hub.cdn.requests();
    assert_eq!(cdn.len(), 2, "{cdn:?}");
    for r in &cdn {
        assert_eq!(
            r.header("authorization"),
            None,
            "the CDN got a credential: {r:?}"
        );
        assert!(r.path.contains("verify="), "{r:?}");
    }
    // Manifests asked for with every type the client reads.
    let accept = reg
        .iter()
        .find(|r| r.path.contains("/manifests/latest"))
        .and_then(|r| r.header("accept").map(str::to_string))
        .unwrap();
    for t in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST,
    ] {
        assert!(accept.contains(t), "{accept}");
    }
}

#[test]
fn a_docker_manifest_by_digest_and_a_wrong_descriptor_type() {
    let hub = Hub::start();
    let img = docker_image();
    let digest = hub.put_manifest("v1", DOCKER_MANIFEST, &img.manifest);
    let mut f = connect(&hub.repository(), &opts(60));
    let m = f.manifest(&digest.to_string()).unwrap();
    assert_eq!(
        (m.kind, m.digest.clone()),
        (ManifestKind::DockerManifest, digest)
    );
    // An index that lists the Docker manifest as an OCI manifest is caught.
    let d = desc("application/vnd.oci.image.manifest.v1+json", &img.manifest);
    let e = f.manifest_for(&d).unwrap_err().to_string();
    assert!(
        e.contains("lists it as OCI image manifest") && e.contains("Docker image manifest"),
        "{e}"
    );
    assert!(
        e.starts_with(&format!("reading from {}: ", hub.repository())),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Registries that lie.

#[test]
fn a_registry_that_lies_about_digests_is_caught_and_its_header_is_never_trusted() {
    let img = docker_image();
    let real = Digest::sha256_of(&img.manifest);
    let other = Digest::sha256_of(b"something else");
    let (m, l) = (img.manifest.clone(), img.layer.clone());
    let srv = scripted(move |ex| {
        let p = ex.req.path.clone();
        if p.contains("/manifests/") {
            // Always the same bytes, with a Docker-Content-Digest that is not theirs.
            ex.respond(
                200,
                &[
                    ("Content-Type", DOCKER_MANIFEST.into()),
                    ("Docker-Content-Digest", other.to_string()),
                ],
                &m,
            );
        } else if p.contains("/blobs/") {
            // The layer with one byte changed.
            let mut b = l.clone();
            b[1000] ^= 1;
            ex.respond(200, &[], &b);
        }
    });
    let mut f = connect(&format!("{}/lies", srv.host()), &opts(60));
    // By tag: the digest is the bytes', whatever the header says.
    let got = f.manifest("latest").unwrap();
    assert_eq!(got.digest, real);
    // By another digest: the bytes do not hash to it.
    let wanted = Digest::sha256_of(b"wanted");
    let e = f.manifest(&wanted.to_string()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("hashes to {real}, not to {wanted}")),
        "{e}"
    );
    // A blob with wrong content: an error, and the sink never got the whole of it.
    let mut sink = Vec::new();
    let e = f
        .blob(&desc("application/octet-stream", &img.layer), &mut sink)
        .unwrap_err()
        .to_string();
    assert!(e.contains("content hashes to"), "{e}");
    assert!(sink.len() < img.layer.len());
}

#[test]
fn a_registry_that_lies_about_sizes_is_caught() {
    let img = docker_image();
    let layer = img.layer.clone();
    let srv = scripted(move |ex| {
        // Announced as the descriptor's size, then the connection closes early.
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            layer.len()
        );
        let _ = ex.conn.write_all(head.as_bytes());
        let _ = ex.conn.write_all(&layer[..layer.len() / 2]);
    });
    let d = desc("application/octet-stream", &img.layer);
    // (A cut body is retried as a reset would be; a short deadline ends the retries.)
    let mut f = connect(&format!("{}/sizes", srv.host()), &opts(4));
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    let half = img.layer.len() / 2;
    assert!(
        e.starts_with(&format!(
            "reading from {}/sizes: reading blob {}",
            srv.host(),
            d.digest
        )) && e.contains(&format!("closed after {half} of {} bytes", img.layer.len())),
        "{e}"
    );
    assert!(srv.requests().len() >= 2, "a cut body is retried");

    // A Content-Length other than the descriptor's: refused before the body is read.
    let layer = img.layer.clone();
    let srv = scripted(move |ex| {
        let mut b = layer.clone();
        b.push(0);
        ex.respond(200, &[], &b);
    });
    let mut f = connect(&format!("{}/sizes", srv.host()), &opts(60));
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "announces {} bytes; the descriptor says {}",
            img.layer.len() + 1,
            img.layer.len()
        )),
        "{e}"
    );

    // No Content-Length, and more bytes than the descriptor says.
    let layer = img.layer.clone();
    let srv = scripted(move |ex| {
        let _ = ex
            .conn
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = ex.conn.write_all(&layer);
        let _ = ex.conn.write_all(b"trailing");
    });
    let mut f = connect(&format!("{}/sizes", srv.host()), &opts(60));
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("is longer than the expected"), "{e}");

    // A manifest whose size is not its descriptor's.
    let m = img.manifest.clone();
    let srv = scripted(move |ex| {
        let mut b = m.clone();
        b.extend_from_slice(b"   ");
        ex.respond(200, &[("Content-Type", DOCKER_MANIFEST.into())], &b);
    });
    let mut f = connect(&format!("{}/sizes", srv.host()), &opts(60));
    let e = f
        .manifest_for(&desc(DOCKER_MANIFEST, &img.manifest))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the descriptor says"), "{e}");
}

#[test]
fn a_registry_that_lies_about_media_types_is_caught() {
    let img = docker_image();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // The header says OCI manifest, the body says Docker list.
        (
            "application/vnd.oci.image.manifest.v1+json",
            img.list.clone(),
            "for a manifest whose mediaType is",
        ),
        // No mediaType, and the header names an index for a manifest's shape.
        (
            "application/vnd.oci.image.index.v1+json",
            br#"{"schemaVersion":2,"config":{},"layers":[]}"#.to_vec(),
            "needs a manifests array",
        ),
        // Schema 1.
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"x"}"#.to_vec(),
            "schema 1",
        ),
        // Something else altogether.
        (
            "text/html",
            b"<html>login</html>".to_vec(),
            "not a JSON object",
        ),
    ];
    for (content_type, body, expect) in cases {
        let srv = scripted(move |ex| {
            ex.respond(200, &[("Content-Type", content_type.into())], &body);
        });
        let mut f = connect(&format!("{}/types", srv.host()), &opts(60));
        let e = f.manifest("latest").unwrap_err().to_string();
        assert!(e.contains(expect), "{content_type}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Bounds, the deadline, retries.

#[test]
fn an_oversized_manifest_is_refused_before_it_is_read_whole() {
    // Announced: refused at the head, though the server would send it all.
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let srv = scripted(move |ex| {
        let total = 64 * 1024 * 1024;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {DOCKER_MANIFEST}\r\nContent-Length: {total}\r\n\r\n"
        );
        let _ = ex.conn.write_all(head.as_bytes());
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..(total / chunk.len()) {
            if ex.conn.write_all(&chunk).is_err() {
                return;
            }
            s.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    let mut f = connect(&format!("{}/big", srv.host()), &opts(60));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "announces 67108864 bytes, more than the {MANIFEST_LIMIT}"
        )),
        "{e}"
    );
    drop(srv);
    assert!(sent.load(Ordering::SeqCst) < 64 * 1024 * 1024);

    // Not announced: cut at the bound, with the rest never read (the server then waits).
    let srv = scripted(move |ex| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {DOCKER_MANIFEST}\r\nConnection: close\r\n\r\n"
        );
        let _ = ex.conn.write_all(head.as_bytes());
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..(MANIFEST_LIMIT as usize / chunk.len() + 2) {
            if ex.conn.write_all(&chunk).is_err() {
                return;
            }
        }
        ex.silence();
    });
    let mut f = connect(&format!("{}/big", srv.host()), &opts(60));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(
        e.contains(&format!("sends more than the {MANIFEST_LIMIT} bytes")),
        "{e}"
    );
}

#[test]
fn a_trickling_or_endless_answer_ends_at_the_deadline() {
    // A manifest trickled one byte a second, forever.
    let srv = scripted(|ex| {
        let _ = ex.conn.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {DOCKER_MANIFEST}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        ex.trickle(b" ");
    });
    let mut f = connect(&format!("{}/slow", srv.host()), &opts(3));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("timed out") && e.contains("--timeout"), "{e}");

    // A blob whose body flows, slowly, without end: the one deadline stops it too.
    let srv = scripted(|ex| {
        let _ = ex
            .conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n");
        ex.trickle(b"x");
    });
    let d = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(b"never"),
        1_000_000_000,
    );
    let mut f = connect(&format!("{}/slow", srv.host()), &opts(3));
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("timed out") && e.contains("--timeout"), "{e}");

    // Silence after the request.
    let srv = scripted(|ex| ex.silence());
    let mut f = connect(&format!("{}/slow", srv.host()), &opts(3));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn busy_and_failing_answers_are_retried_then_succeed() {
    let img = docker_image();
    let n = Arc::new(AtomicUsize::new(0));
    let (count, m) = (n.clone(), img.manifest.clone());
    let srv = scripted(move |ex| match count.fetch_add(1, Ordering::SeqCst) {
        0 => ex.respond(
            429,
            &[("Retry-After", "0".into())],
            &error_body("TOOMANYREQUESTS", "slow down"),
        ),
        1 => ex.respond(503, &[], b""),
        _ => ex.respond(200, &[("Content-Type", DOCKER_MANIFEST.into())], &m),
    });
    let mut f = connect(&format!("{}/busy", srv.host()), &opts(60));
    let got = f.manifest("latest").unwrap();
    assert_eq!(got.bytes, img.manifest);
    assert_eq!(srv.requests().len(), 3);

    // Always 503: the first attempt and three retries, then the registry's error.
    let srv = scripted(|ex| {
        ex.respond(
            503,
            &[("Retry-After", "0".into())],
            &error_body("UNAVAILABLE", "down"),
        )
    });
    let mut f = connect(&format!("{}/busy", srv.host()), &opts(60));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("503") && e.contains("UNAVAILABLE"), "{e}");
    assert_eq!(srv.requests().len(), 4);

    // A Retry-After longer than the time left is not waited for.
    let srv = scripted(|ex| ex.respond(429, &[("Retry-After", "3600".into())], b""));
    let mut f = connect(&format!("{}/busy", srv.host()), &opts(30));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("429"), "{e}");
    assert_eq!(srv.requests().len(), 1);

    // A 404 is final at once.
    let srv = scripted(|ex| ex.respond(404, &[], &error_body("MANIFEST_UNKNOWN", "no such tag")));
    let mut f = connect(&format!("{}/busy", srv.host()), &opts(30));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("MANIFEST_UNKNOWN"), "{e}");
    assert_eq!(srv.requests().len(), 1);
}

/// Closes `conn` with a TCP reset (SO_LINGER 0).
fn reset(ex: &mut Exchange) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            ex.conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = ex.conn.shutdown(std::net::Shutdown::Read);
}

#[test]
fn a_blob_cut_by_a_connection_reset_starts_over() {
    let img = docker_image();
    let n = Arc::new(AtomicUsize::new(0));
    let (count, layer) = (n.clone(), img.layer.clone());
    let srv = scripted(move |ex| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", layer.len());
            let _ = ex.conn.write_all(head.as_bytes());
            let _ = ex.conn.write_all(&layer[..layer.len() / 3]);
            let _ = ex.conn.flush();
            std::thread::sleep(Duration::from_millis(200));
            reset(ex);
        } else {
            ex.respond(200, &[], &layer);
        }
    });
    let mut f = connect(&format!("{}/reset", srv.host()), &opts(60));
    let mut sink = b"stale bytes from before".to_vec();
    f.blob(&desc("application/octet-stream", &img.layer), &mut sink)
        .unwrap();
    assert_eq!(sink, img.layer);
    assert_eq!(srv.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Credentials.

#[test]
fn basic_credentials_are_sent_on_request_and_never_shown() {
    let password = "pw-Secret-0123456789";
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
    );
    let b = basic.clone();
    let srv = scripted(move |ex| {
        match ex.req.header("authorization") {
            None => ex.respond(
                401,
                &[("WWW-Authenticate", r#"Basic realm="fake""#.into())],
                b"",
            ),
            // A 404 that echoes what it got.
            Some(a) if a == b => {
                let echo = format!("no such manifest for {a} ({password})");
                ex.respond(404, &[], &error_body("MANIFEST_UNKNOWN", &echo));
            }
            Some(_) => ex.respond(401, &[], b""),
        }
    });
    let o = FetchOptions {
        credentials: Some(Credentials::new("alice", password)),
        ..opts(30)
    };
    let mut f = connect(&format!("{}/private", srv.host()), &o);
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("<redacted>"), "{e}");
    assert!(!e.contains(password) && !e.contains(&basic[6..]), "{e}");
    let reqs = srv.requests();
    assert_eq!(
        reqs[0].header("authorization"),
        None,
        "credentials sent unasked"
    );
    assert_eq!(reqs.len(), 2);
}

#[test]
fn a_401_from_a_redirect_target_asks_no_token_and_gets_no_credentials() {
    // The CDN answers with a challenge naming a realm of its own: nothing is sent there.
    let realm_hits = Arc::new(AtomicUsize::new(0));
    let hits = realm_hits.clone();
    let realm = scripted(move |ex| {
        hits.fetch_add(1, Ordering::SeqCst);
        ex.respond(200, &[], br#"{"token":"stolen"}"#);
    });
    let realm_port = realm.port;
    let cdn = scripted(move |ex| {
        let c = format!(r#"Bearer realm="http://127.0.0.1:{realm_port}/token""#);
        ex.respond(401, &[("WWW-Authenticate", c)], b"");
    });
    let cdn_port = cdn.port;
    let srv = scripted(move |ex| {
        ex.respond(
            307,
            &[("Location", format!("http://localhost:{cdn_port}/b?sig=s"))],
            b"",
        );
    });
    let o = FetchOptions {
        credentials: Some(Credentials::new("alice", "pw-0123456789abcdef")),
        ..opts(30)
    };
    let mut f = connect(&format!("{}/r", srv.host()), &o);
    let d = desc("application/octet-stream", b"blob");
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("401"), "{e}");
    assert!(!e.contains("sig=s"), "a signed URL's query is shown: {e}");
    assert_eq!(realm_hits.load(Ordering::SeqCst), 0);
    assert!(
        cdn.requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
}

#[test]
fn a_loopback_registry_cannot_send_credentials_to_a_plain_http_realm_elsewhere() {
    // The registry is on loopback, so it is spoken to over plain HTTP; its challenge names
    // a realm on another host over plain HTTP (192.0.2.1, TEST-NET-1: nothing answers
    // there). Asking it would send the basic credentials in clear text across the network:
    // refused before any connection, unless --plain-http allows it.
    let srv = scripted(|ex| {
        ex.respond(
            401,
            &[(
                "WWW-Authenticate",
                r#"Bearer realm="http://192.0.2.1/token",service="s""#.into(),
            )],
            b"",
        );
    });
    let o = FetchOptions {
        credentials: Some(Credentials::new("alice", "pw-0123456789abcdef")),
        ..opts(20)
    };
    let mut f = connect(&format!("{}/r", srv.host()), &o);
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(
        e.contains("authenticating at http://192.0.2.1/token")
            && e.contains("the token realm is not an https:// URL"),
        "{e}"
    );
    assert!(!e.contains("pw-0123456789abcdef"), "{e}");
    // The same challenge with a realm on loopback is followed (the fake Docker Hub's).
    assert_eq!(srv.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------
// TLS, with the real docker-registry.

/// A test PKI made by openssl in `dir`: `ca.crt`/`ca.key`, a server certificate for
/// 127.0.0.1 and localhost (`server.crt`/`server.key`), a client certificate
/// (`client.cert`/`client.key`). P-256 keys: fast to make.
fn make_pki(dir: &Path) {
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "30",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=ocipack test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    for (name, subject, ext, cert) in [
        (
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            "server.crt",
        ),
        (
            "client",
            "/CN=ocipack client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            "client.cert",
        ),
    ] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let extfile = format!("{name}.ext");
        std::fs::write(dir.join(&extfile), ext).unwrap();
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        openssl(&req);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &extfile,
            "-out",
            cert,
        ]);
    }
}

/// A PKI, a layout of hello-world and a home directory, in one temporary directory.
struct TlsSetup {
    t: tempfile::TempDir,
    layout: PathBuf,
}

impl TlsSetup {
    fn new() -> TlsSetup {
        let t = tempfile::tempdir().unwrap();
        for d in ["pki", "home"] {
            std::fs::create_dir(t.path().join(d)).unwrap();
        }
        make_pki(&t.path().join("pki"));
        let layout = t.path().join("hello");
        build_hello(&layout, &[]);
        TlsSetup { t, layout }
    }

    fn pki(&self, name: &str) -> PathBuf {
        self.t.path().join("pki").join(name)
    }

    fn home(&self) -> PathBuf {
        self.t.path().join("home")
    }

    /// `~/.config/containers/certs.d/HOST` below the test's home, created, holding `files`
    /// of the PKI (as name in the directory, name in the PKI).
    fn certs_d(&self, host: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.home().join(".config/containers/certs.d").join(host);
        std::fs::create_dir_all(&d).unwrap();
        for (name, from) in files {
            std::fs::copy(self.pki(from), d.join(name)).unwrap();
        }
        d
    }

    /// `ocipack push LAYOUT REF ARGS` with HOME set to the test's home and no ambient
    /// certificate settings (SSL_CERT_FILE/SSL_CERT_DIR only as `env` gives them).
    fn push(&self, reference: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut c = ocipack();
        c.arg("push")
            .arg(&self.layout)
            .arg(reference)
            .args(args)
            .args(["--timeout", "60"])
            .env("HOME", self.home())
            .env_remove("DOCKER_CONFIG")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        for (k, v) in env {
            c.env(k, v);
        }
        run_bounded(&mut c, LIMIT)
    }
}

fn tls_tools() -> bool {
    require_tools(&["docker-registry", "openssl", "skopeo"])
}

#[test]
fn push_over_tls_trusts_ca_cert_and_certs_d_and_says_why_it_does_not() {
    if !tls_tools() {
        return;
    }
    let s = TlsSetup::new();
    let reg = Registry::start_tls(&s.pki("server.crt"), &s.pki("server.key"), None);
    let host = reg.host();
    let ca = s.pki("ca.crt");
    let ca_arg = ca.to_str().unwrap();

    // Nothing configured for it: a loopback registry is spoken to over plain HTTP, and the
    // message says why that failed.
    let o = s.push(&format!("{host}/hello:plain"), &[], &[]);
    let e = common::cli::assert_error(&o, 1);
    assert!(
        e.contains("400") && e.contains("if this registry speaks HTTPS"),
        "{e}"
    );

    // --ca-cert: HTTPS to the loopback registry, verified; skopeo reads the image back.
    let o = s.push(&format!("{host}/hello:ca"), &["--ca-cert", ca_arg], &[]);
    assert_exit(&o, 0);
    let digest = common::cli::stdout(&o).trim().to_string();
    let skopeo_certs = s.t.path().join("skopeo-certs");
    std::fs::create_dir(&skopeo_certs).unwrap();
    std::fs::copy(&ca, skopeo_certs.join("ca.crt")).unwrap();
    let inspect = common::skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        skopeo_certs.to_str().unwrap(),
        &format!("docker://{host}/hello:ca"),
    ]);
    assert_eq!(common::oci::sha256(&inspect.stdout), digest);

    // The read client over the same TLS, with --ca-cert.
    let o2 = FetchOptions {
        tls: TlsOptions {
            ca_certs: vec![ca.clone()],
            verify: true,
        },
        ..opts(60)
    };
    let mut f = connect(&format!("{host}/hello"), &o2);
    assert_eq!(f.manifest("ca").unwrap().digest.to_string(), digest);

    // A certs.d directory for HOST:PORT below HOME with the CA: no flag needed.
    s.certs_d(&host, &[("ca.crt", "ca.crt")]);
    let o = s.push(&format!("{host}/hello:certsd"), &[], &[]);
    assert_exit(&o, 0);

    // An empty certs.d directory still means HTTPS, and then trust comes from the system's
    // store: SSL_CERT_FILE naming the CA is honoured ...
    let certs_d = s.home().join(".config/containers/certs.d").join(&host);
    std::fs::remove_file(certs_d.join("ca.crt")).unwrap();
    let o = s.push(
        &format!("{host}/hello:system"),
        &[],
        &[("SSL_CERT_FILE", &ca)],
    );
    assert_exit(&o, 0);
    // ... and without it the certificate is refused, with what was trusted and what to do.
    let empty = s.t.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let o = s.push(
        &format!("{host}/hello:untrusted"),
        &[],
        &[("SSL_CERT_FILE", &empty)],
    );
    let e = common::cli::assert_error(&o, 1);
    assert!(
        e.contains("not signed by a trusted CA") && e.contains("--ca-cert"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}/*.crt", certs_d.display())) || e.contains("certs.d"),
        "{e}"
    );
    assert!(!e.contains("--tls-verify=false)"), "{e}");

    // --tls-verify=false: nothing verified, said up front.
    let o = s.push(
        &format!("{host}/hello:unverified"),
        &["--tls-verify=false"],
        &[("SSL_CERT_FILE", &empty)],
    );
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("not verified") && stderr(&o).contains("(--tls-verify=false)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn push_with_a_client_certificate_from_certs_d() {
    if !tls_tools() {
        return;
    }
    let s = TlsSetup::new();
    let reg = Registry::start_tls(
        &s.pki("server.crt"),
        &s.pki("server.key"),
        Some(&s.pki("ca.crt")),
    );
    let host = reg.host();

    // Without a client certificate: refused, and the message says what is missing.
    let dir = s.certs_d(&host, &[("ca.crt", "ca.crt")]);
    let o = s.push(&format!("{host}/hello:mtls"), &[], &[]);
    let e = common::cli::assert_error(&o, 1);
    assert!(
        e.contains("client certificate") && e.contains(&dir.display().to_string()),
        "{e}"
    );
    // Under --tls-verify=false, the same failure says that verification was off.
    let o = s.push(&format!("{host}/hello:mtls"), &["--tls-verify=false"], &[]);
    let e = common::cli::assert_error(&o, 1);
    assert!(e.contains("(--tls-verify=false)"), "{e}");

    // With client.cert and client.key: pushed.
    s.certs_d(
        &host,
        &[("client.cert", "client.cert"), ("client.key", "client.key")],
    );
    let o = s.push(&format!("{host}/hello:mtls"), &[], &[]);
    assert_exit(&o, 0);

    // A key that is not the certificate's: an input error naming the files, before any
    // connection (ureq would panic at the handshake).
    std::fs::copy(s.pki("server.key"), dir.join("client.key")).unwrap();
    let o = s.push(&format!("{host}/hello:mtls"), &[], &[]);
    let e = common::cli::assert_error(&o, 2);
    assert!(e.contains("client.key") && e.contains("client.cert"), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");

    // A certificate without its key (the podman rule: CAs are *.crt).
    std::fs::remove_file(dir.join("client.key")).unwrap();
    let o = s.push(&format!("{host}/hello:mtls"), &[], &[]);
    let e = common::cli::assert_error(&o, 2);
    assert!(e.contains("client certificate without its key"), "{e}");
}

#[test]
fn the_read_commands_trust_what_push_trusts() {
    if !tls_tools() {
        return;
    }
    let s = TlsSetup::new();
    let reg = Registry::start_tls(&s.pki("server.crt"), &s.pki("server.key"), None);
    let host = reg.host();
    let ca = s.pki("ca.crt");
    let ca_arg = ca.to_str().unwrap();
    let o = s.push(&format!("{host}/hello:1"), &["--ca-cert", ca_arg], &[]);
    assert_exit(&o, 0);
    let digest = common::cli::stdout(&o).trim().to_string();
    let read = |args: &[&str]| {
        let mut c = ocipack();
        c.args(args)
            .args(["--timeout", "60"])
            .env("HOME", s.home())
            .env_remove("DOCKER_CONFIG")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        run_bounded(&mut c, LIMIT)
    };
    let out = s.t.path().join("pulled");
    let out_arg = out.to_str().unwrap();
    let reference = format!("docker://{host}/hello:1");
    // Without trust for its CA: refused, nothing written.
    let o = read(&["pull", &reference, out_arg]);
    common::cli::assert_error(&o, 1);
    assert!(!out.exists());
    // --ca-cert: pull, verify, diff and export read over verified HTTPS.
    let o = read(&["pull", &reference, out_arg, "--ca-cert", ca_arg]);
    assert_exit(&o, 0);
    assert_eq!(common::cli::stdout(&o).trim(), digest);
    assert_exit(&read(&["verify", &reference, "--ca-cert", ca_arg]), 0);
    let layout = s.layout.to_str().unwrap();
    assert_exit(&read(&["diff", layout, &reference, "--ca-cert", ca_arg]), 0);
    // certs.d, as for push; --tls-verify=false, with its warning.
    s.certs_d(&host, &[("ca.crt", "ca.crt")]);
    assert_exit(&read(&["verify", &reference]), 0);
    std::fs::remove_dir_all(s.home().join(".config")).unwrap();
    let o = read(&["verify", &reference, "--tls-verify=false"]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("not verified"), "{}", stderr(&o));
}

#[test]
fn unusable_ca_files_are_input_errors() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    build_hello(&layout, &[]);
    let junk = t.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let o = run_bounded(
        ocipack()
            .arg("push")
            .arg(&layout)
            .args(["127.0.0.1:1/x", "--ca-cert"])
            .arg(&junk),
        LIMIT,
    );
    let e = common::cli::assert_error(&o, 2);
    assert!(
        e.contains("--ca-cert") && e.contains("junk.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    let o = run_bounded(
        ocipack()
            .arg("push")
            .arg(&layout)
            .args(["127.0.0.1:1/x", "--ca-cert"])
            .arg(t.path().join("missing.pem")),
        LIMIT,
    );
    let e = common::cli::assert_error(&o, 2);
    assert!(
        e.contains("missing.pem") && e.contains("does not exist"),
        "{e}"
    );
    let o = run_bounded(
        ocipack()
            .arg("push")
            .arg(&layout)
            .args(["127.0.0.1:1/x", "--tls-verify=maybe"]),
        LIMIT,
    );
    assert_exit(&o, 2);
}

#[test]
fn tls_verify_false_falls_back_to_plain_http() {
    // A plain-HTTP registry (the fake) with --tls-verify=false: the https attempt fails,
    // plain HTTP is used, as skopeo does.
    let reg = common::fake::Fake::start(common::fake::Behaviour::default());
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    let o = run_bounded(
        ocipack()
            .arg("push")
            .arg(&layout)
            .arg(format!("127.0.0.1:{}/hello:v1", reg.port))
            .arg("--tls-verify=false"),
        LIMIT,
    );
    assert_exit(&o, 0);
    assert_eq!(common::cli::stdout(&o).trim(), digest);
    assert!(
        stderr(&o).contains("(--tls-verify=false)"),
        "{}",
        stderr(&o)
    );
    assert!(reg.state.lock().unwrap().manifests.contains_key("v1"));
}

#[test]
fn redirect_loops_end_and_messages_show_targets_by_host_only() {
    // A registry that redirects to itself forever.
    let srv = scripted(|ex| {
        ex.respond(
            302,
            &[("Location", "/again?token=secret-query-0123456789".into())],
            b"",
        );
    });
    let mut f = connect(&format!("{}/loop", srv.host()), &opts(30));
    let e = f.manifest("latest").unwrap_err().to_string();
    assert!(e.contains("more than 5 redirects"), "{e}");
    assert!(!e.contains("secret-query"), "{e}");
    assert_eq!(srv.requests().len(), 6);

    // A redirect target that never answers: named by scheme and host, not by its query.
    let silent = scripted(|ex| ex.silence());
    let port = silent.port;
    let srv = scripted(move |ex| {
        ex.respond(
            307,
            &[(
                "Location",
                format!("http://localhost:{port}/data?X-Amz-Signature=secret-signature-0123"),
            )],
            b"",
        );
    });
    let mut f = connect(&format!("{}/cdn", srv.host()), &opts(3));
    let d = desc("application/octet-stream", b"blob");
    let e = f.blob(&d, &mut Vec::new()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("at http://localhost:{port}, redirected")) && e.contains("timed out"),
        "{e}"
    );
    assert!(!e.contains("secret-signature"), "{e}");
}

/// A reference with credentials typed without `docker://` looks like a path; it is refused
/// as a usage error that never echoes the secret, in every command that reads a source.
#[test]
fn credentials_typed_as_a_path_are_refused_and_never_printed() {
    let t = tempfile::tempdir().unwrap();
    let arg = "alice:S3cr3t-pw@registry.example/x:1";
    let other = t.path().to_str().unwrap();
    for args in [
        vec!["verify", arg],
        vec!["diff", arg, other],
        vec!["diff", other, arg],
        vec!["export", arg, "--format", "oci-archive", "-o", "out.tar"],
    ] {
        let o = ocipack()
            .current_dir(t.path())
            .args(&args)
            .output()
            .unwrap();
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(!e.contains("S3cr3t"), "{args:?}: {e}");
        assert!(
            e.contains("<redacted>@registry.example/x:1"),
            "{args:?}: {e}"
        );
    }
    // Written as a relative path, it is a path (that does not exist), named as typed.
    let o = ocipack()
        .current_dir(t.path())
        .args(["verify", &format!("./{arg}")])
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!t.path().join("out.tar").exists());
}
