//! Configuration errors: each names the file, the line and column, and what to do.

use std::fmt;
use std::path::PathBuf;

use super::locate::Position;

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read configuration file {path}: {source}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read and has problems, all of which are listed.
    #[error("{}", Listing(origin, problems))]
    Invalid {
        /// The file name, as shown in messages.
        origin: String,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem, one per line, each as `file:line:column: message`.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { origin, problems } => {
                problems.iter().map(|p| format_problem(origin, p)).collect()
            }
        }
    }
}

struct Listing<'a>(&'a String, &'a Vec<Problem>);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&format_problem(self.0, problem))?;
        }
        Ok(())
    }
}

fn format_problem(origin: &str, problem: &Problem) -> String {
    match problem.position {
        Some(Position { line, column }) => format!("{origin}:{line}:{column}: {}", problem.message),
        None => format!("{origin}: {}", problem.message),
    }
}

impl Problem {
    /// A problem that serde_yaml found, with its position taken out of the message.
    pub fn from_yaml(error: &serde_yaml::Error) -> Self {
        let text = error.to_string();
        let message = match text.rsplit_once(" at line ") {
            Some((message, _)) if error.location().is_some() => message.to_owned(),
            _ => text,
        };
        let message = explain_unknown_field(message);
        Self {
            position: error.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            }),
            message,
        }
    }
}

/// serde says "unknown field `x`, expected one of ..."; add what to do.
fn explain_unknown_field(message: String) -> String {
    if message.contains("unknown field") {
        format!("{message}; remove the key or fix its spelling")
    } else {
        message
    }
}
