//! Reading the exposition text: samples by name and labels.
//!
//! A strict parser for the sample lines certwatch writes: quoted label values may hold
//! commas, braces and escapes, so a split on commas would not do. CI also checks the
//! live output with `promtool check metrics`, the reference.

use std::collections::HashMap;

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parsed exposition text.
pub struct Scrape {
    /// The text, for failure messages.
    pub text: String,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `text`, panicking on a malformed line.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("malformed sample line: {l:?}")))
            .collect();
        Scrape {
            text: text.to_owned(),
            samples,
        }
    }

    /// Every sample of `name` whose labels include `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(HashMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| (s.labels.clone(), s.value))
            .collect()
    }

    /// The one value of `name` with `labels`; panics when there is not exactly one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(
            found.len(),
            1,
            "expected one {name}{labels:?}, found {found:?} in:\n{}",
            self.text
        );
        found[0].1
    }

    /// Whether any sample of `name` with `labels` exists.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        !self.find(name, labels).is_empty()
    }

    /// The value of `label` on the one sample of `name` with `labels`.
    pub fn label(&self, name: &str, labels: &[(&str, &str)], label: &str) -> String {
        let found = self.find(name, labels);
        assert_eq!(
            found.len(),
            1,
            "expected one {name}{labels:?}, found {found:?} in:\n{}",
            self.text
        );
        found[0].0.get(label).cloned().unwrap_or_default()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = HashMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = *chars.peek()?;
            if c == '}' {
                chars.next();
                rest = &body[start + 1..];
                break;
            }
            if c == ',' {
                chars.next();
                continue;
            }
            let eq = body[start..].find('=')? + start;
            let key = body[start..eq].to_owned();
            while chars.peek()?.0 <= eq {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
    }
    let value = rest.trim().split(' ').next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[test]
fn quoted_label_values_may_hold_commas_braces_and_escapes() {
    let s = parse_sample(r#"m{a=",x,y,",b="q\"}\\",c=""} -1.5"#).unwrap();
    assert_eq!(s.labels["a"], ",x,y,");
    assert_eq!(s.labels["b"], "q\"}\\");
    assert_eq!(s.labels["c"], "");
    assert_eq!(s.value, -1.5);
    assert_eq!(parse_sample("m 3").unwrap().value, 3.0);
}
