//! File globs, and the bounded, loop-safe directory walk that expands them.
//!
//! A [`Pattern`] is a path whose components may hold wildcards: `*` (any run of
//! characters), `?` (one character), `[abc]`, `[a-z]`, `[!abc]` (one character of, or
//! not of, a set), and a whole component `**` (any number of directories, none
//! included). `\` makes the next character literal. As in a shell, a wildcard does not
//! match a name that starts with `.` unless the component itself starts with `.`: so
//! `/etc/secret/*.crt` matches a Kubernetes secret's `tls.crt` and not its `..data`
//! directory, and `**` does not descend into `..2024_01_01_…` twins of every file.
//!
//! [`Pattern::expand`] walks the file system (blocking) under [`Limits`]:
//!
//! - symbolic links are followed (certbot's `live/` links into `archive/`, a mounted
//!   secret's `..data`), but a directory is read at most once per component of the
//!   pattern, identified by device and inode, so a directory symlink loop ends the
//!   walk of that branch instead of running forever, and two links to one directory
//!   do not list its files twice;
//! - `**` descends at most [`Limits::max_depth`] levels;
//! - at most [`Limits::max_entries`] directory entries are looked at in all, and at
//!   most [`Limits::max_files`] files are kept: the others are counted as skipped,
//!   never silently dropped.
//!
//! A matched name is kept whatever it turns out to be once opened (a dangling symlink,
//! a FIFO): the reader reports it (`not_found`, `unsupported`); only directories are
//! left out. A pattern without wildcards names one file, kept even when it is missing
//! so that the reader reports `not_found`; it is then not counted as matched.
//! [`Pattern::watch_root`] says which directory to watch for the pattern's changes.

use std::collections::HashSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A path with wildcards; see the module docs for the syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// As written, joined to the base directory.
    text: String,
    /// The longest leading run of literal components: where the walk starts.
    root: PathBuf,
    /// The components after `root`.
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    /// A name without wildcards.
    Literal(String),
    /// A name with wildcards.
    Wild(Vec<Token>),
    /// `**`: zero or more directories.
    AnyDepth,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[...]` or `[!...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a glob does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing written.
    #[error("the path is empty: write a file or a glob such as /etc/ssl/certs/*.pem")]
    Empty,
    /// `[` without `]`.
    #[error("invalid glob {text:?}: a `[` has no closing `]` (write `\\[` for a literal bracket)")]
    UnclosedClass {
        /// As written.
        text: String,
    },
    /// `**` inside a name, as in `a**b`.
    #[error("invalid glob {text:?}: `**` must be a whole path component, as in /dir/**/*.pem")]
    DoubleStarInName {
        /// As written.
        text: String,
    },
    /// A trailing `\`.
    #[error("invalid glob {text:?}: it ends with a lone `\\`")]
    TrailingEscape {
        /// As written.
        text: String,
    },
}

impl Pattern {
    /// Parses `text`, relative paths starting at `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        // Absolute, so that the `path` label does not depend on the working directory
        // (no symbolic link is resolved, and no file is looked at).
        let full = base.join(text);
        let full = std::path::absolute(&full).unwrap_or(full);
        let full_text = full.to_string_lossy().into_owned();
        let mut root = PathBuf::new();
        let mut parts = Vec::new();
        for component in full.components() {
            let name = match component {
                Component::Normal(name) => name.to_string_lossy().into_owned(),
                other => {
                    if parts.is_empty() {
                        root.push(other.as_os_str());
                    } else {
                        parts.push(Part::Literal(other.as_os_str().to_string_lossy().into()));
                    }
                    continue;
                }
            };
            let part = parse_part(&name, &full_text)?;
            match part {
                Part::Literal(literal) if parts.is_empty() => root.push(literal),
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            // No wildcard: the last component is the file itself.
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or(PatternError::Empty)?;
            root.pop();
            parts.push(Part::Literal(name));
        }
        Ok(Pattern {
            text: full_text,
            root,
            parts,
        })
    }

    /// The pattern as written, joined to its base directory.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern names one file (no wildcard).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The directory to watch for changes to what the pattern matches, and whether to
    /// watch it recursively: the walk's start, or its nearest existing ancestor while
    /// it does not exist (watched alone, so that its creation is seen). Blocking.
    pub fn watch_root(&self) -> (PathBuf, bool) {
        let recursive = self.parts.len() > 1 || self.parts.contains(&Part::AnyDepth);
        if self.root.is_dir() {
            return (self.root.clone(), recursive);
        }
        // An ancestor: watched alone, never the whole tree under it.
        (nearest_existing(self.root.clone()), false)
    }

    /// Walks the file system for the files this pattern matches, adding them to
    /// `found`. Blocking.
    pub fn expand(&self, limits: &Limits, found: &mut Expansion) {
        if self.is_literal() {
            let path = self.literal_path();
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => found.add(path, true, limits),
                // Kept so that the reader reports it `not_found`; not counted.
                Err(_) => found.add(path, false, limits),
            }
            return;
        }
        let mut visited: HashSet<(u64, u64, usize)> = HashSet::new();
        let mut work: Vec<(PathBuf, usize, usize)> = vec![(self.root.clone(), 0, 0)];
        while let Some((dir, index, depth)) = work.pop() {
            if found.entries >= limits.max_entries {
                found.walk_cut = true;
                return;
            }
            let Some(part) = self.parts.get(index) else {
                continue;
            };
            let last = index + 1 == self.parts.len();
            // Each directory once per component: symlink loops and twins end here.
            match dir_id(&dir) {
                Some(id) if !visited.insert((id.0, id.1, index)) => continue,
                Some(_) => {}
                None => continue,
            }
            match part {
                Part::Literal(name) => {
                    let path = dir.join(name);
                    found.entries += 1;
                    if last {
                        match std::fs::metadata(&path) {
                            Ok(meta) if meta.is_dir() => {}
                            Ok(_) => found.add(path, true, limits),
                            Err(_) if std::fs::symlink_metadata(&path).is_ok() => {
                                found.add(path, true, limits)
                            }
                            Err(_) => {}
                        }
                    } else if path.is_dir() {
                        work.push((path, index + 1, depth));
                    }
                }
                Part::Wild(tokens) => {
                    for (name, path, kind) in list(&dir, limits, found) {
                        if !name_matches(tokens, &name) {
                            continue;
                        }
                        // The directory entry's type saves a `stat` of every plain
                        // file; a link is followed to see what it is.
                        let is_dir = match kind {
                            Some(kind) if kind.is_dir() => true,
                            Some(kind) if kind.is_file() => false,
                            _ => path.is_dir(),
                        };
                        if last {
                            if !is_dir {
                                found.add(path, true, limits);
                            }
                        } else if is_dir {
                            work.push((path, index + 1, depth));
                        }
                    }
                }
                Part::AnyDepth => {
                    // Zero directories: the next component applies here.
                    if last {
                        // `dir/**` alone: every file below.
                        for (name, path, _) in list(&dir, limits, found) {
                            if name.starts_with('.') {
                                continue;
                            }
                            if path.is_dir() {
                                if depth < limits.max_depth {
                                    work.push((path, index, depth + 1));
                                }
                            } else {
                                found.add(path, true, limits);
                            }
                        }
                        continue;
                    }
                    work.push((dir.clone(), index + 1, depth));
                    if depth >= limits.max_depth {
                        found.walk_cut = true;
                        continue;
                    }
                    for (name, path, _) in list(&dir, limits, found) {
                        if !name.starts_with('.') && path.is_dir() {
                            work.push((path, index, depth + 1));
                        }
                    }
                }
            }
        }
    }

    /// Whether a change at `path` can change what this pattern matches: `path` is a
    /// file it matches, or a directory on the way to one (`live/newsite` for
    /// `live/*/cert.pem`), or the walk's start or one of its ancestors.
    pub fn concerns(&self, path: &Path) -> bool {
        if self.root.starts_with(path) {
            return true;
        }
        let Ok(rest) = path.strip_prefix(&self.root) else {
            return false;
        };
        let names: Vec<String> = rest
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        prefix_matches(&self.parts, &names, &|| path.is_dir())
    }

    fn literal_path(&self) -> PathBuf {
        let mut path = self.root.clone();
        for part in &self.parts {
            if let Part::Literal(name) = part {
                path.push(name);
            }
        }
        path
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn nearest_existing(mut dir: PathBuf) -> PathBuf {
    while !dir.is_dir() {
        if !dir.pop() || dir.as_os_str().is_empty() {
            return PathBuf::from("/");
        }
    }
    dir
}

/// The names in `dir` and their paths, counted against the entry budget; an unreadable
/// directory lists nothing (and is noted).
fn list(
    dir: &Path,
    limits: &Limits,
    found: &mut Expansion,
) -> Vec<(String, PathBuf, Option<std::fs::FileType>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            found.unreadable_dirs.push((dir.to_owned(), e.kind()));
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        if found.entries >= limits.max_entries {
            found.walk_cut = true;
            break;
        }
        found.entries += 1;
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        names.push((name, entry.path(), entry.file_type().ok()));
    }
    // Sorted, so that which files the limit keeps does not depend on the directory's
    // internal order.
    names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    names
}

#[cfg(unix)]
fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    meta.is_dir().then(|| (meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    // Without inodes, the path itself (canonical) identifies the directory.
    use std::hash::{Hash, Hasher};
    let canonical = std::fs::canonicalize(dir).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    canonical.hash(&mut hasher);
    Some((0, hasher.finish()))
}

/// Bounds on one expansion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Files kept; further matches are counted in [`Expansion::skipped`].
    pub max_files: usize,
    /// Directory entries looked at, over every pattern of one expansion.
    pub max_entries: usize,
    /// Directories `**` descends.
    pub max_depth: usize,
}

impl Limits {
    /// 10,000 files (the contract's bound per source), a million directory entries
    /// (a few seconds of `readdir`), 32 levels below a `**`.
    pub const DEFAULT: Limits = Limits {
        max_files: 10_000,
        max_entries: 1_000_000,
        max_depth: 32,
    };
}

/// What an expansion found.
#[derive(Debug, Default)]
pub struct Expansion {
    /// The files kept, each once, in the order found (sort before use).
    pub files: Vec<PathBuf>,
    /// Files kept that exist (missing literal paths are kept, not counted).
    pub matched: usize,
    /// Files found beyond [`Limits::max_files`].
    pub skipped: usize,
    /// Directories that could not be listed, with why.
    pub unreadable_dirs: Vec<(PathBuf, std::io::ErrorKind)>,
    /// Whether the entry or depth budget cut the walk short.
    pub walk_cut: bool,
    entries: usize,
    seen: HashSet<PathBuf>,
}

impl Expansion {
    fn add(&mut self, path: PathBuf, exists: bool, limits: &Limits) {
        if self.seen.contains(&path) {
            return;
        }
        if self.files.len() >= limits.max_files {
            if exists {
                self.skipped += 1;
            }
            return;
        }
        self.seen.insert(path.clone());
        self.files.push(path);
        if exists {
            self.matched += 1;
        }
    }
}

fn parse_part(name: &str, text: &str) -> Result<Part, PatternError> {
    if name == "**" {
        return Ok(Part::AnyDepth);
    }
    let mut tokens = Vec::new();
    let mut chars = name.chars().peekable();
    let mut wild = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(c) => tokens.push(Token::Char(c)),
                None => {
                    return Err(PatternError::TrailingEscape {
                        text: text.to_owned(),
                    })
                }
            },
            '*' => {
                if chars.peek() == Some(&'*') {
                    return Err(PatternError::DoubleStarInName {
                        text: text.to_owned(),
                    });
                }
                wild = true;
                tokens.push(Token::Star);
            }
            '?' => {
                wild = true;
                tokens.push(Token::One);
            }
            '[' => {
                wild = true;
                let negated = chars.peek() == Some(&'!');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    // A `]` first in the set is one of its characters, as in a shell.
                    if c == ']' && !ranges.is_empty() {
                        closed = true;
                        break;
                    }
                    let c = if c == '\\' {
                        chars.next().ok_or_else(|| PatternError::TrailingEscape {
                            text: text.to_owned(),
                        })?
                    } else {
                        c
                    };
                    let mut ahead = chars.clone();
                    if ahead.next() == Some('-') && ahead.peek().is_some_and(|e| *e != ']') {
                        chars.next();
                        let end = chars.next().unwrap_or(c);
                        ranges.push((c, end));
                    } else {
                        ranges.push((c, c));
                    }
                }
                if !closed {
                    return Err(PatternError::UnclosedClass {
                        text: text.to_owned(),
                    });
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    if wild {
        Ok(Part::Wild(tokens))
    } else {
        Ok(Part::Literal(
            tokens
                .into_iter()
                .map(|t| match t {
                    Token::Char(c) => c,
                    _ => unreachable!("no wildcard"),
                })
                .collect(),
        ))
    }
}

/// Whether the leading components of a path, `names`, are matched by the leading
/// parts of a pattern; `last_is_dir` says whether the path is a directory (asked only
/// when `**` would take its last name as a directory).
fn prefix_matches(parts: &[Part], names: &[String], last_is_dir: &dyn Fn() -> bool) -> bool {
    let Some(name) = names.first() else {
        return true;
    };
    let rest = &names[1..];
    match parts.first() {
        None => false,
        Some(Part::AnyDepth) => {
            prefix_matches(&parts[1..], names, last_is_dir)
                || (!name.starts_with('.')
                    && (!rest.is_empty() || last_is_dir())
                    && prefix_matches(parts, rest, last_is_dir))
        }
        Some(Part::Literal(literal)) => {
            literal == name && prefix_matches(&parts[1..], rest, last_is_dir)
        }
        Some(Part::Wild(tokens)) => {
            name_matches(tokens, name) && prefix_matches(&parts[1..], rest, last_is_dir)
        }
    }
}

/// Whether `name` matches `tokens`; a leading `.` only by a literal `.`. Greedy with
/// one backtrack point (the last `*`): at most `tokens.len() * name.len()` steps.
fn name_matches(tokens: &[Token], name: &str) -> bool {
    if name.starts_with('.') && !matches!(tokens.first(), Some(Token::Char('.'))) {
        return false;
    }
    let name: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t + 1, n));
                t += 1;
            }
            Some(token) if one_matches(token, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    star = Some((after, taken + 1));
                    t = after;
                    n = taken + 1;
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|t| matches!(t, Token::Star))
}

fn one_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Char(want) => *want == c,
        Token::One => true,
        Token::Star => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(name: &str) -> Vec<Token> {
        match parse_part(name, name).unwrap() {
            Part::Wild(tokens) => tokens,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_match_stars_marks_and_classes_but_not_hidden_names() {
        assert!(name_matches(&wild("*.pem"), "a.pem"));
        assert!(!name_matches(&wild("*.pem"), "a.pem.bak"));
        assert!(name_matches(&wild("cert?.pem"), "cert1.pem"));
        assert!(name_matches(&wild("[ab]*"), "b-x"));
        assert!(!name_matches(&wild("[!ab]*"), "b-x"));
        assert!(name_matches(&wild("[a-c]x"), "bx"));
        assert!(!name_matches(&wild("*"), "..data"));
        assert!(name_matches(&wild(".*"), "..data"));
        assert_eq!(parse_part("a\\*", "").unwrap(), Part::Literal("a*".into()));
        assert!(name_matches(&wild("a\\*?"), "a*b"));
        assert!(!name_matches(&wild("a\\*?"), "abb"));
    }

    #[test]
    fn bad_globs_say_what_is_wrong() {
        let base = Path::new("/");
        assert!(matches!(
            Pattern::parse("/a/[bc", base),
            Err(PatternError::UnclosedClass { .. })
        ));
        assert!(matches!(
            Pattern::parse("/a/x**", base),
            Err(PatternError::DoubleStarInName { .. })
        ));
        assert!(matches!(Pattern::parse("", base), Err(PatternError::Empty)));
        assert!(
            Pattern::parse("/a/[]]x", base).is_ok(),
            "`]` first is literal"
        );
        assert!(matches!(
            Pattern::parse("/a/[]", base),
            Err(PatternError::UnclosedClass { .. })
        ));
    }

    #[test]
    fn literal_prefixes_are_the_root_and_relative_paths_start_at_the_base() {
        let p = Pattern::parse("live/*/fullchain.pem", Path::new("/etc/letsencrypt")).unwrap();
        assert_eq!(p.root, Path::new("/etc/letsencrypt/live"));
        assert_eq!(p.parts.len(), 2);
        assert_eq!(p.as_str(), "/etc/letsencrypt/live/*/fullchain.pem");
        let literal = Pattern::parse("/etc/ssl/cert.pem", Path::new("/")).unwrap();
        assert!(literal.is_literal());
        assert_eq!(literal.literal_path(), Path::new("/etc/ssl/cert.pem"));
    }

    fn expand(pattern: &str, limits: Limits) -> Expansion {
        let mut found = Expansion::default();
        Pattern::parse(pattern, Path::new("/"))
            .unwrap()
            .expand(&limits, &mut found);
        found.files.sort();
        found
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn double_star_descends_follows_links_once_and_survives_loops() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("a/one.pem"));
        touch(&d.join("a/b/two.pem"));
        touch(&d.join("a/b/c/three.pem"));
        touch(&d.join("a/.hidden/four.pem"));
        touch(&d.join("elsewhere/five.pem"));
        // A loop back to the top, and a link to another tree.
        std::os::unix::fs::symlink(d.join("a"), d.join("a/b/loop")).unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("a/linked")).unwrap();
        let found = expand(&format!("{}/a/**/*.pem", d.display()), Limits::DEFAULT);
        let names: Vec<String> = found
            .files
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "a/b/c/three.pem",
                "a/b/two.pem",
                "a/linked/five.pem",
                "a/one.pem"
            ]
        );
        assert_eq!(found.matched, 4);
        assert!(!found.walk_cut);
    }

    #[test]
    fn files_past_the_limit_are_counted_as_skipped() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..7 {
            touch(&dir.path().join(format!("c{i}.pem")));
        }
        let limits = Limits {
            max_files: 5,
            ..Limits::DEFAULT
        };
        let found = expand(&format!("{}/*.pem", dir.path().display()), limits);
        assert_eq!((found.files.len(), found.matched, found.skipped), (5, 5, 2));
        // The first five by name: which are kept does not depend on readdir's order.
        assert!(found.files[0].ends_with("c0.pem") && found.files[4].ends_with("c4.pem"));
    }

    #[test]
    fn a_missing_literal_path_is_kept_but_not_counted_and_a_missing_glob_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let found = expand(
            &format!("{}/nope.pem", dir.path().display()),
            Limits::DEFAULT,
        );
        assert_eq!((found.files.len(), found.matched), (1, 0));
        let found = expand(
            &format!("{}/nope/*.pem", dir.path().display()),
            Limits::DEFAULT,
        );
        assert_eq!((found.files.len(), found.matched), (0, 0));
    }

    #[cfg(unix)]
    #[test]
    fn dangling_links_are_matched_and_directories_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub.pem")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling.pem"))
            .unwrap();
        let found = expand(&format!("{}/*.pem", dir.path().display()), Limits::DEFAULT);
        assert_eq!(found.files, [dir.path().join("dangling.pem")]);
    }

    #[test]
    fn a_change_concerns_a_pattern_on_the_way_to_a_match_only() {
        let p = Pattern::parse("/etc/le/live/*/cert.pem", Path::new("/")).unwrap();
        assert!(p.concerns(Path::new("/etc/le/live/site/cert.pem")));
        assert!(p.concerns(Path::new("/etc/le/live/newsite")));
        assert!(p.concerns(Path::new("/etc/le/live")));
        assert!(p.concerns(Path::new("/etc")));
        assert!(!p.concerns(Path::new("/etc/le/live/site/cert.pem.new")));
        assert!(!p.concerns(Path::new("/etc/le/live/site/out.log")));
        assert!(!p.concerns(Path::new("/etc/le/archive/site/cert2.pem")));
        let deep = Pattern::parse("/certs/**/*.pem", Path::new("/")).unwrap();
        assert!(deep.concerns(Path::new("/certs/a/b/c.pem")));
        assert!(!deep.concerns(Path::new("/certs/.hidden/c.pem")));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let deep = Pattern::parse("**/*.pem", dir.path()).unwrap();
        assert!(
            deep.concerns(&dir.path().join("sub")),
            "a directory on the way"
        );
        assert!(
            !deep.concerns(&dir.path().join("sub/out.log")),
            "not a directory"
        );
    }

    #[test]
    fn the_watch_root_is_the_nearest_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pattern::parse("live/*/fullchain.pem", dir.path()).unwrap();
        assert_eq!(
            p.watch_root(),
            (dir.path().to_owned(), false),
            "live/ does not exist yet"
        );
        std::fs::create_dir(dir.path().join("live")).unwrap();
        assert_eq!(p.watch_root(), (dir.path().join("live"), true));
        let one = Pattern::parse("tls.crt", dir.path()).unwrap();
        assert_eq!(one.watch_root(), (dir.path().to_owned(), false));
    }
}
