//! The `certwatch` binary: logging, the command line, exit codes. Everything else is
//! in the library.
//!
//! Nothing here writes with `println!` or `eprintln!`, which panic on a closed stream:
//! command output goes through `logging::write_stdout`/`write_stderr`, and `serve`'s
//! last words through the log sink, which cannot block on a full stderr.

use std::process::ExitCode;

use certwatch::app;
use certwatch::cli::{CheckArgs, Cli, Command, ConfigCommand};
use certwatch::config::raw::{RawSettings, RawTls};
use certwatch::config::Reach;
use certwatch::logging::{self, write_stderr, write_stdout, LogGuard};
use certwatch::report::{self, Status, Thresholds};
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("check") => {
            // `check` is a Nagios plugin: bad arguments are UNKNOWN (3).
            let _ = e.print();
            return Status::Unknown.exit_code();
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

fn check(args: CheckArgs) -> ExitCode {
    let settings = RawSettings {
        timeout: Some(args.timeout),
        starttls: args.starttls,
        tls: Some(RawTls {
            ca_file: args.ca_file,
            client_cert_file: args.client_cert,
            client_key_file: args.client_key,
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
        Err(e) => {
            write_stdout(&format!("CERTWATCH UNKNOWN - {e}\n"));
            return Status::Unknown.exit_code();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            write_stdout(&format!(
                "CERTWATCH UNKNOWN - cannot start the async runtime: {e}\n"
            ));
            return Status::Unknown.exit_code();
        }
    };
    let outcome = runtime.block_on(certwatch::probe::run(&spec));
    runtime.shutdown_background();
    let thresholds = Thresholds {
        warning: args.warn.get(),
        critical: args.crit.get(),
    };
    let now = std::time::SystemTime::now();
    if args.json {
        write_stdout(&format!(
            "{}\n",
            report::json_text(&report::json(&spec, &outcome, thresholds, now))
        ));
    } else {
        write_stdout(&report::text(&spec, &outcome, thresholds, now));
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
