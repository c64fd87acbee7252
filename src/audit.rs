//! Audit events: who changed certwatch's configuration, who failed to authenticate,
//! and whose `/probe` requests were refused.
//!
//! Each event is one `tracing` event with the target [`TARGET`] (`certwatch::audit`),
//! the field `audit = true` and an `event` field naming it, so that a log pipeline can
//! route them apart: `--log-format json` writes the `tracing` target as the key
//! `module` (see [`crate::logging::json`]) beside `audit` and `event`; the key `target`
//! is kept for a probe target's name, which audit events do not log. The fields of each
//! event are fixed here; callers only supply the facts. A password never reaches this
//! module, and text a client chose (a user name, a target) is cut and its control
//! characters escaped before it is logged.

use std::fmt;
use std::net::SocketAddr;

/// The `tracing` target of every audit event.
pub const TARGET: &str = "certwatch::audit";

/// The longest client-chosen text kept in an event, in characters.
pub const MAX_TEXT: usize = 128;

/// What started a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// `POST /-/reload` from this client.
    Http(SocketAddr),
    /// A watched file (the web configuration, a certificate, a key or a CA) changed.
    FileChange,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::Http(client) => write!(f, "{client}"),
            Trigger::FileChange => f.write_str("file change"),
        }
    }
}

/// The configuration file was reloaded: `added`, `removed` and `changed` name targets.
pub fn config_reloaded(who: Trigger, added: &[String], removed: &[String], changed: &[String]) {
    tracing::info!(
        target: TARGET,
        audit = true,
        event = "config_reload",
        who = %who,
        result = "success",
        added = %added.join(","),
        removed = %removed.join(","),
        changed = %changed.join(","),
        "configuration reloaded"
    );
}

/// The configuration file could not be reloaded; the running one stays.
pub fn config_reload_failed(who: Trigger, problems: &[String]) {
    tracing::warn!(
        target: TARGET,
        audit = true,
        event = "config_reload",
        who = %who,
        result = "failure",
        problems = %problems.join("; "),
        "configuration reload failed; keeping the running configuration"
    );
}

/// The web configuration (and the files it names) was reloaded. `certificate` is the
/// SHA-256 fingerprint of the leaf now served (empty without TLS), `previous` the one
/// served before.
pub fn web_reloaded(who: Trigger, certificate: &str, previous: &str) {
    tracing::info!(
        target: TARGET,
        audit = true,
        event = "web_config_reload",
        who = %who,
        result = "success",
        certificate,
        previous_certificate = previous,
        certificate_changed = certificate != previous,
        "web configuration reloaded"
    );
}

/// The web configuration could not be reloaded; the running one, and the certificate
/// in service, stay.
pub fn web_reload_failed(who: Trigger, problems: &[String]) {
    tracing::error!(
        target: TARGET,
        audit = true,
        event = "web_config_reload",
        who = %who,
        result = "failure",
        problems = %problems.join("; "),
        "web configuration reload failed; keeping the running configuration and certificate"
    );
}

/// How a client tried to authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// HTTP basic authentication.
    Basic,
    /// A TLS client certificate.
    ClientCertificate,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Basic => "basic",
            Method::ClientCertificate => "client_certificate",
        }
    }
}

/// A client failed to authenticate. `user` is the name it gave (empty if none);
/// `reason` a short fixed word; `detail` free text that never holds a secret.
pub fn auth_failed(client: SocketAddr, method: Method, user: &str, reason: &str, detail: &str) {
    tracing::warn!(
        target: TARGET,
        audit = true,
        event = "auth_failure",
        client = %client,
        method = method.as_str(),
        user = %clean(user),
        reason,
        detail,
        "authentication failed"
    );
}

/// A `/probe` request was refused. `probe_target` is the `target` parameter as sent;
/// `suppressed` counts earlier refusals of the same client not logged one by one.
pub fn probe_refused(
    client: SocketAddr,
    probe_target: &str,
    reason: &str,
    status: u16,
    suppressed: u64,
) {
    tracing::warn!(
        target: TARGET,
        audit = true,
        event = "probe_refused",
        client = %client,
        probe_target = %clean(probe_target),
        reason,
        status,
        suppressed,
        "refused a /probe request"
    );
}

/// `text` cut to [`MAX_TEXT`] characters, with control characters escaped.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    for c in text.chars().take(MAX_TEXT) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_cut_and_control_characters_escaped() {
        assert_eq!(clean("alice"), "alice");
        assert_eq!(clean("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(clean(&"x".repeat(1000)).len(), MAX_TEXT);
    }
}
