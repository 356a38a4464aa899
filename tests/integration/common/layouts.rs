//! Layouts built by the real CLI and rewritten consistently one rule at a time, so that
//! each case breaks one rule, and a watchdog for child processes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::oci::sha256;
use crate::common::{ocipack, wait_bounded};

pub const CREATED: &str = "2025-01-21T23:32:32Z";
/// 2025-01-21T23:32:32Z in Unix seconds.
pub const CREATED_UNIX: u64 = 1_737_502_352;
/// A verify that takes longer than this is blocked on something (a FIFO blocks forever):
/// the test fails. A bound against hangs, not a speed claim: generous, so that a loaded
/// machine does not look blocked.
pub const WATCHDOG: Duration = Duration::from_secs(60);

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn assert(&self, code: i32, wants: &[&str]) {
        let all = format!("{}{}", self.stdout, self.stderr);
        assert_eq!(self.code, code, "exit code; output:\n{all}");
        for w in wants {
            assert!(all.contains(w), "{w:?} not in output:\n{all}");
        }
        assert!(!all.contains("panicked"), "panic:\n{all}");
    }
}

/// Runs `cmd` with a watchdog: a process still running after [`WATCHDOG`] is killed and
/// the test fails (verify must never block).
pub fn run_guarded(mut cmd: Command) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let Some(status) = wait_bounded(&mut child, WATCHDOG) else {
        panic!("ocipack did not finish within {WATCHDOG:?}: it blocked");
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(o).unwrap(),
        stderr: fs::read_to_string(e).unwrap(),
    }
}

/// `ocipack verify ARGS LAYOUT` under the watchdog.
pub fn verify(args: &[&str], layout: &Path) -> Out {
    let mut c = ocipack();
    c.arg("verify").args(args).arg(layout);
    run_guarded(c)
}

/// A small tree with a directory, an executable, a hard link and a symlink.
pub fn sample_tree(tree: &Path) {
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(tree.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(tree.join("etc/motd"), "welcome\n".repeat(500)).unwrap();
    fs::set_permissions(tree.join("etc/motd"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::hard_link(tree.join("etc/motd"), tree.join("etc/motd.link")).unwrap();
    symlink("../bin/hello", tree.join("etc/hello")).unwrap();
}

/// `ocipack image --rootfs TREE --arch amd64 --cmd /bin/hello --created CREATED EXTRA -o OUT`.
pub fn image_command(tree: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = ocipack();
    c.args(["image", "--rootfs"]).arg(tree).args([
        "--arch",
        "amd64",
        "--cmd",
        "/bin/hello",
        "--created",
        CREATED,
    ]);
    c.args(extra).arg("-o").arg(out);
    c
}

/// [`image_command`] under the watchdog.
pub fn image(tree: &Path, out: &Path, extra: &[&str]) -> Out {
    run_guarded(image_command(tree, out, extra))
}

/// A layout built by the real CLI, and helpers that rewrite it consistently (new blobs
/// with correct digests and sizes, references updated), so that each case breaks one rule.
pub struct Layout {
    pub t: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Layout {
    /// A layout in `<tmp>/<sub>/oci` built with `extra` options (default: --names none).
    pub fn build_in(sub: &str, extra: &[&str]) -> Layout {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        sample_tree(&tree);
        let parent = t.path().join(sub);
        fs::create_dir_all(&parent).unwrap();
        let dir = parent.join("oci");
        let mut extra = extra.to_vec();
        if !extra.iter().any(|e| e.starts_with("--names")) {
            extra.extend(["--names", "none"]);
        }
        image(&tree, &dir, &extra).assert(0, &[]);
        Layout { t, dir }
    }

    pub fn build(extra: &[&str]) -> Layout {
        Layout::build_in("x", extra)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn json(&self, rel: &str) -> Value {
        serde_json::from_slice(&fs::read(self.path(rel)).unwrap()).unwrap()
    }

    pub fn blob_path(digest: &str) -> String {
        format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
    }

    pub fn write_blob(&self, bytes: &[u8]) -> (String, usize) {
        let d = sha256(bytes);
        fs::write(self.path(&Layout::blob_path(&d)), bytes).unwrap();
        (d, bytes.len())
    }

    pub fn index(&self) -> Value {
        self.json("index.json")
    }

    pub fn set_index(&self, v: &Value) {
        fs::write(self.path("index.json"), serde_json::to_vec(v).unwrap()).unwrap();
    }

    pub fn manifest_digest(&self) -> String {
        self.index()["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn manifest(&self) -> Value {
        self.json(&Layout::blob_path(&self.manifest_digest()))
    }

    /// Removes a replaced blob, so that no case leaves unreferenced files behind.
    pub fn drop_blob(&self, old: &str, new: &str) {
        if old != new {
            fs::remove_file(self.path(&Layout::blob_path(old))).unwrap();
        }
    }

    pub fn set_manifest_bytes(&self, bytes: &[u8]) {
        let old = self.manifest_digest();
        let (d, n) = self.write_blob(bytes);
        let mut i = self.index();
        i["manifests"][0]["digest"] = json!(d);
        i["manifests"][0]["size"] = json!(n);
        self.set_index(&i);
        self.drop_blob(&old, &d);
    }

    pub fn set_manifest(&self, v: &Value) {
        self.set_manifest_bytes(&serde_json::to_vec(v).unwrap());
    }

    pub fn config_path(&self) -> String {
        Layout::blob_path(self.manifest()["config"]["digest"].as_str().unwrap())
    }

    pub fn config(&self) -> Value {
        self.json(&self.config_path())
    }

    pub fn set_config_bytes(&self, bytes: &[u8]) {
        let old = self.manifest()["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let (d, n) = self.write_blob(bytes);
        self.drop_blob(&old, &d);
        let mut m = self.manifest();
        m["config"]["digest"] = json!(d);
        m["config"]["size"] = json!(n);
        self.set_manifest(&m);
    }

    pub fn set_config(&self, v: &Value) {
        self.set_config_bytes(&serde_json::to_vec(v).unwrap());
    }

    pub fn layer_path(&self) -> String {
        Layout::blob_path(self.manifest()["layers"][0]["digest"].as_str().unwrap())
    }

    /// Replaces the layer with `bytes` of `media_type`, whose uncompressed tar is `tar`.
    pub fn set_layer(&self, bytes: &[u8], media_type: &str, tar: &[u8]) {
        let old = self.manifest()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let (d, n) = self.write_blob(bytes);
        self.drop_blob(&old, &d);
        let mut c = self.config();
        c["rootfs"]["diff_ids"][0] = json!(sha256(tar));
        self.set_config(&c);
        let mut m = self.manifest();
        m["layers"][0] = json!({"mediaType": media_type, "digest": d, "size": n});
        self.set_manifest(&m);
    }

    /// Replaces the layer with a gzip of `tar`.
    pub fn set_tar_layer(&self, tar: &[u8]) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar).unwrap();
        let gz = gz.finish().unwrap();
        self.set_layer(&gz, "application/vnd.oci.image.layer.v1.tar+gzip", tar);
    }

    pub fn verify(&self, args: &[&str]) -> Out {
        verify(args, &self.dir)
    }
}
