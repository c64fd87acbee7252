//! The `certwatch` binary: logging, the command line, exit codes. Everything else is
//! in the library.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use certwatch::app;
use certwatch::cli::{CheckArgs, Cli, Command, ConfigCommand, LogArgs, LogFormat};
use certwatch::config::raw::{RawSettings, RawTls};
use certwatch::report::{self, Status, Thresholds};

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
    if let Err(message) = init_logging(&cli.log) {
        eprintln!("certwatch: {message}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::Config(ConfigCommand::Check { file })) => config_check(&file),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Check(args)) => check(args),
        None => serve(cli.serve),
    }
}

fn serve(args: certwatch::cli::ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certwatch: cannot start the async runtime: {e}");
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
            eprintln!("certwatch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let settings = RawSettings {
        timeout: Some(args.timeout),
        starttls: Some(args.starttls),
        tls: Some(RawTls {
            ca_file: args.ca_file,
            client_cert_file: args.client_cert,
            client_key_file: args.client_key,
        }),
        ..RawSettings::default()
    };
    let spec = match certwatch::config::one_off_target(args.address, args.server_name, settings) {
        Ok(spec) => spec,
        Err(e) => {
            println!("CERTWATCH UNKNOWN - {e}");
            return Status::Unknown.exit_code();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("CERTWATCH UNKNOWN - cannot start the async runtime: {e}");
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
        println!(
            "{}",
            report::json_text(&report::json(&spec, &outcome, thresholds, now))
        );
    } else {
        print!("{}", report::text(&spec, &outcome, thresholds, now));
    }
    report::status(&outcome, thresholds, now).exit_code()
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match app::check_config(file) {
        Ok(targets) => {
            println!("{}: valid, {targets} target(s)", file.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            ExitCode::FAILURE
        }
    }
}

fn init_logging(args: &LogArgs) -> Result<(), String> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|e| {
        format!(
            "invalid --log-level {:?}: {e}; use error, warn, info, debug or trace",
            args.log_level
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
