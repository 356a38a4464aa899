//! `ocipack completions bash|zsh|fish` and `ocipack man`: the scripts load in their shells
//! and complete subcommands, options and values; the man pages render without a warning;
//! everything is the same bytes run after run.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{assert_exit, require_tool, run};

/// A command's standard output, which must be UTF-8 (scripts and man pages are).
fn utf8_stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The completion script for `shell`, checked to be the same on a second run.
fn script(shell: &str) -> String {
    let o = run(&["completions", shell]);
    assert_exit(&o, 0);
    assert!(
        run(&["completions", shell]).stdout == o.stdout,
        "{shell}: not deterministic"
    );
    utf8_stdout(&o)
}

/// Runs `shell args...`, asserting success and no stderr; returns stdout.
fn shell_ok(shell: &str, args: &[&str]) -> String {
    let o = Command::new(shell).args(args).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{shell} {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    utf8_stdout(&o)
}

/// The words bash completes for the command line `line` (the cursor after its last word).
fn bash_complete(file: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let program = format!(
        "source {file}\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE='{line}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _ocipack ocipack '{cur}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file = file.display(),
        words = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        cword = words.len() - 1,
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    shell_ok("bash", &["--norc", "--noprofile", "-c", &program])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_options_and_values() {
    if !require_tool("bash") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("ocipack.bash");
    fs::write(&file, script("bash")).unwrap();
    let registered = shell_ok(
        "bash",
        &[
            "--norc",
            "--noprofile",
            "-c",
            &format!("source {}; complete -p ocipack", file.display()),
        ],
    );
    assert!(
        registered.contains("-F _ocipack") && registered.trim_end().ends_with(" ocipack"),
        "{registered}"
    );
    assert_eq!(bash_complete(&file, "ocipack im"), ["image"]);
    let all = bash_complete(&file, "ocipack ");
    for sub in [
        "image",
        "build",
        "verify",
        "push",
        "pull",
        "export",
        "completions",
        "man",
    ] {
        assert!(all.iter().any(|w| w == sub), "{sub} not in {all:?}");
    }
    assert_eq!(
        bash_complete(&file, "ocipack image --compression "),
        ["none", "gzip", "zstd"]
    );
    let shells: Vec<String> = bash_complete(&file, "ocipack completions ")
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect();
    assert_eq!(shells, ["bash", "zsh", "fish"]);
    assert!(bash_complete(&file, "ocipack build --comm").contains(&"--commit-branch".into()));
}

#[test]
fn zsh_completion_parses_and_defines_its_function() {
    if !require_tool("zsh") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("_ocipack");
    let text = script("zsh");
    assert!(text.starts_with("#compdef ocipack"), "{}", &text[..40]);
    fs::write(&file, text).unwrap();
    shell_ok("zsh", &["-n", file.to_str().unwrap()]);
    // Loaded as zsh loads completion functions: from fpath, by compinit.
    let out = shell_ok(
        "zsh",
        &[
            "-f",
            "-c",
            &format!(
                "fpath=({} $fpath); autoload -U compinit; compinit -u -D; \
                 autoload -U +X _ocipack; print $+functions[_ocipack] $_comps[ocipack]",
                t.path().display()
            ),
        ],
    );
    assert_eq!(out.trim(), "1 _ocipack");
}

#[test]
fn fish_completion_parses_and_completes() {
    if !require_tool("fish") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("ocipack.fish");
    fs::write(&file, script("fish")).unwrap();
    shell_ok("fish", &["--no-config", "-n", file.to_str().unwrap()]);
    let complete = |line: &str| -> Vec<String> {
        shell_ok(
            "fish",
            &[
                "--no-config",
                "-c",
                &format!("source {}; complete -C '{line}'", file.display()),
            ],
        )
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
    };
    assert!(
        complete("ocipack ver").contains(&"verify".into()),
        "{:?}",
        complete("ocipack ver")
    );
    assert_eq!(
        complete("ocipack image --compression "),
        ["gzip", "none", "zstd"]
    );
}

#[test]
fn the_man_pages_render_without_warnings_and_are_deterministic() {
    if !require_tool("groff") || !require_tool("mandoc") || !require_tool("man") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man1");
    fs::create_dir(&dir).unwrap();
    let o = run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_exit(&o, 0);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want = [
        "build",
        "completions",
        "diff",
        "export",
        "fix",
        "image",
        "library",
        "man",
        "platform",
        "pull",
        "push",
        "verify",
    ];
    let mut expected: Vec<String> = want.iter().map(|s| format!("ocipack-{s}.1")).collect();
    expected.push("ocipack.1".into());
    expected.sort();
    assert_eq!(names, expected, "one page per command, nothing else");
    // `ocipack man` prints ocipack.1, the same bytes every time, dated by the source.
    let page = run(&["man"]);
    assert_exit(&page, 0);
    assert_eq!(page.stdout, fs::read(dir.join("ocipack.1")).unwrap());
    assert_eq!(run(&["man"]).stdout, page.stdout);
    assert!(
        utf8_stdout(&page).contains(".TH ocipack 1 2026-12-07 \"ocipack "),
        "{}",
        utf8_stdout(&page)
    );
    for name in &names {
        let p = dir.join(name);
        let lint = Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
            "mandoc -T lint {name}: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        let groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            groff.status.success() && groff.stderr.is_empty(),
            "groff {name}: {}",
            String::from_utf8_lossy(&groff.stderr)
        );
    }
    let shown = Command::new("man")
        .arg("-l")
        .arg(dir.join("ocipack-build.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = utf8_stdout(&shown);
    assert!(shown.status.success(), "{text}");
    assert!(text.contains("--commit-branch"), "{text}");
    // Writing again replaces the pages with the same bytes and leaves no staging files.
    let before = common::snapshot(&dir);
    assert_exit(&run(&["man", "--dir", dir.to_str().unwrap()]), 0);
    assert!(common::snapshot(&dir) == before);
}

#[test]
fn man_dir_must_exist_and_never_replaces_a_directory() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let o = run(&["man", "--dir", missing.to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(!missing.exists());
    // A directory where a page would go: refused before anything is written.
    fs::create_dir(t.path().join("ocipack-man.1")).unwrap();
    let o = run(&["man", "--dir", t.path().to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ocipack-man.1: is a directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["ocipack-man.1"]);
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let o = run(&["completions", "tcsh"]);
    assert_exit(&o, 2);
}
