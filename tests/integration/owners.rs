//! Owners and the setuid/setgid bits (issue 15): a tar's numeric owners are kept by default,
//! a tree's become 0:0, `--owners zero|keep` (or `owners = …` in a project) applies to both,
//! `--file` is always 0:0; and a setuid or setgid entry whose owner the build would change is
//! refused, each listed (the first ten of each input, and a count of the rest). Checked with
//! GNU tar and the tar crate reading the layers, `ocipack verify`, and a real Debian root
//! filesystem (mmdebstrap) run in podman, which then feeds the debian example
//! (`debian::check_example`).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::cli::{self, assert_error, os, show, stderr, stdout};
use common::{Podman, assert_exit, ocipack, require_tools, run_bounded, snapshot};

fn chown(p: &Path, uid: u32, gid: u32) {
    rustix::fs::chownat(
        rustix::fs::CWD,
        p,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `ocipack image INPUTS --arch amd64 --created … -o OUT --compression none EXTRA…`.
fn image(inputs: &[&std::ffi::OsStr], out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--compression", "none"];
    args.extend_from_slice(extra);
    run_bounded(
        &mut cli::image(inputs, out, &args),
        Duration::from_secs(120),
    )
}

/// An uncompressed layer as GNU tar lists it with numeric owners: name → "MODE UID/GID".
fn listing(layer: &Path) -> BTreeMap<String, String> {
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(layer)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", cli::text(&o.stderr));
    stdout(&o)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5].to_string(), format!("{} {}", f[0], f[1]))
        })
        .collect()
}

/// One tar entry of a test archive.
struct E<'a> {
    name: &'a str,
    kind: tar::EntryType,
    mode: u32,
    owner: (u64, u64),
    link: &'a str,
    /// pax records for this entry (written in an `x` header before it).
    pax: &'a [(&'a str, &'a str)],
}

fn entry(name: &str, kind: tar::EntryType, mode: u32, owner: (u64, u64)) -> E<'_> {
    E {
        name,
        kind,
        mode,
        owner,
        link: "",
        pax: &[],
    }
}

/// A tar of `entries` (files hold their name), with user and group names set, as OS build
/// tools write them.
fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for x in entries {
        if !x.pax.is_empty() {
            let data: Vec<u8> = x
                .pax
                .iter()
                .flat_map(|(k, v)| common::tar::pax_record(k, v.as_bytes()))
                .collect();
            let mut h = tar::Header::new_ustar();
            h.set_path("PaxHeaders/x").unwrap();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        let data: &[u8] = if x.kind == tar::EntryType::Regular {
            x.name.as_bytes()
        } else {
            b""
        };
        let mut h = tar::Header::new_ustar();
        h.set_path(x.name).unwrap();
        h.set_entry_type(x.kind);
        h.set_mode(x.mode);
        // Ids that do not fit the octal field are given by pax records only.
        h.set_uid(if x.owner.0 < 0o7777777 { x.owner.0 } else { 0 });
        h.set_gid(if x.owner.1 < 0o7777777 { x.owner.1 } else { 0 });
        h.set_username("someone").unwrap();
        h.set_groupname("somegroup").unwrap();
        h.set_mtime(1_600_000_000);
        if !x.link.is_empty() {
            h.set_link_name(x.link).unwrap();
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn write_tar(dir: &Path, name: &str, entries: &[E]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, tar_of(entries)).unwrap();
    p
}

use tar::EntryType::{Directory as D, Link as L, Regular as F};

/// A tree as a checkout by uid 1000 would hold it, with every kind of special bit.
fn special_tree(root: &Path) {
    for d in ["bin", "srv", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
        chmod(&root.join(d), 0o755);
    }
    let file = |rel: &str, mode, uid, gid| {
        let p = root.join(rel);
        fs::write(&p, rel).unwrap();
        chown(&p, uid, gid);
        chmod(&p, mode);
    };
    file("bin/tool", 0o4755, 1000, 1000); // setuid user 1000: refused
    file("bin/wall", 0o2755, 0, 5); // setgid tty: refused
    fs::hard_link(root.join("bin/wall"), root.join("bin/wall-link")).unwrap(); // the same file
    file("bin/su", 0o4755, 0, 7); // setuid root: its gid changes, but it is not setgid
    file("bin/odd\nname", 0o4700, 1000, 0); // refused, shown escaped
    file("plain", 0o644, 1000, 1000);
    chown(&root.join("srv"), 0, 50);
    chmod(&root.join("srv"), 0o2775); // a setgid directory: refused
    chown(&root.join("tmp"), 1000, 1000);
    chmod(&root.join("tmp"), 0o1777); // sticky grants nothing: allowed
}

#[test]
fn a_tree_with_setuid_or_setgid_entries_of_other_owners_is_refused_listing_each() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    special_tree(&tree);
    let out = t.path().join("out");
    let input = [os("--rootfs"), tree.as_os_str()];
    for extra in [&[][..], &["--owners", "zero"][..]] {
        let o = image(&input, &out, extra);
        let e = assert_error(&o, 2);
        let why = if extra.is_empty() {
            "(the default for directory trees)"
        } else {
            "(--owners \"zero\")"
        };
        for want in [
            format!(
                "ocipack: error: --rootfs \"{}\": 5 entries ",
                tree.display()
            ),
            format!("would become setuid or setgid root when the owners become 0:0 {why}: "),
            // Every entry, by path; each name of a hard-linked file.
            "/bin/odd\\nname (setuid, mode 4700, input owner 1000:0), \
             /bin/tool (setuid, mode 4755, input owner 1000:1000), \
             /bin/wall (setgid, mode 2755, input owner 0:5), \
             /bin/wall-link (setgid, mode 2755, input owner 0:5), \
             /srv/ (setgid, mode 2775, input owner 0:50); "
                .into(),
            "keep the input's owners with --owners keep, give such a file with \
             --file SRC:DEST:MODE (its owner is always 0:0), or clear those bits"
                .into(),
        ] {
            assert!(e.contains(&want), "{want:?} not in\n{e}");
        }
        for allowed in ["/bin/su", "/tmp/", "/plain"] {
            assert!(
                !e.contains(&format!("{allowed} (")),
                "{allowed} is not refused:\n{e}"
            );
        }
        assert!(!out.exists(), "nothing is written");
    }

    // Kept, every owner and bit is the input's; --preserve-owners is the same option.
    let o = image(&input, &out, &["--owners", "keep"]);
    assert_exit(&o, 0);
    let l = listing(&out.join("rootfs.tar"));
    for (name, want) in [
        ("bin/tool", "-rwsr-xr-x 1000/1000"),
        ("bin/wall", "-rwxr-sr-x 0/5"),
        ("bin/wall-link", "hrwxr-sr-x 0/5"),
        ("bin/su", "-rwsr-xr-x 0/7"),
        ("srv/", "drwxrwsr-x 0/50"),
        ("tmp/", "drwxrwxrwt 1000/1000"),
        ("plain", "-rw-r--r-- 1000/1000"),
    ] {
        assert_eq!(l.get(name).map(String::as_str), Some(want), "{name}: {l:?}");
    }
    let alias = t.path().join("alias");
    assert_exit(&image(&input, &alias, &["--preserve-owners"]), 0);
    assert_eq!(snapshot(&alias), snapshot(&out));
    let both = t.path().join("both");
    assert_exit(
        &image(&input, &both, &["--preserve-owners", "--owners", "keep"]),
        0,
    );
    assert_eq!(snapshot(&both), snapshot(&out));

    // Without the refused entries the tree's owners become 0:0 by default, bits kept.
    for p in ["bin/tool", "bin/wall", "bin/wall-link", "bin/odd\nname"] {
        fs::remove_file(tree.join(p)).unwrap();
    }
    chmod(&tree.join("srv"), 0o775);
    let zero = t.path().join("zero");
    assert_exit(&image(&input, &zero, &[]), 0);
    let l = listing(&zero.join("rootfs.tar"));
    assert_eq!(l["bin/su"], "-rwsr-xr-x 0/0");
    assert_eq!(l["tmp/"], "drwxrwxrwt 0/0");
    assert_eq!(l["plain"], "-rw-r--r-- 0/0");
}

/// The shape of a Debian root filesystem's special entries.
fn debian_like() -> Vec<E<'static>> {
    vec![
        entry("etc/", D, 0o755, (0, 0)),
        entry("etc/shadow", F, 0o640, (0, 42)),
        entry("home/", D, 0o755, (0, 0)),
        entry("home/nobody/", D, 0o755, (65534, 65534)),
        entry("usr/", D, 0o755, (0, 0)),
        entry("usr/bin/", D, 0o755, (0, 0)),
        entry("usr/bin/passwd", F, 0o4755, (0, 0)),
        entry("usr/sbin/", D, 0o755, (0, 0)),
        entry("usr/sbin/unix_chkpwd", F, 0o2755, (0, 42)),
        entry("var/", D, 0o755, (0, 0)),
        entry("var/mail/", D, 0o2775, (0, 8)),
    ]
}

#[test]
fn a_tars_owners_are_kept_by_default_and_zero_only_where_no_privilege_is_created() {
    let t = tempfile::tempdir().unwrap();
    let tar = write_tar(t.path(), "rootfs.tar", &debian_like());
    let input = [os("--tar"), tar.as_os_str()];
    let out = t.path().join("out");
    assert_exit(&image(&input, &out, &[]), 0);
    let l = listing(&out.join("rootfs.tar"));
    let want: BTreeMap<String, String> = [
        ("etc/", "drwxr-xr-x 0/0"),
        ("etc/shadow", "-rw-r----- 0/42"),
        ("home/", "drwxr-xr-x 0/0"),
        ("home/nobody/", "drwxr-xr-x 65534/65534"),
        ("usr/", "drwxr-xr-x 0/0"),
        ("usr/bin/", "drwxr-xr-x 0/0"),
        ("usr/bin/passwd", "-rwsr-xr-x 0/0"),
        ("usr/sbin/", "drwxr-xr-x 0/0"),
        ("usr/sbin/unix_chkpwd", "-rwxr-sr-x 0/42"),
        ("var/", "drwxr-xr-x 0/0"),
        ("var/mail/", "drwxrwsr-x 0/8"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(l, want);
    // User and group names are dropped all the same.
    let mut a = tar::Archive::new(fs::File::open(out.join("rootfs.tar")).unwrap());
    for member in a.entries().unwrap() {
        let member = member.unwrap();
        let h = member.header();
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
    }
    // verify no longer calls a numeric owner a smell.
    let v = ocipack().arg("verify").arg(&out).output().unwrap();
    assert_exit(&v, 0);
    assert!(!cli::all(&v).contains("warning"), "{}", show(&v));
    // --owners keep and --preserve-owners say what the default does.
    for extra in [&["--owners", "keep"][..], &["--preserve-owners"][..]] {
        let same = t.path().join("same");
        assert_exit(&image(&input, &same, extra), 0);
        assert_eq!(snapshot(&same), snapshot(&out), "{extra:?}");
    }

    // 0:0 would make unix_chkpwd setgid root and /var/mail a setgid-root directory.
    let refused = t.path().join("refused");
    let o = image(&input, &refused, &["--owners", "zero"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains(&format!(
            "ocipack: error: --tar \"{}\": 2 entries would become setuid or setgid root when \
             the owners become 0:0 (--owners \"zero\"): /usr/sbin/unix_chkpwd (setgid, mode \
             2755, input owner 0:42), /var/mail/ (setgid, mode 2775, input owner 0:8); keep \
             the input's owners with --owners keep",
            tar.display()
        )),
        "{e}"
    );
    assert!(!refused.exists());
    // The two spellings may not disagree.
    let o = image(&input, &refused, &["--owners", "zero", "--preserve-owners"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains("--owners \"zero\" and --preserve-owners disagree: give one of them"),
        "{e}"
    );
    let o = image(&input, &refused, &["--owners", "root"]);
    let e = assert_error(&o, 2);
    assert!(e.contains("--owners") && e.contains("root"), "{e}");
    assert!(!refused.exists());

    // Without setgid entries of another group, --owners zero makes every owner 0:0.
    let plain = write_tar(
        t.path(),
        "plain.tar",
        &[
            entry("etc/", D, 0o755, (0, 0)),
            entry("etc/shadow", F, 0o640, (0, 42)),
            entry("home/nobody/", D, 0o755, (65534, 65534)),
            entry("usr/bin/passwd", F, 0o4755, (0, 0)),
            entry("usr/bin/wall", F, 0o2755, (7, 0)),
            entry("tmp/", D, 0o1777, (1000, 1000)),
        ],
    );
    let zero = t.path().join("zero");
    assert_exit(
        &image(
            &[os("--tar"), plain.as_os_str()],
            &zero,
            &["--owners", "zero"],
        ),
        0,
    );
    let l = listing(&zero.join("rootfs.tar"));
    assert!(l.values().all(|v| v.ends_with(" 0/0")), "{l:?}");
    assert_eq!(l["usr/bin/wall"], "-rwxr-sr-x 0/0");
    assert_eq!(l["tmp/"], "drwxrwxrwt 0/0");
}

#[test]
fn each_hard_link_entry_is_judged_by_the_mode_and_owner_it_carries() {
    let t = tempfile::tempdir().unwrap();
    let link = |name, target, mode, owner| E {
        link: target,
        ..entry(name, L, mode, owner)
    };
    // The setgid bit on the file, not on its link; then on the link only (a hard link
    // entry's header is applied to the file by some extractors).
    let tar = write_tar(
        t.path(),
        "links.tar",
        &[
            entry("a", F, 0o2755, (0, 42)),
            link("b", "a", 0o755, (0, 0)),
            entry("c", F, 0o755, (0, 0)),
            link("d", "c", 0o2755, (0, 42)),
        ],
    );
    let input = [os("--tar"), tar.as_os_str()];
    let out = t.path().join("out");
    let o = image(&input, &out, &["--owners", "zero"]);
    let e = assert_error(&o, 2);
    assert!(
        e.contains(
            "2 entries would become setuid or setgid root when the owners become 0:0 \
             (--owners \"zero\"): /a (setgid, mode 2755, input owner 0:42), /d (setgid, \
             mode 2755, input owner 0:42);"
        ),
        "{e}"
    );
    assert!(!e.contains("/b ") && !e.contains("/c "), "{e}");
    // Kept, the names of each file disagree on its mode and owner: refused too (see
    // `the_names_of_one_file_must_agree_on_its_mode_owner_and_xattrs`).
    let e = assert_error(&image(&input, &out, &[]), 2);
    assert!(e.contains("/a and /b are one file (hard links)"), "{e}");
    assert!(!out.exists());
}

/// Attack: a tar whose hard link entry disagrees with the file it names: `z` is setuid
/// root, its link `a` says mode 0755 owner 1000:1000. GNU tar and umoci give the file the
/// header that created it (setuid root); containerd and podman apply each link entry in turn
/// (so, in the input's order, a plain file of 1000's). The layer gives the content to the
/// first name in path order, `a`, and makes `z` the link: the order flipped, and podman
/// unpacked a setuid-root `/z` from ocipack's layer of an input it reads as a plain file
/// (owners kept: no owner was changed, so the setuid rule never looked). The names of one
/// file must carry one mode, owner and set of xattrs, else the input is refused; a link
/// entry without xattrs has its target's (GNU tar writes them once), and every name carries
/// them in the layer.
#[test]
fn the_names_of_one_file_must_agree_on_its_mode_owner_and_xattrs() {
    let t = tempfile::tempdir().unwrap();
    let link = |name, target, mode, owner| E {
        link: target,
        ..entry(name, L, mode, owner)
    };
    let tar = write_tar(
        t.path(),
        "flip.tar",
        &[
            entry("z", F, 0o4755, (0, 0)),
            link("a", "z", 0o755, (1000, 1000)),
        ],
    );
    let out = t.path().join("out");
    for extra in [&[][..], &["--owners", "keep"]] {
        let e = assert_error(&image(&[os("--tar"), tar.as_os_str()], &out, extra), 2);
        assert!(
            e.contains(&format!(
                "--tar \"{}\": /a and /z are one file (hard links) whose entries \
                 differ: /a has mode 0755, owner 1000:1000, /z has mode 4755, owner 0:0;",
                tar.display()
            )),
            "{e}"
        );
        assert!(!out.exists());
    }
    // Made 0:0, the owners agree but the modes still do not.
    let e = assert_error(
        &image(&[os("--tar"), tar.as_os_str()], &out, &["--owners", "zero"]),
        2,
    );
    assert!(
        e.contains("/a has mode 0755, owner 0:0, /z has mode 4755, owner 0:0"),
        "{e}"
    );
    // xattrs: a link entry carrying a capability its file lacks is ignored by GNU tar and
    // umoci and applied by containerd: refused. Without xattrs of its own, the link names
    // the file its target is, and carries the target's xattrs in the layer.
    let cap = [("SCHILY.xattr.security.capability", "\u{1}\0\0\u{2}\0 ")];
    let tar = write_tar(
        t.path(),
        "cap-on-link.tar",
        &[
            entry("z", F, 0o755, (0, 0)),
            E {
                pax: &cap,
                ..link("a", "z", 0o755, (0, 0))
            },
        ],
    );
    let e = assert_error(
        &image(&[os("--tar"), tar.as_os_str()], &out, &["--xattrs"]),
        2,
    );
    assert!(
        e.contains(
            "/a and /z are one file (hard links) whose entries differ in their \
             extended attributes;"
        ),
        "{e}"
    );
    let tar = write_tar(
        t.path(),
        "cap-on-file.tar",
        &[
            E {
                pax: &cap,
                ..entry("z", F, 0o755, (0, 0))
            },
            link("a", "z", 0o755, (0, 0)),
        ],
    );
    assert_exit(
        &image(&[os("--tar"), tar.as_os_str()], &out, &["--xattrs"]),
        0,
    );
    let layer = fs::read(out.join("rootfs.tar")).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&layer[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let caps: Vec<Vec<u8>> = e
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|x| x.unwrap())
            .filter(|x| x.key() == Ok("SCHILY.xattr.security.capability"))
            .map(|x| x.value_bytes().to_vec())
            .collect();
        names.push((e.path().unwrap().display().to_string(), caps));
    }
    let want = b"\x01\0\0\x02\0 ".to_vec();
    assert_eq!(
        names,
        [
            ("a".to_string(), vec![want.clone()]),
            ("z".to_string(), vec![want])
        ]
    );
}

/// Attack: a tar's hard link naming a file that another input gave, or a later entry of
/// its own. Links were resolved against every input given so far, so `bin/su`, a setuid-root
/// link entry in the tar, became a second name of the tree's own `/bin/sh`: an extractor
/// that applies a link entry's mode to the file (containerd, podman) made the tree's shell
/// setuid root. A link to a later entry gave a layer from an input no extractor can unpack
/// (the target must exist when the link is made). Both are refused: a hard link names an
/// earlier entry of its own archive, the rule `ocipack verify` holds a layer to.
#[test]
fn a_tar_hard_link_names_an_earlier_entry_of_its_own_archive() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/sh"), b"#!/bin/sh\n").unwrap();
    chmod(&tree.join("bin/sh"), 0o755);
    let su = E {
        link: "bin/sh",
        ..entry("bin/su", L, 0o4755, (0, 0))
    };
    let tar = write_tar(t.path(), "su.tar", &[su]);
    let out = t.path().join("out");
    let o = image(
        &[
            os("--rootfs"),
            tree.as_os_str(),
            os("--tar"),
            tar.as_os_str(),
        ],
        &out,
        &[],
    );
    let e = assert_error(&o, 2);
    assert!(
        e.contains(&format!(
            "--tar \"{}\": hard link /bin/su points to /bin/sh, which is not an earlier entry \
             of the archive",
            tar.display()
        )),
        "{e}"
    );
    assert!(!out.exists());
    let later = E {
        link: "z",
        ..entry("a", L, 0o644, (0, 0))
    };
    let tar = write_tar(
        t.path(),
        "later.tar",
        &[later, entry("z", F, 0o644, (0, 0))],
    );
    let e = assert_error(&image(&[os("--tar"), tar.as_os_str()], &out, &[]), 2);
    assert!(
        e.contains("hard link /a points to /z, which is not an earlier entry of the archive"),
        "{e}"
    );
    assert!(!out.exists());
}

/// Attack: a tar giving one directory twice, `d/` setgid root (2775 0:0) and then plain
/// (0755 0:0). ocipack kept the first header (the rule that merges a directory two inputs
/// give), while GNU tar and umoci apply the last and podman refuses the archive: the layer
/// held a setgid-root `/d` where every extractor of the input made a plain one, owners kept
/// or made 0:0. Refused, naming both headers; a directory repeated alike is still one.
#[test]
fn a_directory_a_tar_gives_twice_must_be_given_alike() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let tar = write_tar(
        t.path(),
        "twice.tar",
        &[
            entry("d/", D, 0o2775, (0, 0)),
            entry("d/", D, 0o755, (0, 0)),
        ],
    );
    for extra in [&[][..], &["--owners", "zero"]] {
        let e = assert_error(&image(&[os("--tar"), tar.as_os_str()], &out, extra), 2);
        assert!(
            e.contains(&format!(
                "--tar \"{}\": entry \"d/\" gives the directory /d a second time, with another \
                 mode, owner or extended attributes (mode 2775, owner 0:0, then mode 0755, \
                 owner 0:0)",
                tar.display()
            )),
            "{e}"
        );
        assert!(!out.exists());
    }
    // Made 0:0, a group that differs only in the input still makes the modes differ.
    let tar = write_tar(
        t.path(),
        "regroup.tar",
        &[
            entry("d/", D, 0o2775, (0, 0)),
            entry("d/", D, 0o755, (0, 42)),
        ],
    );
    let o = image(&[os("--tar"), tar.as_os_str()], &out, &["--owners", "zero"]);
    assert!(assert_error(&o, 2).contains("a second time"));
    let tar = write_tar(
        t.path(),
        "alike.tar",
        &[
            entry("d/", D, 0o2775, (0, 50)),
            entry("d/f", F, 0o644, (0, 0)),
            entry("d/", D, 0o2775, (0, 50)),
        ],
    );
    assert_exit(&image(&[os("--tar"), tar.as_os_str()], &out, &[]), 0);
    assert_eq!(listing(&out.join("rootfs.tar"))["d/"], "drwxrwsr-x 0/50");
}

/// Attack: a tar of 100,000 setuid entries owned by 1000, made 0:0. The refusal listed
/// every one: a single 5.5 MB error line. It lists the first ten by path and counts the rest.
#[test]
fn a_refusal_of_100000_entries_is_one_short_line() {
    let t = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..100_000)
        .map(|i| format!("d{:03}/f{i:06}", i / 1000))
        .collect();
    let entries: Vec<E> = names
        .iter()
        .map(|n| entry(n, F, 0o4755, (1000, 0)))
        .collect();
    let tar = write_tar(t.path(), "many.tar", &entries);
    let out = t.path().join("out");
    let o = image(&[os("--tar"), tar.as_os_str()], &out, &["--owners", "zero"]);
    let e = assert_error(&o, 2);
    assert!(e.len() < 2000, "{} bytes: {}", e.len(), &e[..2000]);
    assert!(
        e.contains(
            "100000 entries would become setuid or setgid root when the owners become 0:0 \
             (--owners \"zero\"): /d000/f000000 (setuid, mode 4755, input owner 1000:0), "
        ) && e.contains(
            "/d000/f000009 (setuid, mode 4755, input owner 1000:0), and 99990 more; keep the \
             input's owners with --owners keep"
        ),
        "{e}"
    );
    assert!(!out.exists());
}

/// Decision, not a break: file capabilities (`security.capability`, kept with `--xattrs`)
/// are kept as they are when owners become 0:0. Unlike the setuid and setgid bits they do
/// not depend on the file's owner: whoever may execute the file gets them, before and after
/// (the owner decides who may, for this file as for every other). So `cap_setuid+ep` on a
/// tree's file owned by 1000 is built, 0:0 with its capability; the same file also setuid
/// is refused by the setuid rule.
#[test]
fn file_capabilities_do_not_depend_on_the_owner_and_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let prog = tree.join("prog");
    fs::write(&prog, b"#!/bin/sh\n").unwrap();
    // VFS_CAP_REVISION_2 with the effective flag; permitted: CAP_SETUID (bit 7).
    let cap: [u8; 20] = [
        1, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let set_cap = |mode| {
        // chown drops a file's capabilities: set them last.
        chown(&prog, 1000, 1000);
        chmod(&prog, mode);
        rustix::fs::setxattr(
            &prog,
            "security.capability",
            &cap,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    };
    set_cap(0o755);
    let out = t.path().join("out");
    let input = [os("--rootfs"), tree.as_os_str()];
    assert_exit(&image(&input, &out, &["--xattrs"]), 0);
    let layer = fs::read(out.join("rootfs.tar")).unwrap();
    let mut a = tar::Archive::new(&layer[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str(), Some("prog"));
    assert_eq!(
        (e.header().uid().unwrap(), e.header().gid().unwrap()),
        (0, 0)
    );
    let caps: Vec<Vec<u8>> = e
        .pax_extensions()
        .unwrap()
        .into_iter()
        .flatten()
        .map(|x| x.unwrap())
        .filter(|x| x.key() == Ok("SCHILY.xattr.security.capability"))
        .map(|x| x.value_bytes().to_vec())
        .collect();
    assert_eq!(caps, [cap.to_vec()]);
    set_cap(0o4755);
    let e = assert_error(&image(&input, &out, &["--xattrs"]), 2);
    assert!(
        e.contains("/prog (setuid, mode 4755, input owner 1000:1000)"),
        "{e}"
    );
}

#[test]
fn a_kept_id_must_be_a_linux_id() {
    let t = tempfile::tempdir().unwrap();
    let with_uid = |name: &str, uid: &str, mode: u32| {
        let owner = (uid.parse().unwrap(), 0);
        write_tar(
            t.path(),
            name,
            &[E {
                pax: &[("uid", uid)],
                ..entry("f", F, mode, owner)
            }],
        )
    };
    // 2^32 - 2 is the largest id Linux has: kept, in a pax record.
    let big = with_uid("big.tar", "4294967294", 0o644);
    let out = t.path().join("big");
    assert_exit(&image(&[os("--tar"), big.as_os_str()], &out, &[]), 0);
    assert_eq!(
        listing(&out.join("rootfs.tar"))["f"],
        "-rw-r--r-- 4294967294/0"
    );
    // 2^32 would be truncated to 0 by a runtime, 2^32 - 1 means "no change" to chown.
    for (name, uid) in [("over.tar", "4294967296"), ("minus1.tar", "4294967295")] {
        let tar = with_uid(name, uid, 0o644);
        let out = t.path().join(format!("{name}.out"));
        let o = image(&[os("--tar"), tar.as_os_str()], &out, &[]);
        let e = assert_error(&o, 2);
        assert!(
            e.contains(&format!(
                "--tar \"{}\": entry \"f\": uid {uid} is not a Linux id (at most 4294967294)",
                tar.display()
            )),
            "{e}"
        );
        assert!(!out.exists());
        // Made 0:0, nothing of it is left; unless that would make it setuid root.
        assert_exit(
            &image(&[os("--tar"), tar.as_os_str()], &out, &["--owners", "zero"]),
            0,
        );
        assert_eq!(listing(&out.join("rootfs.tar"))["f"], "-rw-r--r-- 0/0");
    }
    let suid = with_uid("suid.tar", "4294967296", 0o4755);
    let out = t.path().join("suid");
    let o = image(
        &[os("--tar"), suid.as_os_str()],
        &out,
        &["--owners", "zero"],
    );
    let e = assert_error(&o, 2);
    assert!(
        e.contains("/f (setuid, mode 4755, input owner 4294967296:0)"),
        "{e}"
    );
}

#[test]
fn one_policy_for_trees_and_tars_and_files_always_root() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("mine"), b"x").unwrap();
    chown(&tree.join("mine"), 1000, 1000);
    chmod(&tree.join("mine"), 0o644);
    let tar = write_tar(t.path(), "in.tar", &[entry("theirs", F, 0o644, (7, 7))]);
    // A setuid file owned by 1000, given with --file: 0:0 and the mode stated, by definition.
    let prog = t.path().join("prog");
    fs::write(&prog, b"#!/bin/sh\n").unwrap();
    chown(&prog, 1000, 1000);
    let file = format!("{}:/prog:4755", prog.display());
    let inputs = [
        os("--rootfs"),
        tree.as_os_str(),
        os("--tar"),
        tar.as_os_str(),
        os("--file"),
        os(&file),
    ];
    for (extra, mine, theirs) in [
        (&[][..], "0/0", "7/7"),
        (&["--owners", "keep"][..], "1000/1000", "7/7"),
        (&["--owners", "zero"][..], "0/0", "0/0"),
    ] {
        let out = t.path().join(format!("out{}", extra.len()));
        assert_exit(&image(&inputs, &out, extra), 0);
        let l = listing(&out.join("rootfs.tar"));
        assert_eq!(l["mine"], format!("-rw-r--r-- {mine}"), "{extra:?}");
        assert_eq!(l["theirs"], format!("-rw-r--r-- {theirs}"), "{extra:?}");
        assert_eq!(l["prog"], "-rwsr-xr-x 0/0", "{extra:?}");
    }
}

/// A project holding `toml`'s settings above one `[[input]]` line `input`.
fn project(dir: &Path, image: &str, input: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("ocipack.toml"),
        format!(
            "name = \"owners\"\ncreated = \"@1700000000\"\narchitectures = [\"amd64\"]\n\n\
             [image]\ncmd = [\"/bin/sh\"]\ncompression = \"none\"\n{image}\n\n\
             [[input]]\n{input}\n"
        ),
    )
    .unwrap();
}

/// The line of `file` that starts with `start`.
fn line_of(file: &Path, start: &str) -> usize {
    let text = fs::read_to_string(file).unwrap();
    1 + text.lines().position(|l| l.starts_with(start)).unwrap()
}

fn build(dir: &Path) -> Output {
    run_bounded(ocipack().arg("build").arg(dir), Duration::from_secs(120))
}

#[test]
fn a_project_has_the_same_defaults_and_names_its_keys() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("p");
    fs::create_dir_all(&p).unwrap();
    write_tar(&p, "rootfs.tar", &debian_like());
    let toml = p.join("ocipack.toml");

    // A tar input keeps its owners.
    project(&p, "", "tar = \"rootfs.tar\"");
    assert_exit(&build(&p), 0);
    let l = listing(&p.join("amd64/oci/rootfs.tar"));
    assert_eq!(l["usr/sbin/unix_chkpwd"], "-rwxr-sr-x 0/42");
    assert_eq!(l["home/nobody/"], "drwxr-xr-x 65534/65534");

    // owners = "zero" is refused for it, naming the key, the input and how to keep owners.
    project(&p, "owners = \"zero\"", "tar = \"rootfs.tar\"");
    let at = |key: &str| format!("{}:{}: {key}", toml.display(), line_of(&toml, key));
    let e = assert_error(&build(&p), 2);
    for want in [
        format!(
            "ocipack: error: {} \"rootfs.tar\": 2 entries would become setuid or setgid root \
             when the owners become 0:0 ({} = \"zero\"): /usr/sbin/unix_chkpwd",
            at("tar ="),
            at("owners =")
        ),
        format!(
            "keep the input's owners with owners = \"keep\" in [image] of {}, give such a \
             file with an [[input]] with source, dest and mode",
            toml.display()
        ),
    ] {
        let want = want
            .replace(": tar =", ": input.tar")
            .replace(": owners =", ": image.owners");
        assert!(e.contains(&want), "{want:?} not in\n{e}");
    }
    // The layout built before is left as it was.
    assert_eq!(
        listing(&p.join("amd64/oci/rootfs.tar"))["usr/sbin/unix_chkpwd"],
        "-rwxr-sr-x 0/42"
    );

    for (settings, want) in [
        (
            "owners = \"nobody\"",
            "image.owners \"nobody\": expected \"zero\" or \"keep\"",
        ),
        (
            "owners = \"keep\"\npreserve-owners = false",
            "image.owners = \"keep\" and TOML:9: image.preserve-owners = false disagree: \
             give one of them",
        ),
    ] {
        project(&p, settings, "tar = \"rootfs.tar\"");
        let e = assert_error(&build(&p), 2);
        let want = format!(
            "{}:8: {}",
            toml.display(),
            want.replace("TOML", &toml.display().to_string())
        );
        assert!(e.contains(&want), "{want:?} not in\n{e}");
    }

    // A tree input: 0:0 by default, so a setuid file of user 1000 is refused ...
    let tree = p.join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("tool"), b"x").unwrap();
    chown(&tree.join("tool"), 1000, 1000);
    chmod(&tree.join("tool"), 0o4755);
    project(&p, "", "rootfs = \"tree\"");
    let e = assert_error(&build(&p), 2);
    assert!(
        e.contains(&format!(
            "ocipack: error: {}:{}: input.rootfs \"tree\": 1 entry would become setuid or \
             setgid root when the owners become 0:0 (the default for directory trees): /tool \
             (setuid, mode 4755, input owner 1000:1000); keep the input's owners with \
             owners = \"keep\" in [image] of {}",
            toml.display(),
            line_of(&toml, "rootfs ="),
            toml.display()
        )),
        "{e}"
    );
    // ... and kept with either key.
    for settings in ["owners = \"keep\"", "preserve-owners = true"] {
        project(&p, settings, "rootfs = \"tree\"");
        assert_exit(&build(&p), 0);
        assert_eq!(
            listing(&p.join("amd64/oci/rootfs.tar"))["tool"],
            "-rwsr-xr-x 1000/1000",
            "{settings}"
        );
    }
}

// ---------------------------------------------------------------- a real Debian rootfs

/// apt's first mirror and suite (`URIs:` and `Suites:` of the first deb822 stanza, or the
/// first `deb` line of sources.list): the bootstrap uses what apt on this machine uses.
fn apt_mirror() -> Option<(String, String)> {
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list.d/debian.sources") {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_string)
        };
        if let (Some(uri), Some(suite)) = (field("URIs:"), field("Suites:")) {
            return Some((uri, suite));
        }
    }
    let text = fs::read_to_string("/etc/apt/sources.list").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == "deb" && !f[1].starts_with('['))
            .then(|| (f[1].into(), f[2].into()))
    })
}

/// One entry of a tar as the layer must keep it: kind, mode, owner, link target, content
/// digest, mtime. A hard link is compared as the file it names, with the group of names
/// sharing it (writers pick different first names).
type Facts = (char, u32, u64, u64, String, String, u64);

/// Every entry of a tar stream by normalised name (no `./`, directories with `/`), the
/// archive's root left out.
fn facts(r: impl Read) -> BTreeMap<String, Facts> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut links = Vec::new();
    let mut a = tar::Archive::new(r);
    for entry in a.entries().unwrap() {
        let mut entry = entry.unwrap();
        let raw = entry.path_bytes().into_owned();
        let mut name = String::from_utf8(raw).unwrap();
        name = name.trim_start_matches("./").to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        let h = entry.header().clone();
        let kind = h.entry_type().as_byte() as char;
        let mode = h.mode().unwrap() & 0o7777;
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let mut content = String::new();
        if h.entry_type() == tar::EntryType::Regular {
            let mut hasher = Sha256::new();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = entry.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            content = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
        }
        let facts = (
            kind,
            mode,
            h.uid().unwrap(),
            h.gid().unwrap(),
            link.clone(),
            content,
            h.mtime().unwrap(),
        );
        if kind == '1' {
            links.push((name.clone(), link.trim_start_matches("./").to_string()));
        }
        if kind == '5' && !name.ends_with('/') {
            name.push('/');
        }
        out.insert(name, facts);
    }
    // A hard link stands for its target's content, and every name of the file for the group.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, target) in &links {
        groups.entry(target.clone()).or_default().push(name.clone());
    }
    for (target, names) in groups {
        let mut all = names.clone();
        all.push(target.clone());
        all.sort();
        let group = all.join(" ");
        let file = out[&target].clone();
        for n in all {
            let f = out.get_mut(&n).unwrap();
            *f = ('0', f.1, f.2, f.3, group.clone(), file.5.clone(), f.6);
        }
    }
    out
}

/// `mmdebstrap --variant=minbase` of apt's own suite from apt's own mirror, tarred, xz
/// compressed, built with default settings: the layer is the tar, entry by entry (owners and
/// special bits included, only the skipped /dev nodes missing), `--owners zero` is refused
/// for the setgid-shadow programs, and podman runs the image.
#[test]
fn a_debian_rootfs_from_mmdebstrap_keeps_its_owners_and_runs() {
    if !require_tools(&[
        "mmdebstrap",
        "xz",
        "tar",
        "podman",
        "runc",
        "git",
        "debuerreotype-slimify",
        "debuerreotype-tar",
    ]) {
        return;
    }
    let skip = |why: String| common::skip(&why);
    if !rustix::process::geteuid().is_root() {
        return skip("mmdebstrap's root mode needs root".into());
    }
    let Some((mirror, suite)) = apt_mirror() else {
        return skip("no mirror in /etc/apt/sources.list.d/debian.sources or sources.list".into());
    };
    let dir = common::LowercaseDir::new();
    let d = &dir.0;
    let tar = d.join("rootfs.tar");
    let o = run_bounded(
        Command::new("mmdebstrap")
            .args(["--variant=minbase", "--architectures=amd64", "--quiet"])
            .arg(&suite)
            .arg(&tar)
            .arg(&mirror),
        Duration::from_secs(900),
    );
    if !o.status.success() {
        return skip(format!(
            "mmdebstrap {suite} {mirror} failed: {}",
            stderr(&o)
        ));
    }
    let o = run_bounded(
        Command::new("xz").args(["-T0", "-0", "-k"]).arg(&tar),
        Duration::from_secs(600),
    );
    assert!(o.status.success(), "{}", show(&o));
    let input = facts(fs::File::open(&tar).unwrap());
    // `created` is the newest mtime in the tar, so that clamping changes none.
    let newest = input.values().map(|f| f.6).max().unwrap();
    let xz = d.join("rootfs.tar.xz");
    let out = d.join("debian");
    let created = format!("@{newest}");
    let args = |out: &Path, extra: &[&str]| {
        let mut c = ocipack();
        c.arg("image")
            .arg("--tar")
            .arg(&xz)
            .args(["--arch", "amd64", "--cmd", "bash", "--ref-name", "latest"])
            .args(["--created", &created, "-o"])
            .arg(out)
            .args(extra);
        c
    };
    let o = run_bounded(&mut args(&out, &[]), Duration::from_secs(600));
    assert_exit(&o, 0);
    let layer = facts(flate2::read::MultiGzDecoder::new(
        fs::File::open(out.join("rootfs.tar.gz")).unwrap(),
    ));
    // The device nodes under /dev are skipped (with one warning each); nothing else differs.
    let devices: Vec<&String> = input
        .iter()
        .filter(|(_, f)| matches!(f.0, '3' | '4'))
        .map(|(n, _)| n)
        .collect();
    assert!(devices.iter().all(|n| n.starts_with("dev/")), "{devices:?}");
    for n in &devices {
        assert!(
            stderr(&o).contains(&format!("skipped device node /{n} ")),
            "{n}: {}",
            stderr(&o)
        );
    }
    let mut expected = input.clone();
    expected.retain(|n, _| !devices.contains(&n));
    let differ: Vec<_> = expected
        .iter()
        .filter(|(n, f)| layer.get(*n) != Some(f))
        .map(|(n, f)| (n, f, layer.get(n)))
        .collect();
    let extra: Vec<_> = layer
        .keys()
        .filter(|n| !expected.contains_key(*n))
        .collect();
    assert!(
        differ.is_empty() && extra.is_empty(),
        "{} entries differ, the first: {:?}; extra: {extra:?}",
        differ.len(),
        differ.first()
    );
    // What the issue is about, in the layer: unix_chkpwd is setgid shadow, not setgid root.
    let f = &layer["usr/sbin/unix_chkpwd"];
    assert_eq!((f.1, f.3), (0o2755, 42), "{f:?}");
    // Made 0:0, the same input is refused: unix_chkpwd would become setgid root.
    let zero = d.join("zero");
    let o = run_bounded(
        &mut args(&zero, &["--owners", "zero"]),
        Duration::from_secs(600),
    );
    let e = assert_error(&o, 2);
    assert!(
        e.contains("/usr/sbin/unix_chkpwd (setgid, mode 2755, input owner 0:42)")
            && e.contains("/var/mail/ (setgid, mode 2775, input owner 0:8)"),
        "{e}"
    );
    assert!(!zero.exists());

    let podman = Podman::new();
    let image = format!("oci:{}:latest", out.display());
    let said = podman.run_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "apt-get --version | head -n 1; stat -c '%g %a' /usr/sbin/unix_chkpwd",
    ]);
    eprintln!("podman run {image}:\n{said}");
    let lines: Vec<&str> = said.lines().collect();
    assert!(lines[0].starts_with("apt "), "{said}");
    assert_eq!(lines[1], "42 2755", "{said}");

    // The same root filesystem, bootstrapped once, is examples/debian's input: it and its
    // debuerreotype-slimify variant as two images on a dist branch (tests/integration/debian.rs).
    crate::debian::check_example(&tar, newest, d, &podman);
}
