//! The `certwatch` binary: logging, the command line, exit codes. Everything else is
//! in the library.
//!
//! Nothing here writes with `println!` or `eprintln!`, which panic on a closed stream:
//! command output goes through `logging::write_stdout`/`write_stderr`, and `serve`'s
//! last words through the log sink, which cannot block on a full stderr.

use std::ffi::OsString;
use std::process::ExitCode;

use certwatch::app;
use certwatch::cli::{self, CheckArgs, Cli, Command, ConfigCommand};
use certwatch::config::raw::{RawSettings, RawTls};
use certwatch::config::Reach;
use certwatch::config::StartTls;
use certwatch::logging::{self, write_stderr, write_stdout, LogGuard};
use certwatch::probe::transcript;
use certwatch::report::{self, Status, Thresholds};
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && cli::runs_check(&args) => {
            // `check` is a Nagios plugin: bad arguments are UNKNOWN (3), said on
            // stdout in the plugin's format (or as JSON with --json).
            return check_usage_error(&e, cli::wants_json(&args));
        }
        Err(e) => e.exit(),
    };
    let guard = match logging::init(&cli.log) {
        Ok(guard) => guard,
        Err(e) => {
            write_stderr(&format!("certwatch: {e}\n"));
            return ExitCode::from(2);
        }
    };
    // The guard flushes the log lines still queued when it drops, after these.
    match cli.command {
        Some(Command::Config(ConfigCommand::Check { file })) => config_check(&file),
        Some(Command::Serve(args)) => serve(args, &guard),
        Some(Command::Check(args)) => check(*args),
        None => serve(cli.serve, &guard),
    }
}

fn serve(args: certwatch::cli::ServeArgs, log: &LogGuard) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log.line(&format!("certwatch: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        app::cancel_on_signals(shutdown.clone());
        app::serve(args, shutdown).await
    });
    // Probe tasks still blocked in name resolution must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            log.line(&format!("certwatch: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// `check`'s answer to a command line clap refused: UNKNOWN (3), on stdout.
fn check_usage_error(error: &clap::Error, json: bool) -> ExitCode {
    let rendered = error.render().to_string();
    // clap's message is its first paragraph; the usage and the hint follow.
    let problem = rendered
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let details: Vec<&str> = rendered
        .split("\n\n")
        .skip(1)
        .flat_map(str::lines)
        .filter(|l| !l.trim().is_empty())
        .collect();
    check_unknown(&problem, &details, json)
}

/// Prints that `check` could not run (UNKNOWN, exit 3), as text or JSON.
fn check_unknown(problem: &str, details: &[&str], json: bool) -> ExitCode {
    if json {
        let doc = report::unknown_json(problem, std::time::SystemTime::now());
        write_stdout(&format!("{}\n", report::json_text(&doc)));
    } else {
        write_stdout(&report::unknown_text(problem, details));
    }
    Status::Unknown.exit_code()
}

fn check(args: CheckArgs) -> ExitCode {
    // What the probe will speak: --starttls, or the default of what is probed.
    let starttls = args.starttls.unwrap_or(if args.mx.is_some() {
        StartTls::Smtp
    } else {
        StartTls::None
    });
    if args.xmpp_domain.is_some() && !matches!(starttls, StartTls::Xmpp | StartTls::XmppServer) {
        return check_unknown(
            &format!("--xmpp-domain applies to --starttls xmpp or xmpp_server, not {starttls}"),
            &[],
            args.json,
        );
    }
    let settings = RawSettings {
        timeout: Some(args.timeout),
        starttls: args.starttls,
        xmpp_domain: args.xmpp_domain,
        tls: Some(RawTls {
            ca_file: args.ca_file,
            client_cert_file: args.client_cert,
            client_key_file: args.client_key,
        }),
        revocation: Some(certwatch::config::raw::RawRevocation {
            ocsp: Some(args.ocsp),
            depth: None,
            crl: Some(args.crl),
            allow_private_addresses: Some(args.allow_private_addresses),
        }),
        proxy: args.proxy,
        proxy_password_file: args.proxy_password_file,
        ..RawSettings::default()
    };
    let reach = match (args.address, args.mx, args.srv) {
        (Some(address), _, _) => Reach::Address(address),
        (None, Some(domain), _) => Reach::Mx {
            domain,
            port: args.port,
        },
        (None, None, Some(name)) => Reach::Srv(name),
        (None, None, None) => unreachable!("clap requires one of ADDRESS, --mx and --srv"),
    };
    let spec = match certwatch::config::one_off_reach(
        reach,
        args.server_name,
        settings,
        args.dns_servers.iter().map(|s| s.0).collect(),
        certwatch::config::reach::DEFAULT_DNS_TIMEOUT,
    ) {
        Ok(spec) => spec,
        Err(e) => return check_unknown(&e.to_string(), &[], args.json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return check_unknown(
                &format!("cannot start the async runtime: {e}"),
                &[],
                args.json,
            )
        }
    };
    let (outcome, transcript) = if args.verbose {
        let (outcome, transcript) =
            runtime.block_on(transcript::recorded(certwatch::probe::run(&spec)));
        (outcome, Some(transcript))
    } else {
        (runtime.block_on(certwatch::probe::run(&spec)), None)
    };
    runtime.shutdown_background();
    let thresholds = Thresholds {
        warning: args.warn.get(),
        critical: args.crit.get(),
    };
    let now = std::time::SystemTime::now();
    let transcript = transcript.map(|t| t.render(&spec, &outcome, now));
    if args.json {
        let mut doc = report::json(&spec, &outcome, thresholds, now);
        if let Some(transcript) = &transcript {
            doc["transcript"] = transcript.lines().collect::<Vec<_>>().into();
        }
        write_stdout(&format!("{}\n", report::json_text(&doc)));
    } else {
        let mut text = report::text(&spec, &outcome, thresholds, now);
        if let Some(transcript) = &transcript {
            // In a plugin's long output a `|` starts performance data.
            text.push_str("\nTranscript:\n");
            text.push_str(&transcript.replace('|', "\\u{7c}"));
        }
        write_stdout(&text);
    }
    report::status(&outcome, thresholds, now).exit_code()
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match app::check_config(file) {
        Ok(targets) => {
            write_stdout(&format!("{}: valid, {targets} target(s)\n", file.display()));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let listed: String = problems.iter().map(|p| format!("{p}\n")).collect();
            write_stdout(&listed);
            write_stderr(&format!(
                "{}: {} problem(s)\n",
                file.display(),
                problems.len()
            ));
            ExitCode::FAILURE
        }
    }
}
