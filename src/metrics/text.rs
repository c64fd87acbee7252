//! The Prometheus text exposition format, as far as the collector needs it: family
//! headers, escaped label values and sample lines.

use std::fmt::Write as _;

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

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one sample: `name{labels,extra} value`.
pub fn sample(out: &mut String, name: &str, labels: &str, extra: &str, value: f64) {
    out.push_str(name);
    if !labels.is_empty() || !extra.is_empty() {
        out.push('{');
        out.push_str(labels);
        if !extra.is_empty() {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(extra);
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

fn push_value(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        // Integral values (flags, timestamps) print without a fraction.
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
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
    fn samples_join_labels_and_print_integers_plainly() {
        let mut out = String::new();
        sample(&mut out, "m", "a=\"1\"", "b=\"2\"", 3.0);
        sample(&mut out, "m", "", "", -0.25);
        assert_eq!(out, "m{a=\"1\",b=\"2\"} 3\nm -0.25\n");
    }
}
