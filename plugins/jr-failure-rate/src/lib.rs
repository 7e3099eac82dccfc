//! jr-failure-rate: too many Jr tasks fail.
//!
//! Of the tasks with status `completed` or `failed` that were updated in the
//! last `window-hours` hours, basin when there are at least `min-tasks` and
//! the failed share is strictly above `max-failure-percent`.

use tpm_autonomic_sdk::prelude::*;

const SIGNAL: &str = "jr-failure-rate";

/// Ten years, far beyond any useful look-back. The bound turns a typo into
/// a clear setting error instead of an overflow in `make_interval`.
const MAX_WINDOW_HOURS: i64 = 87_600;

// `now() - make_interval(…)` is a timestamptz, which PostgreSQL compares
// with a `timestamp` column in the session time zone, so the filter works
// for both column types.
const COUNT_SQL: &str = "\
SELECT count(*) FILTER (WHERE status = 'failed') AS failed_tasks,
       count(*) AS finished_tasks
FROM jr_work_queue
WHERE status IN ('completed', 'failed')
  AND updated_at >= now() - make_interval(hours => $1::int)";

struct JrFailureRate;

impl Detector for JrFailureRate {
    fn manifest() -> Manifest {
        Manifest::new(
            SIGNAL,
            env!("CARGO_PKG_VERSION"),
            "Share of finished Jr tasks that failed is too high",
        )
        .reads("jr_work_queue")
        .setting(SettingSpec::integer(
            "window-hours",
            24,
            "look-back window, in hours",
        ))
        .setting(SettingSpec::integer(
            "min-tasks",
            4,
            "finished tasks in the window needed before the rate counts",
        ))
        .setting(SettingSpec::number(
            "max-failure-percent",
            25.0,
            "failed share of finished tasks, in percent, that must be exceeded",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        let limits = Limits::from_settings(settings)?;

        let rows = query(COUNT_SQL, &[Value::Integer(limits.window_hours)])?;
        let counts = rows.one()?;
        let failed = counts.integer("failed_tasks")?;
        let finished = counts.integer("finished_tasks")?;
        log::debug(format!(
            "{failed} of {finished} finished tasks failed in the last {} h",
            limits.window_hours
        ));

        Ok(limits.assess(failed, finished).into_iter().collect())
    }
}

export_detector!(JrFailureRate);

struct Limits {
    window_hours: i64,
    min_tasks: i64,
    max_failure_percent: f64,
}

impl Limits {
    fn from_settings(settings: &Settings) -> Result<Self, SettingError> {
        Ok(Limits {
            window_hours: settings.integer_in("window-hours", 1..=MAX_WINDOW_HOURS)?,
            min_tasks: settings.integer_in("min-tasks", 1..=i64::MAX)?,
            max_failure_percent: settings.number_in("max-failure-percent", 0.0..=100.0)?,
        })
    }

    /// Builds the basin finding when enough tasks finished and the failed
    /// share is above the limit.
    fn assess(&self, failed: i64, finished: i64) -> Option<Finding> {
        // Multiplying instead of dividing keeps exactly 25 % of 4 tasks
        // (1 * 100 == 25 * 4) from tipping over through rounding.
        let above_limit = failed as f64 * 100.0 > self.max_failure_percent * finished as f64;
        if finished < self.min_tasks || !above_limit {
            return None;
        }

        let failure_percent = (failed as f64 * 1000.0 / finished as f64).round() / 10.0;
        let summary = format!(
            "{failed} of {} in the last {} h failed ({failure_percent:.1} %, above {} %)",
            format_count(finished, "finished Jr task", "finished Jr tasks"),
            self.window_hours,
            self.max_failure_percent
        );
        Some(
            Finding::basin(SIGNAL, summary)
                .severity(failure_percent)
                .metric("failed_tasks", failed)
                .metric("finished_tasks", finished)
                .metric("failure_percent", failure_percent)
                .metric("max_failure_percent", self.max_failure_percent)
                .metric("window_hours", self.window_hours),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_limits() -> Limits {
        let settings = Settings::new(&JrFailureRate::manifest().settings, Vec::new());
        Limits::from_settings(&settings).unwrap()
    }

    #[test]
    fn exactly_at_limit_does_not_fire() {
        let limits = default_limits();
        assert!(limits.assess(1, 4).is_none());
        assert!(limits.assess(2, 8).is_none());
    }

    #[test]
    fn above_limit_fires() {
        let limits = default_limits();
        assert!(limits.assess(2, 4).is_some());
        assert!(limits.assess(3, 11).is_some());
    }

    #[test]
    fn too_few_tasks_never_fire() {
        let limits = default_limits();
        assert!(limits.assess(3, 3).is_none());
        assert!(limits.assess(0, 0).is_none());
    }

    #[test]
    fn summary_and_metrics() {
        let finding = default_limits().assess(2, 6).unwrap();

        assert_eq!(finding.signal, "jr-failure-rate");
        assert!(finding.basin);
        assert_eq!(
            finding.summary,
            "2 of 6 finished Jr tasks in the last 24 h failed (33.3 %, above 25 %)"
        );
        let names: Vec<&str> = finding
            .metrics
            .iter()
            .map(|metric| metric.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "failed_tasks",
                "finished_tasks",
                "failure_percent",
                "max_failure_percent",
                "window_hours"
            ]
        );
        assert_eq!(finding.metrics[2].value, MetricValue::Number(33.3));
        assert_eq!(finding.metrics[3].value, MetricValue::Number(25.0));
    }
}
