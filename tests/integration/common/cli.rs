//! Running `ocipack` and judging its output: the command builders and the output and
//! error-convention assertions shared by the CLI-level tests.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use super::ocipack;

/// `created` of the images the tests build with [`image`] (and of `build_hello`'s).
pub const CREATED: &str = "@1700000000";

/// `bytes` as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A command's standard output, as text.
pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// A command's standard error, as text.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// A command's standard output followed by its standard error, as text.
pub fn all(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

/// A command's exit status, standard output and standard error, for a failure message.
pub fn show(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Asserts exit `code` and the error convention: every stderr line starts `ocipack: `,
/// exactly one of them is the error line (`ocipack: error: `). Returns stderr.
pub fn assert_error(o: &Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "exit code\n{}", show(o));
    let e = text(&o.stderr);
    for line in e.lines() {
        assert!(
            line.starts_with("ocipack: "),
            "stderr line {line:?} does not start with `ocipack: `\n{}",
            show(o)
        );
    }
    let errors = e
        .lines()
        .filter(|l| l.starts_with("ocipack: error: "))
        .count();
    assert_eq!(errors, 1, "expected exactly one error line\n{}", show(o));
    e
}

/// The C0 control bytes other than the newline in `bytes`, for a message.
pub fn control_bytes(bytes: &[u8]) -> Vec<u8> {
    controls(bytes, false)
}

/// The control bytes other than the newline in `bytes`: the C0 controls and DEL.
pub fn control_bytes_and_del(bytes: &[u8]) -> Vec<u8> {
    controls(bytes, true)
}

/// The control bytes other than the newline in `bytes`, DEL among them if `del`.
fn controls(bytes: &[u8], del: bool) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|&b| (b < 0x20 && b != b'\n') || (del && b == 0x7f))
        .collect()
}

/// Quotes `p` for `sh`.
pub fn sq(p: &Path) -> String {
    format!("'{}'", p.to_str().unwrap().replace('\'', r"'\''"))
}

/// The path `p` as text (the tests' temporary paths are UTF-8), for an argument list of
/// `&str`s.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `s` as an `OsStr`, to mix flags with paths in one argument list.
pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// `ocipack image INPUTS --arch amd64 --created CREATED -o OUT EXTRA…`: `inputs` are the
/// input options (e.g. `--rootfs DIR`, `--tar FILE`).
pub fn image(inputs: &[&OsStr], out: &Path, extra: &[&str]) -> Command {
    image_on(ocipack(), inputs, out, extra)
}

/// [`image`]'s arguments on `base`, a command that runs `ocipack` (e.g. [`ocipack_capped`]).
pub fn image_on(mut base: Command, inputs: &[&OsStr], out: &Path, extra: &[&str]) -> Command {
    base.arg("image")
        .args(inputs)
        .args(["--arch", "amd64", "--created", CREATED, "-o"])
        .arg(out)
        .args(extra);
    base
}

/// `ocipack` wrapped in `sh -c 'ulimit -v KIB; exec …'`: a run that tries to use unbounded
/// memory fails at the cap of `kib` KiB of address space instead of taking the machine down.
pub fn ocipack_capped(kib: u64) -> Command {
    let mut c = Command::new("sh");
    c.env_remove("SOURCE_DATE_EPOCH")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ocipack"));
    super::default_signals(&mut c);
    c
}

/// Copies examples/hello-world to `dir` with `architectures` replaced by `archs` and the
/// exact text replacements `edits` (each must match) applied to its ocipack.toml.
pub fn hello_project(dir: &Path, archs: &[&str], edits: &[(&str, &str)]) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(super::repo().join("examples/hello-world"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let path = dir.join("ocipack.toml");
    let mut toml = fs::read_to_string(&path).unwrap();
    let all = "architectures = [\n    \"amd64\", \"arm32v5\", \"arm32v6\", \"arm32v7\", \"arm64v8\",\n    \"i386\", \"mips64le\", \"ppc64le\", \"riscv64\", \"s390x\",\n]";
    let list: Vec<String> = archs.iter().map(|a| format!("{a:?}")).collect();
    let mut edits_all = vec![(
        all.to_string(),
        format!("architectures = [{}]", list.join(", ")),
    )];
    edits_all.extend(edits.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    for (from, to) in edits_all {
        assert!(
            toml.contains(&from),
            "{from:?} not in the example's ocipack.toml"
        );
        toml = toml.replace(&from, &to);
    }
    fs::write(&path, toml).unwrap();
}
