//! `ocipack push LAYOUT|DIR REFERENCE`

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::out;
use super::tls::TlsArgs;

use ocipack::error::{Error, Result};
use ocipack::project::push::{self, ProjectPushed, Selection, Skipped};
use ocipack::registry::{self, Credentials, PushOptions, Pushed, Reference};
use ocipack::verify::{self, Options, Source, Valid};

/// Arguments of `ocipack push`.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the pushed manifest digest (the one in index.json) on stdout.\n\
\n\
A project directory (holding ocipack.toml) is pushed as multi-platform images. With a\n\
REPOSITORY alone (no tag), every image of the project (or those --image selects) goes\n\
under its own tags: per image one OCI image index of its architectures (or those --arch\n\
selects) under each of its tags, and per shared tag one index of the union of the images\n\
listing it (an architecture several have: the first image in the file wins). A shared\n\
tag listed by an image --image leaves out is skipped (and said so). Windows entries are\n\
Dockerfile builds and are not pushed. A project without tags is pushed under latest.\n\
With REPOSITORY:TAG, one image (the project's only one, or one --image) goes under TAG\n\
and each --also-tag. Every layout used must exist (`ocipack build` writes them), and each\n\
is verified whole, as verify does, before anything is sent. With --commit-branch (or\n\
[library] commit-branch), each layout is read from the tip of its dist branch, at its\n\
directory there, never from the work tree: copied out of git into a staging directory in\n\
the git directory, verified from there, and removed when the push ends (also on failure\n\
or SIGINT, SIGTERM, SIGHUP). Then each image's blobs, then\n\
its manifest by digest (skipped when the registry has it), and last the image indexes,\n\
listing the images in bashbrew's architecture order (platform, digest, size; no\n\
annotations), under their tags. Each index digest is printed (with a REPOSITORY alone,\n\
followed by its tags); indexes go last, so a failure leaves no tag on a partial set. A\n\
multi-platform layout (`ocipack build --index`) is pushed like one index, its stored\n\
index byte for byte.\n\
\n\
Registries on loopback (localhost, 127.0.0.0/8, ::1) are spoken to over plain HTTP, unless\n\
TLS is configured for them (see TLS below).\n\
\n\
Credentials: --username with --password-stdin; else those of the Docker config file\n\
($DOCKER_CONFIG/config.json or ~/.docker/config.json), resolved as docker does: the helper\n\
credHelpers[SERVER], else the helper credsStore, else auths[SERVER] (auth, or username and\n\
password; identitytoken). SERVER is host[:port], or https://index.docker.io/v1/ for Docker\n\
Hub. A helper runs only when the registry asks for credentials, as\n\
`docker-credential-NAME get` (found on PATH) with SERVER on stdin, and must answer within\n\
--timeout; its answer is final (\"credentials not found\": anonymous).\n\
An identity token (a helper's user name <token>, or identitytoken) is an OAuth2 refresh\n\
token: it goes only to the registry's token realm. No message shows a helper's output, a\n\
credential or a token; config errors name keys, never values.\n\
\n\
Timeouts: --timeout T is both an idle timeout and a deadline. Any single network read or\n\
write that waits T seconds fails (connecting: at most T and at most 30 s). Every request\n\
that carries no blob (blob checks, upload starts, manifests, token requests) must be\n\
answered completely, body included, within T of its start. A blob upload may take as long\n\
as data keeps flowing; after its last byte the registry's answer must begin within T and\n\
its body arrive within T more. A registry that trickles an answer cannot stall a push.\n\
\n\
TLS: a registry's certificate must chain to Mozilla's roots (built in), the system's store\n\
(SSL_CERT_FILE / SSL_CERT_DIR when set), a --ca-cert FILE, or a *.crt file of the first\n\
certs.d directory that exists for it: ~/.config/containers/certs.d/HOST[:PORT],\n\
/etc/containers/certs.d/HOST[:PORT], /etc/docker/certs.d/HOST[:PORT] (as podman and\n\
docker). A NAME.cert with NAME.key there is sent as the client certificate. A registry on\n\
loopback is spoken to over HTTPS only when it has such a directory or --ca-cert is given.\n\
A self-signed server certificate must say basicConstraints=CA:FALSE (rustls refuses a CA\n\
certificate as a server's). --tls-verify=false checks nothing and allows plain HTTP: the\n\
client tries https://HOST/v2/ first and falls back to http:// if that fails."
)]
pub struct PushArgs {
    /// The layout directory (one image, or a multi-platform layout), or a project
    /// directory holding ocipack.toml (its images' layouts, as image indexes).
    #[arg(value_name = "LAYOUT|DIR")]
    layout: PathBuf,
    /// Where to push: [REGISTRY/]REPOSITORY[:TAG][@DIGEST] (tag default: latest; for a
    /// project, a REPOSITORY alone pushes each image under its own tags).
    reference: String,
    /// Also put the manifest (or the image index) under this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    also_tag: Vec<String>,
    /// Use plain HTTP even though the registry is not on loopback.
    #[arg(long)]
    plain_http: bool,
    /// User name for the registry (the password is read from stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Upload blobs in chunks of this many bytes (default: one request per blob, chunks
    /// only if the registry refuses that as too large).
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Idle timeout and per-request deadline (see Timeouts below): give up when the registry
    /// is silent for this long, or takes this long to answer a request.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// With a project directory: push only this architecture (repeatable; the indexes then
    /// list only those selected).
    #[arg(long, value_name = "A")]
    arch: Vec<String>,
    /// With a project directory: push only this image of its [[images]] (repeatable; with
    /// REPOSITORY:TAG, the one image pushed).
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
    /// With a project directory: read the layouts from the tips of the branches this
    /// pattern names (e.g. 'dist-{arch}', as `build --commit-branch`), not from the work
    /// tree. Default: [library] commit-branch in ocipack.toml.
    #[arg(long, value_name = "PATTERN")]
    commit_branch: Option<String>,
    /// Print the result as JSON (digest, tags, and each blob: uploaded or already there;
    /// for an index, each manifest with its platform, digest and blobs).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

fn read_password() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut s)
        .map_err(|e| Error::input_io_on("reading the password from", "standard input", e))?;
    let p = s
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&s);
    if p.is_empty() {
        return Err(Error::usage("--password-stdin: standard input is empty"));
    }
    Ok(p.to_string())
}

pub fn run(a: PushArgs) -> Result<u8> {
    let reference: Reference = a.reference.parse()?;
    if a.timeout == 0 {
        return Err(Error::usage("--timeout must be at least 1 second"));
    }
    let credentials = match (&a.username, a.password_stdin) {
        (Some(u), true) => Some(Credentials::new(u.clone(), read_password()?)),
        _ => None,
    };
    let opts = PushOptions {
        also_tags: a.also_tag.clone(),
        plain_http: a.plain_http,
        credentials,
        chunk_size: a.chunk_size,
        timeout: Duration::from_secs(a.timeout),
        tls: a.tls.options(),
    };
    a.tls.warn(&reference.registry);
    let is_project =
        std::fs::symlink_metadata(a.layout.join(ocipack::project::PROJECT_FILE)).is_ok();
    for (flag, given) in [
        ("--arch", !a.arch.is_empty()),
        ("--image", !a.image.is_empty()),
        ("--commit-branch", a.commit_branch.is_some()),
    ] {
        if given && !is_project {
            return Err(Error::usage(format!(
                "{flag} selects from a project, and {} holds no {}",
                ocipack::show::path(&a.layout),
                ocipack::project::PROJECT_FILE
            )));
        }
    }
    let pushed = if is_project {
        let sel = Selection {
            images: a.image.clone(),
            arches: a.arch.clone(),
            commit_branch: a.commit_branch.clone(),
        };
        let written = registry::reference::names_tag_or_digest(&a.reference);
        match push::push_project(&a.layout, &sel, &reference, written, &opts)? {
            ProjectPushed::One(r) => Pushed::Index(r),
            ProjectPushed::Entries {
                report,
                skipped,
                entries,
            } => return report_entries(&report, &skipped, &entries, a.json),
        }
    } else {
        // The whole layout is verified before anything is sent: a layout `verify` refuses
        // is never uploaded. Then its single image, or every image and the image index
        // exactly as stored.
        let source = Source::Layout(a.layout.clone());
        match verify::open(&source, &Options::default())?.valid()? {
            Valid::Image(c) => Pushed::Image(registry::push_image(&c.image, &reference, &opts)?),
            Valid::Index(p) => Pushed::Index(registry::push_index(
                &p.index,
                &p.entry.media_type,
                &p.images,
                &reference,
                &opts,
            )?),
        }
    };
    let report = match pushed {
        Pushed::Image(r) => r,
        Pushed::Index(r) => return report_index(&r, a.json),
    };
    if a.json {
        out!(
            "{}",
            String::from_utf8_lossy(&ocipack::cjson::to_vec(&report)?)
        );
    } else {
        let uploaded = report.blobs.iter().filter(|b| b.uploaded).count();
        eprintln!(
            "ocipack: pushed {} as {}: {} blobs uploaded, {} already present",
            report.digest,
            names(&report.repository, &report.tags),
            uploaded,
            report.blobs.len() - uploaded
        );
        out!("{}", report.digest);
    }
    Ok(0)
}

/// `pushed index sha256:… (10 platforms) as REPO:TAG: …` on stderr, the digest on stdout.
fn report_index(r: &registry::IndexPushReport, json: bool) -> Result<u8> {
    if json {
        out!("{}", String::from_utf8_lossy(&ocipack::cjson::to_vec(r)?));
        return Ok(0);
    }
    let put = r.manifests.iter().filter(|m| m.uploaded).count();
    let blobs: Vec<_> = r.manifests.iter().flat_map(|m| &m.blobs).collect();
    let uploaded = blobs.iter().filter(|b| b.uploaded).count();
    eprintln!(
        "ocipack: pushed image index {} ({} platforms) as {}: {} manifests put, {} already \
         present; {} blobs uploaded, {} already present",
        r.digest,
        r.manifests.len(),
        names(&r.repository, &r.tags),
        put,
        r.manifests.len() - put,
        uploaded,
        blobs.len() - uploaded
    );
    out!("{}", r.digest);
    Ok(0)
}

/// A push of a project's images under their own tags: one line per image index on stdout
/// (its digest, then its tags), a summary on stderr, each skipped shared tag on stderr.
fn report_entries(
    r: &registry::IndexesPushReport,
    skipped: &[Skipped],
    entries: &[Vec<String>],
    json: bool,
) -> Result<u8> {
    if json {
        let indexes: Vec<_> = r
            .indexes
            .iter()
            .zip(entries)
            .map(|(i, e)| {
                json!({
                    "digest": i.digest,
                    "mediaType": i.media_type,
                    "size": i.size,
                    "tags": i.tags,
                    "images": e,
                })
            })
            .collect();
        let v = json!({
            "repository": r.repository,
            "indexes": indexes,
            "manifests": r.manifests,
            "skipped": skipped,
        });
        out!("{}", String::from_utf8_lossy(&ocipack::cjson::to_vec(&v)?));
        return Ok(0);
    }
    for s in skipped {
        eprintln!("ocipack: shared tag {} not pushed: {}", s.tag, s.reason);
    }
    let put = r.manifests.iter().filter(|m| m.uploaded).count();
    let blobs: Vec<_> = r.manifests.iter().flat_map(|m| &m.blobs).collect();
    let uploaded = blobs.iter().filter(|b| b.uploaded).count();
    let tags: Vec<String> = r.indexes.iter().flat_map(|i| i.tags.clone()).collect();
    eprintln!(
        "ocipack: pushed {} image {} as {}: {} manifests put, {} already present; {} \
         blobs uploaded, {} already present",
        r.indexes.len(),
        if r.indexes.len() == 1 {
            "index"
        } else {
            "indexes"
        },
        names(&r.repository, &tags),
        put,
        r.manifests.len() - put,
        uploaded,
        blobs.len() - uploaded
    );
    for i in &r.indexes {
        out!("{} {}", i.digest, i.tags.join(" "));
    }
    Ok(0)
}

/// `REPO:TAG, REPO:TAG2`, or the repository alone when nothing was tagged.
fn names(repository: &str, tags: &[String]) -> String {
    if tags.is_empty() {
        return repository.to_string();
    }
    tags.iter()
        .map(|t| format!("{repository}:{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}
