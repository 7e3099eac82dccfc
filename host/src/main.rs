//! The `tpm-autonomic` binary; everything it does lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tpm_autonomic::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tpm-autonomic: cannot start the async runtime: {error}");
            return ExitCode::from(tpm_autonomic::cli::EXIT_CONFIG);
        }
    };
    let env = tpm_autonomic::config::env::EnvMap::from_process();
    let status = runtime.block_on(tpm_autonomic::run(cli, env));
    // Blocked calls (a hung connect, a plugin compile) must not delay exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(status)
}
