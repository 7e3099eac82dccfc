//! Integration tests of tpm-autonomic against real components: PostgreSQL
//! clusters the tests start themselves, a fake Telegram Bot API on
//! loopback, the real binary, and the compiled detectors and fixtures
//! (`scripts/build-plugins.sh --fixtures` builds them).

mod support;

/// Alerts and thermal records of clean and basin cycles.
mod alerting;
/// The database restarted, down at start, unreachable in `--once`.
mod database;
/// Each detector at the edges of its thresholds, NULLs and column types.
mod detectors;
/// Telegram and database faults, restarts, leadership, shutdown, secrets.
mod faults;
/// Hostile plugins, sandbox limits, the query guard and plugin trust.
mod hostile;
/// A failing plugin fails alone.
mod isolation;
/// Log format, help text, exit codes, secrets file.
mod operations;
/// Detectors added, replaced and removed at run time; the compiled cache;
/// SIGHUP.
mod reload;
