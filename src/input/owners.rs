//! Whose owners a layer's entries get, and the rule that a build never creates privilege.
//!
//! An input's numeric uid/gid are either kept ([`Owners::Keep`]; user and group names are
//! dropped either way) or set to 0:0 ([`Owners::Zero`]). Each input kind has the default
//! that matches what its owners mean: a tar made by an OS build tool (debuerreotype,
//! mmdebstrap, busybox's) holds the image's owners on purpose — `/etc/shadow` belongs to
//! group 42 — so tars keep them, as `docker import`, umoci and `crane append` do; a directory
//! tree checked out from git is owned by whoever checked it out, so trees get 0:0. A policy
//! chosen by the user (`--owners`, `owners = …`) applies to every input alike. `--file`
//! inputs and generated files are always 0:0 with the mode the user stated: the rule below
//! does not apply to them.
//!
//! Setting owners to 0:0 is not harmless for a setuid or setgid entry: a setgid-shadow
//! `unix_chkpwd` would become setgid root, a setuid program owned by 1000 setuid root. So an
//! entry with the setuid bit whose uid would change, or with the setgid bit (a directory's
//! included) whose gid would change, is an input error: each such entry is listed with its
//! input and its input owner (the first [`MAX_LISTED`] of each input by path, and how many
//! more: the message stays one short line for a tree of 100,000), and the option that keeps
//! owners is named. The sticky bit
//! grants nothing and is never refused. The check is made on each entry's own header, the
//! mode it will carry in the layer: every name of a hard-linked file is checked, since some
//! extractors apply a hard link entry's mode and owner to the shared file (and the names of
//! one file must agree on both, see `Tree::finish`: which one an extractor applies depends
//! on their order, which the layer does not keep).
//!
//! File capabilities (`security.capability`, kept with `--xattrs`) are not refused: unlike
//! the setuid and setgid bits they do not depend on the file's owner. Whoever may execute
//! the file gets them, before 0:0 and after; the owner decides who may, for such a file as
//! for every other.
//!
//! A kept uid or gid must be a Linux id (at most 4,294,967,294): a runtime truncates a larger
//! number to 32 bits (2^32 would extract as root) and 2^32 − 1 is `chown`'s "no change".

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::show;

/// The entries of one input a refusal lists by name; the rest are counted.
pub const MAX_LISTED: usize = 10;

/// The largest Linux user or group id; `u32::MAX` is `(uid_t)-1`, which `chown` reads as
/// "leave unchanged".
pub const MAX_ID: u64 = u32::MAX as u64 - 1;

/// Whose numeric owners an input's entries get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// 0:0.
    Zero,
    /// The input's numeric uid and gid (names are always dropped).
    Keep,
}

impl Owners {
    /// The name the user writes: `zero` or `keep`.
    pub fn as_str(self) -> &'static str {
        match self {
            Owners::Zero => "zero",
            Owners::Keep => "keep",
        }
    }
}

impl fmt::Display for Owners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Owners {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "zero" => Ok(Owners::Zero),
            "keep" => Ok(Owners::Keep),
            _ => Err("expected \"zero\" or \"keep\"".into()),
        }
    }
}

/// The kinds of input whose owners a policy decides (`--file` inputs are always 0:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A directory tree (`--rootfs`).
    Tree,
    /// An existing tar (`--tar`).
    Tar,
}

/// The owners policy of one image, with the words messages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnersPolicy {
    /// Chosen for every input (`--owners`, `owners = …`), or `None`: each kind's default
    /// (a tree's owners become 0:0, a tar's are kept).
    pub chosen: Option<Owners>,
    /// Where and how it was chosen, as the user wrote it (`--owners zero`,
    /// `p/ocipack.toml:5: image.owners = "zero"`); unused without a choice.
    pub chosen_at: String,
    /// How the user keeps an input's owners (`--owners keep`, or
    /// `owners = "keep" in [image] of p/ocipack.toml`), named when a build is refused.
    pub keep: String,
    /// How the user gives one file whose owner is 0:0 whatever its owner on disk
    /// (`--file SRC:DEST:MODE`), named when a build is refused.
    pub file: String,
}

impl Default for OwnersPolicy {
    fn default() -> Self {
        OwnersPolicy {
            chosen: None,
            chosen_at: String::new(),
            keep: "--owners keep".into(),
            file: "--file SRC:DEST:MODE".into(),
        }
    }
}

impl OwnersPolicy {
    /// The owners `kind`'s entries get.
    pub fn for_kind(&self, kind: InputKind) -> Owners {
        self.chosen.unwrap_or(match kind {
            InputKind::Tree => Owners::Zero,
            InputKind::Tar => Owners::Keep,
        })
    }

    /// Why `kind`'s owners become 0:0, for the refusal.
    fn why_zero(&self, kind: InputKind) -> String {
        match (self.chosen, kind) {
            (Some(_), _) => self.chosen_at.clone(),
            (None, InputKind::Tree) => "the default for directory trees".into(),
            // A tar's default is to keep: only a choice makes it 0:0.
            (None, InputKind::Tar) => "the default".into(),
        }
    }
}

/// A setuid or setgid entry whose owner the build would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Raised {
    /// The input as the user wrote it.
    pub origin: String,
    /// Its kind.
    pub kind: InputKind,
    /// The entry's normalised path.
    pub path: Vec<u8>,
    /// Whether it is a directory (shown with a trailing `/`).
    pub dir: bool,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner in the input.
    pub uid: u64,
    /// Its group in the input.
    pub gid: u64,
}

/// The owner an entry of `kind` with permission bits `mode` gets under `policy`, its input
/// owner being `uid:gid`: [`Problem::Raised`] if 0:0 would make it setuid or setgid root
/// (see the module documentation), [`Problem::NotAnId`] if a kept id is not a Linux id.
pub(super) fn owner(
    policy: &OwnersPolicy,
    kind: InputKind,
    mode: u32,
    uid: u64,
    gid: u64,
) -> std::result::Result<(u64, u64), Problem> {
    match policy.for_kind(kind) {
        Owners::Keep => {
            if let Some((what, id)) = [("uid", uid), ("gid", gid)]
                .into_iter()
                .find(|(_, id)| *id > MAX_ID)
            {
                return Err(Problem::NotAnId(format!(
                    "{what} {id} is not a Linux id (at most {MAX_ID}): a runtime would \
                     truncate it to 32 bits"
                )));
            }
            Ok((uid, gid))
        }
        Owners::Zero => {
            if (mode & 0o4000 != 0 && uid != 0) || (mode & 0o2000 != 0 && gid != 0) {
                Err(Problem::Raised)
            } else {
                Ok((0, 0))
            }
        }
    }
}

/// Why an entry's owner cannot be set.
#[derive(Debug)]
pub(super) enum Problem {
    /// Set to 0:0, it would become setuid or setgid root: collected and refused together.
    Raised,
    /// A kept id that no Linux system has.
    NotAnId(String),
}

/// One entry in the refusal: `/usr/sbin/unix_chkpwd (setgid, mode 2755, input owner 0:42)`.
fn describe(r: &Raised) -> String {
    let bits = match (
        r.mode & 0o4000 != 0 && r.uid != 0,
        r.mode & 0o2000 != 0 && r.gid != 0,
    ) {
        (true, true) => "setuid and setgid",
        (true, false) => "setuid",
        _ => "setgid",
    };
    format!(
        "/{}{} ({bits}, mode {:04o}, input owner {}:{})",
        show::bytes(&r.path),
        if r.dir { "/" } else { "" },
        r.mode & 0o7777,
        r.uid,
        r.gid
    )
}

/// The input error for every entry in `raised` (not empty): one line naming each input,
/// why its owners become 0:0, its first [`MAX_LISTED`] entries by path with their input
/// owners and how many more there are, and how to keep owners.
pub(super) fn refusal(policy: &OwnersPolicy, raised: &[Raised]) -> Error {
    let mut inputs: Vec<(&str, InputKind, Vec<&Raised>)> = Vec::new();
    for r in raised {
        match inputs.iter_mut().find(|(o, _, _)| *o == r.origin) {
            Some((_, _, list)) => list.push(r),
            None => inputs.push((&r.origin, r.kind, vec![r])),
        }
    }
    let what = inputs
        .iter()
        .map(|(o, _, _)| *o)
        .collect::<Vec<_>>()
        .join(" and ");
    // Sorted by path: a tree's walk order is its directories' order on disk. An entry a tar
    // repeats alike (a directory) is one.
    for (_, _, list) in &mut inputs {
        list.sort_by(|a, b| a.path.cmp(&b.path));
        list.dedup();
    }
    let parts: Vec<String> = inputs
        .iter()
        .map(|(origin, kind, list)| {
            let mut entries: Vec<String> =
                list.iter().take(MAX_LISTED).map(|r| describe(r)).collect();
            if list.len() > MAX_LISTED {
                entries.push(format!("and {} more", list.len() - MAX_LISTED));
            }
            let from = if inputs.len() > 1 {
                format!("from {origin}, ")
            } else {
                String::new()
            };
            format!(
                "{from}{} {} would become setuid or setgid root when the owners become 0:0 \
                 ({}): {}",
                list.len(),
                if list.len() == 1 { "entry" } else { "entries" },
                policy.why_zero(*kind),
                entries.join(", ")
            )
        })
        .collect();
    Error::input(
        what,
        format!(
            "{}; keep the input's owners with {}, give such a file with {} (its owner is \
             always 0:0), or clear those bits in the input",
            parts.join("; "),
            policy.keep,
            policy.file
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(chosen: Option<Owners>) -> OwnersPolicy {
        OwnersPolicy {
            chosen,
            chosen_at: "--owners zero".into(),
            ..OwnersPolicy::default()
        }
    }

    #[test]
    fn defaults_per_kind_and_a_choice_for_all() {
        let p = policy(None);
        assert_eq!(p.for_kind(InputKind::Tree), Owners::Zero);
        assert_eq!(p.for_kind(InputKind::Tar), Owners::Keep);
        for o in [Owners::Zero, Owners::Keep] {
            let p = policy(Some(o));
            assert_eq!(p.for_kind(InputKind::Tree), o);
            assert_eq!(p.for_kind(InputKind::Tar), o);
        }
    }

    #[test]
    fn only_a_changed_owner_of_a_setuid_or_setgid_entry_is_refused() {
        let zero = policy(Some(Owners::Zero));
        let ok = |mode, uid, gid| owner(&zero, InputKind::Tar, mode, uid, gid).is_ok();
        assert!(ok(0o4755, 0, 42), "setuid root stays setuid root");
        assert!(ok(0o2755, 1000, 0), "setgid group 0 stays");
        assert!(ok(0o1777, 1000, 1000), "sticky grants nothing");
        assert!(ok(0o0755, 1000, 1000));
        assert!(!ok(0o4755, 1000, 0));
        assert!(!ok(0o2755, 0, 42));
        assert!(!ok(0o2644, 0, 42), "setgid without group execute too");
        let keep = policy(Some(Owners::Keep));
        assert_eq!(
            owner(&keep, InputKind::Tree, 0o6755, 7, 42).ok(),
            Some((7, 42))
        );
        assert!(owner(&keep, InputKind::Tar, 0o644, MAX_ID, MAX_ID).is_ok());
        for (uid, gid) in [(MAX_ID + 1, 0), (0, 1 << 32), (u64::MAX, 0)] {
            assert!(matches!(
                owner(&keep, InputKind::Tar, 0o644, uid, gid),
                Err(Problem::NotAnId(_))
            ));
        }
    }

    #[test]
    fn the_refusal_lists_every_entry_per_input_and_names_the_option() {
        let r = |origin: &str, kind, path: &[u8], dir, mode, uid, gid| Raised {
            origin: origin.into(),
            kind,
            path: path.to_vec(),
            dir,
            mode,
            uid,
            gid,
        };
        let raised = [
            r(
                "--tar \"a.tar\"",
                InputKind::Tar,
                b"usr/sbin/unix_chkpwd",
                false,
                0o2755,
                0,
                42,
            ),
            r(
                "--rootfs \"t\"",
                InputKind::Tree,
                b"var/mail",
                true,
                0o2775,
                0,
                8,
            ),
            r(
                "--tar \"a.tar\"",
                InputKind::Tar,
                b"x\ny",
                false,
                0o6755,
                5,
                6,
            ),
        ];
        let e = refusal(&policy(Some(Owners::Zero)), &raised).to_string();
        assert_eq!(
            e,
            "--tar \"a.tar\" and --rootfs \"t\": from --tar \"a.tar\", 2 entries would become \
             setuid or setgid root when the owners become 0:0 (--owners zero): \
             /usr/sbin/unix_chkpwd (setgid, mode 2755, input owner 0:42), \
             /x\\ny (setuid and setgid, mode 6755, input owner 5:6); from --rootfs \"t\", \
             1 entry would become setuid or setgid root when the owners become 0:0 \
             (--owners zero): /var/mail/ (setgid, mode 2775, input owner 0:8); keep the \
             input's owners with --owners keep, give such a file with --file SRC:DEST:MODE \
             (its owner is always 0:0), or clear those bits in the input"
        );
        // Bounded: the first ten by path, then a count; an entry repeated alike is one.
        let many: Vec<Raised> = (0..25)
            .rev()
            .chain([3])
            .map(|i| {
                let path = format!("bin/p{i:02}");
                r(
                    "--tar \"m.tar\"",
                    InputKind::Tar,
                    path.as_bytes(),
                    false,
                    0o4755,
                    7,
                    0,
                )
            })
            .collect();
        let e = refusal(&policy(Some(Owners::Zero)), &many).to_string();
        assert!(
            e.starts_with("--tar \"m.tar\": 25 entries would become setuid or setgid root")
                && e.contains(
                    "/bin/p00 (setuid, mode 4755, input owner 7:0), /bin/p01 (setuid, mode 4755"
                )
                && e.contains(
                    "/bin/p09 (setuid, mode 4755, input owner 7:0), and 15 more; keep the"
                )
                && !e.contains("/bin/p10"),
            "{e}"
        );
        let e = refusal(&policy(None), &raised[1..2]).to_string();
        assert!(
            e.starts_with("--rootfs \"t\": 1 entry would become")
                && e.contains("(the default for directory trees)"),
            "{e}"
        );
    }
}
