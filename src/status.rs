//! The `/` status page: every probed address and every certificate file (with its path,
//! and entry in a kubeconfig) with its state, days left, reason and last error, worst
//! first. Plain HTML, no JavaScript. The state and the days left are
//! [`severity::judge`]'s, with the thresholds the caller passes. Everything from a
//! server or the configuration is escaped twice: [`printable`] makes control and
//! bidirectional characters visible, then [`escape`] makes markup text.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use crate::files::FileReport;
use crate::metrics::collector::unix_seconds;
use crate::printable::printable;
use crate::probe::outcome::{AddressOutcome, Verdict};
use crate::severity::{self, Judgement, Reason, Severity, Thresholds};
use crate::store::{Entry, Observation};

/// One line of the page.
struct Line<'a> {
    target: &'a str,
    /// The address probed, or the file read (and its kubeconfig entry).
    place: String,
    /// When it was probed or read.
    finished_at: Option<SystemTime>,
    judgement: Judgement<'a>,
    detail: &'a str,
}

impl Line<'_> {
    fn days_left(&self) -> Option<f64> {
        self.judgement.limit.map(|l| l.days_left())
    }
}

/// The page for `entries`, judged with `thresholds` at `now`.
pub fn render(entries: &[Arc<Entry>], thresholds: Thresholds, now: SystemTime) -> String {
    let mut lines: Vec<Line<'_>> = entries
        .iter()
        .flat_map(|e| -> Vec<Line<'_>> {
            match &e.observation {
                Observation::Endpoint { spec, outcome, .. } => outcome
                    .addresses
                    .iter()
                    .map(|a| line(&spec.name, a, thresholds, now))
                    .collect(),
                Observation::Files { spec, outcome } => outcome
                    .files
                    .iter()
                    .flat_map(|f| file_lines(&spec.name, f, outcome.finished_at, thresholds, now))
                    .collect(),
            }
        })
        .collect();
    lines.sort_by(|a, b| {
        b.judgement
            .severity
            .cmp(&a.judgement.severity)
            .then(
                a.days_left()
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.days_left().unwrap_or(f64::INFINITY)),
            )
            .then(a.target.cmp(b.target))
    });
    let now = unix_seconds(now);
    let mut html = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>certwatch</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}",
        ".bad{background:#fdd}.warn{background:#ffd}.ok{background:#dfd}</style></head><body>\n",
        "<h1>certwatch</h1>\n<p><a href=\"/metrics\">metrics</a></p>\n",
        "<table><thead><tr><th>target</th><th>ip or file</th><th>state</th><th>days left</th><th>reason</th><th>last error</th><th>last probe</th></tr></thead><tbody>\n"
    ));
    for line in &lines {
        let class = match line.judgement.severity {
            Severity::Ok => "ok",
            Severity::Warning => "warn",
            Severity::Critical => "bad",
        };
        let state = match line.judgement.reason {
            Reason::HandshakeFailed(_) | Reason::NotVerified(_) | Reason::NoCertificate => {
                "failing"
            }
            Reason::Unreadable { .. } | Reason::FileNotRead(_) => "unreadable",
            Reason::Expired => "expired",
            Reason::ExpiresWithinCritical => "expiring soon",
            Reason::ExpiresWithinWarning => "expiring",
            Reason::LegacyOnly => "legacy TLS only",
            Reason::Valid => "ok",
        };
        let days = line
            .days_left()
            .map(|d| format!("{d:.1}"))
            .unwrap_or_else(|| "–".into());
        let ago = line
            .finished_at
            .map(|at| format!("{:.0}s ago", (now - unix_seconds(at)).max(0.0)))
            .unwrap_or_default();
        let reason = match line.judgement.reason {
            // The page has said `stage: reason` for a failed handshake since it began.
            Reason::HandshakeFailed(kind) => format!("{}: {}", kind.stage(), kind.reason_label()),
            Reason::Valid => String::new(),
            _ => line.judgement.to_string(),
        };
        let _ = writeln!(
            html,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{state}</td><td>{days}</td><td>{}</td><td>{}</td><td>{ago}</td></tr>",
            escape(&printable(line.target)),
            escape(&printable(&line.place)),
            escape(&printable(&reason)),
            escape(&printable(line.detail)),
        );
    }
    if lines.is_empty() {
        html.push_str("<tr><td colspan=\"7\">No target has been probed yet.</td></tr>\n");
    }
    html.push_str("</tbody></table>\n</body></html>\n");
    html
}

fn line<'a>(
    target: &'a str,
    address: &'a AddressOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> Line<'a> {
    let detail = match (&address.handshake, &address.verdict) {
        (Err(f), _) => f.detail.as_str(),
        (Ok(_), Some(Verdict::Failed { detail, .. })) => detail.as_str(),
        (Ok(_), _) => "",
    };
    Line {
        target,
        place: address_place(address),
        finished_at: Some(address.finished_at),
        judgement: severity::judge(address, thresholds, now),
        detail,
    }
}

/// Where an address line was probed: its IP, a discovered target's host before it.
fn address_place(address: &AddressOutcome) -> String {
    let ip = address.ip.map(|ip| ip.to_string()).unwrap_or_default();
    match &address.host {
        Some(host) if ip.is_empty() => host.label.clone(),
        Some(host) => format!("{} {ip}", host.label),
        None => ip,
    }
}

/// The lines of one file: one per bundle (a kubeconfig's entries), or one for a file
/// that holds none.
fn file_lines<'a>(
    target: &'a str,
    file: &'a FileReport,
    finished_at: Option<SystemTime>,
    thresholds: Thresholds,
    now: SystemTime,
) -> Vec<Line<'a>> {
    let path = file.path.to_string_lossy();
    let unread = file.error.as_ref().map(|e| e.reason);
    let detail = file.error.as_ref().map_or("", |e| e.detail.as_str());
    if file.bundles.is_empty() {
        return vec![Line {
            target,
            place: path.into_owned(),
            finished_at,
            judgement: severity::judge_file(&[], None, unread, thresholds, now),
            detail,
        }];
    }
    file.bundles
        .iter()
        .map(|bundle| Line {
            target,
            place: match &bundle.entry {
                Some(entry) => format!("{path} ({entry})"),
                None => path.clone().into_owned(),
            },
            finished_at,
            judgement: severity::judge_file(
                &bundle.certs,
                bundle.verdict.as_ref(),
                unread,
                thresholds,
                now,
            ),
            detail: match (&bundle.verdict, detail) {
                (Some(Verdict::Failed { detail, .. }), "") => detail.as_str(),
                _ => detail,
            },
        })
        .collect()
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
    use std::time::Duration;

    use super::*;
    use crate::config::raw::RawSettings;
    use crate::probe::outcome::ProbeOutcome;
    use crate::severity::fixtures::*;

    fn entry(name: &str, address: AddressOutcome) -> Arc<Entry> {
        let mut spec = crate::config::one_off_target(
            "127.0.0.1:443".parse().expect("address"),
            None,
            RawSettings::default(),
        )
        .expect("spec");
        spec.name = name.to_owned();
        let store = crate::store::Store::default();
        let observation = Observation::Endpoint {
            spec: Arc::new(spec),
            outcome: ProbeOutcome {
                addresses: vec![address],
                cut: Default::default(),
            },
            served: None,
        };
        store.record(observation, || true).expect("stored")
    }

    /// (class, target, state, days left, reason) of each row, in order.
    fn rows(html: &str) -> Vec<[String; 5]> {
        html.split("<tr class=\"")
            .skip(1)
            .map(|row| {
                let class = row[..row.find('"').unwrap()].to_owned();
                let cells: Vec<String> = row
                    .split("<td>")
                    .skip(1)
                    .map(|c| c[..c.find("</td>").unwrap()].to_owned())
                    .collect();
                [
                    class,
                    cells[0].clone(),
                    cells[2].clone(),
                    cells[3].clone(),
                    cells[4].clone(),
                ]
            })
            .collect()
    }

    #[test]
    fn files_show_with_their_path_and_entry_and_unreadable_ones_as_such() {
        use crate::files::{Bundle, FileError, FileReport, FilesOutcome, ReadReason};
        let config = crate::config::Config::from_yaml(
            "files:\n  - {name: disk, paths: [\"/certs/*\"]}\n",
            "t.yml",
            std::path::Path::new("/"),
        )
        .expect("valid");
        let outcome = FilesOutcome {
            files: vec![
                Arc::new(FileReport {
                    path: "/certs/kubeconfig".into(),
                    bundles: vec![Bundle {
                        entry: Some("users/admin".into()),
                        certs: vec![cert("CN=admin", 3.0)],
                        verdict: None,
                    }],
                    error: None,
                }),
                Arc::new(FileReport::failed(
                    "/certs/app.p12".into(),
                    FileError::new(ReadReason::BadPassword, "the MAC fails"),
                )),
            ],
            matched: 2,
            finished_at: Some(now()),
            ..FilesOutcome::default()
        };
        let store = crate::store::Store::default();
        let entry = store
            .record(
                Observation::Files {
                    spec: config.files[0].clone(),
                    outcome,
                },
                || true,
            )
            .expect("stored");
        let html = render(&[entry], Thresholds::DEFAULT, now());
        let rows = rows(&html);
        assert_eq!(rows[0][2], "expiring soon", "{rows:?}");
        assert_eq!(rows[1][2], "unreadable");
        assert_eq!(rows[1][4], "the file was not read whole (bad_password)");
        assert!(
            html.contains("<td>/certs/kubeconfig (users/admin)</td>"),
            "{html}"
        );
        assert!(html.contains("<td>the MAC fails</td>"), "{html}");
    }

    #[test]
    fn markup_from_servers_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn states_follow_the_one_classifier_worst_first() {
        let entries = [
            entry(
                "fine",
                address(tls(), vec![cert("CN=fine", 90.0)], verified(90.0)),
            ),
            entry(
                "soon",
                address(tls(), vec![cert("CN=soon", 3.0)], verified(3.0)),
            ),
            entry(
                "later",
                address(tls(), vec![cert("CN=later", 14.0)], verified(14.0)),
            ),
            entry("gone", address(tls(), vec![cert("CN=gone", -1.0)], None)),
            entry("down", address(refused("nothing listens"), vec![], None)),
        ];
        let html = render(&entries, Thresholds::DEFAULT, now());
        let rows = rows(&html);
        assert_eq!(
            rows.iter()
                .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str()])
                .collect::<Vec<_>>(),
            [
                ["bad", "gone", "expired"],
                ["bad", "soon", "expiring soon"],
                ["bad", "down", "failing"],
                ["warn", "later", "expiring"],
                ["ok", "fine", "ok"],
            ]
        );
        assert_eq!(rows[1][3], "3.0");
        assert_eq!(rows[1][4], "certificate 0 (CN=soon) expires in 3.0 days");
        assert_eq!(rows[2][3], "–");
        assert_eq!(rows[2][4], "connect: refused");
    }

    #[test]
    fn the_thresholds_are_the_callers() {
        let entries = [entry(
            "later",
            address(tls(), vec![cert("CN=later", 14.0)], verified(14.0)),
        )];
        let tight = Thresholds {
            warning: Duration::from_secs(30 * 86_400),
            critical: Duration::from_secs(20 * 86_400),
        };
        assert_eq!(rows(&render(&entries, tight, now()))[0][2], "expiring soon");
        let loose = Thresholds {
            warning: Duration::from_secs(10 * 86_400),
            critical: Duration::from_secs(86_400),
        };
        assert_eq!(rows(&render(&entries, loose, now()))[0][2], "ok");
    }

    #[test]
    fn control_and_bidi_characters_from_servers_are_shown_not_obeyed() {
        let entries = [entry(
            "t\u{202e}gt",
            address(
                refused("220 \u{1b}[2Jmail\u{202e}lmth.\u{2069}<b>\r\n"),
                vec![],
                None,
            ),
        )];
        let html = render(&entries, Thresholds::DEFAULT, now());
        assert!(!html.contains(|c: char| c != '\n' && crate::printable::is_unsafe(c)));
        assert!(html.contains("<td>t\\u{202e}gt</td>"), "{html}");
        assert!(
            html.contains("220 \\u{1b}[2Jmail\\u{202e}lmth.\\u{2069}&lt;b&gt;\\r\\n"),
            "{html}"
        );
    }
}
