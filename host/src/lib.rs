//! tpm-autonomic: a daemon that watches a federation's PostgreSQL database
//! for basin signals with sandboxed WebAssembly detectors, alerts the Chief
//! on Telegram when one is present, and records every detection in thermal
//! memory.
//!
//! Modules:
//!
//! - [`cli`]: command-line options and exit codes.
//! - [`config`]: resolution of options, environment, secrets file and
//!   configuration file into one validated [`config::Config`].
//! - [`logging`]: the federation's log line format, to stderr and a file.
//! - [`contract`]: host bindings of the WIT detector contract.
//! - [`plugin`]: the engine, loading, sandbox limits and calls of detector
//!   plugins, and the registry that follows the plugins folder.
//! - [`query`]: the read-only query capability: guard, execution,
//!   conversion.
//! - [`db`]: the connection pool and database health.
//! - [`detector`]: checks of what detectors return.
//! - [`cycle`]: one monitoring cycle.
//! - [`alert`]: alert messages and Telegram delivery.
//! - [`thermal`]: thermal memory records.
//! - [`report`]: the `--once` conformance report.
//! - [`daemon`]: start-up, the cycle loop, and alert delivery.
//! - [`leader`]: leadership among daemons sharing a database.
//! - [`store`]: where the alert state is kept.
//! - [`signal`]: SIGTERM, SIGINT and SIGHUP.
//!
//! One cycle: refresh the plugins from their folder; check the database;
//! run every detector in its own sandboxed store, concurrently and bounded;
//! collect the findings; with basin findings, write one thermal record;
//! decide from the alert state what to tell the Chief; save the state and
//! deliver the messages; log the outcome.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod alert;
pub mod cli;
pub mod config;
pub mod contract;
pub mod cycle;
pub mod daemon;
pub mod db;
pub mod detector;
pub mod leader;
pub mod logging;
pub mod plugin;
pub mod query;
pub mod report;
pub mod signal;
pub mod store;
pub mod thermal;

use cli::{Cli, EXIT_CONFIG};
use config::env::EnvMap;

/// Runs the daemon as the binary does: resolves the configuration, starts
/// logging and runs one cycle (`--once`) or the cycle loop. Returns the
/// exit status.
pub async fn run(cli: Cli, mut env: EnvMap) -> u8 {
    if let Some(path) = &cli.secrets_file {
        match config::secrets::read(path) {
            Ok(pairs) => {
                for (name, value) in pairs {
                    env.add_from_secrets_file(name, value);
                }
            }
            Err(error) => {
                eprintln!("tpm-autonomic: {error}");
                return EXIT_CONFIG;
            }
        }
    }
    let config = match config::resolve(&cli, &env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tpm-autonomic: {error}");
            return EXIT_CONFIG;
        }
    };

    let log = logging::init(
        config.verbose,
        &config.log_file,
        env.get(config::env::LOG_FILTER),
    );
    let once = config.once;
    let mut daemon = match daemon::Daemon::build(config, Some(log)) {
        Ok(daemon) => daemon,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "cannot start");
            return EXIT_CONFIG;
        }
    };
    if once {
        daemon.run_once().await
    } else {
        daemon
            .run_interval(signal::Shutdown::from_future(signal::terminate()))
            .await
    }
}
