//! `ocipack diff`: identical builds compare equal; each kind of difference is named, most
//! specific first; and, for generated trees, one changed file is reported as exactly that
//! path (property test).

use crate::common;
use crate::common::layouts;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use common::ocipack;
use common::tar::{Header, tar_file, tar_of};
use layouts::{CREATED_UNIX, Layout, Out, image, run_guarded, sample_tree};
use ocipack::diff::{Difference, diff_layouts};

fn diff(a: &Path, b: &Path, extra: &[&str]) -> Out {
    let mut c = ocipack();
    c.arg("diff").args(extra).arg(a).arg(b);
    run_guarded(c)
}

/// Builds `tree` into `<dir>/<name>`.
fn build(tree: &Path, dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    image(tree, &out, extra).assert(0, &[]);
    out
}

/// The non-derived differences, as displayed.
fn causes(d: &[Difference]) -> Vec<String> {
    d.iter()
        .filter(|d| !d.is_derived())
        .map(ToString::to_string)
        .collect()
}

#[test]
fn identical_builds_compare_equal() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    let a = build(&tree, t.path(), "a", &[]);
    let b = build(&tree, t.path(), "b", &[]);
    let out = diff(&a, &b, &[]);
    out.assert(0, &[]);
    assert_eq!(out.stdout, "");
    assert!(diff_layouts(&a, &b).unwrap().is_empty());
}

#[test]
fn config_fields_come_first_and_derived_digests_last() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    let a = build(&tree, t.path(), "a", &[]);
    let b = build(
        &tree,
        t.path(),
        "b",
        &["--env", "FOO=bar", "--user", "1000"],
    );
    let out = diff(&a, &b, &[]);
    out.assert(1, &[]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "config config.Env[1]: (absent) → \"FOO=bar\"");
    assert_eq!(lines[1], "config config.User: (absent) → \"1000\"");
    // Everything after the causes follows from them.
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.ends_with("(follows from the differences above)")),
        "{lines:#?}"
    );
    assert!(out.stdout.contains("manifest config.digest: \"sha256:"));
    assert!(
        out.stdout
            .contains("index.json manifests[0].digest: \"sha256:")
    );
}

#[test]
fn entry_changes_are_named_by_path_and_property() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    fs::write(tree.join("etc/old"), b"old").unwrap();
    let a = build(&tree, t.path(), "a", &[]);

    fs::set_permissions(tree.join("bin/hello"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(tree.join("etc/motd"), b"changed").unwrap();
    fs::remove_file(tree.join("etc/old")).unwrap();
    fs::write(tree.join("etc/new"), b"new!").unwrap();
    fs::set_permissions(tree.join("etc/new"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(tree.join("etc/hello")).unwrap();
    symlink("/bin/hello", tree.join("etc/hello")).unwrap();
    let b = build(&tree, t.path(), "b", &[]);

    let d = diff_layouts(&a, &b).unwrap();
    let c = causes(&d);
    assert_eq!(
        c,
        [
            "layer 0: bin/hello: mode 0755 → 0700",
            "layer 0: etc/hello: link target ../bin/hello → /bin/hello",
            "layer 0: etc/motd: size 4000 → 7",
            &format!(
                "layer 0: etc/motd: content {} → {}",
                common::oci::sha256("welcome\n".repeat(500).as_bytes()),
                common::oci::sha256(b"changed")
            ),
            "layer 0: + etc/new (file, 4 bytes) only in B",
            "layer 0: - etc/old (file, 3 bytes) only in A",
        ]
    );
    // The hard link to etc/motd shares its content through the link, so it is unchanged.
    assert!(d.iter().all(|x| x.entry_path() != Some("etc/motd.link")));
}

#[test]
fn mtime_changes() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    // An mtime before `created` survives clamping; --mtime fixed sets it to created.
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(tree.join("bin/hello"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let a = build(&tree, t.path(), "a", &[]);
    let b = build(&tree, t.path(), "b", &["--mtime", "fixed"]);
    let c = causes(&diff_layouts(&a, &b).unwrap());
    assert_eq!(
        c,
        [format!(
            "layer 0: bin/hello: mtime 1000000000 (2001-09-09T01:46:40Z) → {CREATED_UNIX} (2025-01-21T23:32:32Z)"
        )]
    );
}

#[test]
fn compression_only_differences() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    let a = build(&tree, t.path(), "a", &["--level", "1"]);
    let b = build(&tree, t.path(), "b", &["--level", "9"]);
    let z = build(&tree, t.path(), "z", &["--compression", "zstd"]);
    let out = diff(&a, &b, &[]);
    out.assert(
        1,
        &["layer 0: same files, different compressor output (diff_id sha256:"],
    );
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("layer 0: same files")
    );

    let c = causes(&diff_layouts(&a, &z).unwrap());
    assert_eq!(c.len(), 4, "{c:#?}");
    assert_eq!(
        c[0],
        "manifest layers[0].mediaType: \"application/vnd.oci.image.layer.v1.tar+gzip\" → \"application/vnd.oci.image.layer.v1.tar+zstd\""
    );
    assert!(
        c[1].contains("different compressor output")
            && c[1].contains("gzip, ")
            && c[1].contains("→ zstd, ")
    );
    // The readable name follows the compression.
    assert!(
        c[2].starts_with("layout file rootfs.tar.gz: symlink to blobs/sha256/")
            && c[2].ends_with("→ (absent)")
    );
    assert!(c[3].starts_with("layout file rootfs.tar.zst: (absent) → symlink to blobs/sha256/"));
}

#[test]
fn entry_order_and_tar_encoding() {
    let a = Layout::build(&[]);
    let b = Layout::build(&[]);
    let c = Layout::build(&[]);
    let ab = tar_of(&[tar_file(b"a", b"1"), tar_file(b"b", b"2")]);
    let ba = tar_of(&[tar_file(b"b", b"2"), tar_file(b"a", b"1")]);
    let mut ab_padded = ab.clone();
    ab_padded.extend_from_slice(&[0u8; 512 * 18]);
    a.set_tar_layer(&ab);
    b.set_tar_layer(&ba);
    c.set_tar_layer(&ab_padded);
    let d = causes(&diff_layouts(&a.dir, &b.dir).unwrap());
    assert_eq!(
        d,
        ["layer 0: entry order differs from position 0: A has a, B has b"]
    );
    let d = causes(&diff_layouts(&a.dir, &c.dir).unwrap());
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].starts_with("layer 0: same entries, different tar bytes"),
        "{d:#?}"
    );
}

#[test]
fn owners_devices_and_types() {
    let a = Layout::build(&[]);
    let b = Layout::build(&[]);
    a.set_tar_layer(&tar_of(&[
        Header::new(b"x", b'0').block(),
        Header::new(b"y", b'5').block(),
    ]));
    b.set_tar_layer(&tar_of(&[
        Header::new(b"x", b'0').uid(1000).block(),
        Header::new(b"y", b'2').link(b"x").block(),
    ]));
    let d = causes(&diff_layouts(&a.dir, &b.dir).unwrap());
    assert_eq!(
        d,
        [
            "layer 0: x: uid 0 → 1000",
            "layer 0: y: type directory → symlink",
            "layer 0: y: link target (none) → x",
        ]
    );
}

#[test]
fn layout_files_and_formatting() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    let a = build(&tree, t.path(), "a", &[]);
    let f = build(&tree, t.path(), "f", &["--names", "files"]);
    let c = causes(&diff_layouts(&a, &f).unwrap());
    assert!(
        c.iter().any(
            |l| l.starts_with("layout file rootfs.tar.gz: symlink to blobs/sha256/")
                && l.contains("→ file sha256:")
        ),
        "{c:#?}"
    );
    assert!(
        c.iter().any(|l| l.starts_with("layout file blobs/sha256/")
            && l.ends_with("file → symlink to ../../rootfs.tar.gz")),
        "{c:#?}"
    );

    // Same index value, other bytes.
    let b = build(&tree, t.path(), "b", &[]);
    let v: Value = serde_json::from_slice(&fs::read(b.join("index.json")).unwrap()).unwrap();
    fs::write(b.join("index.json"), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let c = causes(&diff_layouts(&a, &b).unwrap());
    assert_eq!(c.len(), 1, "{c:#?}");
    assert!(c[0].starts_with("layout file index.json: file sha256:"));
    assert!(c[0].ends_with("(the same JSON value in other bytes: key order or whitespace)"));
}

#[test]
fn descriptor_files_and_json_output() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    sample_tree(&tree);
    let a = build(&tree, t.path(), "a", &["--descriptor-file", "d.json"]);
    let b = build(
        &tree,
        t.path(),
        "b",
        &["--descriptor-file", "d.json", "--ref-name", "hello:latest"],
    );
    let out = diff(&a, &b, &["--file", "d.json", "--json"]);
    out.assert(1, &[]);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["identical"], json!(false));
    let first = &v["differences"][0];
    assert_eq!(first["kind"], json!("field"));
    assert_eq!(first["document"], json!("index.json"));
    assert_eq!(first["path"], json!("manifests[0].annotations"));
    assert_eq!(first["a"], Value::Null);
    let docs: BTreeSet<&str> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["document"].as_str())
        .collect();
    assert_eq!(docs, BTreeSet::from(["index.json", "d.json"]));
}

#[test]
fn invalid_layouts_are_refused() {
    let a = Layout::build(&[]);
    let b = Layout::build(&[]);
    let p = b.layer_path();
    let mut bytes = fs::read(b.path(&p)).unwrap();
    bytes[30] ^= 1;
    fs::write(b.path(&p), bytes).unwrap();
    diff(&a.dir, &b.dir, &[]).assert(
        2,
        &[
            "is not a valid layout",
            "tampered or corrupt",
            "`ocipack verify` explains",
        ],
    );
    diff(&a.dir, &a.dir.join("nope"), &[]).assert(2, &["does not exist"]);
}

// ---------------------------------------------------------------- property test

/// Generated trees: up to 8 files below up to two directory levels, with contents and modes.
fn trees() -> impl Strategy<Value = BTreeMap<String, (Vec<u8>, u32)>> {
    prop::collection::btree_map(
        "[a-c]{1,2}(/[a-c]{1,2}){0,2}",
        (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::sample::select(vec![0o644u32, 0o755, 0o600]),
        ),
        1..8,
    )
    .prop_filter("a file cannot also be a directory", |m| {
        m.keys()
            .all(|k| !m.keys().any(|o| o.starts_with(&format!("{k}/"))))
    })
}

fn write_tree(root: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) {
    for (name, (content, mode)) in files {
        let p = root.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    // Directory modes must not depend on the umask of whoever runs the test.
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
                dirs.push(p);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn self_diff_is_empty_and_one_change_is_exactly_that_path(
        files in trees(),
        pick in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..50),
    ) {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        fs::create_dir(&tree).unwrap();
        write_tree(&tree, &files);
        let a = build(&tree, t.path(), "a", &[]);
        let a2 = build(&tree, t.path(), "a2", &[]);
        prop_assert!(diff_layouts(&a, &a).unwrap().is_empty());
        prop_assert!(diff_layouts(&a, &a2).unwrap().is_empty());

        let name = files.keys().nth(pick.index(files.len())).unwrap().clone();
        let mut changed = files[&name].0.clone();
        changed.extend_from_slice(&extra);
        fs::write(tree.join(&name), &changed).unwrap();
        let b = build(&tree, t.path(), "b", &[]);
        let d = diff_layouts(&a, &b).unwrap();
        let paths: BTreeSet<&str> = d.iter().filter_map(Difference::entry_path).collect();
        prop_assert_eq!(paths, BTreeSet::from([name.as_str()]));
        // Everything else is a digest, size or name that follows from it.
        for x in &d {
            prop_assert!(x.entry_path().is_some() || x.is_derived(), "unexpected {}", x);
        }
    }
}

/// Names that differ only in ways a lossy or unescaped display hides — a newline against a
/// literal backslash-n, two different bytes that are not UTF-8 — print differently.
#[test]
fn names_that_differ_print_differently() {
    let t = tempfile::tempdir().unwrap();
    let (ta, tb) = (t.path().join("ta"), t.path().join("tb"));
    for (tree, names) in [
        (&ta, [&b"a\nb"[..], &b"z\xff"[..]]),
        (&tb, [&b"a\\nb"[..], &b"z\xfe"[..]]),
    ] {
        fs::create_dir_all(tree).unwrap();
        for n in names {
            use std::os::unix::ffi::OsStrExt;
            fs::write(tree.join(std::ffi::OsStr::from_bytes(n)), b"x").unwrap();
        }
    }
    let a = build(&ta, t.path(), "a", &[]);
    let b = build(&tb, t.path(), "b", &[]);
    let o = diff(&a, &b, &[]);
    o.assert(1, &[]);
    for want in [
        "- a\\nb (file, 1 bytes) only in A",
        "+ a\\\\nb (file, 1 bytes) only in B",
        "- z\\xff (file, 1 bytes) only in A",
        "+ z\\xfe (file, 1 bytes) only in B",
    ] {
        assert!(o.stdout.contains(want), "{want:?} not in\n{}", o.stdout);
    }
    assert!(!o.stdout.contains('\u{fffd}'), "{}", o.stdout);
}
