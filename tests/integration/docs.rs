//! The documentation is tested: the guides run as written, the references match the code.
//!
//! - Every ```console block of `docs/guides/*.md` and of `README.md` runs, in order per file,
//!   with bash in a temporary home directory, offline, with the `ocipack` under test on PATH;
//!   a block tagged `exact` must print what it shows (the convention is in
//!   `docs/CONTRIBUTING.md`, "Documentation is tested"). A failure names the file, the block
//!   and the line.
//! - `docs/reference/ocipack-toml.md` lists exactly the keys the parser knows
//!   (`ocipack::project::project_keys`, read from serde's field lists), and each row's example
//!   is accepted by the parser (an `images.…` example in an `[[images]]` entry).
//! - `docs/reference/cli.md` is exactly what `ocipack man --markdown` prints.
//! - Every relative link in `README.md` and `docs/` leads to a file, and every `#anchor` to a
//!   heading of it.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{repo, require_tools, run};

// ---------------------------------------------------------------------------------------
// The guides: parsing
// ---------------------------------------------------------------------------------------

/// One thing a guide does, in order.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `<!-- test-setup … -->`: hidden commands, run as one script; must exit 0.
    Setup { line: usize, script: String },
    /// A block tagged `file=PATH`: its text is written to PATH (relative to the shell's
    /// current directory at that point).
    File {
        line: usize,
        block: usize,
        path: String,
        content: String,
    },
    /// One `$ ` command of a console block, with the output shown under it.
    Command {
        line: usize,
        block: usize,
        command: String,
        output: Vec<String>,
        exact: bool,
        status: i32,
    },
}

/// A registry a guide asks for.
#[derive(Debug, Clone, PartialEq)]
struct RegistrySpec {
    var: String,
    login: Option<(String, String)>,
}

/// A parsed guide.
#[derive(Debug, Default)]
struct Guide {
    /// Tools the guide needs (`<!-- test-requires: … -->`).
    requires: Vec<String>,
    /// `<!-- test-registry VAR [USER:PASSWORD] -->`: a registry is started (requiring basic
    /// authentication as USER when given) and `$VAR` names it.
    registries: Vec<RegistrySpec>,
    steps: Vec<Step>,
    /// Blocks not run, with their line and reason.
    skipped: Vec<(usize, String)>,
}

/// Languages of blocks that hold shell commands: in a guide they must be `console` blocks,
/// which run, so that no command is shown untested by mistake.
const SHELL_LANGS: &[&str] = &[
    "sh",
    "bash",
    "shell",
    "zsh",
    "shell-session",
    "shellsession",
];

/// Parses a guide; errors name `name:LINE`.
fn parse_guide(name: &str, text: &str) -> Result<Guide, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut g = Guide::default();
    let mut block = 0;
    let mut i = 0;
    let err = |line: usize, msg: String| format!("{name}:{line}: {msg}");
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim_start();
        if t.starts_with("<!-- test") {
            if t.trim_end() == "<!-- test-setup" {
                let end = (i + 1..lines.len())
                    .find(|&k| lines[k].trim() == "-->")
                    .ok_or_else(|| err(i + 1, "<!-- test-setup without a closing -->".into()))?;
                g.steps.push(Step::Setup {
                    line: i + 1,
                    script: lines[i + 1..end].join("\n"),
                });
                i = end + 1;
                continue;
            } else if let Some(r) = t.strip_prefix("<!-- test-requires:") {
                let r = r.trim_end().strip_suffix("-->").ok_or_else(|| {
                    err(i + 1, "test-requires must end with --> on its line".into())
                })?;
                g.requires.extend(r.split_whitespace().map(String::from));
            } else if let Some(r) = t.strip_prefix("<!-- test-registry ") {
                let r = r.trim_end().strip_suffix("-->").ok_or_else(|| {
                    err(i + 1, "test-registry must end with --> on its line".into())
                })?;
                let words: Vec<&str> = r.split_whitespace().collect();
                let var = words.first().copied().unwrap_or_default();
                if var.is_empty()
                    || !var.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    || words.len() > 2
                {
                    return Err(err(
                        i + 1,
                        "expected <!-- test-registry VAR [USER:PASSWORD] -->, VAR in capitals"
                            .into(),
                    ));
                }
                let login = match words.get(1) {
                    None => None,
                    Some(w) => Some(
                        w.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                            .ok_or_else(|| err(i + 1, format!("{w}: expected USER:PASSWORD")))?,
                    ),
                };
                g.registries.push(RegistrySpec {
                    var: var.to_string(),
                    login,
                });
            } else {
                return Err(err(
                    i + 1,
                    format!(
                        "unknown test directive {t:?} (known: test-setup, test-requires, \
                         test-registry)"
                    ),
                ));
            }
            i += 1;
            continue;
        }
        let indent = l.len() - t.len();
        let fence_char = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let Some(fc) = fence_char else {
            i += 1;
            continue;
        };
        let n = t.chars().take_while(|c| *c == fc).count();
        if n < 3 {
            i += 1;
            continue;
        }
        let info = t[n..].trim().to_string();
        let close = (i + 1..lines.len())
            .find(|&k| {
                let c = lines[k].trim();
                c.chars().take_while(|x| *x == fc).count() >= n && c.chars().all(|x| x == fc)
            })
            .ok_or_else(|| err(i + 1, "a code block that is never closed".into()))?;
        let body: Vec<String> = lines[i + 1..close]
            .iter()
            .map(|b| {
                let strip = b.len() - b.trim_start_matches(' ').len();
                b[strip.min(indent)..].to_string()
            })
            .collect();
        block += 1;
        block_steps(&mut g, &info, &body, i + 1, block).map_err(|m| err(i + 1, m))?;
        i = close + 1;
    }
    Ok(g)
}

/// The steps of one fenced block whose opening fence is on line `line`.
fn block_steps(
    g: &mut Guide,
    info: &str,
    body: &[String],
    line: usize,
    block: usize,
) -> Result<(), String> {
    let (lang, rest) = info.split_once(' ').unwrap_or((info, ""));
    let mut exact = false;
    let mut status = None;
    let mut file = None;
    let mut skip = None;
    let mut rest = rest.trim();
    while !rest.is_empty() {
        if let Some(reason) = rest.strip_prefix("skip=") {
            skip = Some(reason.trim().to_string());
            break;
        }
        let (tag, more) = rest.split_once(' ').unwrap_or((rest, ""));
        if tag == "exact" {
            exact = true;
        } else if let Some(n) = tag.strip_prefix("exit=") {
            status = Some(
                n.parse::<i32>()
                    .map_err(|_| format!("exit={n}: not an exit status"))?,
            );
        } else if let Some(p) = tag.strip_prefix("file=") {
            if p.is_empty() {
                return Err("file= needs a path".into());
            }
            file = Some(p.to_string());
        } else {
            return Err(format!(
                "unknown tag {tag:?} on a {lang} block (known: exact, exit=N, file=PATH, \
                 skip=REASON)"
            ));
        }
        rest = more.trim();
    }
    if SHELL_LANGS.contains(&lang) {
        return Err(format!(
            "a {lang} block: commands in a guide go in ```console blocks (`$ ` before each \
             command), which the tests run, or carry skip=REASON"
        ));
    }
    if lang != "console" {
        if exact || status.is_some() || skip.is_some() {
            return Err(format!(
                "exact, exit= and skip= apply to console blocks, not to a {lang:?} block"
            ));
        }
        if let Some(path) = file {
            if body.iter().any(|l| l == EOF_MARK) {
                return Err(format!("a line {EOF_MARK} cannot be written by file="));
            }
            g.steps.push(Step::File {
                line,
                block,
                path,
                content: body.iter().map(|l| format!("{l}\n")).collect(),
            });
        }
        return Ok(());
    }
    if file.is_some() {
        return Err("file= applies to blocks that show a file, not to console blocks".into());
    }
    if let Some(reason) = skip {
        if reason.is_empty() {
            return Err("skip= needs the reason the block cannot run".into());
        }
        if exact || status.is_some() {
            return Err("a skipped block cannot also be exact or have exit=".into());
        }
        g.skipped.push((line, reason));
        return Ok(());
    }
    let mut commands: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
    for (k, l) in body.iter().enumerate() {
        let at = line + 1 + k;
        if let Some(c) = l.strip_prefix("$ ") {
            commands.push((at, vec![c.to_string()], Vec::new()));
        } else if l == "$" {
            return Err(format!("line {at}: `$` without a command"));
        } else if let Some(last) = commands.last_mut().filter(|c| c.2.is_empty())
            && (l.starts_with("> ") || l == ">")
        {
            last.1.push(l.get(2..).unwrap_or("").to_string());
        } else if let Some(last) = commands.last_mut() {
            last.2.push(l.clone());
        } else {
            return Err(format!(
                "line {at}: output before the first `$ ` command of the block"
            ));
        }
    }
    if commands.is_empty() {
        return Err("a console block without a `$ ` command".into());
    }
    let last = commands.len() - 1;
    for (n, (at, command, output)) in commands.into_iter().enumerate() {
        g.steps.push(Step::Command {
            line: at,
            block,
            command: command.join("\n"),
            output,
            exact,
            status: if n == last { status.unwrap_or(0) } else { 0 },
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The guides: running
// ---------------------------------------------------------------------------------------

/// The identity and time of every commit a guide makes (so that commit ids, and the library
/// files naming them, are the same on every run).
const GIT_DATE: &str = "2025-11-21T09:00:00Z";
/// How the `n`th registry a guide declares is shown: `localhost:5000`, `localhost:5001`, …
fn shown_registry(n: usize) -> String {
    format!("localhost:{}", 5000 + n)
}
/// Heredoc delimiter for `file=` blocks.
const EOF_MARK: &str = "__OCIPACK_DOCS_EOF__";

fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The bash script that runs `steps`: each step in the shell itself (so `cd` and variables
/// carry over), its output and status saved as `N.out` and `N.rc` in `dir`; the script
/// stops at the first step whose status is not the expected one.
fn script(steps: &[Step], dir: &Path) -> String {
    let mut s = String::new();
    s.push_str("set -o pipefail\n");
    s.push_str("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n");
    s.push_str("cd \"$HOME\" || exit 1\n");
    for (n, step) in steps.iter().enumerate() {
        let (body, want) = match step {
            Step::Setup { script, .. } => (script.clone(), 0),
            Step::Command {
                command, status, ..
            } => (command.clone(), *status),
            Step::File { path, content, .. } => (
                format!(
                    "mkdir -p -- \"$(dirname -- {p})\" && cat > {p} <<'{EOF_MARK}'\n{content}{EOF_MARK}",
                    p = sq(path)
                ),
                0,
            ),
        };
        let out = sq(&dir.join(format!("{n}.out")).to_string_lossy());
        let rc = sq(&dir.join(format!("{n}.rc")).to_string_lossy());
        s.push_str(&format!(
            "{{\n{body}\n}} >{out} 2>&1 </dev/null\n__rc=$?\necho \"$__rc\" >{rc}\n\
             [ \"$__rc\" = {want} ] || exit 0\n"
        ));
    }
    s
}

/// True if `actual` (lines) matches `expected`, where an expected line `...` stands for any
/// number of lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|k| lines_match(rest, &actual[k..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| a == e && lines_match(rest, more)),
    }
}

/// Compares a command's output with the block's, as `exact` asks: byte for byte (after
/// normalising), `...` lines matching any lines. `None` if equal, else what differs.
fn compare(expected: &[String], actual: &str) -> Option<String> {
    if expected.is_empty() && actual.is_empty() {
        return None;
    }
    if !actual.is_empty() && !actual.ends_with('\n') {
        return Some(
            "the output does not end with a newline, so no block can show it exactly".into(),
        );
    }
    let got: Vec<&str> = if actual.is_empty() {
        Vec::new()
    } else {
        actual[..actual.len() - 1].split('\n').collect()
    };
    if lines_match(expected, &got) {
        return None;
    }
    let first = expected
        .iter()
        .zip(&got)
        .position(|(e, a)| e != "..." && e != a)
        .map(|k| format!("first difference at output line {}", k + 1))
        .unwrap_or_else(|| "a different number of lines".into());
    Some(format!(
        "the output differs ({first})\n--- the guide shows:\n{}\n--- the command printed:\n{}",
        expected.join("\n"),
        got.join("\n")
    ))
}

/// What a guide run needs from outside.
struct Env {
    /// A directory holding only `ocipack`.
    bin: PathBuf,
}

impl Env {
    fn new(t: &Path) -> Env {
        let bin = t.join("bin");
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ocipack"), bin.join("ocipack")).unwrap();
        Env { bin }
    }
}

/// Runs the steps of guide `name` in a new home directory below `t`; `Err` describes the
/// failures, naming the guide's file and line.
/// An exact block's output that differs: the 0-based index of its first line in the guide,
/// how many lines it has there, and what the command printed instead.
type Blessing = (usize, usize, Vec<String>);

fn run_guide(
    name: &str,
    g: &Guide,
    env: &Env,
    t: &Path,
    registries: &[(String, String)],
    blessings: &mut Vec<Blessing>,
) -> Result<(), String> {
    let home = t.join("home");
    let state = t.join("state");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&state).unwrap();
    fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = A Maintainer\n\temail = maintainer@example.invalid\n\
         [init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
    )
    .unwrap();
    // Podman, for guides that run their images: the settings that work in CI's containers.
    let podman = t.join("podman");
    fs::create_dir_all(&podman).unwrap();
    fs::write(
        podman.join("containers.conf"),
        "[containers]\ndefault_ulimits = []\nnetns = \"none\"\n\n\
         [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
    )
    .unwrap();
    fs::write(
        podman.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            podman.join("storage").display(),
            podman.join("run").display()
        ),
    )
    .unwrap();
    let script_path = t.join("guide.sh");
    fs::write(&script_path, script(&g.steps, &state)).unwrap();
    let mut c = Command::new("bash");
    c.arg("--noprofile")
        .arg("--norc")
        .arg(&script_path)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                env.bin.display()
            ),
        )
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .env("TERM", "dumb")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", GIT_DATE)
        .env("GIT_COMMITTER_DATE", GIT_DATE)
        .env("OCIPACK_SOURCE", repo())
        .env("CONTAINERS_CONF", podman.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", podman.join("storage.conf"))
        // Offline: anything that tries the network through a proxy-aware client fails fast.
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("no_proxy", "localhost,127.0.0.1")
        .env("NO_PROXY", "localhost,127.0.0.1")
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(t.join("guide.stdout")).unwrap())
        .stderr(fs::File::create(t.join("guide.stderr")).unwrap())
        .current_dir(&home);
    for (var, host) in registries {
        c.env(var, host);
    }
    common::default_signals(&mut c);
    let mut child = c.spawn().expect("bash starts");
    let limit = std::time::Duration::from_secs(600);
    if common::wait_bounded(&mut child, limit).is_none() {
        return Err(format!("{name}: the guide did not finish within {limit:?}"));
    }
    let home_s = home.to_string_lossy().into_owned();
    let normalise = |s: String| {
        let mut s = s.replace(&home_s, "~");
        for (n, (_, host)) in registries.iter().enumerate() {
            s = s.replace(host, &shown_registry(n));
        }
        s
    };
    let mut failures = Vec::new();
    for (n, step) in g.steps.iter().enumerate() {
        let rc = fs::read_to_string(state.join(format!("{n}.rc")));
        let out = normalise(
            String::from_utf8_lossy(&fs::read(state.join(format!("{n}.out"))).unwrap_or_default())
                .into_owned(),
        );
        let (line, what, want) = match step {
            Step::Setup { line, .. } => (*line, "the hidden test-setup".to_string(), 0),
            Step::File {
                line, block, path, ..
            } => (*line, format!("block {block}, writing {path}"), 0),
            Step::Command {
                line,
                block,
                command,
                status,
                ..
            } => (
                *line,
                format!(
                    "block {block}, `{}`",
                    command.lines().next().unwrap_or_default()
                ),
                *status,
            ),
        };
        let Ok(rc) = rc else {
            failures.push(format!(
                "{name}:{line}: {what}: the shell exited during or before it (its stderr: {})",
                fs::read_to_string(t.join("guide.stderr")).unwrap_or_default()
            ));
            break;
        };
        let rc: i32 = rc.trim().parse().unwrap_or(-1);
        if rc != want {
            failures.push(format!(
                "{name}:{line}: {what}: exit status {rc}, expected {want}; its output:\n{out}"
            ));
            break;
        }
        if let Step::Command {
            output,
            exact: true,
            command,
            ..
        } = step
            && let Some(d) = compare(output, &out)
        {
            failures.push(format!("{name}:{line}: {what}: {d}"));
            if !output.iter().any(|l| l == "...") && (out.is_empty() || out.ends_with('\n')) {
                let printed = out.strip_suffix('\n').unwrap_or(&out);
                blessings.push((
                    line - 1 + command.split('\n').count(),
                    output.len(),
                    if out.is_empty() {
                        Vec::new()
                    } else {
                        printed.split('\n').map(String::from).collect()
                    },
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// Parses and runs one guide file's text; `Ok(false)` if it was skipped for a missing tool.
/// Where an exact block's output differs, what was printed goes to `blessings`.
fn check_guide(name: &str, text: &str, blessings: &mut Vec<Blessing>) -> Result<bool, String> {
    let g = parse_guide(name, text)?;
    let mut tools: Vec<&str> = vec!["bash"];
    tools.extend(g.requires.iter().map(String::as_str));
    if !g.registries.is_empty() {
        tools.push("docker-registry");
    }
    if g.registries.iter().any(|r| r.login.is_some()) {
        tools.push("htpasswd");
    }
    if !require_tools(&tools) {
        eprintln!("SKIPPED: {name} (a tool it needs is missing)");
        return Ok(false);
    }
    let t = tempfile::tempdir().unwrap();
    let env = Env::new(t.path());
    let regs: Vec<common::Registry> = g
        .registries
        .iter()
        .map(|r| match &r.login {
            None => common::Registry::start(),
            Some((u, p)) => common::Registry::start_with_htpasswd(u, p),
        })
        .collect();
    let hosts: Vec<(String, String)> = g
        .registries
        .iter()
        .zip(&regs)
        .map(|(spec, r)| (spec.var.clone(), r.host()))
        .collect();
    let result = run_guide(name, &g, &env, &t.path().join("run"), &hosts, blessings);
    if result.is_err() {
        for (r, (var, _)) in regs.iter().zip(&hosts) {
            eprintln!("{name}: the log of ${var}'s registry:\n{}", r.log());
        }
    }
    result.map(|()| true)
}

/// The files whose console blocks run: every guide, and the README's example.
fn guide_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("docs/guides"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.push(repo().join("README.md"));
    files
}

/// With `OCIPACK_DOCS_BLESS=1`, an exact block whose output differs (and holds no `...`)
/// is rewritten in the guide with what the command printed: an aid for writing guides,
/// whose result must be read (`git diff`) before it is committed.
#[test]
fn guides_run_as_written() {
    let bless = std::env::var_os("OCIPACK_DOCS_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in guide_files() {
        let name = f
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&f).unwrap();
        let mut blessings = Vec::new();
        match check_guide(&name, &text, &mut blessings) {
            Ok(true) => ran += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
        if bless && !blessings.is_empty() {
            let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
            blessings.sort_by_key(|b| std::cmp::Reverse(b.0));
            for (at, len, printed) in blessings {
                lines.splice(at..at + len, printed);
            }
            fs::write(&f, lines.join("\n")).unwrap();
            eprintln!("{name}: exact outputs rewritten (OCIPACK_DOCS_BLESS=1): read git diff");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    eprintln!("{ran} guides ran as written");
}

// ---------------------------------------------------------------------------------------
// The harness itself: it must fail where a guide is wrong
// ---------------------------------------------------------------------------------------

/// Runs guide text `text` (named `g.md`) with the harness; the failure message, if any.
fn harness(text: &str) -> Result<(), String> {
    if !require_tools(&["bash"]) {
        return Ok(());
    }
    check_guide("g.md", text, &mut Vec::new()).map(|_| ())
}

#[test]
fn harness_runs_blocks_in_order_in_one_shell() {
    let text = "# A guide\n\n<!-- test-setup\nmkdir work\n-->\n\n```console exact\n$ cd work\n\
                $ echo one > f\n$ cat f\none\n```\n\nText.\n\n```toml file=sub/p.toml\n\
                name = \"x\"\n```\n\n```console exact\n$ cat sub/p.toml; pwd\nname = \"x\"\n\
                ~/work\n$ printf 'a\\nb\\nc\\n'\na\n...\n$ X=1\n$ echo $X\n1\n```\n\n\
                ```console exit=3\n$ (exit 3)\n```\n\n```console exact\n$ cat <<'EOF'\n> two\n>\n\
                > lines\n> EOF\ntwo\n\nlines\n```\n\n```console skip=needs the network\n\
                $ git clone https://example.invalid/x\n```\n";
    assert_eq!(harness(text), Ok(()));
}

#[test]
fn harness_names_the_file_line_and_block_of_a_failure() {
    // Different output in an exact block.
    let e = harness("```console exact\n$ echo hello\nhallo\n```\n").unwrap_err();
    assert!(
        e.starts_with("g.md:2: block 1, `echo hello`: the output differs"),
        "{e}"
    );
    assert!(e.contains("hallo") && e.contains("hello"), "{e}");
    // A failing command, and nothing after it runs.
    let e = harness("x\n\n```console\n$ true\n$ false\n$ touch ran\n```\n").unwrap_err();
    assert!(
        e.starts_with("g.md:5: block 1, `false`: exit status 1, expected 0"),
        "{e}"
    );
    // exit=N is the status of the block's last command.
    let e = harness("```console exit=2\n$ true\n```\n").unwrap_err();
    assert!(e.contains("exit status 0, expected 2"), "{e}");
    // A hidden setup that fails.
    let e = harness("<!-- test-setup\nfalse\n-->\n").unwrap_err();
    assert!(
        e.starts_with("g.md:1: the hidden test-setup: exit status 1"),
        "{e}"
    );
    // `...` matches lines, never a part of one; missing and extra lines are differences.
    for (shown, printed) in [
        ("a...\n", "printf 'ab\\n'"),
        ("a\n", "printf 'a\\nb\\n'"),
        ("a\nb\n", "printf 'a\\n'"),
        ("a\n...\nc\n", "printf 'a\\nb\\n'"),
    ] {
        let text = format!("```console exact\n$ {printed}\n{shown}```\n");
        assert!(harness(&text).is_err(), "{text}");
    }
    // An output without its final newline cannot be shown exactly.
    let e = harness("```console exact\n$ printf a\na\n```\n").unwrap_err();
    assert!(e.contains("does not end with a newline"), "{e}");
    // The shell leaving early is a failure, not a pass.
    let e = harness("```console\n$ exit 0\n$ true\n```\n").unwrap_err();
    assert!(
        e.contains("g.md:2: block 1, `exit 0`: the shell exited"),
        "{e}"
    );
}

#[test]
fn harness_refuses_blocks_it_cannot_check() {
    for (text, want) in [
        ("```sh\nls\n```\n", "g.md:1: a sh block"),
        ("```bash\nls\n```\n", "g.md:1: a bash block"),
        ("```console skip=\n$ ls\n```\n", "skip= needs the reason"),
        (
            "```console\nls\n```\n",
            "output before the first `$ ` command",
        ),
        ("```console\n```\n", "without a `$ ` command"),
        ("```console exakt\n$ ls\n```\n", "unknown tag \"exakt\""),
        (
            "```console exit=x\n$ ls\n```\n",
            "exit=x: not an exit status",
        ),
        ("```toml exact\na = 1\n```\n", "apply to console blocks"),
        (
            "```console file=x\n$ ls\n```\n",
            "file= applies to blocks that show a file",
        ),
        ("```console\n$ ls\n", "never closed"),
        ("<!-- test-setup\nls\n", "without a closing -->"),
        ("<!-- test-foo -->\n", "unknown test directive"),
        ("<!-- test-registry -->\n", "VAR in capitals"),
        ("<!-- test-registry reg -->\n", "VAR in capitals"),
        (
            "<!-- test-registry REG user -->\n",
            "user: expected USER:PASSWORD",
        ),
        (
            "```console exact skip=why\n$ ls\n```\n",
            "cannot also be exact",
        ),
        (
            "```text file=f\n__OCIPACK_DOCS_EOF__\n```\n",
            "cannot be written by file=",
        ),
    ] {
        let e = parse_guide("g.md", text).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // A longer fence holds a shorter one; indented fences (in lists) are blocks too.
    let g = parse_guide(
        "g.md",
        "````markdown\n```sh\nls\n```\n````\n\n1. Step:\n\n   ```console\n   $ true\n   ```\n",
    )
    .unwrap();
    assert_eq!(g.steps.len(), 1, "{g:?}");
}

// ---------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------

/// The rows of the first Markdown table in `text` whose header's first cell is `first`:
/// (line number, cells).
fn table_rows(text: &str, first: &str) -> Vec<(usize, Vec<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            l.starts_with('|')
                && l.trim_start_matches('|').split('|').next().map(str::trim) == Some(first)
        })
        .unwrap_or_else(|| panic!("no table whose first column is {first:?}"));
    let mut rows = Vec::new();
    for (k, l) in lines.iter().enumerate().skip(start + 2) {
        if !l.starts_with('|') {
            break;
        }
        // Cells split at `|` not escaped as `\|`.
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut chars = l.trim().trim_start_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'|') {
                cur.push('|');
                chars.next();
            } else if c == '|' {
                cells.push(cur.trim().to_string());
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        rows.push((k + 1, cells));
    }
    rows
}

fn unquote(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

#[test]
fn ocipack_toml_reference_lists_exactly_the_parsers_keys() {
    let path = "docs/reference/ocipack-toml.md";
    let text = fs::read_to_string(repo().join(path)).unwrap();
    let code: BTreeSet<String> = ocipack::project::project_keys()
        .expect("the parser's keys")
        .into_iter()
        .collect();
    let mut documented = BTreeMap::new();
    for (line, cells) in table_rows(&text, "key") {
        let key = unquote(&cells[0])
            .unwrap_or_else(|| panic!("{path}:{line}: the key cell must be one `key`"));
        assert_eq!(
            cells.len(),
            6,
            "{path}:{line}: {key}: six cells: key, type, default, counterpart, example, meaning"
        );
        for (n, c) in cells.iter().enumerate() {
            assert!(
                !c.is_empty(),
                "{path}:{line}: {key}: cell {} is empty",
                n + 1
            );
        }
        if let Some(first) = documented.insert(key.to_string(), line) {
            panic!("{path}:{line}: {key} is listed twice (first on line {first})");
        }
    }
    let missing: Vec<_> = code
        .iter()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let unknown: Vec<_> = documented
        .iter()
        .filter(|(k, _)| !code.contains(*k))
        .map(|(k, l)| format!("{k} (line {l})"))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{path} and the parser disagree.\nkeys the parser accepts that the table lacks: \
         {missing:?}\nkeys the table lists that the parser does not know: {unknown:?}"
    );
}

#[test]
fn ocipack_toml_reference_examples_are_accepted() {
    // Each row's example, set in an otherwise minimal project, parses.
    let path = "docs/reference/ocipack-toml.md";
    let text = fs::read_to_string(repo().join(path)).unwrap();
    let dir = Path::new("p");
    for (line, cells) in table_rows(&text, "key") {
        let key = unquote(&cells[0]).unwrap();
        let example = unquote(&cells[4])
            .unwrap_or_else(|| panic!("{path}:{line}: {key}: the example must be one `value`"));
        let mut top = BTreeMap::from([
            ("name", "\"x\"".to_string()),
            ("created", "\"@0\"".to_string()),
            ("architectures", "[\"amd64\"]".to_string()),
        ]);
        let mut tables: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
        let mut input = BTreeMap::from([
            ("source", "\"a\"".to_string()),
            ("dest", "\"/a\"".to_string()),
        ]);
        // `[[images]]` is an array of tables: the example goes into an entry "x", after
        // two entries a `from` example may name; the top-level output then needs {image}.
        let mut entries = String::new();
        match key.split_once('.') {
            Some(("images", k)) => {
                top.insert("output", "\"{image}/{arch}\"".into());
                top.insert("architectures", "[\"amd64\", \"arm64v8\"]".into());
                let mut x = BTreeMap::from([
                    ("name", "\"x\"".to_string()),
                    ("tags", "[\"x\"]".to_string()),
                ]);
                x.insert(k, example.to_string());
                for (name, kv) in [
                    ("glibc", BTreeMap::from([("tags", "[\"g\"]".to_string())])),
                    ("musl", BTreeMap::from([("tags", "[\"m\"]".to_string())])),
                    ("x", x),
                ] {
                    entries.push_str("[[images]]\n");
                    if !kv.contains_key("name") {
                        entries.push_str(&format!("name = \"{name}\"\n"));
                    }
                    for (k, v) in kv {
                        entries.push_str(&format!("{k} = {v}\n"));
                    }
                }
            }
            None => {
                top.insert(key, example.to_string());
            }
            Some(("input", k)) => {
                if k == "rootfs" || k == "tar" {
                    input.clear();
                }
                input.insert(k, example.to_string());
            }
            Some((table, k)) => {
                let t = tables.entry(table).or_default();
                if table == "library" {
                    t.insert("maintainers", "[\"A <a@example.invalid> (@a)\"]".into());
                    t.insert("git-repo", "\"https://example.invalid/x.git\"".into());
                    t.insert("tags", "[\"x\"]".into());
                }
                if table == "windows" {
                    t.insert("variants", "[\"nanoserver-ltsc2025\"]".into());
                    t.insert("text", "\"greeting.txt\"".into());
                }
                t.insert(k, example.to_string());
            }
        }
        let mut toml = String::new();
        for (k, v) in &top {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        toml.push_str("[[input]]\n");
        for (k, v) in &input {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        for (t, kv) in &tables {
            toml.push_str(&format!("[{t}]\n"));
            for (k, v) in kv {
                toml.push_str(&format!("{k} = {v}\n"));
            }
        }
        toml.push_str(&entries);
        if let Err(e) = ocipack::project::Project::parse(&toml, &dir.join("ocipack.toml"), dir) {
            panic!("{path}:{line}: the example of {key} is refused: {e}\n{toml}");
        }
    }
}

#[test]
fn cli_reference_is_current() {
    let path = "docs/reference/cli.md";
    let o = run(&["man", "--markdown"]);
    common::assert_exit(&o, 0);
    let committed = fs::read_to_string(repo().join(path)).unwrap();
    if committed.as_bytes() != o.stdout.as_slice() {
        let now = String::from_utf8_lossy(&o.stdout);
        let line = committed
            .lines()
            .zip(now.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(now.lines().count()) + 1,
                |k| k + 1,
            );
        panic!(
            "{path} is not what `ocipack man --markdown` prints (first difference on line \
             {line}); regenerate it: cargo run -- man --markdown > {path}"
        );
    }
}

#[test]
fn ci_runs_the_readmes_test_command() {
    // .ci/run runs "exactly the test command given in the README": its second command line.
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let command = readme
        .lines()
        .nth(3)
        .and_then(|l| l.trim().split("    #").next())
        .unwrap()
        .trim()
        .to_string();
    assert!(
        command.starts_with("cargo fmt --check"),
        "README line 4: {command}"
    );
    let ci = fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run does not run the README's test command {command:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` removed,
/// spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Text outside fenced blocks, line by line (`None` for lines inside one).
fn prose_lines(text: &str) -> Vec<Option<&str>> {
    let mut fence: Option<(char, usize)> = None;
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let c = t.chars().next().unwrap_or(' ');
            let n = t.chars().take_while(|x| *x == c).count();
            match fence {
                Some((fc, fnum)) => {
                    if c == fc && n >= fnum && t.trim_end().chars().all(|x| x == fc) {
                        fence = None;
                    }
                    None
                }
                None if (c == '`' || c == '~') && n >= 3 => {
                    fence = Some((c, n));
                    None
                }
                None => Some(l),
            }
        })
        .collect()
}

/// Every anchor of a Markdown file's headings (with GitHub's `-1`, `-2` for repeats).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for l in prose_lines(text).into_iter().flatten() {
        let Some(h) = l.strip_prefix('#') else {
            continue;
        };
        let h = h.trim_start_matches('#');
        if !h.starts_with(' ') {
            continue;
        }
        let s = slug(h);
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// `[text](target)` links of one line, outside code spans.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = part;
        while let Some(k) = rest.find("](") {
            let after = &rest[k + 2..];
            let Some(end) = after.find(')') else {
                break;
            };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut stack = vec![repo().join("docs")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn relative_links_lead_to_files_and_headings() {
    let mut broken = Vec::new();
    for f in markdown_files() {
        let text = fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(repo()).unwrap().display().to_string();
        for (n, l) in prose_lines(&text).into_iter().enumerate() {
            let Some(l) = l else { continue };
            for target in links(l) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let dest = if file.is_empty() {
                    f.clone()
                } else {
                    f.parent().unwrap().join(file)
                };
                if !dest.exists() {
                    broken.push(format!("{name}:{}: {target}: no such file", n + 1));
                    continue;
                }
                if !anchor.is_empty() {
                    let t = fs::read_to_string(&dest).unwrap_or_default();
                    if !anchors(&t).contains(anchor) {
                        broken.push(format!("{name}:{}: {target}: no such heading", n + 1));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn link_checks_find_what_they_should() {
    assert_eq!(
        slug(" `ocipack build --index OUT DIR`: one multi-platform layout"),
        "ocipack-build---index-out-dir-one-multi-platform-layout"
    );
    let a = anchors("# A\n## B b\n```\n# not a heading\n```\n## B b\n#nope\n");
    assert_eq!(
        a,
        BTreeSet::from(["a".to_string(), "b-b".into(), "b-b-1".into()])
    );
    assert_eq!(
        links("see [x](a.md#b) and `[y](not.md)` or [z](https://e.invalid)"),
        ["a.md#b", "https://e.invalid"]
    );
}
