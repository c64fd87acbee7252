//! The Prometheus text exposition format, as far as the collector needs it: escaped
//! label values, and families whose `# HELP`/`# TYPE` header is written only when the
//! first sample is.

/// Appends `value` to `out`, escaped for a label value (`\`, `"` and newline).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `,name="value"` (or `name="value"` when `out` is empty).
pub fn push_label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push('"');
}

/// A sample value.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    /// Printed as an integer.
    Int(i64),
    /// Printed in the shortest form that reads back exactly.
    Float(f64),
}

/// One metric family being written into `out`.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    started: bool,
}

impl<'a> Family<'a> {
    /// A family that writes nothing until its first sample, or one continued in a new
    /// output: `started` says whether its header was written already.
    pub fn resume(
        out: &'a mut String,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        started: bool,
    ) -> Self {
        Self {
            out,
            name,
            kind,
            help,
            started,
        }
    }

    /// Whether the header is written.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Writes `name{labels[,extra...]} value`; the parts of `extra` are already
    /// rendered `key="value"` pairs, empty ones skipped.
    pub fn sample(&mut self, labels: &str, extra: &[&str], value: Value) {
        if !self.started {
            self.started = true;
            for line in [
                ["# HELP ", self.name, " ", self.help],
                ["# TYPE ", self.name, " ", self.kind],
            ] {
                line.iter().for_each(|part| self.out.push_str(part));
                self.out.push('\n');
            }
        }
        let out = &mut *self.out;
        out.push_str(self.name);
        let mut first = true;
        for part in std::iter::once(labels)
            .chain(extra.iter().copied())
            .filter(|p| !p.is_empty())
        {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(part);
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        match value {
            Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
            Value::Float(v) if v.fract() == 0.0 && v.abs() < 1e15 => {
                out.push_str(itoa::Buffer::new().format(v as i64));
            }
            Value::Float(v) => out.push_str(ryu::Buffer::new().format(v)),
        }
        out.push('\n');
    }

    /// The output, for checking its size between rows.
    pub fn out(&mut self) -> &mut String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_quotes_backslashes_and_newlines() {
        let mut out = String::new();
        push_label(&mut out, "a", "x\"y\\z\nw");
        assert_eq!(out, r#"a="x\"y\\z\nw""#);
    }

    #[test]
    fn a_family_writes_its_header_once_and_only_with_samples() {
        let mut out = String::new();
        Family::resume(&mut out, "empty", "gauge", "Nothing.", false);
        assert_eq!(out, "");
        let mut family = Family::resume(&mut out, "m", "gauge", "Help.", false);
        family.sample("a=\"1\"", &["", "b=\"2\""], Value::Int(3));
        family.sample("", &[], Value::Float(-0.25));
        family.sample("a=\"1\"", &[], Value::Float(1e20));
        assert_eq!(
            out,
            "# HELP m Help.\n# TYPE m gauge\nm{a=\"1\",b=\"2\"} 3\nm -0.25\nm{a=\"1\"} 1e20\n"
        );
    }
}
