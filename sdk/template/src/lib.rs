//! high-priority-backlog: high-priority Jr tasks left waiting.
//!
//! Basin when at least `threshold` tasks in `jr_work_queue` are `pending`,
//! have a priority of `min-priority` or more, and were created more than
//! `max-age-hours` hours ago. Tasks whose priority or `created_at` is NULL
//! never count.
//!
//! This crate is the tpm-autonomic detector template, explained step by
//! step in docs/write-a-detector.md of the tpm-autonomic repository.

use tpm_autonomic_sdk::prelude::*;

/// The plugin name, which is also the signal id of its finding.
const NAME: &str = "high-priority-backlog";

/// Largest `max-age-hours`, one year. The bound turns a typo into a clear
/// setting error instead of an overflow in `make_interval`, which takes an
/// `int`.
const MAX_AGE_HOURS: i64 = 8_760;

// Both queries select the same tasks, with `min-priority` as $1 and
// `max-age-hours` as $2. The count runs in SQL because the host caps the
// rows one query may return. `now() - created_at` works for `timestamp` and
// `timestamptz` columns alike.
const COUNT_SQL: &str = "\
SELECT count(*) AS overdue_tasks,
       floor(extract(epoch FROM now() - min(created_at)) / 3600)::bigint AS oldest_hours
FROM jr_work_queue
WHERE status = 'pending'
  AND priority >= $1
  AND created_at < now() - make_interval(hours => $2::int)";

// The oldest three tasks, listed in the alert.
const LIST_SQL: &str = "\
SELECT task_id,
       title,
       priority,
       floor(extract(epoch FROM now() - created_at) / 3600)::bigint AS age_hours
FROM jr_work_queue
WHERE status = 'pending'
  AND priority >= $1
  AND created_at < now() - make_interval(hours => $2::int)
ORDER BY created_at, id
LIMIT 3";

struct HighPriorityBacklog;

impl Detector for HighPriorityBacklog {
    fn manifest() -> Manifest {
        Manifest::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "High-priority Jr tasks left pending too long",
        )
        .reads("jr_work_queue")
        .setting(SettingSpec::integer(
            "min-priority",
            8,
            "lowest task priority that counts as high",
        ))
        .setting(SettingSpec::integer(
            "max-age-hours",
            24,
            "hours a high-priority task may stay pending",
        ))
        .setting(SettingSpec::integer(
            "threshold",
            3,
            "overdue tasks that make a basin",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        let rules = Rules::from_settings(settings)?;
        let params = [
            Value::Integer(rules.min_priority),
            Value::Integer(rules.max_age_hours),
        ];

        let rows = query(COUNT_SQL, &params)?;
        let counts = rows.one()?;
        let overdue = counts.integer("overdue_tasks")?;
        // Logged at the daemon's default level. Use log::debug once the
        // detector works, so it does not add a line to every cycle.
        log::info(format!("{overdue} overdue high-priority tasks"));

        let Some(finding) = rules.assess(overdue) else {
            return Ok(Vec::new());
        };
        // It is not NULL, because at least one task with a `created_at` was
        // counted.
        let mut finding = finding.metric("oldest_hours", counts.integer("oldest_hours")?);

        for row in &query(LIST_SQL, &params)? {
            finding = finding.detail(task_line(
                row.optional_text("task_id")?,
                row.optional_text("title")?,
                row.integer("priority")?,
                row.integer("age_hours")?,
            ));
        }
        Ok(vec![finding])
    }
}

export_detector!(HighPriorityBacklog);

/// The checked settings of one detection.
struct Rules {
    min_priority: i64,
    max_age_hours: i64,
    threshold: i64,
}

impl Rules {
    fn from_settings(settings: &Settings) -> Result<Self, SettingError> {
        Ok(Rules {
            min_priority: settings.integer("min-priority")?,
            max_age_hours: settings.integer_in("max-age-hours", 1..=MAX_AGE_HOURS)?,
            threshold: settings.integer_in("threshold", 1..=i64::MAX)?,
        })
    }

    /// Builds the basin finding, without `oldest_hours` and the task lines,
    /// when the overdue tasks reach the threshold.
    fn assess(&self, overdue: i64) -> Option<Finding> {
        if overdue < self.threshold {
            return None;
        }
        let summary = format!(
            "{} with priority {} or higher pending for more than {} h",
            format_count(overdue, "Jr task", "Jr tasks"),
            self.min_priority,
            self.max_age_hours
        );
        Some(
            Finding::basin(NAME, summary)
                .severity(overdue as f64)
                .metric("overdue_tasks", overdue)
                .metric("threshold", self.threshold),
        )
    }
}

fn task_line(task_id: Option<&str>, title: Option<&str>, priority: i64, age_hours: i64) -> String {
    format!(
        "{} {} (priority {priority}, pending {age_hours} h)",
        task_id.unwrap_or("(no task id)"),
        title.unwrap_or("(untitled)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpm_autonomic_sdk::Setting;

    /// Builds the rules from the manifest's defaults, overridden by
    /// `configured`, as the SDK merges them before `detect`.
    fn rules(configured: &[(&str, &str)]) -> Result<Rules, SettingError> {
        let configured = configured
            .iter()
            .map(|(name, value)| Setting {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect();
        let settings = Settings::new(&HighPriorityBacklog::manifest().settings, configured);
        Rules::from_settings(&settings)
    }

    #[test]
    fn threshold_is_inclusive() {
        let rules = rules(&[]).unwrap();
        assert!(rules.assess(2).is_none());
        assert!(rules.assess(3).is_some());
    }

    #[test]
    fn finding_has_summary_severity_and_metrics() {
        let finding = rules(&[("min-priority", "9")]).unwrap().assess(5).unwrap();

        assert!(finding.basin);
        assert_eq!(finding.signal, "high-priority-backlog");
        assert_eq!(
            finding.summary,
            "5 Jr tasks with priority 9 or higher pending for more than 24 h"
        );
        assert_eq!(finding.severity, 5.0);
        let names: Vec<&str> = finding.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["overdue_tasks", "threshold"]);
    }

    #[test]
    fn out_of_range_age_is_rejected() {
        let error = rules(&[("max-age-hours", "0")]).err().unwrap();
        assert_eq!(
            error.to_string(),
            "invalid setting \"max-age-hours\": the value \"0\" is outside the allowed range 1 to 8760"
        );
    }

    #[test]
    fn task_line_handles_nulls() {
        assert_eq!(
            task_line(Some("jr-1a2b"), Some("Rotate keys"), 9, 30),
            "jr-1a2b Rotate keys (priority 9, pending 30 h)"
        );
        assert_eq!(
            task_line(None, None, 8, 25),
            "(no task id) (untitled) (priority 8, pending 25 h)"
        );
    }
}
