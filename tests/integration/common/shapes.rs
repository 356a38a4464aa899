//! Projects shaped like the Official Images' repositories of many images, with tiny inputs:
//! [`busybox`] (three variants with busybox's real architecture subsets and an unsuffixed
//! `from` entry), and [`SMALL_BUSYBOX`], two of them on four architectures, on dist branches.

use std::fs;
use std::path::{Path, PathBuf};

/// The architectures of busybox's library file, in bashbrew's order.
pub const BUSYBOX_ARCHES: [&str; 9] = [
    "amd64", "arm32v5", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
];

/// The variants of busybox's library file with their architectures (glibc has no
/// arm32v6, uclibc six, musl no arm32v5: docker-library/busybox's `versions.json` today).
pub const BUSYBOX_VARIANTS: [(&str, &[&str]); 3] = [
    (
        "glibc",
        &[
            "amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
        ],
    ),
    (
        "uclibc",
        &["amd64", "arm32v5", "arm32v7", "arm64v8", "i386", "riscv64"],
    ),
    (
        "musl",
        &[
            "amd64", "arm32v6", "arm32v7", "arm64v8", "i386", "ppc64le", "riscv64", "s390x",
        ],
    ),
];

/// The tags of an entry of [`busybox`]: `1.36.1-glibc, 1.36-glibc, 1-glibc, glibc`, or
/// for the unsuffixed entry (`variant` None) `1.36.1, 1.36, 1, latest`.
pub fn busybox_tags(variant: Option<&str>) -> Vec<String> {
    match variant {
        Some(v) => vec![
            format!("1.36.1-{v}"),
            format!("1.36-{v}"),
            format!("1-{v}"),
            v.to_string(),
        ],
        None => ["1.36.1", "1.36", "1", "latest"].map(String::from).to_vec(),
    }
}

/// Writes a busybox-shaped project at `dir` (created): per variant and architecture a
/// one-file input `rootfs/<variant>/<arch>/busybox` (a text naming both, so every layout
/// differs), layouts at `latest/<variant>/<arch>` as docker-library/busybox has them, the
/// three variant entries and an unsuffixed entry `from = ["glibc", "uclibc", "musl"]`;
/// `extra` is appended to ocipack.toml. Returns `dir`.
pub fn busybox(dir: &Path, extra: &str) -> PathBuf {
    let mut toml = String::from(
        "name = \"busybox\"\n\
         created = 2024-01-01T00:00:00Z\n",
    );
    let list: Vec<String> = BUSYBOX_ARCHES.iter().map(|a| format!("{a:?}")).collect();
    toml.push_str(&format!("architectures = [{}]\n", list.join(", ")));
    toml.push_str(
        "output = \"latest/{image}/{arch}\"\n\n\
         [image]\n\
         cmd = [\"sh\"]\n\n\
         [[input]]\n\
         source = \"rootfs/{image}/{arch}/busybox\"\n\
         dest = \"/bin/busybox\"\n\
         mode = \"0755\"\n",
    );
    for (variant, arches) in BUSYBOX_VARIANTS {
        let tags: Vec<String> = busybox_tags(Some(variant))
            .iter()
            .map(|t| format!("{t:?}"))
            .collect();
        let arch_list: Vec<String> = arches.iter().map(|a| format!("{a:?}")).collect();
        toml.push_str(&format!(
            "\n[[images]]\nname = \"{variant}\"\ntags = [{}]\narchitectures = [{}]\n",
            tags.join(", "),
            arch_list.join(", ")
        ));
        for a in arches {
            let d = dir.join("rootfs").join(variant).join(a);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("busybox"), format!("busybox {variant} {a}\n")).unwrap();
        }
    }
    let tags: Vec<String> = busybox_tags(None)
        .iter()
        .map(|t| format!("{t:?}"))
        .collect();
    toml.push_str(&format!(
        "\n[[images]]\nname = \"default\"\ntags = [{}]\nfrom = [\"glibc\", \"uclibc\", \"musl\"]\n",
        tags.join(", ")
    ));
    toml.push_str(extra);
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("ocipack.toml"), toml).unwrap();
    dir.to_path_buf()
}

/// The architectures of a [`busybox`] variant (None: the unsuffixed entry, their union).
pub fn busybox_arches(variant: Option<&str>) -> Vec<&'static str> {
    match variant {
        Some(v) => BUSYBOX_VARIANTS
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, a)| a.to_vec())
            .unwrap_or_default(),
        None => BUSYBOX_ARCHES.to_vec(),
    }
}

/// The variant whose layout the unsuffixed entry uses for `arch`: the first of glibc,
/// uclibc, musl that has it.
pub fn busybox_source(arch: &str) -> &'static str {
    BUSYBOX_VARIANTS
        .iter()
        .find(|(_, a)| a.contains(&arch))
        .map(|(n, _)| *n)
        .expect("every busybox architecture is in a variant")
}

/// glibc and musl with their own architecture subsets, and `latest` taking each
/// architecture from the first of them that has it; all on `dist-{arch}` (as in
/// docs/guides/many-images.md). Its inputs are `rootfs/IMAGE/ARCH` for [`SMALL_BUSYBOX_LAYOUTS`].
pub const SMALL_BUSYBOX: &str = r#"name = "busybox"
created = 2026-07-31T00:00:00Z
architectures = ["amd64", "arm32v5", "arm32v6", "s390x"]

[[input]]
rootfs = "rootfs/{image}/{arch}"

[library]
maintainers = ["A <a@example.invalid> (@a)"]
git-repo = "https://example.invalid/busybox.git"
commit-branch = "dist-{arch}"

[[images]]
name = "glibc"
tags = ["1-glibc", "glibc"]
architectures = ["amd64", "arm32v5", "s390x"]
output = "latest/glibc/{arch}"

[[images]]
name = "musl"
tags = ["1-musl", "musl"]
architectures = ["amd64", "arm32v6", "s390x"]
output = "latest/musl/{arch}"

[[images]]
name = "latest"
tags = ["1", "latest"]
from = ["glibc", "musl"]
"#;

/// The layouts [`SMALL_BUSYBOX`] builds, as (image, architecture).
pub const SMALL_BUSYBOX_LAYOUTS: [(&str, &str); 6] = [
    ("glibc", "amd64"),
    ("glibc", "arm32v5"),
    ("glibc", "s390x"),
    ("musl", "amd64"),
    ("musl", "arm32v6"),
    ("musl", "s390x"),
];

/// A git repository at `root` (on `master`, as the real repositories: GitFetch is then
/// bashbrew's default) whose directory `sub` (empty: the root) holds a project with `toml`
/// and, per `(image, arch)`, a one-file root filesystem `rootfs/<image>/<arch>/etc/id` (its
/// content names both); committed. Returns the project directory.
pub fn project_repo<I: AsRef<str>, A: AsRef<str>>(
    root: &Path,
    sub: &Path,
    toml: &str,
    layouts: &[(I, A)],
) -> PathBuf {
    let dir = root.join(sub);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("ocipack.toml"), toml).unwrap();
    for (image, arch) in layouts {
        let (image, arch) = (image.as_ref(), arch.as_ref());
        let etc = dir.join("rootfs").join(image).join(arch).join("etc");
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("id"), format!("{image} {arch}\n")).unwrap();
    }
    super::git::git(root, &["init", "-q", "-b", "master"], None);
    super::git::commit_all(root, "@1785000000 +0000");
    dir
}
