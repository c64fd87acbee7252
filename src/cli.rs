//! The command line, parsed by clap: `serve` (the default), `check` and `config check`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Address, PromDuration, StartTls, TlsName};
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
    Check(CheckArgs),
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
    pub address: Address,
    /// Upgrade with STARTTLS first.
    #[arg(long, value_name = "PROTO", default_value = "none")]
    pub starttls: StartTls,
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
