//! What a test needs from the machine (Debian programs, root), and the harness that
//! runs such tests so that a test that cannot run here shows as ignored, with the
//! reason, instead of passing.
//!
//! Tests that need an external program live in `harness = false` test targets
//! (`tests/interop/`, `tests/e2e/`) run by [`run`] on top of `libtest-mimic`, which
//! takes the usual arguments of `cargo test -- ...` (filters, `--exact`, `--skip`,
//! `--list`, `--test-threads`, `--include-ignored`, `--ignored`, `--nocapture` is the
//! default). Each test is a [`Trial`] made with [`trial!`] from a plain function (or an
//! `async fn`, run on a tokio runtime) and the [`Need`]s it has. Just before the trials
//! run, every need is checked on this machine:
//!
//! - all there: the trial runs;
//! - something missing: the trial is reported as `ignored (needs postfix, root:
//!   apt-get install postfix; run the tests as root)`, and counted in the `ignored` of
//!   the binary's `test result:` line;
//! - something missing under `CI=true`, `--include-ignored` or `--ignored`: the trial
//!   fails with that reason, since there every test must run.
//!
//! Tests that need nothing external stay on the standard harness. The checks here are
//! about presence (a program runs, a file exists, a user exists, root); a server that
//! is present but fails to start fails its test.
//!
//! [`require`] (and `daemon::started`, `prometheus::require`) is the older way, for a
//! standard-harness test not yet converted to a trial: it prints `skipping: ...` and
//! the test passes, which the summary line does not show. To convert such a test: move
//! it into a module of `tests/interop/` or `tests/e2e/` (or a new `harness = false`
//! target whose `main` calls [`run`]), drop its `#[test]` or `#[tokio::test]` and the
//! `require` call, and list it in the module's `trials()` as
//! `trial!(&[CURL, OPENSSL], name)` or `trial!(&[POSTFIX, ROOT], async name)`.

use std::future::Future;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use libtest_mimic::{Arguments, Completion, Failed};

/// Whether this is CI (`CI=true`), where every test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What to do to get a missing [`Need`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// `apt-get install` these Debian packages (space-separated).
    Install(&'static str),
    /// Something else, said as an instruction.
    Do(&'static str),
}

/// One thing a test needs from the machine.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// A short name for the skip reason: `postfix`, `root`.
    pub name: &'static str,
    /// How to get it.
    pub remedy: Remedy,
    /// `Ok` when it is here; otherwise what exactly is missing.
    pub check: fn() -> Result<(), String>,
}

/// `curl` (Debian package `curl`).
pub const CURL: Need = Need {
    name: "curl",
    remedy: Remedy::Install("curl"),
    check: check_curl,
};

/// `openssl`, the reference TLS client (Debian package `openssl`).
pub const OPENSSL: Need = Need {
    name: "openssl",
    remedy: Remedy::Install("openssl"),
    check: check_openssl,
};

/// `promtool` (Debian package `prometheus`).
pub const PROMTOOL: Need = Need {
    name: "promtool",
    remedy: Remedy::Install("prometheus"),
    check: check_promtool,
};

/// Headless Chromium (Debian package `chromium`).
pub const CHROMIUM: Need = Need {
    name: "chromium",
    remedy: Remedy::Install("chromium"),
    check: check_chromium,
};

/// The path of [`CHROMIUM`].
pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";

/// Root, for servers that start as root and drop privileges.
pub const ROOT: Need = Need {
    name: "root",
    remedy: Remedy::Do("run the tests as root"),
    check: check_root,
};

fn check_curl() -> Result<(), String> {
    program_runs("curl", &["--version"])
}

fn check_openssl() -> Result<(), String> {
    program_runs("openssl", &["version"])
}

fn check_promtool() -> Result<(), String> {
    program_runs("promtool", &["--version"])
}

fn check_chromium() -> Result<(), String> {
    file_exists(CHROMIUM_BIN)
}

fn check_root() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match uid.as_deref() {
        Some("0") => Ok(()),
        Some(uid) => Err(format!("the tests run as uid {uid}, not root")),
        None => Err("`id -u` failed".into()),
    }
}

/// `Ok` when `program args` runs and exits 0.
pub fn program_runs(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{program} {}` {status}", args.join(" "))),
        Err(e) => Err(format!("`{program}` does not run: {e}")),
    }
}

/// `Ok` when `path` is a file.
pub fn file_exists(path: impl AsRef<Path>) -> Result<(), String> {
    let path = path.as_ref();
    if path.is_file() {
        Ok(())
    } else {
        Err(format!("{} is missing", path.display()))
    }
}

/// Why a trial cannot run here: its missing needs, with what is missing of each.
#[derive(Debug)]
pub struct Missing(Vec<(Need, String)>);

impl Missing {
    /// The needs of `needs` that are not here; `None` when all are.
    pub fn of(needs: &[Need]) -> Option<Missing> {
        let missing: Vec<(Need, String)> = needs
            .iter()
            .filter_map(|need| (need.check)().err().map(|why| (*need, why)))
            .collect();
        (!missing.is_empty()).then_some(Missing(missing))
    }

    /// `needs postfix, root: apt-get install postfix; run the tests as root`.
    pub fn reason(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|(need, _)| need.name).collect();
        let mut packages: Vec<&str> = Vec::new();
        let mut other: Vec<&str> = Vec::new();
        for (need, _) in &self.0 {
            match need.remedy {
                Remedy::Install(list) => {
                    for package in list.split_whitespace() {
                        if !packages.contains(&package) {
                            packages.push(package);
                        }
                    }
                }
                Remedy::Do(what) => other.push(what),
            }
        }
        let mut remedies = Vec::new();
        if !packages.is_empty() {
            remedies.push(format!("apt-get install {}", packages.join(" ")));
        }
        remedies.extend(other.iter().map(|s| s.to_string()));
        format!("needs {}: {}", names.join(", "), remedies.join("; "))
    }

    /// The reason, then what exactly is missing of each need.
    pub fn details(&self) -> String {
        let mut text = self.reason();
        for (need, why) in &self.0 {
            text.push_str(&format!("\n  {}: {why}", need.name));
        }
        text
    }
}

/// A test of a `harness = false` target: a name, what it needs, and its body, which
/// panics to fail. Made by [`trial!`].
pub struct Trial {
    name: String,
    needs: Vec<Need>,
    body: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for Trial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trial")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl Trial {
    /// A trial named `module::function` after the module (less the test target's own
    /// name) and function it comes from; see [`trial!`].
    pub fn new(
        module_path: &str,
        function: &str,
        needs: &[Need],
        body: impl FnOnce() + Send + 'static,
    ) -> Trial {
        let name = match module_path.split_once("::") {
            Some((_, module)) => format!("{module}::{function}"),
            None => function.to_owned(),
        };
        Trial {
            name,
            needs: needs.to_vec(),
            body: Box::new(body),
        }
    }

    /// Its name, as filters see it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The libtest-mimic trial: the body if every need is here; otherwise ignored with
    /// the reason, or, when `strict`, failed with it. `only_ignored` (`--ignored`)
    /// flags exactly the trials that cannot run, so that it selects them.
    fn into_libtest(self, strict: bool, only_ignored: bool) -> libtest_mimic::Trial {
        let Trial { name, needs, body } = self;
        match Missing::of(&needs) {
            None => libtest_mimic::Trial::test(name, move || {
                body();
                Ok(())
            }),
            Some(missing) if strict => {
                let why = if in_ci() {
                    format!("CI=true, and this test cannot run: {}", missing.details())
                } else {
                    format!("asked to run, and cannot: {}", missing.details())
                };
                libtest_mimic::Trial::test(name, move || Err(Failed::from(why)))
                    .with_ignored_flag(only_ignored)
            }
            Some(missing) => {
                let reason = missing.reason();
                libtest_mimic::Trial::ignorable_test(name, move || {
                    Ok(Completion::ignored_with(reason))
                })
            }
        }
    }
}

/// A [`Trial`] of `function` (or `async function`) with `needs`, named
/// `module::function`:
///
/// ```text
/// trial!(&[POSTFIX, OPENSSL], async starttls_chain_matches_openssl_s_client)
/// ```
#[allow(unused_macros)] // in the standard-harness targets, which share this module
macro_rules! trial {
    ($needs:expr, async $function:ident) => {
        $crate::support::tools::Trial::new(module_path!(), stringify!($function), $needs, || {
            $crate::support::tools::block_on($function())
        })
    };
    ($needs:expr, $function:ident) => {
        $crate::support::tools::Trial::new(module_path!(), stringify!($function), $needs, $function)
    };
}
#[allow(unused_imports)]
pub(crate) use trial;

/// Runs `future` to completion on a new multi-threaded tokio runtime (two workers, as
/// the machines have two cores), as `#[tokio::test(flavor = "multi_thread")]` would.
pub fn block_on(future: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The `main` of a `harness = false` test target: parses the libtest arguments, checks
/// each trial's needs, runs the trials and says how it went, as exit code.
pub fn run(trials: Vec<Trial>) -> ExitCode {
    let (options, filters) = split_filters(std::env::args_os().collect());
    let mut args = Arguments::from_iter(options);
    // As the standard harness: `--test-threads`, else `RUST_TEST_THREADS`.
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    let strict = in_ci() || args.include_ignored || args.ignored;
    let trials: Vec<libtest_mimic::Trial> = trials
        .into_iter()
        .map(|trial| trial.into_libtest(strict, args.ignored))
        .collect();
    apply_filters(&mut args, filters, &trials);
    libtest_mimic::run(&args, trials).exit_code()
}

/// The options that take a value, as the standard harness has them.
const VALUE_OPTIONS: [&str; 6] = [
    "--test-threads",
    "--logfile",
    "--skip",
    "--color",
    "--format",
    "-Z",
];

/// The program name and options of a command line, and its filters (libtest-mimic
/// takes one; `cargo test a b` passes two).
fn split_filters(raw: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, Vec<String>) {
    let mut options = Vec::new();
    let mut filters = Vec::new();
    let mut raw = raw.into_iter();
    options.extend(raw.next());
    while let Some(arg) = raw.next() {
        let text = arg.to_string_lossy();
        if text.starts_with('-') {
            let takes_value = VALUE_OPTIONS.contains(&text.as_ref());
            options.push(arg);
            if takes_value {
                options.extend(raw.next());
            }
        } else {
            filters.push(text.into_owned());
        }
    }
    (options, filters)
}

/// Gives libtest-mimic the filters: one as its own; several as exact `--skip`s of the
/// trials that match none (and the user's `--skip`s), so that they are counted as
/// filtered out as the standard harness counts them.
fn apply_filters(args: &mut Arguments, filters: Vec<String>, trials: &[libtest_mimic::Trial]) {
    if filters.len() <= 1 {
        args.filter = filters.into_iter().next();
        return;
    }
    let exact = args.exact;
    let matches = |name: &str, pattern: &str| {
        if exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    let skipped: Vec<String> = trials
        .iter()
        .map(|trial| trial.name())
        .filter(|name| {
            !filters.iter().any(|f| matches(name, f)) || args.skip.iter().any(|s| matches(name, s))
        })
        .map(str::to_owned)
        .collect();
    args.filter = None;
    args.skip = skipped;
    args.exact = true;
}

/// The older way, for a standard-harness test not yet converted to a [`Trial`]: true
/// when every `(program, Debian package)` of `tools` runs (`PROGRAM --version`).
/// Otherwise prints a skip notice naming the missing ones and returns false (and the
/// test passes: the summary line does not show it), or panics under `CI=true`, where a
/// test that cannot run is a failure.
pub fn require(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(program, _)| {
            program_runs(
                program,
                &[if *program == "openssl" {
                    "version"
                } else {
                    "--version"
                }],
            )
            .is_err()
        })
        .map(|(program, package)| format!("{program} (Debian package `{package}`)"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("missing: {}", missing.join(", "));
    if in_ci() {
        panic!("CI=true and this test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
    false
}
