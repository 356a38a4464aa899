//! The one support module of the CLI-level tests (`use crate::common;` in each test module):
//! running `ocipack` and the tools it works with, registries, podman, hello-world layouts. In
//! submodules: [`cli`] (command builders, output and error-convention assertions), [`fake`]
//! (in-process registries), [`git`] (repositories of a test's own), [`layouts`] (layouts
//! built by the CLI and rewritten one rule at a time, a watchdog), [`oci`] (layouts written
//! blob by blob), [`served`] (images as Docker Hub serves them: Docker's and BuildKit's
//! configs, attestations, Windows foreign layers), [`shapes`] (projects shaped like
//! busybox's), [`tar`] (a raw tar writer).

pub mod cli;
pub mod fake;
pub mod git;
pub mod layouts;
pub mod oci;
pub mod served;
pub mod shapes;
pub mod tar;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ocipack` binary under test, with an environment that cannot leak into outputs, and
/// the build records of projects outside a git repository kept in [`xdg_cache`] rather
/// than in the user's `~/.cache`.
pub fn ocipack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocipack"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c.env("XDG_CACHE_HOME", xdg_cache());
    default_signals(&mut c);
    c
}

/// The `XDG_CACHE_HOME` of every `ocipack` the tests run: `target/tmp/xdg-cache`, emptied
/// once per run of the test binary (the projects it held records of are gone by then).
pub fn xdg_cache() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Starts `c` with SIGINT, SIGTERM and SIGHUP at their default dispositions. ocipack keeps a
/// signal its parent ignores ignored (`nohup`), and a shell that runs the test suite in the
/// background without job control starts it with SIGINT ignored: the tests that send
/// signals must not depend on how the suite was started.
pub fn default_signals(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `signal` is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// How long one run of `ocipack` or of a tool may take in [`run`], [`ok`], [`push`] and
/// [`Podman::run_ok`]: one that takes longer is stuck, and the test fails.
const STUCK: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `ocipack` with `args` (at most [`STUCK`]), returning its output.
pub fn run(args: &[&str]) -> Output {
    run_bounded(ocipack().args(args), STUCK)
}

/// Runs `ocipack push ARGS` (at most [`STUCK`]) with an empty Docker configuration
/// directory, so that no credential of whoever runs the tests is used.
pub fn push(args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    let mut c = ocipack();
    c.env("DOCKER_CONFIG", config.path()).arg("push").args(args);
    run_bounded(&mut c, STUCK)
}

/// Runs `cmd` (at most [`STUCK`]), asserting success; returns its output.
pub fn ok(cmd: &mut Command) -> Output {
    let o = run_bounded(cmd, STUCK);
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        cli::text(&o.stdout),
        cli::text(&o.stderr)
    );
    o
}

/// Asserts the command exited with `code`, showing its output otherwise.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True under `CI=true`.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says that (part of) a test cannot run here because of `why` — a missing tool, no root
/// for `mknod`, a filesystem without user xattrs or holes — with a `SKIPPED:` line; under
/// `CI=true` it fails the test instead. CI runs as root on Debian with every tool
/// installed (`.ci/run`), so there any such gap is a broken CI, never a silent skip. The
/// caller returns (or leaves out the part) after it.
pub fn skip(why: &str) {
    if ci() {
        panic!("{why}, and CI=true: this test must run in CI (.ci/run sets it up)");
    }
    eprintln!("SKIPPED: {why} (set CI=true to make this a failure)");
}

/// True if `tool` is on PATH. Under `CI=true` a missing tool fails the test ([`skip`]): CI
/// installs every tool, so a missing one is a broken CI, never a silent skip.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

/// Every regular file and symlink below `dir`, relative path → (is_symlink, bytes or link target).
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, (bool, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (true, t.to_string_lossy().into_owned().into_bytes()));
            } else if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, (false, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Runs `cmd` to completion, killing it after `limit`; panics on a timeout.
pub fn run_bounded(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain the pipes on threads so that a chatty child cannot block.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let Some(status) = wait_bounded(&mut child, limit) else {
        panic!("{cmd:?} did not finish within {limit:?}");
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// [`run_bounded`], with a timeout reported as an `Err` instead of a panic, so that a test
/// can try several cases and report all of them.
pub fn bounded(cmd: &mut Command, limit: std::time::Duration) -> Result<Output, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_bounded(cmd, limit))).map_err(
        |p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into())
        },
    )
}

/// Waits for `child` to exit, at most `limit`: its exit status, or `None` once it was
/// killed (and reaped) for taking longer.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// [`require_tool`] for each of `names`: true if all are on PATH.
pub fn require_tools(names: &[&str]) -> bool {
    names.iter().all(|t| require_tool(t))
}

/// Runs `skopeo ARGS` with [`ok`].
pub fn skopeo(args: &[&str]) -> Output {
    ok(Command::new("skopeo").args(args))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CNCF distribution registry (Debian's `docker-registry`) on a free 127.0.0.1 port,
/// storing into its own temporary directory, with its log in a file; killed on drop.
pub struct Registry {
    child: std::process::Child,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
    /// Files the configuration names (the htpasswd file).
    _files: Option<tempfile::TempDir>,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Registry {
        Registry::start_with("")
    }

    /// An anonymous registry that accepts manifests with foreign layers (their `urls` on
    /// any http or https host): distribution refuses any URL on a layer unless a pattern
    /// allows it (`validation.manifests.urls.allow`).
    pub fn start_allowing_foreign_layers() -> Registry {
        Registry::start_with(
            "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n",
        )
    }

    /// A registry that requires basic authentication as `user`/`password` (bcrypt htpasswd).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Registry {
        let o = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd runs");
        assert!(o.status.success(), "htpasswd failed");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, &o.stdout).unwrap();
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: ocipack-test\n    path: {}\n",
            file.display()
        );
        let mut r = Registry::start_with(&auth);
        r._files = Some(dir);
        r
    }

    /// A registry serving HTTPS with the PEM files `cert` and `key`; with `client_cas`, it
    /// requires a client certificate signed by that CA.
    pub fn start_tls(cert: &Path, key: &Path, client_cas: Option<&Path>) -> Registry {
        let mut tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        );
        if let Some(ca) = client_cas {
            tls.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
        }
        Registry::start_with(&tls)
    }

    fn start_with(extra: &str) -> Registry {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let config = dir.path().join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n{extra}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let mut r = Registry {
                child,
                port,
                dir,
                _files: None,
            };
            if r.wait_ready() {
                return r;
            }
            // Most likely the port was taken in the meantime: try another one.
        }
        panic!("docker-registry did not start on any of 5 ports");
    }

    fn wait_ready(&mut self) -> bool {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .ok();
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return true;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of requests `METHOD PATH…` whose path starts with `path_prefix`.
    pub fn requests(&self, method: &str, path_prefix: &str) -> usize {
        let needle = format!("\"{method} {path_prefix}");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// podman with everything in a temporary directory, set up the way that works on these
/// machines: runc, cgroupfs, vfs storage, no default ulimits (CONTAINERS_CONF).
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// A fresh, empty podman store.
    pub fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n",
        )
        .unwrap();
        Podman { dir }
    }

    /// A `podman` command using this store.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args([
                "--runtime",
                "runc",
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        c
    }

    /// Runs podman with `args` with [`ok`]; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        cli::text(&ok(self.cmd().args(args)).stdout)
    }

    /// Runs the hello-world `image` (`podman run --rm --network none EXTRA --platform P
    /// IMAGE`) as linux/386 and as linux/amd64, asserting that each says it was built for
    /// that platform.
    pub fn assert_hello_runs_per_platform(&self, image: &str, extra: &[&str]) {
        for (platform, arch) in [("linux/386", "i386"), ("linux/amd64", "amd64")] {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend(extra);
            args.extend(["--platform", platform, image]);
            let said = self.run_ok(&args);
            assert!(
                said.contains(&format!("built for the ({arch}) platform")),
                "{platform}: {said}"
            );
        }
    }
}

/// Builds the amd64 hello-world layout from `examples/hello-world/amd64/hello` at `out`,
/// with `extra` arguments (e.g. `--ref-name`, `--compression`); returns the manifest digest.
pub fn build_hello(out: &Path, extra: &[&str]) -> String {
    let hello = repo().join("examples/hello-world/amd64/hello");
    let mut args = vec![
        "image".to_string(),
        "--file".into(),
        format!("{}:/hello:0755", hello.display()),
        "--arch".into(),
        "amd64".into(),
        "--cmd".into(),
        "/hello".into(),
        "--created".into(),
        cli::CREATED.into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = ocipack().args(&args).output().unwrap();
    assert_exit(&o, 0);
    index_digest(out)
}

/// A temporary directory holding the amd64 hello-world layout `hello` ([`build_hello`]
/// with no extra arguments), the layout's path and its manifest digest.
pub fn hello_layout() -> (tempfile::TempDir, PathBuf, String) {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("hello");
    let digest = build_hello(&layout, &[]);
    (t, layout, digest)
}

/// Writes `len` deterministic incompressible bytes to `dir/noise.bin` and builds the amd64
/// layout `dir/noise` of them (`/noise.bin`, mode 0644) with `extra` options; returns the
/// layout and its manifest digest.
pub fn build_noise_image(dir: &Path, len: usize, extra: &[&str]) -> (PathBuf, String) {
    let file = dir.join("noise.bin");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&file, bytes).unwrap();
    let layout = dir.join("noise");
    let input = format!("{}:/noise.bin:0644", file.display());
    let o = cli::image(&[cli::os("--file"), cli::os(&input)], &layout, extra)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let digest = index_digest(&layout);
    (layout, digest)
}

/// The staging entries of ocipack (hidden names containing `.ocipack-`) beside `out`, sorted:
/// a run that ended, however it ended, leaves none.
pub fn staging_beside(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".ocipack-"))
        .collect();
    v.sort();
    v
}

/// The digest of the single manifest listed in a layout's index.json.
pub fn index_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A copy of `examples/hello-world` (its ten committed layouts included) at `dest`.
pub fn copy_hello_world(dest: &Path) -> PathBuf {
    let st = Command::new("cp")
        .arg("-a")
        .arg(repo().join("examples/hello-world"))
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a examples/hello-world failed");
    dest.to_path_buf()
}

/// The bashbrew architectures of examples/hello-world, in bashbrew's order, with the
/// `os/architecture[/variant]` each stands for.
pub const HELLO_ARCHES: [(&str, &str); 10] = [
    ("amd64", "linux/amd64"),
    ("arm32v5", "linux/arm/v5"),
    ("arm32v6", "linux/arm/v6"),
    ("arm32v7", "linux/arm/v7"),
    ("arm64v8", "linux/arm64/v8"),
    ("i386", "linux/386"),
    ("mips64le", "linux/mips64le"),
    ("ppc64le", "linux/ppc64le"),
    ("riscv64", "linux/riscv64"),
    ("s390x", "linux/s390x"),
];

/// `os/architecture[/variant]` of a descriptor's or config's platform object.
pub fn platform_string(p: &serde_json::Value) -> String {
    let mut s = format!(
        "{}/{}",
        p["os"].as_str().unwrap(),
        p["architecture"].as_str().unwrap()
    );
    if let Some(v) = p["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// The entries of `index`, an image index of examples/hello-world's ten architectures,
/// each paired with its bashbrew architecture; asserts that the index has no annotations
/// and lists the ten platforms of [`HELLO_ARCHES`] in that order.
pub fn hello_index_entries(index: &serde_json::Value) -> Vec<(&'static str, &serde_json::Value)> {
    assert!(index.get("annotations").is_none());
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 10);
    HELLO_ARCHES
        .iter()
        .zip(manifests)
        .map(|(&(arch, platform), m)| {
            assert_eq!(platform_string(&m["platform"]), platform, "{arch}");
            (arch, m)
        })
        .collect()
}

/// A temporary directory whose path has no uppercase letter (podman 4 names an image run
/// from `oci:PATH` after PATH, which must then be lowercase), removed on drop.
pub struct LowercaseDir(pub PathBuf);

impl LowercaseDir {
    /// A fresh, empty directory below the lowercased temporary directory.
    pub fn new() -> LowercaseDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let base = std::env::temp_dir().to_string_lossy().to_lowercase();
        let dir = Path::new(&base).join(format!("ocipack-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        LowercaseDir(dir)
    }
}

impl Drop for LowercaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
