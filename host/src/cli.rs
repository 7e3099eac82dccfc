//! Command-line options.
//!
//! Every option that has an environment variable names it with `env`, so
//! `--help` shows both. Values typed here win over the environment, which
//! wins over the configuration file, which wins over the built-in defaults.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::config::env;

/// Exit status when every plugin loaded and ran without a failure.
pub const EXIT_OK: u8 = 0;
/// Exit status when at least one plugin failed to load or to run.
pub const EXIT_PLUGIN_FAILED: u8 = 1;
/// Exit status for an invalid option, variable or configuration file, or a
/// plugins folder that cannot be used.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when the database could not be reached.
pub const EXIT_DATABASE: u8 = 3;

const AFTER_HELP: &str = "\
Exit status:
  0  every plugin loaded and ran without a failure (--once), or the daemon
     stopped on SIGTERM or SIGINT
  1  at least one plugin failed to load or to run, or the plugins folder
     has no plugin (--once)
  2  invalid option, environment variable, secrets file or configuration
     file, or a plugins folder that is missing, unreadable or writable by
     other users
  3  the database could not be reached (--once)

Database: TPM_DATABASE_URL, else the libpq variables PGHOST, PGPORT, PGUSER,
PGDATABASE and PGPASSWORD; CHEROKEE_DB_HOST, CHEROKEE_DB_PORT,
CHEROKEE_DB_NAME, CHEROKEE_DB_USER and CHEROKEE_DB_PASS are accepted when the
libpq variable is not set.
Telegram: TELEGRAM_BOT_TOKEN, TELEGRAM_CHIEF_CHAT_ID, TELEGRAM_API_BASE.
Folders: TPM_CACHE_DIR (compiled plugins), TPM_STATE_DIR (alert state).
Log levels: TPM_LOG, a tracing filter such as warn,tpm_autonomic=debug.
An empty variable counts as unset.";

/// Watches a federation's PostgreSQL database for basin signals with
/// sandboxed WebAssembly detectors and alerts the Chief on Telegram.
#[derive(Debug, Clone, Parser)]
#[command(name = "tpm-autonomic", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Run one monitoring cycle, print the conformance report and exit.
    #[arg(long)]
    pub once: bool,

    /// Seconds between the starts of two cycles (decimals and units such as
    /// 5m allowed). Default: 300.
    #[arg(long, value_name = "SECONDS", env = env::POLL_INTERVAL)]
    pub interval: Option<String>,

    /// Log at DEBUG level: each query, each skipped file, each setting's source.
    #[arg(long)]
    pub verbose: bool,

    /// Folder with the detector plugins (`*.wasm`). Default: ./plugins.
    #[arg(long, value_name = "DIR", env = env::PLUGINS_DIR)]
    pub plugins_dir: Option<PathBuf>,

    /// Log file, appended to; its folder is created.
    /// Default: /ganuda/logs/tpm_autonomic.log.
    #[arg(long, value_name = "FILE", env = env::LOG_FILE)]
    pub log_file: Option<PathBuf>,

    /// Configuration file (TOML). Default: none.
    #[arg(long, value_name = "FILE", env = env::CONFIG_FILE)]
    pub config: Option<PathBuf>,

    /// Secrets file with KEY=VALUE lines, read like environment variables that
    /// the real environment overrides. Default: none.
    #[arg(long, value_name = "FILE", env = env::SECRETS_FILE)]
    pub secrets_file: Option<PathBuf>,

    /// Print the alert and the thermal memory record instead of sending or
    /// writing them.
    #[arg(long)]
    pub dry_run: bool,

    /// Format of the conformance report printed by --once.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Output format of the `--once` conformance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    Text,
    /// One JSON document for programs.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn interval_is_kept_as_text_for_validation() {
        let cli = Cli::try_parse_from(["tpm-autonomic", "--interval", "5m"]).unwrap();
        assert_eq!(cli.interval.as_deref(), Some("5m"));
    }
}
