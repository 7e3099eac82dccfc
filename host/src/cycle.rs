//! One monitoring cycle: check the database, run every detector
//! concurrently (bounded), and collect what they found.
//!
//! A detector that fails (trap, deadline, limit, its own error, a rejected
//! result) fails alone: the others run and report. What happens with the
//! findings (thermal record, alert) is decided by the daemon.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::Instrument;

use crate::db::Database;
use crate::detector::FindingRecord;
use crate::plugin::call::CallFailure;
use crate::plugin::{DetectRun, Plugin, PluginHost};

/// One detector's part of a cycle.
#[derive(Debug, Clone)]
pub struct PluginRun {
    /// The plugin that ran.
    pub plugin: Arc<Plugin>,
    /// What the call returned.
    pub run: DetectRun,
}

impl PluginRun {
    /// The failure, if the call failed.
    pub fn failure(&self) -> Option<&CallFailure> {
        self.run.result.as_ref().err()
    }
}

/// What one cycle found.
#[derive(Debug, Clone)]
pub struct CycleResult {
    /// Cycle number, from 1.
    pub number: u64,
    /// When the cycle started.
    pub started_at: DateTime<Utc>,
    /// The database check: `Err` when it could not be reached, in which case
    /// no detector ran.
    pub database: Result<(), String>,
    /// One entry per detector, in file-name order.
    pub runs: Vec<PluginRun>,
    /// Wall time of the cycle so far.
    pub elapsed: Duration,
    /// Wall time of the detector phase alone: from the first detector call
    /// to the last result, after the database check.
    pub detectors_elapsed: Duration,
}

impl CycleResult {
    /// The result of a cycle this daemon did not run, as a standby.
    pub fn skipped(number: u64) -> CycleResult {
        CycleResult {
            number,
            started_at: Utc::now(),
            database: Ok(()),
            runs: Vec::new(),
            elapsed: Duration::ZERO,
            detectors_elapsed: Duration::ZERO,
        }
    }

    /// Basin findings of every detector that succeeded.
    pub fn basin_findings(&self) -> Vec<FindingRecord> {
        self.findings(true)
    }

    /// Informational findings, such as the work state.
    pub fn informational_findings(&self) -> Vec<FindingRecord> {
        self.findings(false)
    }

    fn findings(&self, basin: bool) -> Vec<FindingRecord> {
        let mut records = Vec::new();
        for run in &self.runs {
            if let Ok(findings) = &run.run.result {
                for finding in findings.iter().filter(|f| f.basin == basin) {
                    records.push(FindingRecord::new(run.plugin.name(), finding));
                }
            }
        }
        records
    }

    /// Detectors that failed this cycle.
    pub fn failed(&self) -> Vec<&PluginRun> {
        self.runs
            .iter()
            .filter(|run| run.failure().is_some())
            .collect()
    }
}

/// Runs one cycle with the given plugins. When the database does not
/// answer, the check is repeated with growing pauses for up to
/// `retry_budget` (a server restarting during the cycle is back within a
/// few seconds) before the cycle gives up.
pub async fn run(
    number: u64,
    host: &PluginHost,
    plugins: &[Arc<Plugin>],
    database: &Database,
    concurrency: usize,
    retry_budget: Duration,
) -> CycleResult {
    let started = Instant::now();
    let started_at = Utc::now();

    if let Err(error) = check_with_retry(database, retry_budget).await {
        return CycleResult {
            number,
            started_at,
            database: Err(error),
            runs: Vec::new(),
            elapsed: started.elapsed(),
            detectors_elapsed: Duration::ZERO,
        };
    }
    // Open the connections the detectors will use now, so that connecting
    // is not counted against any detector's deadline.
    database.warm(concurrency.min(plugins.len())).await;

    let detectors_started = Instant::now();
    let mut runs: Vec<(usize, PluginRun)> = stream::iter(plugins.iter().cloned().enumerate())
        .map(|(index, plugin)| {
            let span = tracing::info_span!("detector", plugin = %plugin.name());
            async move {
                let run = host.detect(&plugin, database).await;
                log_run(&plugin, &run);
                (index, PluginRun { plugin, run })
            }
            .instrument(span)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    runs.sort_by_key(|(index, _)| *index);

    CycleResult {
        number,
        started_at,
        database: Ok(()),
        runs: runs.into_iter().map(|(_, run)| run).collect(),
        elapsed: started.elapsed(),
        detectors_elapsed: detectors_started.elapsed(),
    }
}

async fn check_with_retry(database: &Database, budget: Duration) -> Result<(), String> {
    let deadline = Instant::now() + budget;
    let mut pause = Duration::from_millis(100);
    loop {
        match database.check().await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() + pause > deadline => return Err(error),
            Err(error) => {
                tracing::debug!(error = %error, pause_ms = pause.as_millis() as u64, "database check failed; retrying");
                database.reset();
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn log_run(plugin: &Plugin, run: &DetectRun) {
    let elapsed_ms = run.elapsed.as_millis() as u64;
    match &run.result {
        Ok(findings) => tracing::debug!(
            findings = findings.len(),
            queries = run.stats.queries,
            rows = run.stats.rows,
            peak_memory = run.stats.peak_memory,
            elapsed_ms,
            "detector finished"
        ),
        Err(failure) => tracing::warn!(
            file = %plugin.file_name(),
            kind = %failure.kind(),
            reason = %failure,
            elapsed_ms,
            "detector failed"
        ),
    }
}
