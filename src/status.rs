//! The `/` status page: every probed address with its state, days left, reason and last
//! error, worst first. Plain HTML, no JavaScript; everything from a server or the
//! configuration is escaped.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use crate::metrics::collector::unix_seconds;
use crate::probe::outcome::{AddressOutcome, Verdict};
use crate::store::{Entry, Observation};

/// One line of the page.
struct Line<'a> {
    target: &'a str,
    address: &'a AddressOutcome,
    severity: u8,
    days_left: Option<f64>,
    reason: String,
    detail: String,
}

/// The page for `entries`, with days left computed at `now`.
pub fn render(entries: &[Arc<Entry>], now: SystemTime) -> String {
    let now = unix_seconds(now);
    let mut lines: Vec<Line<'_>> = entries
        .iter()
        .flat_map(|e| match &e.observation {
            Observation::Endpoint { spec, outcome } => outcome
                .addresses
                .iter()
                .map(move |a| line(&spec.name, a, now)),
        })
        .collect();
    lines.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(
                a.days_left
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.days_left.unwrap_or(f64::INFINITY)),
            )
            .then(a.target.cmp(b.target))
    });
    let mut html = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>certwatch</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}",
        ".bad{background:#fdd}.warn{background:#ffd}.ok{background:#dfd}</style></head><body>\n",
        "<h1>certwatch</h1>\n<p><a href=\"/metrics\">metrics</a></p>\n",
        "<table><thead><tr><th>target</th><th>ip</th><th>state</th><th>days left</th><th>reason</th><th>last error</th><th>last probe</th></tr></thead><tbody>\n"
    ));
    for line in &lines {
        let class = match line.severity {
            0 => "ok",
            1 => "warn",
            _ => "bad",
        };
        let state = match line.severity {
            0 => "ok",
            1 => "expiring",
            _ => "failing",
        };
        let days = line
            .days_left
            .map(|d| format!("{d:.1}"))
            .unwrap_or_else(|| "–".into());
        let ip = line.address.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let ago = (now - unix_seconds(line.address.finished_at)).max(0.0);
        let _ = writeln!(
            html,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{state}</td><td>{days}</td><td>{}</td><td>{}</td><td>{ago:.0}s ago</td></tr>",
            escape(line.target),
            escape(&ip),
            escape(&line.reason),
            escape(&line.detail),
        );
    }
    if lines.is_empty() {
        html.push_str("<tr><td colspan=\"7\">No target has been probed yet.</td></tr>\n");
    }
    html.push_str("</tbody></table>\n</body></html>\n");
    html
}

/// Days before a certificate expires that the page marks it as expiring.
const EXPIRING_DAYS: f64 = 21.0;

fn line<'a>(target: &'a str, address: &'a AddressOutcome, now: f64) -> Line<'a> {
    let days_left = address
        .chain
        .iter()
        .filter_map(|c| c.not_after())
        .min()
        .map(|t| (t as f64 - now) / 86_400.0);
    let (severity, reason, detail) = match (&address.handshake, &address.verdict) {
        (Err(f), _) => (
            2,
            format!("{}: {}", f.kind.stage(), f.kind.reason_label()),
            f.detail.clone(),
        ),
        (Ok(_), Some(Verdict::Failed { reason, detail })) => {
            (2, reason.as_label().to_owned(), detail.clone())
        }
        (Ok(_), _) if days_left.is_some_and(|d| d < EXPIRING_DAYS) => {
            (1, String::new(), String::new())
        }
        (Ok(_), _) => (0, String::new(), String::new()),
    };
    Line {
        target,
        address,
        severity,
        days_left,
        reason,
        detail,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_servers_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
