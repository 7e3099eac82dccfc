//! The conformance report of a `--once` run: for each plugin file what it
//! is, what it reads, how it is configured, whether it loaded and ran, and
//! what that cost.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::json;

use crate::cli::{EXIT_DATABASE, EXIT_OK, EXIT_PLUGIN_FAILED};
use crate::contract::Finding;
use crate::cycle::CycleResult;
use crate::detector::FindingRecord;
use crate::plugin::limits::format_bytes;
use crate::plugin::{file_name, LoadOutcome};

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    /// File name in the plugins folder.
    pub file: String,
    /// Plugin name, when it loaded.
    pub name: Option<String>,
    /// Plugin version, when it loaded.
    pub version: Option<String>,
    /// Contract version it was built against, when it loaded.
    pub contract_version: Option<String>,
    /// Declared tables.
    pub tables: Vec<String>,
    /// Effective settings, `name=value`.
    pub settings: Vec<String>,
    /// `ok`, or why it did not load.
    pub load: Status,
    /// `ok`, why the call failed, or why it did not run.
    pub run: Status,
    /// Findings of the call.
    pub findings: Vec<FindingRecord>,
    /// Wall time of the call, in milliseconds.
    pub elapsed_ms: Option<f64>,
    /// Highest linear memory of the call, in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Queries the call made.
    pub queries: Option<u64>,
}

/// A step's result in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// The step succeeded.
    Ok,
    /// The step failed.
    Failed {
        /// Short kind of failure.
        kind: String,
        /// The reason in words.
        reason: String,
    },
    /// The step did not happen.
    NotRun {
        /// Why.
        reason: String,
    },
}

impl Status {
    fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }

    fn text(&self) -> String {
        match self {
            Status::Ok => "ok".into(),
            Status::Failed { kind, .. } => format!("failed ({kind})"),
            Status::NotRun { .. } => "not run".into(),
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Status::Ok => None,
            Status::Failed { reason, .. } | Status::NotRun { reason } => Some(reason),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Plugins folder.
    pub plugins_dir: String,
    /// Database target, without the password.
    pub database: String,
    /// `Err` when the database could not be reached.
    pub database_error: Option<String>,
    /// One row per plugin file.
    pub plugins: Vec<PluginReport>,
    /// Exit status of the run.
    pub exit_code: u8,
    /// What a `--dry-run` would have sent and written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<crate::daemon::DryRunOutput>,
}

/// Builds the report from the loaded files and the cycle.
pub fn build(
    plugins_dir: &str,
    database: &str,
    outcomes: &[LoadOutcome],
    cycle: &CycleResult,
) -> Report {
    let mut rows = Vec::new();
    for outcome in outcomes {
        let mut row = PluginReport {
            file: file_name(&outcome.path),
            name: None,
            version: None,
            contract_version: None,
            tables: Vec::new(),
            settings: Vec::new(),
            load: Status::Ok,
            run: Status::NotRun {
                reason: "the plugin did not load".into(),
            },
            findings: Vec::new(),
            elapsed_ms: None,
            peak_memory_bytes: None,
            queries: None,
        };
        match &outcome.result {
            Err(error) => {
                row.load = Status::Failed {
                    kind: error.kind.into(),
                    reason: error.reason.clone(),
                }
            }
            Ok(plugin) => {
                row.name = Some(plugin.name().to_string());
                row.version = Some(plugin.manifest.version.clone());
                row.contract_version = Some(plugin.contract_version.clone());
                row.tables = plugin.manifest.tables.clone();
                row.settings = plugin
                    .settings
                    .iter()
                    .map(|s| format!("{}={}", s.name, s.value))
                    .collect();
                row.run = match &cycle.database {
                    Err(error) => Status::NotRun {
                        reason: format!("database unreachable: {error}"),
                    },
                    Ok(()) => Status::NotRun {
                        reason: "not scheduled".into(),
                    },
                };
                let run = cycle
                    .runs
                    .iter()
                    .find(|run| run.plugin.path == outcome.path);
                if let Some(run) = run {
                    row.elapsed_ms = Some(run.run.elapsed.as_secs_f64() * 1000.0);
                    row.peak_memory_bytes = Some(run.run.stats.peak_memory);
                    row.queries = Some(run.run.stats.queries);
                    row.run = match &run.run.result {
                        Ok(findings) => {
                            row.findings = records(plugin.name(), findings);
                            Status::Ok
                        }
                        Err(failure) => Status::Failed {
                            kind: failure.kind().into(),
                            reason: failure.to_string(),
                        },
                    };
                }
            }
        }
        rows.push(row);
    }

    let exit_code = if cycle.database.is_err() {
        EXIT_DATABASE
    } else if rows.is_empty() || rows.iter().any(|row| !row.load.is_ok() || !row.run.is_ok()) {
        EXIT_PLUGIN_FAILED
    } else {
        EXIT_OK
    };
    Report {
        plugins_dir: plugins_dir.to_string(),
        database: database.to_string(),
        database_error: cycle.database.clone().err(),
        plugins: rows,
        exit_code,
        dry_run: None,
    }
}

fn records(plugin: &str, findings: &[Finding]) -> Vec<FindingRecord> {
    findings
        .iter()
        .map(|finding| FindingRecord::new(plugin, finding))
        .collect()
}

impl Report {
    /// The report as one JSON document.
    pub fn to_json(&self) -> String {
        let value = json!({
            "contract_version": crate::contract::VERSION,
            "report": self,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// The report as a text table followed by each plugin's details.
    pub fn to_text(&self) -> String {
        let passed = self
            .plugins
            .iter()
            .filter(|r| r.load.is_ok() && r.run.is_ok())
            .count();
        let not_run = self
            .plugins
            .iter()
            .filter(|r| r.load.is_ok() && matches!(r.run, Status::NotRun { .. }))
            .count();
        let mut text = format!(
            "tpm-autonomic conformance report: {} plugin files, {} passed, {} failed, {} not run\n",
            self.plugins.len(),
            passed,
            self.plugins.len() - passed - not_run,
            not_run
        );
        let _ = writeln!(text, "plugins folder: {}", self.plugins_dir);
        let _ = writeln!(text, "database:       {}", self.database);
        if let Some(error) = &self.database_error {
            let _ = writeln!(text, "database error: {error}");
        }
        if self.plugins.is_empty() {
            let _ = writeln!(text, "\nNo plugin files (*.wasm) in the plugins folder.");
            return text;
        }
        text.push('\n');

        let header = [
            "FILE", "NAME", "VERSION", "CONTRACT", "RESULT", "FINDINGS", "TIME", "MEMORY",
            "QUERIES",
        ];
        let rows: Vec<[String; 9]> = self.plugins.iter().map(table_row).collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row.iter()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = String::new();
        for (cell, width) in header.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(text, "{}", line.trim_end());
        for row in &rows {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(widths) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            let _ = writeln!(text, "{}", line.trim_end());
        }

        for row in &self.plugins {
            let _ = writeln!(text, "\n{}", row.file);
            if !row.tables.is_empty() {
                let _ = writeln!(text, "  tables:   {}", row.tables.join(", "));
            }
            if !row.settings.is_empty() {
                let _ = writeln!(text, "  settings: {}", row.settings.join(", "));
            }
            if let Some(reason) = row.load.reason() {
                let _ = writeln!(text, "  load:     {reason}");
            } else if let Some(reason) = row.run.reason() {
                let _ = writeln!(text, "  run:      {reason}");
            }
            for finding in &row.findings {
                let kind = if finding.basin { "basin" } else { "info" };
                let _ = writeln!(
                    text,
                    "  {:<9} {}: {}",
                    format!("{kind}:"),
                    finding.signal,
                    finding.summary
                );
            }
        }
        text
    }
}

fn table_row(row: &PluginReport) -> [String; 9] {
    let result = if row.load.is_ok() {
        row.run.text()
    } else {
        format!("load {}", row.load.text())
    };
    let basin = row.findings.iter().filter(|f| f.basin).count();
    let findings = if row.run.is_ok() {
        format!("{basin} basin, {} info", row.findings.len() - basin)
    } else {
        "-".into()
    };
    [
        row.file.clone(),
        row.name.clone().unwrap_or_else(|| "-".into()),
        row.version.clone().unwrap_or_else(|| "-".into()),
        row.contract_version.clone().unwrap_or_else(|| "-".into()),
        result,
        findings,
        row.elapsed_ms
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_else(|| "-".into()),
        row.peak_memory_bytes
            .map(format_bytes)
            .unwrap_or_else(|| "-".into()),
        row.queries
            .map(|q| q.to_string())
            .unwrap_or_else(|| "-".into()),
    ]
}
