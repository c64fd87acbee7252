//! Audit events: who changed certwatch's configuration, who failed to authenticate,
//! whose credentials were not checked because authentication was busy, and whose
//! `/probe` requests were refused.
//!
//! Each event is one `tracing` event with the target [`TARGET`] (`certwatch::audit`),
//! the field `audit = true` and an `event` field naming it, so that a log pipeline can
//! route them apart: `--log-format json` writes the `tracing` target as the key
//! `module` (see [`crate::logging::json`]) beside `audit` and `event`; the key `target`
//! is kept for a probe target's name, which audit events do not log. The fields of each
//! event are fixed here; callers only supply the facts. A password never reaches this
//! module, and text a client chose (a user name, a target) is cut and its control,
//! bidirectional and format characters escaped ([`crate::printable`]) before it is
//! logged; so is an error's detail, which can quote a client's certificate.

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
    /// `--config.auto-reload` saw the configuration file, or a file it names, change.
    AutoReload,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::Http(client) => write!(f, "{client}"),
            Trigger::FileChange => f.write_str("file change"),
            Trigger::AutoReload => f.write_str("config.auto-reload"),
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
        detail = %crate::printable::Printable(detail),
        "authentication failed"
    );
}

/// A client's credentials were not checked because authentication was busy (see
/// `web::auth`): it was answered `status` (429 or 503) with `Retry-After`. `user` is
/// the name it gave; `reason` a short fixed word; `suppressed` counts earlier such
/// refusals (of any client) not logged one by one.
pub fn auth_refused(
    client: SocketAddr,
    method: Method,
    user: &str,
    reason: &str,
    status: u16,
    suppressed: u64,
) {
    tracing::warn!(
        target: TARGET,
        audit = true,
        event = "auth_refused",
        client = %client,
        method = method.as_str(),
        user = %clean(user),
        reason,
        status,
        suppressed,
        "authentication busy: credentials not checked"
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

/// `text` cut to [`MAX_TEXT`] characters, with control, bidirectional and format
/// characters escaped.
pub fn clean(text: &str) -> String {
    let cut = text
        .char_indices()
        .nth(MAX_TEXT)
        .map_or(text, |(at, _)| &text[..at]);
    crate::printable::printable(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_cut_and_control_characters_escaped() {
        assert_eq!(clean("alice"), "alice");
        assert_eq!(clean("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(clean("user\u{202e}nimda"), "user\\u{202e}nimda");
        assert_eq!(clean("\u{2066}x\u{200b}"), "\\u{2066}x\\u{200b}");
        assert_eq!(clean(&"x".repeat(1000)).len(), MAX_TEXT);
    }
}
