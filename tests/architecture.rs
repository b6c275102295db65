//! The module structure the README's "Architecture" section describes, checked on the source:
//! which top-level module may use which (from `crate::` paths outside comments), that the
//! graph has no cycle but `value ⇄ heap`, that no source file passes 800 lines, that
//! `unsafe` is allowed in `ffi` only (and for the one `unsafe impl Send for Vm`, in
//! `src/vm/send.rs`), and that thread-locals are in `ffi` only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`src/vm/drive.rs` → `vm`, `src/limits.rs` →
/// `limits`); `None` for the crate root and the CLI.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "bin").then_some(name)
}

/// Code without comments: line comments (`//`, `///`, `//!`) are dropped, so doc links do
/// not count as dependencies.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    })
}

/// Top-level modules named by `crate::name` paths in `text`.
fn used_modules(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in code_lines(text) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                used.insert(name);
            }
            // `use crate::{a, b::c}`: every name in the group.
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                for part in group.split(',') {
                    let name = part.trim().split("::").next().unwrap_or("").trim();
                    if modules.contains(name) {
                        used.insert(name.to_owned());
                    }
                }
            }
        }
    }
    used
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        let entry = graph.entry(module.clone()).or_default();
        for used in used_modules(&text, &modules) {
            if used != module {
                entry.insert(used);
            }
        }
    }
    graph
}

#[test]
fn the_parser_sees_grouped_and_nested_paths() {
    let modules: BTreeSet<String> = ["heap", "value", "interp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let text = "use crate::{heap::Str, value::Value};\n// crate::interp in a comment\nlet x = crate::interp::run;";
    let used = used_modules(text, &modules);
    assert_eq!(
        used, modules,
        "grouped imports and inline paths count, comments do not"
    );
}

#[test]
fn modules_use_only_what_the_architecture_allows() {
    let graph = module_graph();
    // Which top-level modules each one may use. Data flows one way:
    // ffi → vm → {interp, handles, stfl, asm} → {program, value/heap}.
    let allowed: &[(&str, &[&str])] = &[
        ("program", &[]),
        ("stfl", &["program"]),
        // The assembler tells binary input from text by the STFL magic.
        ("asm", &["program", "stfl"]),
        ("limits", &[]),
        ("value", &["heap"]),
        ("heap", &["value"]),
        ("handles", &["value", "heap"]),
        ("interp", &["program", "value", "heap", "limits"]),
        (
            "error",
            &["asm", "stfl", "interp", "handles", "limits", "program"],
        ),
        (
            "vm",
            &[
                "error", "interp", "handles", "stfl", "asm", "program", "value", "heap", "limits",
            ],
        ),
        // The C API knows the VM only through the crate root's re-exports.
        ("ffi", &[]),
    ];
    let allowed: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, uses) in &graph {
        let Some(ok) = allowed.get(module.as_str()) else {
            problems.push(format!(
                "module `{module}` is not in the architecture table (add it, and to the README)"
            ));
            continue;
        };
        for used in uses {
            if !ok.contains(&used.as_str()) {
                problems.push(format!("`{module}` uses `{used}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\ngraph: {graph:#?}");
}

#[test]
fn the_module_graph_is_acyclic_except_value_and_heap() {
    let mut graph = module_graph();
    // The one cycle the design keeps: values point at heap objects, heap objects hold values.
    graph.entry("heap".into()).or_default().remove("value");
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// The one `unsafe` outside `ffi`: `Vm: Send` with the `send` feature, in its own file, with
/// its own `allow` and a `SAFETY` comment.
const SEND_IMPL_FILE: &str = "vm/send.rs";
const SEND_IMPL: &str = "unsafe impl Send for Vm {}";

/// Whether a code line (comments removed) has the word `unsafe`.
fn has_unsafe(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == "unsafe")
}

#[test]
fn unsafe_is_allowed_in_ffi_and_the_send_impl_only() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    assert!(
        lib.contains("#![deny(unsafe_code)]"),
        "the crate root denies unsafe code"
    );
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let allows = code_lines(&text)
            .filter(|l| l.contains("allow(unsafe_code)"))
            .count();
        if file.ends_with("lib.rs") {
            let ffi_allowed = lib.contains("#[allow(unsafe_code)]\npub mod ffi;");
            assert!(
                allows == 1 && ffi_allowed,
                "lib.rs allows unsafe for `ffi` and nothing else"
            );
        } else if file.ends_with(SEND_IMPL_FILE) {
            let unsafe_lines: Vec<&str> = code_lines(&text).filter(|l| has_unsafe(l)).collect();
            assert_eq!(
                unsafe_lines,
                [SEND_IMPL],
                "{SEND_IMPL_FILE} has `{SEND_IMPL}` and no other unsafe code"
            );
            let lines: Vec<&str> = text.lines().collect();
            let at = lines.iter().position(|l| *l == SEND_IMPL).unwrap();
            assert!(
                allows == 1 && at >= 2 && lines[at - 1] == "#[allow(unsafe_code)]",
                "{SEND_IMPL_FILE} allows unsafe code on the impl only"
            );
            assert!(
                lines[..at].iter().any(|l| l.starts_with("// SAFETY:")),
                "the impl has a SAFETY comment"
            );
        } else {
            assert_eq!(
                allows,
                0,
                "{} re-allows unsafe code; only the crate root may, for ffi",
                file.display()
            );
        }
        if module_of(&file).as_deref() != Some("ffi") && !file.ends_with(SEND_IMPL_FILE) {
            let uses_unsafe = code_lines(&text).any(has_unsafe);
            assert!(!uses_unsafe, "{} uses `unsafe` outside ffi", file.display());
        }
    }
}

/// `Vm: Send` relies on no VM state being per thread: thread-locals belong to the C API
/// (its gate and last error, keyed by thread) and to `limits` (the part of the calling
/// thread's own stack already checked: a fact about the thread, read on each call, never
/// about a VM), nowhere else.
#[test]
fn thread_locals_are_in_ffi_and_the_stack_check_only() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        if file.ends_with("src/limits.rs") {
            let count = code_lines(&text)
                .filter(|l| l.contains("thread_local!"))
                .count();
            assert_eq!(
                count, 1,
                "src/limits.rs: one thread-local (the known stack)"
            );
            assert!(text.contains("static KNOWN_STACK:"), "src/limits.rs");
        } else if module_of(&file).as_deref() != Some("ffi") {
            assert!(
                !code_lines(&text).any(|l| l.contains("thread_local!")),
                "{} has a thread-local",
                file.display()
            );
        }
    }
}
