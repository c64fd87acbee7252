//! Finds where a value sits in the YAML text, for errors found after deserializing.
//!
//! serde_yaml places its own errors, but checks that need the whole file (an unknown
//! module, a duplicate name, an unreadable PEM file) run on the deserialized values,
//! which carry no positions. This module walks the YAML events once and maps each
//! value's path (`targets[3].module`) to its line and column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A one-based line and column in the configuration text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Positions of every value in a document, by path.
#[derive(Debug, Default)]
pub struct Positions(HashMap<String, Position>);

impl Positions {
    /// Indexes `text`; a text that does not parse yields no positions.
    pub fn index(text: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        // A syntax error was already reported by serde_yaml; keep what was indexed.
        let _ = parser.load(&mut walker, false);
        Self(walker.positions)
    }

    /// The position of the value at `path`, or of its closest indexed ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.0.get(path) {
                return Some(*position);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

#[derive(Debug)]
enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Debug, Default)]
struct Walker {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Walker {
    /// The path of the next value, or `None` when the next scalar is a mapping key.
    fn next_value_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Mapping { key: None, .. }) => None,
            Some(Frame::Mapping {
                path,
                key: Some(key),
            }) if path.is_empty() => Some(key.clone()),
            Some(Frame::Mapping {
                path,
                key: Some(key),
            }) => Some(format!("{path}.{key}")),
            Some(Frame::Sequence { path, index }) => Some(format!("{path}[{index}]")),
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key, .. }) => *key = None,
            Some(Frame::Sequence { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        let position = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        self.positions.entry(path.to_owned()).or_insert(position);
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => match self.next_value_path() {
                None => {
                    // A mapping is placed at its first key: where a reader looks for it.
                    if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                        let path = std::mem::take(path);
                        *key = Some(text);
                        self.record(&path, mark);
                        if let Some(Frame::Mapping { path: slot, .. }) = self.stack.last_mut() {
                            *slot = path;
                        }
                    }
                }
                Some(path) => {
                    self.record(&path, mark);
                    self.value_done();
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_default();
                if matches!(event, Event::SequenceStart(..)) {
                    self.record(&path, mark);
                }
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_path() {
        let text = "defaults:\n  interval: 5m\ntargets:\n  - address: a:1\n    module: m\n  - address: b:2\n";
        let positions = Positions::index(text);
        assert_eq!(
            positions.find("defaults.interval"),
            Some(Position {
                line: 2,
                column: 13
            })
        );
        assert_eq!(
            positions.find("targets[0].module"),
            Some(Position {
                line: 5,
                column: 13
            })
        );
        assert_eq!(
            positions.find("targets[1].address"),
            Some(Position {
                line: 6,
                column: 14
            })
        );
        // An unset key falls back to its mapping.
        assert_eq!(
            positions.find("targets[1].name"),
            Some(Position { line: 6, column: 5 })
        );
    }
}
