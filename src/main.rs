//! The `certwatch` binary: logging, the command line, exit codes. Everything else is
//! in the library.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use certwatch::app;
use certwatch::cli::{Cli, Command, ConfigCommand, LogArgs, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = init_logging(&cli.log) {
        eprintln!("certwatch: {message}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::Config(ConfigCommand::Check { file })) => config_check(&file),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn serve(args: certwatch::cli::ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| format!("invalid --log-level {:?}: {e}; use error, warn, info, debug or trace", args.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
