//! The command line, parsed by clap: `serve` (the default), `check` and `config check`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::reach::{DnsServer, MxDomain, ProxySetting, SrvName};
use crate::config::{Address, PromDuration, StartTls, TlsName, ValueError, XmppDomain};
use crate::shard::Shard;

/// What `certwatch --version` prints after the name: the version, the commit built
/// (`-dirty` when the tree had changes; `unknown` without version control) and the
/// compiler.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("CERTWATCH_REVISION"),
    ", rustc ",
    env!("CERTWATCH_RUSTC_VERSION"),
    ")"
);

/// Watch TLS certificates and export their expiry and health to Prometheus.
#[derive(Debug, Parser)]
#[command(
    name = "certwatch",
    version = VERSION,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default).
    Serve(ServeArgs),
    /// Probe one endpoint once and report its chain; exit codes follow Nagios plugins.
    Check(Box<CheckArgs>),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `certwatch config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print every problem with its line and column.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// Options of `check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The endpoint: host:port, ipv4:port, or an IPv6 address in brackets and a port.
    #[arg(required_unless_present_any = ["mx", "srv"], conflicts_with_all = ["mx", "srv"])]
    pub address: Option<Address>,
    /// Upgrade with STARTTLS first [default: none; smtp with --mx].
    #[arg(long, value_name = "PROTO", value_parser = starttls_parser())]
    pub starttls: Option<StartTls>,
    /// SNI and the name verified [default: the host of ADDRESS].
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<TlsName>,
    /// Trust anchors besides the bundled Mozilla roots (PEM).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate to present (PEM).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Bound on the whole probe.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: PromDuration,
    /// WARNING when a certificate that counts expires within this (the leaf and the
    /// verified path; every presented certificate when the chain does not verify).
    #[arg(long, value_name = "DURATION", default_value = "21d")]
    pub warn: PromDuration,
    /// CRITICAL when a certificate that counts expires within this.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub crit: PromDuration,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Probe every MX host of DOMAIN (at --port) instead of ADDRESS; the status is the
    /// worst over the hosts.
    #[arg(long, value_name = "DOMAIN", conflicts_with = "srv")]
    pub mx: Option<MxDomain>,
    /// Probe every target of an SRV name (_service._proto.domain) instead of ADDRESS.
    #[arg(long, value_name = "NAME")]
    pub srv: Option<SrvName>,
    /// The port probed on each MX host.
    #[arg(long, value_name = "PORT", requires = "mx", default_value_t = crate::config::reach::DEFAULT_MX_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Connect through a proxy: socks5://, socks5h:// (the proxy resolves names) or
    /// http:// (CONNECT), with host:port and optionally user@ before the host.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<ProxySetting>,
    /// The file holding the proxy password (the user is in --proxy's URL).
    #[arg(long, value_name = "FILE", requires = "proxy")]
    pub proxy_password_file: Option<PathBuf>,
    /// Ask this DNS server (ip or ip:port) instead of the system's; repeatable.
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub dns_servers: Vec<DnsServer>,
    /// The XMPP domain sent in the stream header [default: the server name]; with
    /// `--starttls xmpp` or `xmpp_server` only.
    #[arg(long, value_name = "DOMAIN")]
    pub xmpp_domain: Option<XmppDomain>,
    /// Also print the transcript of the probe: every address, connect, line of the
    /// STARTTLS dialogue, the handshake and the phase times.
    #[arg(long, short)]
    pub verbose: bool,
    /// OCSP: read a stapled response (stapled), also ask the responder when none is
    /// stapled (fetch), or not at all (off).
    #[arg(long, value_name = "MODE", default_value = "stapled")]
    pub ocsp: crate::revocation::OcspMode,
    /// CRL: fetch the certificate's CRL (fetch) or not (off).
    #[arg(long, value_name = "MODE", default_value = "off")]
    pub crl: crate::revocation::CrlMode,
    /// Fetch OCSP responses and CRLs from loopback, private, link-local or unspecified
    /// addresses too.
    #[arg(long)]
    pub allow_private_addresses: bool,
}

/// `--starttls`: one of the dialects, each listed with its protocol in `--help`.
fn starttls_parser() -> impl TypedValueParser<Value = StartTls> {
    PossibleValuesParser::new(
        StartTls::ALL
            .iter()
            .map(|dialect| PossibleValue::new(dialect.as_str()).help(starttls_help(*dialect))),
    )
    .map(|name| {
        name.parse::<StartTls>()
            .expect("every listed value is a dialect")
    })
}

/// What each dialect speaks, for `--help`.
const fn starttls_help(dialect: StartTls) -> &'static str {
    match dialect {
        StartTls::None => "TLS from the first byte (HTTPS, IMAPS, SMTPS...)",
        StartTls::Smtp => "SMTP STARTTLS (RFC 3207), ports 25 and 587",
        StartTls::Lmtp => "LMTP STARTTLS after LHLO (RFC 2033)",
        StartTls::Imap => "IMAP STARTTLS (RFC 9051), port 143",
        StartTls::Pop3 => "POP3 STLS (RFC 2595), port 110",
        StartTls::Ftp => "FTP AUTH TLS (RFC 4217), port 21",
        StartTls::Ldap => "LDAP StartTLS extended operation (RFC 4511), port 389",
        StartTls::Postgres => "PostgreSQL SSLRequest, port 5432",
        StartTls::Mysql => "MySQL and MariaDB SSL request, port 3306",
        StartTls::Xmpp => "XMPP client-to-server stream (RFC 6120), port 5222",
        StartTls::XmppServer => "XMPP server-to-server stream (RFC 6120), port 5269",
        StartTls::Nntp => "NNTP STARTTLS (RFC 4642), port 119",
        StartTls::Sieve => "ManageSieve STARTTLS (RFC 5804), port 4190",
    }
}

/// Whether the command line `args` (program name first) runs `check`: the first word
/// that is neither an option nor the value of a global option is `check`. Used to
/// report a command line clap refuses as a Nagios plugin must.
pub fn runs_check(args: &[std::ffi::OsString]) -> bool {
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        match word.as_ref() {
            // The global options that take a separate value.
            "--log-format" | "--log-level" => {
                words.next();
            }
            option if option.starts_with('-') => {}
            command => return command == "check",
        }
    }
    false
}

/// Whether `check`'s command line `args` asks for JSON (`--json` before any `--`).
pub fn wants_json(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Options of `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// The configuration file [default: ./certwatch.yml, then /etc/certwatch/certwatch.yml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `listen` in the file.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Prometheus exporter web configuration (TLS, basic auth).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Reload when the configuration file (or a PEM or password file it names) changes, as a
    /// SIGHUP would. Follows symbolic links and compares contents, so a Kubernetes
    /// ConfigMap update and an editor's rename are both seen.
    #[arg(long = "config.auto-reload", alias = "config.enable-auto-reload")]
    pub config_auto_reload: bool,
    /// How often `--config.auto-reload` looks at the files; a change is applied once
    /// two looks agree on it [default: 1s].
    #[arg(
        long = "config.auto-reload-interval",
        value_name = "DURATION",
        value_parser = reload_interval
    )]
    pub config_auto_reload_interval: Option<PromDuration>,
    /// Probe only this process's share of the targets: shard INDEX of COUNT processes
    /// that run the same configuration (rendezvous hashing of target names). INDEX may
    /// be `hostname`: the ordinal of a StatefulSet pod's host name (certwatch-2 is 2).
    #[arg(
        long,
        value_name = "INDEX/COUNT",
        env = "CERTWATCH_SHARD",
        default_value = "0/1"
    )]
    pub shard: Shard,
}

/// The shortest `--config.auto-reload-interval`.
pub const MIN_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a `--config.auto-reload-interval` was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    /// Not a duration.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// Shorter than [`MIN_RELOAD_INTERVAL`].
    #[error("{given} is shorter than the shortest interval, 100ms")]
    TooShort {
        /// The duration given.
        given: PromDuration,
    },
}

fn reload_interval(text: &str) -> Result<PromDuration, IntervalError> {
    let given: PromDuration = text.parse()?;
    if given.get() < MIN_RELOAD_INTERVAL {
        return Err(IntervalError::TooShort { given });
    }
    Ok(given)
}

/// Logging options, valid with every command.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Least severe level logged: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info", global = true)]
    pub log_level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}
