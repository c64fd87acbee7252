//! The module graph has no cycles: data flows one way, from `config` down to `http`,
//! with shared lower modules (`fileread`, `trust`, `cert`, `shared`) beneath.
//!
//! The test reads every file under `src/`, collects each path that names another
//! module (`use crate::x::..`, `crate::x::f()` in an expression, `super::y`), and
//! builds two kinds of graph:
//!
//! - the top-level modules (`config`, `probe`, `web`...), an edge from any file of one
//!   to any module of another;
//! - within each directory module (`config/`, `probe/`, `web/`, `metrics/`), its
//!   submodules, an edge when one names a sibling. The directory's `mod.rs` is the
//!   facade that declares and wires its children and is not a node here: children
//!   naming items it defines (`super::with_deadline`) and it naming theirs are the
//!   usual shape of a Rust module, not a cycle between stages.
//!
//! Any cycle fails the test, named module by module. A known cycle that is being
//! removed is allowed by one edge of [`ALLOWED`]; an allowed edge that no longer
//! closes a cycle fails too, so that the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges allowed to close a cycle, each with why and until when.
/// None today: keep it that way.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Directory modules whose submodules form their own graph.
const DIRECTORIES: &[&str] = &["config", "files", "http", "metrics", "probe", "web"];

#[test]
fn no_module_imports_itself_through_others() {
    let graph = Graph::of_crate();
    let mut failures = Vec::new();
    // Every allowed edge must still exist and close a cycle.
    for (from, to, why) in ALLOWED {
        if !graph.edges.get(*from).is_some_and(|t| t.contains(*to)) {
            failures.push(format!(
                "allowed edge {from} -> {to} no longer exists: delete it from ALLOWED ({why})"
            ));
        } else if graph.path(to, from).is_none() {
            failures.push(format!(
                "allowed edge {from} -> {to} no longer closes a cycle: delete it from ALLOWED ({why})"
            ));
        }
    }
    let mut checked = graph.clone();
    for (from, to, _) in ALLOWED {
        if let Some(targets) = checked.edges.get_mut(*from) {
            targets.remove(*to);
        }
    }
    for cycle in checked.cycles() {
        failures.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    assert!(
        failures.is_empty(),
        "{}\n\nthe graph (a → b: a file of a names b): {}",
        failures.join("\n"),
        graph.describe()
    );
}

#[test]
fn the_scanner_sees_use_paths_inline_paths_and_super_and_skips_comments_and_strings() {
    let source = r#"
        //! Docs naming crate::web::thing are not an import.
        use crate::config::{Config, raw::RawSettings};
        use super::verify::TrustStore;
        use super::{outcome, with_deadline};
        fn f() {
            let s = "crate::http::router";
            let c = 'x';
            let _ = crate::cert::rfc3339(0);
            /* crate::store::Store */
        }
        mod tests {
            use super::*;
        }
    "#;
    let modules = ModuleSet::from_paths(&[
        "config/mod.rs",
        "config/raw.rs",
        "probe/mod.rs",
        "probe/tls.rs",
        "probe/verify.rs",
        "probe/outcome.rs",
        "cert.rs",
        "http.rs",
        "store.rs",
        "web/mod.rs",
    ]);
    let names: BTreeSet<String> = references(source, &["probe", "tls"], &modules)
        .into_iter()
        .map(|m| m.join("::"))
        .collect();
    let expected: BTreeSet<String> = [
        "config",
        "config::raw",
        "probe::verify",
        "probe::outcome",
        "probe",
        "cert",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expected);
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut graph = Graph::default();
    graph.add("a", "b");
    graph.add("b", "c");
    graph.add("c", "a");
    graph.add("c", "d");
    assert_eq!(graph.cycles(), vec![vec!["a", "b", "c", "a"]]);
    graph.edges.get_mut("c").unwrap().remove("a");
    assert!(graph.cycles().is_empty());
}

#[test]
fn config_names_certwatch_self_as_metrics_does() {
    assert_eq!(
        certwatch::config::SELF_TARGET,
        certwatch::metrics::names::SELF_TARGET
    );
}

/// A module, as its path from the crate root: `["probe", "tls"]`.
type Module = Vec<String>;

/// The modules of the crate, from its files.
#[derive(Debug, Default)]
struct ModuleSet(BTreeSet<Module>);

impl ModuleSet {
    fn from_paths(paths: &[&str]) -> Self {
        ModuleSet(paths.iter().map(|p| module_of(Path::new(p))).collect())
    }

    fn contains(&self, module: &[String]) -> bool {
        self.0.iter().any(|m| m.as_slice() == module)
    }

    /// The longest known module that `path` (from the crate root) starts with.
    fn resolve(&self, path: &[String]) -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| self.contains(prefix))
    }
}

/// The module a file under `src/` defines.
fn module_of(relative: &Path) -> Module {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The node a module counts as in a graph: its top-level module, or, for the graph of
/// a directory module, the child it belongs to (`None` for the directory's own
/// `mod.rs`, which is not a node).
fn node(module: &[String], depth: usize) -> Option<String> {
    (module.len() > depth).then(|| module[..=depth].join("::"))
}

#[derive(Debug, Default, Clone)]
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of_crate() -> Graph {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        collect_rs(&src, &mut files);
        let relative: Vec<PathBuf> = files
            .iter()
            .map(|f| f.strip_prefix(&src).expect("under src").to_owned())
            .collect();
        let modules = ModuleSet(relative.iter().map(|r| module_of(r)).collect());
        let mut graph = Graph::default();
        for (file, rel) in files.iter().zip(&relative) {
            if rel == Path::new("main.rs") {
                continue; // the binary, not a module of the library
            }
            let from = module_of(rel);
            let text = std::fs::read_to_string(file).expect("read a source file");
            for to in references_of(&text, &from, &modules) {
                // Top level: between different top-level modules.
                if let (Some(a), Some(b)) = (node(&from, 0), node(&to, 0)) {
                    if a != b {
                        graph.add(&a, &b);
                    }
                }
                // Within a directory module: between two of its children.
                for dir in DIRECTORIES {
                    if from.first().map(String::as_str) == Some(*dir)
                        && to.first().map(String::as_str) == Some(*dir)
                    {
                        if let (Some(a), Some(b)) = (node(&from, 1), node(&to, 1)) {
                            if a != b {
                                graph.add(&a, &b);
                            }
                        }
                    }
                }
            }
        }
        graph
    }

    fn add(&mut self, from: &str, to: &str) {
        self.edges
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned());
        self.edges.entry(to.to_owned()).or_default();
    }

    /// A path of edges from `from` to `to`, if any.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![vec![from.to_owned()]];
        while let Some(path) = stack.pop() {
            let last = path.last().expect("never empty").clone();
            if last == to {
                return Some(path);
            }
            if !seen.insert(last.clone()) {
                continue;
            }
            for next in self.edges.get(&last).into_iter().flatten() {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
        None
    }

    /// One cycle per strongly connected component of more than one module, each as
    /// the modules in order with the first repeated at the end.
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        let mut done: BTreeSet<String> = BTreeSet::new();
        for start in self.edges.keys() {
            if done.contains(start) {
                continue;
            }
            let component: BTreeSet<String> = self
                .edges
                .keys()
                .filter(|other| {
                    self.path(start, other).is_some() && self.path(other, start).is_some()
                })
                .cloned()
                .collect();
            done.extend(component.iter().cloned());
            if component.len() < 2 {
                continue;
            }
            // A shortest-first walk back to `start` through the component.
            let next = self.edges[start]
                .iter()
                .find(|n| component.contains(*n))
                .expect("a component has an edge inside");
            let mut cycle = vec![start.clone()];
            cycle.extend(self.path(next, start).expect("inside the component"));
            cycles.push(cycle);
        }
        cycles
    }

    fn describe(&self) -> String {
        self.edges
            .iter()
            .filter(|(_, to)| !to.is_empty())
            .map(|(from, to)| {
                format!(
                    "{from} → {}",
                    to.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `text` (the file of module `from`) names, as module paths.
fn references(text: &str, from: &[&str], modules: &ModuleSet) -> Vec<Module> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    references_of(text, &from, modules)
}

fn references_of(text: &str, from: &[String], modules: &ModuleSet) -> Vec<Module> {
    let tokens = tokens(&strip(text));
    let mut found = Vec::new();
    // Inline `mod name { .. }` blocks: inside them `super` is the file's own module.
    let mut inline_depths: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline_depths.last() == Some(&depth) {
                    inline_depths.pop();
                }
            }
            "mod" if tokens.get(i + 2).map(String::as_str) == Some("{") => {
                inline_depths.push(depth);
            }
            "crate" | "super" | "self" if tokens.get(i + 1).map(String::as_str) == Some("::") => {
                // The base module the path starts from.
                let mut base: Vec<String> = match tokens[i].as_str() {
                    "crate" => Vec::new(),
                    "self" => from.to_vec(),
                    _ => {
                        let mut base = from.to_vec();
                        if inline_depths.is_empty() {
                            base.pop();
                        }
                        base
                    }
                };
                let mut j = i + 2;
                // `super::super::..`
                while tokens.get(j).map(String::as_str) == Some("super")
                    && tokens.get(j + 1).map(String::as_str) == Some("::")
                {
                    base.pop();
                    j += 2;
                }
                let mut paths = Vec::new();
                collect_tree(&tokens, &mut j, base, &mut paths);
                for path in paths {
                    if let Some(module) = modules.resolve(&path) {
                        if module.as_slice() != from {
                            found.push(module);
                        }
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Reads a path or a use tree (`a::b::{c, d::e}`) from `tokens[*j]`, pushing each
/// full path (from the crate root) to `out`.
fn collect_tree(tokens: &[String], j: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match tokens.get(*j).map(String::as_str) {
            Some("{") => {
                *j += 1;
                loop {
                    match tokens.get(*j).map(String::as_str) {
                        Some("}") => {
                            *j += 1;
                            return;
                        }
                        Some(",") => *j += 1,
                        None => return,
                        _ => collect_tree(tokens, j, path.clone(), out),
                    }
                }
            }
            Some(word) if is_ident(word) => {
                if word != "self" {
                    path.push(word.to_owned());
                }
                *j += 1;
                if tokens.get(*j).map(String::as_str) == Some("::") {
                    *j += 1;
                    continue;
                }
                out.push(path);
                return;
            }
            Some("*") => {
                *j += 1;
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

fn is_ident(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `text` without comments, string literals and character literals.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !prev_is_ident(&chars, i) {
            // A raw string: r"..", r#".."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    _ => j += 1,
                }
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|k| chars[*k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Words, `::`, and single punctuation characters.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}
