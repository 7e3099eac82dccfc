//! The daemon: start-up, the cycle loop, and what happens with each cycle's
//! findings.
//!
//! Start-up builds the engine, the database pool and the alert sink, then
//! loads the plugins. In interval mode each cycle first checks leadership
//! (only the leader of a deployment runs cycles), runs the detectors,
//! writes the thermal record of a basin cycle, plans the messages from the
//! alert state, saves the state and delivers the waiting messages. Nothing
//! in a cycle ends the daemon: a database or Telegram failure is logged and
//! the next cycle tries again. `--once` runs one cycle without leadership
//! or saved state, and alerts on any basin.

mod delivery;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::alert::state::{AlertState, DetectorOutcome};
use crate::alert::telegram::TelegramClient;
use crate::alert::AlertSink;
use crate::cli::{ReportFormat, EXIT_CONFIG, EXIT_OK};
use crate::config::Config;
use crate::cycle::{self, CycleResult};
use crate::db::{Database, Health, HealthChange};
use crate::detector::FindingRecord;
use crate::leader::{Leadership, Role};
use crate::logging::LogHandle;
use crate::plugin::registry::Registry;
use crate::plugin::reload::Reloader;
use crate::plugin::PluginHost;
use crate::report;
use crate::signal::Shutdown;
use crate::store::StateStore;
use crate::thermal::{self, ThermalRecord};

pub use delivery::DryRunOutput;

/// Time a cycle may go on after a stop request before it is abandoned.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    /// Telegram delivery failures in a row, so an outage is logged once,
    /// then reminded about, then reported over.
    telegram_health: Health,
    cycles: u64,
    log: Option<LogHandle>,
    /// With `--once --format json --dry-run`, what would have gone out is
    /// kept for the report instead of printed.
    dry_run_output: Option<DryRunOutput>,
    /// True while the "no plugins loaded" warning stands, so it is logged
    /// once per stretch without plugins.
    warned_no_plugins: bool,
    leadership: Leadership,
    store: StateStore,
    /// The alert state while this daemon leads (or ran `--once`).
    state: Option<AlertState>,
    /// The role logged last, so that a change is logged once.
    last_role: Option<&'static str>,
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
            config.concurrency,
        )?);
        let database = Database::new(&config.database);
        let sink = if config.dry_run {
            AlertSink::DryRun
        } else {
            match &config.telegram {
                Ok(telegram) => {
                    // Waiting for Telegram never takes more than half an
                    // interval, so cycles keep their rhythm.
                    let budget = (config.interval / 2)
                        .clamp(Duration::from_secs(1), Duration::from_secs(60));
                    AlertSink::Telegram(
                        TelegramClient::new(telegram.clone(), config.alerts.max_attempts)?
                            .with_wait_budget(budget),
                    )
                }
                Err(reason) => AlertSink::Disabled(reason.clone()),
            }
        };
        let registry = Registry::new(&config.plugins_dir, config.allow_writable_plugins);
        let leadership = Leadership::new(&config.database.pg, &config.deployment);
        let store = StateStore::new(&config.deployment, config.state_dir.as_deref());
        // `--once` and `--dry-run` keep their state in memory only.
        let state = (config.once || config.dry_run).then(AlertState::default);
        Ok(Daemon {
            config,
            host,
            registry: Some(registry),
            reloader: None,
            database,
            sink,
            health: Health::default(),
            telegram_health: Health::default(),
            cycles: 0,
            log,
            dry_run_output: None,
            warned_no_plugins: false,
            leadership,
            store,
            state,
            last_role: None,
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
            deployment = %self.config.deployment,
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
        if !self.config.once && !self.config.dry_run && self.store.file().is_none() {
            tracing::warn!(
                "no state folder (set TPM_STATE_DIR or HOME); the alert state lives only in the \
                 database and is lost across a restart while the database is down"
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
        self.warn_unknown_plugin_settings(&reloader);
        self.reloader = Some(reloader);
        let result = self.cycle().await;
        let outcomes = self
            .reloader
            .as_ref()
            .map(|r| r.current().outcomes.clone())
            .unwrap_or_default();
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
        let reloader = Reloader::start(self.host.clone(), registry).await;
        // A folder that cannot be used at start is a configuration error; a
        // daemon without detectors would look healthy while watching
        // nothing. Later failures keep the loaded plugins running.
        if let Some(error) = &reloader.current().folder_error {
            eprintln!("tpm-autonomic: {error}");
            return EXIT_CONFIG;
        }
        self.warn_unknown_plugin_settings(&reloader);
        self.reloader = Some(reloader);
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

        self.stop().await;
        EXIT_OK
    }

    /// Warns about `[plugins.<name>]` sections for plugins that did not
    /// load, which are most often a misspelled name.
    fn warn_unknown_plugin_settings(&self, reloader: &Reloader) {
        let loaded: Vec<String> = reloader
            .current()
            .plugins
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        for name in self.config.plugin_settings.keys() {
            if !loaded.contains(name) {
                tracing::warn!(
                    plugin = %name,
                    loaded = %loaded.join(","),
                    "the configuration file has settings for a plugin that is not loaded; \
                     check the name in [plugins.<name>]"
                );
            }
        }
    }

    /// Saves the state, hands leadership over and flushes the log.
    async fn stop(&mut self) {
        if let Some(mut state) = self.state.take() {
            let database = self.leadership.is_leader().then_some(&self.database);
            let save = self.store.save(&mut state, database);
            if tokio::time::timeout(Duration::from_secs(1), save)
                .await
                .is_err()
            {
                tracing::warn!(
                    "saving the alert state took too long at shutdown; the file copy may be older"
                );
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), self.leadership.release()).await;
        tracing::info!(cycles = self.cycles, "tpm-autonomic stopped");
        if let Some(log) = &self.log {
            log.flush();
        }
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
        // A dry run sends and writes nothing, and so takes no leadership:
        // it must never stand in for the daemon that does the real work.
        let shares_state = !self.config.once && !self.config.dry_run;
        if shares_state && !self.take_role().await {
            return CycleResult::skipped(number);
        }

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
        let budget =
            (self.config.interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let result = cycle::run(
            number,
            &self.host,
            &plugins,
            &self.database,
            self.config.concurrency,
            if self.config.once {
                Duration::ZERO
            } else {
                budget
            },
        )
        .await;

        if let Err(error) = &result.database {
            self.log_database_down(error);
            // Telegram does not need the database: waiting messages still go.
            self.deliver_outbox().await;
            self.save_state(false).await;
            return result;
        }
        self.log_database_up();
        if plugins.is_empty() != self.warned_no_plugins {
            self.warned_no_plugins = plugins.is_empty();
            if plugins.is_empty() {
                tracing::warn!(
                    dir = %self.config.plugins_dir.display(),
                    "no plugins loaded; nothing is being watched"
                );
            }
        }

        self.write_pending_thermal().await;
        let basin = result.basin_findings();
        let informational = result.informational_findings();
        if !basin.is_empty() {
            for finding in &basin {
                tracing::warn!(
                    signal = %finding.signal,
                    plugin = %finding.plugin,
                    summary = ?finding.summary,
                    "basin signal"
                );
            }
            let record = thermal::build(&basin, result.started_at);
            self.record_thermal(record).await;
        }

        let plan = self.plan(&result, &informational);
        self.save_state(true).await;
        self.deliver_outbox().await;

        let failed = result.failed().len();
        let elapsed_ms = (Utc::now() - result.started_at).num_milliseconds();
        if basin.is_empty() && failed == 0 {
            tracing::info!(
                detectors = result.runs.len(),
                failed,
                work_state = %summaries(&informational),
                cleared = plan.cleared.len(),
                detectors_ms = round_ms(result.detectors_elapsed),
                elapsed_ms,
                "clean cycle"
            );
        } else if basin.is_empty() {
            // Failed detectors may have missed a basin, so this is not clean.
            tracing::warn!(
                detectors = result.runs.len(),
                failed,
                work_state = %summaries(&informational),
                cleared = plan.cleared.len(),
                elapsed_ms,
                "incomplete cycle: no basin found, but some detectors failed"
            );
        } else {
            tracing::info!(
                signals = basin.len(),
                new = plan.new.len(),
                worse = plan.worse.len(),
                alerted = !plan.messages.is_empty(),
                detectors = result.runs.len(),
                failed,
                work_state = %summaries(&informational),
                detectors_ms = round_ms(result.detectors_elapsed),
                elapsed_ms,
                "basin cycle"
            );
        }
        result
    }

    /// Checks leadership; returns true when this daemon should run the
    /// cycle.
    async fn take_role(&mut self) -> bool {
        let role = self.leadership.check().await;
        let name = match &role {
            Role::Leader { .. } => "leader",
            Role::Standby => "standby",
            Role::Unknown(_) => "unknown",
        };
        match role {
            Role::Leader { acquired } => {
                if acquired || self.state.is_none() {
                    let state = self.store.load(&self.database).await;
                    tracing::info!(
                        deployment = %self.config.deployment,
                        active_signals = state.active.len(),
                        waiting_messages = state.outbox.len(),
                        "leadership taken: this daemon runs the cycles"
                    );
                    self.state = Some(state);
                }
                self.last_role = Some(name);
                true
            }
            Role::Standby => {
                if self.last_role != Some(name) {
                    tracing::info!(
                        deployment = %self.config.deployment,
                        "standby: another daemon holds the leadership; this one waits"
                    );
                }
                self.last_role = Some(name);
                // The leader's state is the truth from now on.
                self.state = None;
                false
            }
            Role::Unknown(error) => {
                // Without the database no daemon can lead; messages that
                // were waiting still go out.
                // NOTE: what is delivered now is saved to this daemon's
                // state file only; a standby that takes the lock when the
                // database returns may send those messages again.
                self.log_database_down(&error);
                self.last_role = Some(name);
                self.deliver_outbox().await;
                self.save_state(false).await;
                false
            }
        }
    }

    fn plan(
        &mut self,
        result: &CycleResult,
        informational: &[FindingRecord],
    ) -> crate::alert::state::Plan {
        let mut outcomes = BTreeMap::new();
        for run in &result.runs {
            let outcome = match &run.run.result {
                Ok(findings) => DetectorOutcome::Ran(
                    findings
                        .iter()
                        .filter(|f| f.basin)
                        .map(|f| FindingRecord::new(run.plugin.name(), f))
                        .collect(),
                ),
                Err(failure) => DetectorOutcome::Failed(failure.to_string()),
            };
            outcomes.insert(run.plugin.name().to_string(), outcome);
        }
        let state = self.state.get_or_insert_with(AlertState::default);
        let deliverable = !matches!(self.sink, AlertSink::Disabled(_));
        let plan = state.plan(
            &outcomes,
            informational,
            &self.config.alerts,
            Utc::now(),
            deliverable,
        );
        if !plan.undelivered.is_empty() {
            let news = !(plan.new.is_empty()
                && plan.worse.is_empty()
                && plan.cleared.is_empty()
                && plan.blind.is_empty()
                && plan.recovered.is_empty());
            let kinds: Vec<String> = plan.undelivered.iter().map(ToString::to_string).collect();
            // The same undelivered basin is due every cycle; only a change
            // is worth a warning.
            if news {
                tracing::warn!(
                    kinds = %kinds.join(","),
                    "alert not sent: Telegram is not configured; the signals stay unalerted \
                     until it is"
                );
            } else {
                tracing::debug!(kinds = %kinds.join(","), "alert still not sent: Telegram is not configured");
            }
        }
        if !plan.cleared.is_empty() {
            tracing::info!(signals = %plan.cleared.join(", "), "basin signals cleared");
        }
        for plugin in &plan.blind {
            tracing::error!(
                plugin = %plugin,
                cycles = self.config.alerts.blind_after,
                "detector keeps failing; reported to the Chief as a blind spot"
            );
        }
        for plugin in &plan.recovered {
            tracing::info!(plugin = %plugin, "detector runs again after repeated failures");
        }
        plan
    }

    async fn save_state(&mut self, database_up: bool) {
        if self.config.once || self.config.dry_run {
            return;
        }
        if let Some(state) = self.state.as_mut() {
            let database = database_up.then_some(&self.database);
            self.store.save(state, database).await;
        }
    }

    async fn record_thermal(&mut self, record: ThermalRecord) {
        if self.config.dry_run {
            self.print_thermal(&record);
            return;
        }
        match thermal::write(&self.database, &record).await {
            Ok(true) => tracing::info!(memory_hash = %record.hash, "thermal record written"),
            Ok(false) => tracing::info!(
                memory_hash = %record.hash,
                "thermal record already present; nothing written"
            ),
            Err(error) => {
                let kept = !self.config.once;
                tracing::error!(
                    memory_hash = %record.hash,
                    error = %error,
                    kept_for_next_cycle = kept,
                    "thermal record write failed"
                );
                if let Some(state) = self.state.as_mut().filter(|_| kept) {
                    state.keep_thermal(record);
                }
            }
        }
    }

    /// Writes the records that an earlier cycle could not write.
    async fn write_pending_thermal(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        while let Some(record) = state.pending_thermal.first().cloned() {
            match thermal::write(&self.database, &record).await {
                Ok(inserted) => {
                    tracing::info!(
                        memory_hash = %record.hash,
                        inserted,
                        "thermal record from an earlier cycle written"
                    );
                    state.pending_thermal.remove(0);
                }
                Err(error) => {
                    tracing::warn!(
                        memory_hash = %record.hash,
                        error = %error,
                        waiting = state.pending_thermal.len(),
                        "thermal record from an earlier cycle still not written"
                    );
                    break;
                }
            }
        }
    }

    fn log_database_down(&mut self, error: &str) {
        match self.health.record_down() {
            HealthChange::WentDown if self.config.once => tracing::error!(
                database = %self.database.target(),
                error = %error,
                "database unreachable; detectors skipped"
            ),
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
    findings
        .iter()
        .map(|f| f.summary.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Milliseconds with one decimal, for log fields of short durations.
fn round_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}
