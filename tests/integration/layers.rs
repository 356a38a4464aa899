//! The modules of `src/` form layers, and this test holds them to it.
//!
//! `src/lib.rs` declares the order (its "Layers" list, lowest first). A module may use
//! only modules listed before it; modules listed on one line use none of each other. Within
//! a module, the files beside each other (`store/output.rs`, `store/staging.rs`, …) form no
//! cycle either; a `mod.rs` and its own children are one module and may use each other.
//!
//! What counts as a use: every `use crate::…`/`use super::…` tree and every `crate::…` path
//! written in code (comments, strings and `#[cfg(test)]` modules are not code that ships).
//! The test reads the list from `lib.rs` itself, so the documentation and the rule cannot
//! drift apart, and it fails naming the file and the path that goes against the order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::repo;

/// A module path inside the crate: `["store", "staging"]`.
type ModPath = Vec<String>;

/// The layers declared in `lib.rs`: lines `//! N. [`a`], [`b`] — …`, lowest first.
fn declared_layers(lib: &str) -> Vec<Vec<String>> {
    let mut in_list = false;
    let mut layers = Vec::new();
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with('#') {
            in_list = doc.trim_start_matches('#').trim() == "Layers";
            continue;
        }
        if !in_list {
            continue;
        }
        let Some((number, rest)) = doc.split_once(". ") else {
            continue;
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // The modules are the links before the first dash.
        let head = rest.split(" — ").next().unwrap();
        let names: Vec<String> = head
            .split("[`")
            .skip(1)
            .filter_map(|s| s.split_once("`]").map(|(n, _)| n.to_string()))
            .collect();
        assert!(
            !names.is_empty(),
            "lib.rs: layer {number} names no module: {doc}"
        );
        layers.push(names);
    }
    layers
}

/// Every `.rs` file under `dir`, with its module path.
fn source_files(src: &Path) -> Vec<(PathBuf, ModPath)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut m: ModPath = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                m.pop();
            }
            (p, m)
        })
        .collect()
}

/// The text of `code` with comments, string and character literals blanked out (lengths
/// kept), so that only code is searched.
fn code_only(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let end = b[j + 1..]
                    .windows(close.len())
                    .position(|w| w == close)
                    .map(|p| j + 1 + p + close.len())
                    .unwrap_or(b.len());
                out.extend(
                    b[i..end]
                        .iter()
                        .map(|&c| if c == b'\n' { b'\n' } else { b' ' }),
                );
                i = end;
            } else {
                out.push(b[i]);
                i += 1;
            }
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let n = if b[i] == b'\\' { 2 } else { 1 };
                for _ in 0..n.min(b.len() - i) {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            let lit = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                // A multi-byte character: up to 4 bytes, then the quote.
                (2..=5)
                    .find(|&k| {
                        b.get(i + k) == Some(&b'\'')
                            && std::str::from_utf8(&b[i + 1..i + k])
                                .is_ok_and(|s| s.chars().count() == 1)
                    })
                    .map(|k| i + k + 1)
            };
            match lit {
                Some(end) => {
                    out.extend(std::iter::repeat_n(b' ', end - i));
                    i = end;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// `code` without its `#[cfg(test)]` items (a test module, a test-only function).
fn without_test_items(code: &str) -> String {
    let mut s = code.to_string();
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        // The item ends at the matching close of its first brace, or at its first `;`
        // when that comes first (`#[cfg(test)] mod tests;`, a test-only `use`).
        let semi = rest.find(';');
        let brace = rest.find('{');
        let end = match (semi, brace) {
            (Some(sc), Some(br)) if sc < br => at + sc + 1,
            (_, Some(br)) => {
                let mut depth = 0;
                let mut end = s.len();
                for (k, c) in s[at + br..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + br + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(sc), None) => at + sc + 1,
            (None, None) => s.len(),
        };
        s.replace_range(at..end, "");
    }
    s
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_tree(prefix: &[String], tree: &str, out: &mut Vec<ModPath>) {
    let tree = tree.trim();
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(open) = part.find('{') {
            let head = part[..open].trim().trim_end_matches("::");
            let inner = &part[open + 1..part.rfind('}').unwrap()];
            let mut p = prefix.to_vec();
            p.extend(
                head.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            expand_tree(&p, inner, out);
        } else {
            let path = part.split(" as ").next().unwrap().trim();
            let mut p = prefix.to_vec();
            p.extend(path.split("::").map(|s| s.trim().to_string()));
            out.push(p);
        }
    }
}

/// The module paths `code` (of the module `me`) uses:
/// its `use crate::…`/`use super::…` trees and its inline `crate::…` paths, resolved to
/// absolute module paths (the path as written, which may end in an item's name).
fn uses(code: &str, me: &ModPath) -> Vec<(ModPath, String)> {
    let mut raw: Vec<ModPath> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    // `use` trees.
    let mut i = 0;
    while let Some(p) = code[i..].find("use ") {
        let at = i + p;
        i = at + 4;
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree: String = code[at + 4..at + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if tree.starts_with("crate::") || tree.starts_with("super::") || tree.starts_with("self::")
        {
            let mut paths = Vec::new();
            expand_tree(&[], &tree, &mut paths);
            for p in paths {
                written.push(p.join("::"));
                raw.push(p);
            }
        }
    }
    // Inline paths: `crate::a::b`.
    let mut i = 0;
    while let Some(p) = code[i..].find("crate::") {
        let at = i + p;
        i = at + 7;
        if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
            continue;
        }
        let path: String = code[at..]
            .chars()
            .take_while(|&c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            .collect();
        let p: ModPath = path
            .trim_end_matches(':')
            .split("::")
            .map(str::to_string)
            .collect();
        written.push(path.clone());
        raw.push(p);
    }
    raw.into_iter()
        .zip(written)
        .filter_map(|(p, w)| {
            let mut base: ModPath = match p.first().map(String::as_str) {
                Some("crate") => Vec::new(),
                Some("self") => me.clone(),
                Some("super") => {
                    // In `a/b.rs` and in `a/b/mod.rs` alike (both the module a::b), `super`
                    // is `a`.
                    let mut b = me.clone();
                    b.pop();
                    b
                }
                _ => return None,
            };
            let mut rest = &p[1..];
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().filter(|s| *s != "self").cloned());
            Some((base, w))
        })
        .collect()
}

/// The file-level module a path lands in: the longest prefix that is a module of the crate.
fn owner<'a>(path: &ModPath, modules: &'a BTreeSet<ModPath>) -> Option<&'a ModPath> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()))
}

#[test]
fn modules_use_only_modules_below_them_and_no_files_import_each_other() {
    let root = repo();
    let lib = fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let layers = declared_layers(&lib);
    assert!(
        layers.len() > 5,
        "lib.rs declares no Layers list: {layers:?}"
    );
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    for (n, names) in layers.iter().enumerate() {
        for name in names {
            assert!(
                level.insert(name.clone(), n).is_none(),
                "lib.rs lists {name} twice"
            );
        }
    }
    let files = source_files(&root.join("src"));
    let modules: BTreeSet<ModPath> = files.iter().map(|(_, m)| m.clone()).collect();

    // Every top-level module of the library is in the list, and the list names no other
    // (`cli` is the binary's, above everything).
    let top: BTreeSet<String> = modules
        .iter()
        .filter_map(|m| m.first().cloned())
        .filter(|m| m != "cli")
        .collect();
    let listed: BTreeSet<String> = level.keys().cloned().collect();
    assert_eq!(
        top, listed,
        "lib.rs's Layers list and the modules of src/ differ"
    );

    // Files that are test modules as a whole (`#[cfg(test)] mod tests;`) ship no code.
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    for (path, me) in &files {
        let code = code_only(&fs::read_to_string(path).unwrap());
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let item: Vec<&str> = rest.split_whitespace().take(3).collect();
            let name = match item.as_slice() {
                ["mod", name, ..] | ["pub", "mod", name] | ["pub(crate)", "mod", name] => name,
                _ => continue,
            };
            if let Some(name) = name.strip_suffix(';') {
                let mut m = me.clone();
                m.push(name.to_string());
                test_only.insert(m);
            }
        }
    }
    let files: Vec<_> = files
        .into_iter()
        .filter(|(_, m)| !test_only.iter().any(|t| m.starts_with(t)))
        .collect();

    let mut wrong = Vec::new();
    // Edges between sibling files of one module, for the cycle check.
    let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (path, me) in &files {
        let text = fs::read_to_string(path).unwrap();
        let code = without_test_items(&code_only(&text));
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let my_top = me.first().cloned().unwrap_or_default();
        for (target, written) in uses(&code, me) {
            let Some(to) = owner(&target, &modules) else {
                continue; // an item of lib.rs (`crate::Result`), or a macro
            };
            if to.is_empty() {
                continue;
            }
            let (Some(&from_level), Some(&to_level)) = (level.get(&my_top), level.get(&to[0]))
            else {
                continue; // main.rs and cli/ sit above everything
            };
            if to[0] != my_top && to_level >= from_level {
                wrong.push(format!(
                    "{rel}: uses {written}, but `{}` is not below `{my_top}` in lib.rs's Layers",
                    to[0]
                ));
            }
            // Siblings: the same parent, neither the parent of the other.
            if to != me && !to.starts_with(me) && !me.starts_with(to) {
                let common = me.iter().zip(to.iter()).take_while(|(a, b)| a == b).count();
                let a = me[..(common + 1).min(me.len())].to_vec();
                let b = to[..(common + 1).min(to.len())].to_vec();
                if a != b {
                    edges
                        .entry(a)
                        .or_default()
                        .entry(b)
                        .or_insert(format!("{rel}: {written}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses against the layer order:\n{}",
        wrong.join("\n")
    );

    // No cycle among sibling modules (depth-first search for a back edge).
    fn visit(
        n: &ModPath,
        edges: &BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        state: &mut BTreeMap<ModPath, u8>,
        stack: &mut Vec<(ModPath, String)>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n.clone(), 1);
        for (m, why) in edges.get(n).into_iter().flatten() {
            stack.push((m.clone(), why.clone()));
            match state.get(m) {
                Some(1) => {
                    let from = stack.iter().position(|(x, _)| x == m).unwrap_or(0);
                    let path: Vec<String> = stack[from..].iter().map(|(_, w)| w.clone()).collect();
                    cycles.push(format!("{} →\n    {}", m.join("::"), path.join("\n    ")));
                }
                None => visit(m, edges, state, stack, cycles),
                _ => {}
            }
            stack.pop();
        }
        state.insert(n.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for n in edges.keys() {
        if !state.contains_key(n) {
            let mut stack = vec![(n.clone(), String::new())];
            visit(n, &edges, &mut state, &mut stack, &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_layer_reader_sees_what_it_must() {
    // The code filter keeps code and hides comments, strings and characters.
    let code = code_only(
        "use crate::a::b; // crate::x\nlet s = \"crate::y\"; let c = '\"'; let l: &'a str = r#\"crate::z\"#;\n/* crate::w */ crate::c::d();",
    );
    assert!(
        code.contains("crate::a::b") && code.contains("crate::c::d"),
        "{code}"
    );
    for hidden in ["crate::x", "crate::y", "crate::z", "crate::w"] {
        assert!(!code.contains(hidden), "{hidden} in {code}");
    }
    // Test items are left out.
    let code = without_test_items(
        "fn a() {}\n#[cfg(test)]\nmod tests { use crate::up; fn x() { {} } }\nfn b() {}",
    );
    assert!(
        !code.contains("crate::up") && code.contains("fn b()"),
        "{code}"
    );
    // Use trees, `super` and inline paths resolve to absolute module paths.
    let me: ModPath = vec!["store".into(), "staging".into()];
    let found: BTreeSet<String> = uses(
        "use super::{root::{Root, Follow}, output};\nuse crate::show as s; fn f() { crate::error::Error::x(); }",
        &me,
    )
    .into_iter()
    .map(|(p, _)| p.join("::"))
    .collect();
    let want = [
        "store::root::Root",
        "store::root::Follow",
        "store::output",
        "show",
        "error::Error::x",
    ];
    assert_eq!(found, want.into_iter().map(String::from).collect());
    // The list is read from the docs.
    let layers = declared_layers(
        "//! # Layers\n//!\n//! 1. [`show`] — names\n//! 2. [`a`], [`b`] — two\n//! text\n//! # Next\n//! 3. [`c`]",
    );
    assert_eq!(
        layers,
        vec![vec!["show".to_string()], vec!["a".into(), "b".into()]]
    );
}
