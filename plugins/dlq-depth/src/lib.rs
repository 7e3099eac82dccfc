//! dlq-depth: failed Jr tasks piling up in the dead-letter queue.
//!
//! Basin when the Jr work queue has at least `threshold` tasks with status
//! `failed` that were updated in the last `window-hours` hours.

use tpm_autonomic_sdk::prelude::*;

const SIGNAL: &str = "dlq-depth";

/// Ten years, far beyond any useful look-back. The bound turns a typo into
/// a clear setting error instead of an overflow in `make_interval`.
const MAX_WINDOW_HOURS: i64 = 87_600;

/// Caps the alert's list, so a typo cannot make it fetch thousands of rows.
const MAX_LISTED: i64 = 100;

// `now() - make_interval(…)` is a timestamptz. PostgreSQL compares a
// `timestamp` column with it in the session time zone, so the filter works
// for both column types.
const COUNT_SQL: &str = "\
SELECT count(*) AS failed_tasks
FROM jr_work_queue
WHERE status = 'failed'
  AND updated_at >= now() - make_interval(hours => $1::int)";

const LIST_SQL: &str = "\
SELECT task_id::text AS task_id, title
FROM jr_work_queue
WHERE status = 'failed'
  AND updated_at >= now() - make_interval(hours => $1::int)
ORDER BY updated_at DESC
LIMIT $2";

struct DlqDepth;

impl Detector for DlqDepth {
    fn manifest() -> Manifest {
        Manifest::new(
            SIGNAL,
            env!("CARGO_PKG_VERSION"),
            "Failed Jr tasks piling up in the dead-letter queue",
        )
        .reads("jr_work_queue")
        .setting(SettingSpec::integer(
            "threshold",
            5,
            "failed tasks in the window that make a basin",
        ))
        .setting(SettingSpec::integer(
            "window-hours",
            48,
            "look-back window, in hours",
        ))
        .setting(SettingSpec::integer(
            "max-listed",
            5,
            "most recent failed tasks listed in the alert",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        let limits = Limits::from_settings(settings)?;
        let window = Value::Integer(limits.window_hours);

        let failed = query(COUNT_SQL, std::slice::from_ref(&window))?
            .one()?
            .integer("failed_tasks")?;
        log::debug(format!(
            "{failed} failed tasks in the last {} h",
            limits.window_hours
        ));
        let Some(mut finding) = limits.assess(failed) else {
            return Ok(Vec::new());
        };

        if limits.max_listed > 0 {
            let rows = query(LIST_SQL, &[window, Value::Integer(limits.max_listed)])?;
            for row in &rows {
                finding = finding.detail(task_line(
                    row.optional_text("task_id")?,
                    row.optional_text("title")?,
                ));
            }
        }
        Ok(vec![finding])
    }
}

export_detector!(DlqDepth);

struct Limits {
    threshold: i64,
    window_hours: i64,
    max_listed: i64,
}

impl Limits {
    fn from_settings(settings: &Settings) -> Result<Self, SettingError> {
        Ok(Limits {
            threshold: settings.integer_in("threshold", 1..=i64::MAX)?,
            window_hours: settings.integer_in("window-hours", 1..=MAX_WINDOW_HOURS)?,
            max_listed: settings.integer_in("max-listed", 0..=MAX_LISTED)?,
        })
    }

    /// Builds the basin finding, without its detail lines, when `failed`
    /// reaches the threshold.
    fn assess(&self, failed: i64) -> Option<Finding> {
        if failed < self.threshold {
            return None;
        }
        let summary = format!(
            "{} in the last {} h (threshold {})",
            format_count(failed, "failed Jr task", "failed Jr tasks"),
            self.window_hours,
            self.threshold
        );
        Some(
            Finding::basin(SIGNAL, summary)
                .severity(failed as f64)
                .metric("failed_tasks", failed)
                .metric("threshold", self.threshold)
                .metric("window_hours", self.window_hours),
        )
    }
}

fn task_line(task_id: Option<&str>, title: Option<&str>) -> String {
    let title = title.unwrap_or("(untitled)");
    match task_id {
        Some(task_id) => format!("#{task_id} {title}"),
        None => format!("(no task id) {title}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_limits() -> Limits {
        let settings = Settings::new(&DlqDepth::manifest().settings, Vec::new());
        Limits::from_settings(&settings).unwrap()
    }

    #[test]
    fn threshold_is_inclusive() {
        let limits = default_limits();
        assert!(limits.assess(4).is_none());
        assert!(limits.assess(5).is_some());
    }

    #[test]
    fn finding_has_summary_and_metrics() {
        let finding = default_limits().assess(6).unwrap();

        assert_eq!(finding.signal, "dlq-depth");
        assert!(finding.basin);
        assert_eq!(
            finding.summary,
            "6 failed Jr tasks in the last 48 h (threshold 5)"
        );
        let names: Vec<&str> = finding
            .metrics
            .iter()
            .map(|metric| metric.name.as_str())
            .collect();
        assert_eq!(names, ["failed_tasks", "threshold", "window_hours"]);
        assert_eq!(finding.metrics[0].value, MetricValue::Integer(6));
    }

    #[test]
    fn task_line_handles_nulls() {
        assert_eq!(
            task_line(Some("42"), Some("Rebuild index")),
            "#42 Rebuild index"
        );
        assert_eq!(task_line(Some("42"), None), "#42 (untitled)");
        assert_eq!(
            task_line(None, Some("Rebuild index")),
            "(no task id) Rebuild index"
        );
    }
}
