//! The command line, parsed by clap: `serve` (the default), `check` and `config check`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::reach::{DnsServer, MxDomain, ProxySetting, SrvName};
use crate::config::{Address, PromDuration, StartTls, TlsName};

/// Watch TLS certificates and export their expiry and health to Prometheus.
#[derive(Debug, Parser)]
#[command(
    name = "certwatch",
    version,
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
    #[arg(long, value_name = "PROTO")]
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
