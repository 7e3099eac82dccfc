//! The daemon: start-up, the cycle loop, and what happens with each cycle's
//! findings.
//!
//! Start-up builds the engine, the database pool and the alert sink, then
//! loads the plugins. Each cycle refreshes the plugins, runs the detectors,
//! and on basin findings writes one thermal record and sends one alert. In
//! interval mode nothing in a cycle ends the daemon: a database or Telegram
//! failure is logged and the next cycle tries again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::alert::message;
use crate::alert::telegram::TelegramClient;
use crate::alert::AlertSink;
use crate::cli::{ReportFormat, EXIT_CONFIG, EXIT_OK};
use crate::config::Config;
use crate::cycle::{self, CycleResult};
use crate::db::{Database, Health, HealthChange};
use crate::detector::FindingRecord;
use crate::logging::LogHandle;
use crate::plugin::registry::Registry;
use crate::plugin::reload::Reloader;
use crate::plugin::PluginHost;
use crate::report;
use crate::signal::Shutdown;
use crate::thermal::{self, ThermalRecord};

/// Time a cycle may go on after a stop request before it is abandoned.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// What a dry run would have sent and written.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DryRunOutput {
    /// Alert messages, as they would have been sent.
    pub alerts: Vec<String>,
    /// Thermal records, as they would have been written.
    pub thermal_records: Vec<ThermalRecord>,
}

/// Everything a cycle needs, built once at start-up.
pub struct Daemon {
    config: Config,
    host: Arc<PluginHost>,
    /// The registry until the plugins are first loaded, then the reloader
    /// that owns it.
    registry: Option<Registry>,
    reloader: Option<Reloader>,
    database: Database,
    sink: AlertSink,
    health: Health,
    cycles: u64,
    log: Option<LogHandle>,
    /// With `--once --format json --dry-run`, what would have gone out is
    /// kept for the report instead of printed.
    dry_run_output: Option<DryRunOutput>,
    /// True while the "no plugins loaded" warning stands, so it is logged
    /// once per stretch without plugins.
    warned_no_plugins: bool,
}

impl Daemon {
    /// Builds the engine, the pool and the alert sink. Nothing connects
    /// yet, so a database that is down at start-up is not an error here.
    pub fn build(config: Config, log: Option<LogHandle>) -> anyhow::Result<Daemon> {
        let host = Arc::new(PluginHost::new(
            config.limits.clone(),
            config.query.clone(),
            config.plugin_settings.clone(),
            config.cache_dir.as_deref(),
        )?);
        let database = Database::new(&config.database);
        let sink = if config.dry_run {
            AlertSink::DryRun
        } else {
            match &config.telegram {
                Ok(telegram) => AlertSink::Telegram(TelegramClient::new(
                    telegram.clone(),
                    config.alerts.max_attempts,
                )?),
                Err(reason) => AlertSink::Disabled(reason.clone()),
            }
        };
        let registry = Registry::new(&config.plugins_dir, config.allow_writable_plugins);
        Ok(Daemon {
            config,
            host,
            registry: Some(registry),
            reloader: None,
            database,
            sink,
            health: Health::default(),
            cycles: 0,
            log,
            dry_run_output: None,
            warned_no_plugins: false,
        })
    }

    fn log_start(&self) {
        let telegram = match (&self.sink, &self.config.telegram) {
            (AlertSink::DryRun, _) => "dry run: alerts printed".to_string(),
            (_, Ok(telegram)) => format!("chat {} via {}", telegram.chat_id, telegram.api_base),
            (_, Err(reason)) => format!("not configured ({reason})"),
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            mode = %if self.config.once { "once" } else { "interval" },
            interval_s = self.config.interval.as_secs_f64(),
            plugins_dir = %self.config.plugins_dir.display(),
            database = %self.database.target(),
            telegram = %telegram,
            dry_run = self.config.dry_run,
            "tpm-autonomic starting"
        );
        for (setting, source) in &self.config.sources {
            tracing::debug!(setting = %setting, source = %source, "setting source");
        }
        if let AlertSink::Disabled(reason) = &self.sink {
            tracing::warn!(
                reason = %reason,
                "Telegram is not configured; basin alerts are logged but not sent (set \
                 TELEGRAM_BOT_TOKEN and TELEGRAM_CHIEF_CHAT_ID)"
            );
        }
    }

    /// Runs one cycle and prints the conformance report. Returns the exit
    /// status.
    pub async fn run_once(&mut self) -> u8 {
        self.log_start();
        if self.config.dry_run && self.config.format == ReportFormat::Json {
            self.dry_run_output = Some(DryRunOutput::default());
        }
        let registry = self.registry.take().expect("the plugins are loaded once");
        let reloader = Reloader::load_once(&self.host, registry).await;
        if let Some(error) = &reloader.current().folder_error {
            eprintln!("tpm-autonomic: {error}");
            return EXIT_CONFIG;
        }
        self.reloader = Some(reloader);
        let result = self.cycle().await;
        let outcomes = self.reloader.as_ref().map(|r| r.current().outcomes.clone()).unwrap_or_default();
        let mut report = report::build(
            &self.config.plugins_dir.display().to_string(),
            self.database.target(),
            &outcomes,
            &result,
        );
        report.dry_run = self.dry_run_output.take();
        match self.config.format {
            ReportFormat::Text => print!("{}", report.to_text()),
            ReportFormat::Json => println!("{}", report.to_json()),
        }
        report.exit_code
    }

    /// Runs cycles until a stop is requested. Returns the exit status.
    pub async fn run_interval(&mut self, mut shutdown: Shutdown) -> u8 {
        self.log_start();
        let registry = self.registry.take().expect("the plugins are loaded once");
        self.reloader = Some(Reloader::start(self.host.clone(), registry).await);
        let mut hangups = crate::signal::hangups();
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.wait() => break,
                Some(()) = next_hangup(&mut hangups) => {
                    self.reload();
                    continue;
                }
            }
            if shutdown.is_requested() {
                break;
            }

            let mut cycle = std::pin::pin!(self.cycle());
            let finished = tokio::select! {
                _ = &mut cycle => true,
                _ = shutdown.wait() => false,
            };
            if !finished {
                tracing::info!(
                    grace_s = SHUTDOWN_GRACE.as_secs(),
                    "stop requested during a cycle; letting it finish"
                );
                if tokio::time::timeout(SHUTDOWN_GRACE, cycle).await.is_err() {
                    tracing::warn!("cycle abandoned: it did not finish within the grace period");
                }
                break;
            }
        }

        tracing::info!(cycles = self.cycles, "tpm-autonomic stopped");
        if let Some(log) = &self.log {
            log.flush();
        }
        EXIT_OK
    }

    fn reload(&mut self) {
        tracing::info!("SIGHUP: reopening the log file and rescanning the plugins folder");
        if let Some(reloader) = &self.reloader {
            reloader.request_full_rescan();
        }
        if let Some(log) = &self.log {
            if let Err(error) = log.reopen() {
                tracing::error!(
                    file = %log.path().display(),
                    error = %error,
                    "cannot reopen the log file; still writing to the old one"
                );
            }
        }
    }

    /// Runs one cycle and acts on its findings.
    pub async fn cycle(&mut self) -> CycleResult {
        self.cycles += 1;
        let number = self.cycles;
        let span = tracing::info_span!("cycle", cycle = number);
        tracing::Instrument::instrument(self.cycle_in_span(number), span).await
    }

    async fn cycle_in_span(&mut self, number: u64) -> CycleResult {
        let plugins = match &self.reloader {
            Some(reloader) => {
                // The safety net for changes the file watch missed; the
                // rescan runs in the background and counts from the next
                // cycle on.
                reloader.request_rescan();
                reloader.current().present_plugins()
            }
            None => Vec::new(),
        };
        let result =
            cycle::run(number, &self.host, &plugins, &self.database, self.config.concurrency)
                .await;

        match &result.database {
            Err(error) => {
                self.log_database_down(error);
                return result;
            }
            Ok(()) => self.log_database_up(),
        }
        if plugins.is_empty() != self.warned_no_plugins {
            self.warned_no_plugins = plugins.is_empty();
            if plugins.is_empty() {
                tracing::warn!(
                    dir = %self.config.plugins_dir.display(),
                    "no plugins loaded; nothing is being watched"
                );
            }
        }

        let basin = result.basin_findings();
        let informational = result.informational_findings();
        let failed = result.failed().len();
        if basin.is_empty() {
            tracing::info!(
                detectors = result.runs.len(),
                failed,
                work_state = %summaries(&informational),
                elapsed_ms = result.elapsed.as_millis() as u64,
                "clean cycle"
            );
            return result;
        }

        for finding in &basin {
            tracing::warn!(
                signal = %finding.signal,
                plugin = %finding.plugin,
                summary = ?finding.summary,
                "basin signal"
            );
        }
        let record = thermal::build(&basin, result.started_at);
        self.record_thermal(&record).await;
        let text = message::basin_alert(&basin, &informational, &[], &[]);
        self.send_alert(&text).await;
        tracing::info!(
            signals = basin.len(),
            detectors = result.runs.len(),
            failed,
            work_state = %summaries(&informational),
            elapsed_ms = (Utc::now() - result.started_at).num_milliseconds(),
            "basin cycle"
        );
        result
    }

    async fn record_thermal(&mut self, record: &ThermalRecord) {
        if let Some(output) = &mut self.dry_run_output {
            output.thermal_records.push(record.clone());
            return;
        }
        if self.config.dry_run {
            println!("----- thermal memory record (dry run: not written) -----");
            println!("memory_hash:       {}", record.hash);
            println!("temperature_score: {}", thermal::TEMPERATURE);
            println!("sacred_pattern:    false");
            println!("original_content:  {}", record.content);
            println!(
                "metadata:          {}",
                serde_json::to_string(&record.metadata).unwrap_or_default()
            );
            println!("----- end of record -----");
            return;
        }
        match thermal::write(&self.database, record).await {
            Ok(true) => tracing::info!(memory_hash = %record.hash, "thermal record written"),
            Ok(false) => tracing::info!(
                memory_hash = %record.hash,
                "thermal record already present; nothing written"
            ),
            Err(error) => tracing::error!(
                memory_hash = %record.hash,
                error = %error,
                "thermal record write failed"
            ),
        }
    }

    async fn send_alert(&mut self, text: &str) {
        if let Some(output) = &mut self.dry_run_output {
            output.alerts.push(text.to_string());
            return;
        }
        let parts = AlertSink::parts(text);
        if self.config.dry_run {
            println!("----- Telegram alert (dry run: not sent) -----");
            for part in &parts {
                println!("{part}");
            }
            println!("----- end of alert -----");
            return;
        }
        match self.sink.deliver(&parts, 0).await {
            Ok(_) if self.sink.sends() => tracing::info!(parts = parts.len(), "alert sent"),
            Ok(_) => {}
            Err(partial) => tracing::error!(
                delivered = partial.delivered,
                parts = parts.len(),
                error = %partial.error,
                "alert delivery failed"
            ),
        }
    }

    fn log_database_down(&mut self, error: &str) {
        match self.health.record_down() {
            HealthChange::WentDown => tracing::error!(
                database = %self.database.target(),
                error = %error,
                "database unreachable; detectors skipped this cycle, retrying next cycle"
            ),
            HealthChange::StillDown { failures } => tracing::error!(
                database = %self.database.target(),
                failures,
                error = %error,
                "database still unreachable"
            ),
            _ => {}
        }
        // Drop idle connections so the next cycle connects afresh.
        self.database.reset();
    }

    fn log_database_up(&mut self) {
        if let HealthChange::CameBack { failures, downtime } = self.health.record_up() {
            tracing::info!(
                database = %self.database.target(),
                failed_cycles = failures,
                downtime_s = downtime.as_secs(),
                "database reachable again"
            );
        }
    }
}

async fn next_hangup(hangups: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangups {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

fn summaries(findings: &[FindingRecord]) -> String {
    findings.iter().map(|f| f.summary.as_str()).collect::<Vec<_>>().join("; ")
}
