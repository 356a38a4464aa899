//! Whom a registry connection trusts: one [`Trust`] per registry, for push and pull alike.
//!
//! **Roots.** A server certificate is accepted when it chains to any of, in one list:
//!
//! 1. Mozilla's roots, compiled in (`webpki-root-certs`): what ocipack trusted before, and
//!    still enough where the system has no store;
//! 2. the system's store (`rustls-native-certs`: `SSL_CERT_FILE` and `SSL_CERT_DIR` when
//!    set, else the distribution's bundle); an unreadable store is not an error (item 1
//!    remains);
//! 3. the `*.crt` files of the registry's certs.d directory (below);
//! 4. every `--ca-cert FILE` (PEM, one or more certificates).
//!
//! ureq (`RootCerts::Specific`) replaces its own roots with the list it is given and drops
//! certificates it cannot parse without a word, so the list is assembled here, and a file
//! the user named (items 3 and 4) that holds no usable certificate is an error naming it.
//!
//! **certs.d.** As docker and podman (containers-certs.d(5)): the first directory that
//! exists of `$HOME/.config/containers/certs.d/HOST[:PORT]`,
//! `/etc/containers/certs.d/HOST[:PORT]` and `/etc/docker/certs.d/HOST[:PORT]`, where
//! `HOST[:PORT]` is the registry as the reference names it (`docker.io` for Docker Hub). In
//! it, `*.crt` are CA certificates, and `NAME.cert` with `NAME.key` a client certificate
//! (PEM chain and key) sent when the server asks for one. A `.cert` without its `.key` (or
//! the reverse) is an error, as in podman, and so is a second pair: a connection holds one.
//! The pair is checked before any connection (ureq would panic on a key that does not
//! match). Files are read through the bounded read of named files (symlinks followed: an
//! administrator's configuration, like the Docker config file); they are never shown, only
//! named.
//!
//! **`--tls-verify=false`** (skopeo's escape hatch): no certificate is checked at all, and
//! plain HTTP is allowed too, as in skopeo: the client first asks `https://HOST/v2/`, and
//! uses `http://` when that fails at the transport (see `client.rs`). Every message about
//! such a registry says "(--tls-verify=false)", so that nobody mistakes its results for
//! verified ones.
//!
//! **Loopback.** Registries on loopback (`localhost`, 127.0.0.0/8, `[::1]`) are spoken to
//! over plain HTTP, as always, unless TLS was configured for that registry: a `--ca-cert`,
//! or a certs.d directory for its `HOST:PORT`. Then HTTPS is used, which is what a test (or
//! a user) with a TLS registry on 127.0.0.1 needs, without a new flag.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};
use crate::store::root::{EntryType, Root, read_named};

/// The largest certificate or key file read (a CA bundle included).
pub const PEM_LIMIT: u64 = 4 * 1024 * 1024;

/// What [`Trust`] adds to every message when certificates are not verified.
pub const UNVERIFIED_NOTE: &str = " (--tls-verify=false)";

/// The TLS choices of a command (`--ca-cert`, `--tls-verify`), for every registry it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM files of CA certificates to trust besides the others (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// False: verify no certificate, and allow plain HTTP (`--tls-verify=false`).
    pub verify: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_certs: Vec::new(),
            verify: true,
        }
    }
}

/// The certs.d directories searched for a registry's `HOST[:PORT]`, in order (the first
/// that exists is used).
pub fn certs_d_roots() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        v.push(Path::new(&home).join(".config/containers/certs.d"));
    }
    v.push(PathBuf::from("/etc/containers/certs.d"));
    v.push(PathBuf::from("/etc/docker/certs.d"));
    v
}

/// The trust configuration for one registry: roots, client certificate, verification.
#[derive(Debug, Clone)]
pub struct Trust {
    registry: String,
    verify: bool,
    config: TlsConfig,
    /// The certs.d directory in use, if any.
    cert_dir: Option<PathBuf>,
    /// The `--ca-cert` files.
    ca_files: Vec<PathBuf>,
    /// The client certificate file, if one is configured.
    client_cert: Option<PathBuf>,
}

impl Trust {
    /// The trust for `registry` (`host[:port]` as a reference names it): the options, the
    /// system's store and the first certs.d directory of [`certs_d_roots`] for it. An unusable
    /// `--ca-cert` or certs.d file is an input error (exit code 2), before anything is sent.
    pub fn for_registry(registry: &str, opts: &TlsOptions) -> Result<Trust> {
        Trust::with_certs_d(registry, opts, &certs_d_roots())
    }

    /// [`Trust::for_registry`] with the certs.d directories given.
    pub fn with_certs_d(registry: &str, opts: &TlsOptions, certs_d: &[PathBuf]) -> Result<Trust> {
        let cert_dir = find_cert_dir(registry, certs_d);
        let mut extra: Vec<CertificateDer<'static>> = Vec::new();
        for f in &opts.ca_certs {
            let what = format!("--ca-cert {}", crate::show::path(f));
            extra.extend(read_ca_file(f, &what)?);
        }
        let mut client_cert = None;
        let mut client = None;
        if let Some(dir) = &cert_dir {
            let d = read_cert_dir(dir)?;
            extra.extend(d.cas);
            if let Some((cert, key)) = d.client {
                client = Some(load_client_cert(&cert, &key)?);
                client_cert = Some(cert);
            }
        }
        let mut builder = TlsConfig::builder().client_cert(client);
        if opts.verify {
            builder = builder.root_certs(roots(extra));
        } else {
            builder = builder.disable_verification(true);
        }
        Ok(Trust {
            registry: registry.to_string(),
            verify: opts.verify,
            config: builder.build(),
            cert_dir,
            ca_files: opts.ca_certs.clone(),
            client_cert,
        })
    }

    /// The ureq configuration.
    pub(crate) fn tls_config(&self) -> TlsConfig {
        self.config.clone()
    }

    /// False under `--tls-verify=false`.
    pub fn verify(&self) -> bool {
        self.verify
    }

    /// True if TLS was configured for this registry (a `--ca-cert`, a certs.d directory):
    /// then even a loopback registry is spoken to over HTTPS.
    pub fn configured(&self) -> bool {
        !self.ca_files.is_empty() || self.cert_dir.is_some()
    }

    /// The certs.d directory in use, if any.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.cert_dir.as_deref()
    }

    /// `" (--tls-verify=false)"` when certificates are not verified, else empty: added to
    /// every message about the registry.
    pub fn note(&self) -> &'static str {
        if self.verify { "" } else { UNVERIFIED_NOTE }
    }

    /// What a TLS failure means and what to do, in one clause, if `e` is one; `None` for
    /// other errors.
    pub fn explain(&self, e: &ureq::Error) -> Option<String> {
        let tls = tls_error(e)?;
        use rustls::CertificateError as C;
        let host = &self.registry;
        Some(match tls {
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
                "the certificate of {host} is not signed by a trusted CA (trusted: {}); give \
                 the CA with --ca-cert FILE, or put it in {} (--tls-verify=false trusts any \
                 certificate)",
                self.sources(),
                self.suggested_dir()
            ),
            rustls::Error::InvalidCertificate(C::NotValidForName)
            | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
                "the certificate of {host} is not valid for that name (its subjectAltName \
                 must list it)"
            ),
            rustls::Error::InvalidCertificate(
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet,
            )
            | rustls::Error::InvalidCertificate(C::NotValidYetContext { .. }) => {
                format!("the certificate of {host} is not valid now: {tls}")
            }
            rustls::Error::InvalidCertificate(other)
                if format!("{other:?}").contains("CaUsedAsEndEntity") =>
            {
                format!(
                    "the certificate of {host} is a CA certificate (CA:TRUE) used as a server \
                     certificate, which rustls refuses; a self-signed certificate must be \
                     made with -addext basicConstraints=critical,CA:FALSE"
                )
            }
            rustls::Error::AlertReceived(
                rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::UnknownCA
                | rustls::AlertDescription::HandshakeFailure,
            ) => match &self.client_cert {
                None => format!(
                    "{host} refused the connection ({tls}): it probably requires a client \
                     certificate; put NAME.cert and NAME.key in {}",
                    self.suggested_dir()
                ),
                Some(c) => format!(
                    "{host} refused the client certificate {} ({tls})",
                    crate::show::path(c)
                ),
            },
            rustls::Error::InvalidMessage(_) => format!(
                "{host} does not speak TLS there ({tls}); if it serves plain HTTP, pass \
                 --plain-http"
            ),
            other => format!("TLS with {host} failed: {other}"),
        })
    }

    /// The trusted sources, for messages.
    fn sources(&self) -> String {
        let mut s = vec![
            "Mozilla's roots".to_string(),
            "the system's store".to_string(),
        ];
        for f in &self.ca_files {
            s.push(format!("--ca-cert {}", crate::show::path(f)));
        }
        if let Some(d) = &self.cert_dir {
            s.push(format!("{}/*.crt", crate::show::path(d)));
        }
        s.join(", ")
    }

    /// The certs.d directory a user would create for this registry.
    fn suggested_dir(&self) -> String {
        match &self.cert_dir {
            Some(d) => crate::show::path(d),
            None => format!(
                "/etc/containers/certs.d/{}/",
                crate::show::text(&self.registry)
            ),
        }
    }
}

/// The rustls error inside a transport error, if it is one.
fn tls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// The first directory `ROOT/registry` that exists, of `roots` in order.
fn find_cert_dir(registry: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    // A registry name holds no `/` (the reference parser allows none), but make sure that
    // no name can climb out of the certs.d directories.
    if registry.is_empty() || registry.contains('/') || registry.starts_with('.') {
        return None;
    }
    roots
        .iter()
        .map(|r| r.join(registry))
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
}

/// Mozilla's roots, the system's store and `extra`, deduplicated.
fn roots(extra: Vec<CertificateDer<'static>>) -> RootCerts {
    let mut all: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    // Errors of the system's store are not fatal: Mozilla's roots remain.
    let native = rustls_native_certs::load_native_certs();
    all.extend(native.certs.iter().map(|c| c.as_ref().to_vec()));
    all.extend(extra.iter().map(|c| c.as_ref().to_vec()));
    all.sort();
    all.dedup();
    let certs: Vec<Certificate<'static>> = all
        .iter()
        .map(|der| Certificate::from_der(der).to_owned())
        .collect();
    RootCerts::Specific(Arc::new(certs))
}

/// The CA certificates of a PEM file; an error naming it (`what`) if it has none, or one
/// that cannot be a trust anchor.
fn read_ca_file(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read_named(path, PEM_LIMIT).map_err(|e| Error::input(what, e.to_string()))?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| Error::input(what, format!("not a PEM file: {e}")))?;
        let mut store = rustls::RootCertStore::empty();
        store
            .add(c.clone())
            .map_err(|e| Error::input(what, format!("a certificate cannot be used: {e}")))?;
        certs.push(c);
    }
    if certs.is_empty() {
        return Err(Error::input(what, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// What a certs.d directory holds.
struct CertDir {
    cas: Vec<CertificateDer<'static>>,
    /// The client certificate and its key.
    client: Option<(PathBuf, PathBuf)>,
}

/// Reads a certs.d directory (see the module documentation).
fn read_cert_dir(dir: &Path) -> Result<CertDir> {
    let shown = crate::show::path(dir);
    let root = Root::open(dir)
        .map_err(|e| Error::input(format!("certs.d directory {shown}"), e.to_string()))?;
    let listing = root
        .list_dir_bytes("")
        .map_err(|e| Error::input(format!("certs.d directory {shown}"), e.to_string()))?
        .unwrap_or_default();
    let mut cas = Vec::new();
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (name, kind) in &listing {
        if matches!(kind, EntryType::Dir) {
            continue;
        }
        let path = dir.join(OsStr::from_bytes(name));
        let with = |ext: &[u8]| {
            let stem = &name[..name.len() - 5];
            let mut n = stem.to_vec();
            n.extend_from_slice(ext);
            (n.clone(), dir.join(OsStr::from_bytes(&n)))
        };
        if name.ends_with(b".crt") {
            let what = format!("certs.d file {}", crate::show::path(&path));
            cas.extend(read_ca_file(&path, &what)?);
        } else if name.ends_with(b".cert") {
            let (key_name, key) = with(b".key");
            if !listing.iter().any(|(n, _)| *n == key_name) {
                return Err(Error::input(
                    format!("certs.d file {}", crate::show::path(&path)),
                    format!(
                        "client certificate without its key {} (CA certificates must be named *.crt)",
                        crate::show::path(&key)
                    ),
                ));
            }
            pairs.push((path, key));
        } else if name.ends_with(b".key") {
            let stem = &name[..name.len() - 4];
            let mut cert_name = stem.to_vec();
            cert_name.extend_from_slice(b".cert");
            if !listing.iter().any(|(n, _)| *n == cert_name) {
                return Err(Error::input(
                    format!("certs.d file {}", crate::show::path(&path)),
                    format!(
                        "key without its client certificate {}",
                        crate::show::path(&dir.join(OsStr::from_bytes(&cert_name)))
                    ),
                ));
            }
        }
    }
    if pairs.len() > 1 {
        return Err(Error::input(
            format!("certs.d directory {shown}"),
            format!(
                "holds {} client certificates ({}); ocipack can present only one",
                pairs.len(),
                pairs
                    .iter()
                    .map(|(c, _)| crate::show::path(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(CertDir {
        cas,
        client: pairs.pop(),
    })
}

/// A client certificate chain and key from PEM files, checked to belong together (ureq
/// panics at the first handshake on a pair rustls refuses).
fn load_client_cert(cert: &Path, key: &Path) -> Result<ClientCert> {
    let what_cert = format!("client certificate {}", crate::show::path(cert));
    let what_key = format!("client key {}", crate::show::path(key));
    let cert_pem =
        read_named(cert, PEM_LIMIT).map_err(|e| Error::input(&what_cert, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::input(&what_cert, format!("not a PEM file: {e}")))?;
    if chain.is_empty() {
        return Err(Error::input(&what_cert, "holds no PEM certificate"));
    }
    let key_pem = read_named(key, PEM_LIMIT).map_err(|e| Error::input(&what_key, e.to_string()))?;
    // Never quote the key or a parser's view of it: name the file only.
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        Error::input(
            &what_key,
            "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), key_der, &provider).map_err(|e| {
        Error::input(
            &what_key,
            format!("cannot be used with {}: {e}", crate::show::path(cert)),
        )
    })?;
    let certs: Vec<Certificate<'static>> = chain
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    // ureq's `PrivateKey::from_der` needs a key kind it does not export: read the PEM again
    // with its own parser (the same text rustls just accepted).
    let key = PrivateKey::from_pem(&key_pem)
        .map_err(|_| Error::input(&what_key, "holds no PEM private key ureq can use"))?;
    Ok(ClientCert::new_with_certs(&certs, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(t.path().join(f), "x").unwrap();
        }
        t
    }

    fn err(dir: &Path) -> String {
        match read_cert_dir(dir) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{} was accepted", dir.display()),
        }
    }

    #[test]
    fn certs_d_pairs_follow_podman_rules() {
        let t = dir_with(&["client.cert"]);
        assert!(err(t.path()).contains("client certificate without its key"));
        let t = dir_with(&["client.key"]);
        assert!(err(t.path()).contains("key without its client certificate"));
        let t = dir_with(&["a.cert", "a.key", "b.cert", "b.key"]);
        assert!(err(t.path()).contains("holds 2 client certificates"));
        // Other files and subdirectories are not looked at.
        let t = dir_with(&["README", "a.cert", "a.key"]);
        std::fs::create_dir(t.path().join("sub.crt")).unwrap();
        let d = read_cert_dir(t.path()).unwrap();
        assert!(d.cas.is_empty());
        assert_eq!(
            d.client,
            Some((t.path().join("a.cert"), t.path().join("a.key")))
        );
    }

    #[test]
    fn hostile_ca_files_are_refused_by_name() {
        // Not PEM, a FIFO (which must not block), a device.
        let t = dir_with(&["junk.crt"]);
        let e = err(t.path());
        assert!(
            e.contains("junk.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("ca.crt");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = err(t.path());
        assert!(
            e.contains("ca.crt") && e.contains("not a regular file"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", t.path().join("zero.crt")).unwrap();
        let e = err(t.path());
        assert!(
            e.contains("zero.crt") && e.contains("not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn the_first_existing_certs_d_directory_wins_and_names_cannot_climb() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(b.path().join("reg.example:5000")).unwrap();
        let roots = [a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(
            find_cert_dir("reg.example:5000", &roots),
            Some(b.path().join("reg.example:5000"))
        );
        std::fs::create_dir(a.path().join("reg.example:5000")).unwrap();
        assert_eq!(
            find_cert_dir("reg.example:5000", &roots),
            Some(a.path().join("reg.example:5000"))
        );
        assert_eq!(find_cert_dir("..", &roots), None);
        assert_eq!(find_cert_dir("a/../..", &roots), None);
        // Found or not, the trust says whether TLS is configured (HTTPS on loopback).
        let opts = TlsOptions::default();
        let t = Trust::with_certs_d("reg.example:5000", &opts, &roots).unwrap();
        assert!(t.configured() && t.verify() && t.note().is_empty());
        let t = Trust::with_certs_d(
            "other:1",
            &TlsOptions {
                ca_certs: Vec::new(),
                verify: false,
            },
            &roots,
        )
        .unwrap();
        assert!(!t.configured() && t.note() == UNVERIFIED_NOTE);
    }
}
