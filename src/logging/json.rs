//! `--log-format json`: one JSON object per line, every key once.
//!
//! The keys are `timestamp` (RFC 3339, UTC), `level`, then the event's own fields at
//! the top level (`message`, and `target` when the event names a probe target), then
//! `module`: the `tracing` target, i.e. the module path or a fixed target such as
//! `certwatch::audit`, and `spans` (outermost first, each with its `name` and fields)
//! when the event happened inside spans. `tracing-subscriber`'s own JSON format writes
//! its module path under `target` too, so a line could carry two `target` keys and log
//! pipelines kept whichever came last.
//!
//! An event field named like one of the keys this format adds (`timestamp`, `level`,
//! `module`, `spans`), or a second field of the same name, is written as
//! `fields.NAME`, so no key is ever repeated. Events forwarded from the `log` crate
//! (rustls) get their log target as `module` and lose the `log.*` bookkeeping fields.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The key of the `tracing` target (the module path).
pub const MODULE_KEY: &str = "module";

/// Keys this format writes itself.
const RESERVED: [&str; 4] = ["timestamp", "level", MODULE_KEY, "spans"];

/// The JSON event format; use with `tracing_subscriber::fmt::format::JsonFields`, so
/// that span fields are stored as JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let from_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut line = Line::default();
        line.push("timestamp", Value::String(timestamp));
        line.push("level", Value::String(meta.level().to_string()));
        let mut fields = EventFields::default();
        event.record(&mut fields);
        for (name, value) in fields.0 {
            if from_log && name.starts_with("log.") {
                continue;
            }
            line.push_field(name, value);
        }
        line.push(MODULE_KEY, Value::String(meta.target().to_owned()));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let mut object = serde_json::Map::new();
                    object.insert("name".into(), Value::String(span.name().to_owned()));
                    let extensions = span.extensions();
                    if let Some(stored) = extensions.get::<FormattedFields<N>>() {
                        if let Ok(Value::Object(fields)) = serde_json::from_str(&stored.fields) {
                            for (key, value) in fields {
                                object.entry(key).or_insert(value);
                            }
                        }
                    }
                    Value::Object(object)
                })
                .collect();
            if !spans.is_empty() {
                line.push("spans", Value::Array(spans));
            }
        }
        writer.write_str(&line.finish())
    }
}

/// A JSON object written key by key in order, each key once.
#[derive(Default)]
struct Line {
    text: String,
    keys: HashSet<String>,
}

impl Line {
    /// Adds a key this format owns.
    fn push(&mut self, key: &str, value: Value) {
        self.keys.insert(key.to_owned());
        self.write(key, &value);
    }

    /// Adds an event field, renamed `fields.NAME` when the key is taken.
    fn push_field(&mut self, name: &str, value: Value) {
        let key = if RESERVED.contains(&name) || self.keys.contains(name) {
            let mut key = format!("fields.{name}");
            let mut n = 2;
            while self.keys.contains(&key) {
                key = format!("fields.{name}.{n}");
                n += 1;
            }
            key
        } else {
            name.to_owned()
        };
        self.write(&key, &value);
        self.keys.insert(key);
    }

    fn write(&mut self, key: &str, value: &Value) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        // Serializing a string or a `Value` into a String cannot fail.
        self.text
            .push_str(&serde_json::to_string(key).unwrap_or_default());
        self.text.push(':');
        self.text
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push_str("}\n");
        self.text
    }
}

/// An event's fields as JSON values, in the order they were recorded.
#[derive(Default)]
struct EventFields(Vec<(&'static str, Value)>);

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON number: null.
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), Value::from(value)));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .push((field.name(), Value::String(value.to_string())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name(), Value::String(format!("{value:?}"))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::layer::SubscriberExt;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines logged by `f`, each parsed, with the raw text for key counting.
    fn logged(f: impl FnOnce()) -> Vec<(String, serde_json::Map<String, Value>)> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines)
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| match serde_json::from_str(l) {
                Ok(Value::Object(map)) => (l.to_owned(), map),
                other => panic!("not a JSON object: {l:?} ({other:?})"),
            })
            .collect()
    }

    /// How often `"key":` opens a key of the top-level object in `line`.
    fn key_count(line: &str, key: &str) -> usize {
        line.matches(&format!("\"{key}\":")).count()
    }

    #[test]
    fn the_probe_target_is_the_only_target_and_the_module_has_its_own_key() {
        let lines = logged(|| {
            tracing::warn!(
                target = "mail",
                ip = "127.0.0.1",
                attempt = 3u64,
                ok = false,
                "probe failed"
            );
        });
        let (raw, json) = &lines[0];
        assert_eq!(key_count(raw, "target"), 1, "{raw}");
        assert_eq!(json["target"], "mail");
        assert_eq!(json[MODULE_KEY], module_path!());
        assert_eq!(json["message"], "probe failed");
        assert_eq!(json["level"], "WARN");
        assert_eq!(json["attempt"], 3);
        assert_eq!(json["ok"], false);
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn an_event_without_a_target_field_has_no_target_key() {
        let lines = logged(|| tracing::info!(target: "certwatch::audit", audit = true, "reloaded"));
        let (_, json) = &lines[0];
        assert!(!json.contains_key("target"), "{json:?}");
        assert_eq!(json[MODULE_KEY], "certwatch::audit");
        assert_eq!(json["audit"], true);
    }

    #[test]
    fn fields_named_like_the_formats_own_keys_are_renamed_not_repeated() {
        let lines = logged(|| tracing::info!(module = "m", level = 7, timestamp = "t", "x"));
        let (raw, json) = &lines[0];
        for key in ["module", "level", "timestamp"] {
            assert_eq!(key_count(raw, key), 1, "{raw}");
        }
        assert_eq!(json["fields.module"], "m");
        assert_eq!(json["fields.level"], 7);
        assert_eq!(json["level"], "INFO");
    }

    #[test]
    fn control_characters_and_span_fields_survive_as_json() {
        let lines = logged(|| {
            let span = tracing::info_span!("scrape", client = "10.0.0.1");
            let _entered = span.enter();
            tracing::info!(detail = "\u{1b}[31mred\n", "x");
        });
        let (raw, json) = &lines[0];
        assert!(!raw.contains('\u{1b}'), "{raw}");
        assert_eq!(json["detail"], "\u{1b}[31mred\n");
        assert_eq!(json["spans"][0]["name"], "scrape");
        assert_eq!(json["spans"][0]["client"], "10.0.0.1");
    }
}
