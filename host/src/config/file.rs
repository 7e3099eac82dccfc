//! The configuration file (TOML) as written by the operator.
//!
//! Every section and key is optional; an unknown key is an error, so a typo
//! never silently leaves a default in place. Durations are written as a
//! number of seconds or as text with a unit (`"500ms"`, `"10s"`, `"4h"`), and
//! sizes as a number of bytes or as text with a unit (`"64 MiB"`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Time between the starts of two cycles.
    pub interval: Option<DurationValue>,
    /// Plugins folder.
    pub plugins_dir: Option<PathBuf>,
    /// Log file.
    pub log_file: Option<PathBuf>,
    /// Folder of the compiled-plugin cache.
    pub cache_dir: Option<PathBuf>,
    /// Folder where the daemon keeps state across restarts.
    pub state_dir: Option<PathBuf>,
    /// Print alerts and records instead of sending and writing them.
    pub dry_run: Option<bool>,
    /// Detectors that run at the same time.
    pub concurrency: Option<usize>,
    /// Name of the deployment, for leadership and the saved alert state.
    pub deployment: Option<String>,
    /// Load plugins from a folder or files that other users can write.
    pub allow_writable_plugins: Option<bool>,
    /// `[database]`.
    #[serde(default)]
    pub database: DatabaseSection,
    /// `[telegram]`.
    #[serde(default)]
    pub telegram: TelegramSection,
    /// `[alerts]`.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[query]`.
    #[serde(default)]
    pub query: QuerySection,
    /// `[plugins.<name>]`: settings for one detector each.
    #[serde(default)]
    pub plugins: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// Connection URL; below `TPM_DATABASE_URL`.
    pub url: Option<String>,
    /// Host name, IP address or Unix socket folder.
    pub host: Option<String>,
    /// TCP port.
    pub port: Option<u16>,
    /// Role name.
    pub user: Option<String>,
    /// Database name.
    pub dbname: Option<String>,
    /// Connections in the pool.
    pub pool_size: Option<usize>,
    /// Time allowed to open one connection.
    pub connect_timeout: Option<DurationValue>,
    /// `statement_timeout` of the daemon's own statements (thermal
    /// records, alert state).
    pub statement_timeout: Option<DurationValue>,
}

/// `[telegram]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSection {
    /// Base URL of the Bot API.
    pub api_base: Option<String>,
    /// Chat that receives alerts.
    pub chat_id: Option<String>,
    /// Time allowed for one request.
    pub timeout: Option<DurationValue>,
}

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// Time after which an unchanged basin is alerted again.
    pub repeat_interval: Option<DurationValue>,
    /// Send a short message when an alerted basin clears.
    pub send_resolved: Option<bool>,
    /// Failed cycles in a row after which a detector is reported blind.
    pub blind_after: Option<u32>,
    /// Delivery attempts within one cycle.
    pub max_attempts: Option<u32>,
}

/// `[limits]`: the sandbox limits of one detector call.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Wall-clock time of one call.
    pub deadline: Option<DurationValue>,
    /// Linear memory of one call.
    pub memory: Option<SizeValue>,
    /// Table elements of one call.
    pub table_elements: Option<u64>,
    /// Instances (core and component) of one call.
    pub instances: Option<u64>,
    /// WebAssembly stack.
    pub stack: Option<SizeValue>,
    /// Queries of one call.
    pub queries: Option<u64>,
    /// Rows of one query.
    pub rows: Option<u64>,
    /// Bytes of one query's result.
    pub result_size: Option<SizeValue>,
    /// Findings of one call.
    pub findings: Option<u64>,
    /// Bytes of one summary, detail line or text metric.
    pub summary_size: Option<SizeValue>,
    /// Detail lines of one finding.
    pub details: Option<u64>,
    /// Metrics of one finding.
    pub metrics: Option<u64>,
    /// Log lines of one call.
    pub log_lines: Option<u64>,
}

/// `[query]`: the query guard and the database limits of detector queries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    /// Tables detectors may read (they must also declare them).
    pub allowed_tables: Option<Vec<String>>,
    /// Functions allowed in addition to the built-in list.
    pub allowed_functions: Option<Vec<String>>,
    /// Server-side limit of one statement.
    pub statement_timeout: Option<DurationValue>,
    /// Server-side limit of waiting for a lock.
    pub lock_timeout: Option<DurationValue>,
}

/// A duration as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// A number of seconds.
    Seconds(f64),
    /// Text with a unit, such as `"500ms"`.
    Text(String),
}

/// A size as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// A number of bytes.
    Bytes(u64),
    /// Text with a unit, such as `"64 MiB"`.
    Text(String),
}
