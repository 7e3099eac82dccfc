//! stale-kanban: kanban tickets stuck in one status.
//!
//! Basin when at least one ticket with status `status` (default
//! `in_progress`) was last updated more than `stale-days` days ago. Tickets
//! with a NULL `updated_at` never count.

use tpm_autonomic_sdk::prelude::*;

const SIGNAL: &str = "stale-kanban";

/// Ten years, far beyond any useful age. The bound turns a typo into a
/// clear setting error instead of an overflow in `make_interval`.
const MAX_STALE_DAYS: i64 = 3_650;

/// Caps the alert's list, so a typo cannot make it fetch thousands of rows.
const MAX_LISTED: i64 = 100;

// `status::text` lets the text parameter match an enum column too.
// `now() - make_interval(…)` and `now() - updated_at` work for `timestamp`
// and `timestamptz` columns alike, because PostgreSQL converts a
// `timestamp` to timestamptz in the session time zone. The difference of
// two timestamptz values carries whole days in its day field, so
// `extract(day …)` gives the completed days.
const COUNT_SQL: &str = "\
SELECT count(*) AS stale_tickets,
       extract(day FROM now() - min(updated_at))::bigint AS oldest_days
FROM duyuktv_tickets
WHERE status::text = $1
  AND updated_at < now() - make_interval(days => $2::int)";

const LIST_SQL: &str = "\
SELECT id::text AS id,
       title,
       extract(day FROM now() - updated_at)::bigint AS idle_days
FROM duyuktv_tickets
WHERE status::text = $1
  AND updated_at < now() - make_interval(days => $2::int)
ORDER BY updated_at, id
LIMIT $3";

struct StaleKanban;

impl Detector for StaleKanban {
    fn manifest() -> Manifest {
        Manifest::new(
            SIGNAL,
            env!("CARGO_PKG_VERSION"),
            "Kanban tickets stuck in progress without updates",
        )
        .reads("duyuktv_tickets")
        .setting(SettingSpec::integer(
            "stale-days",
            7,
            "days without an update after which a ticket is stale",
        ))
        .setting(SettingSpec::integer(
            "max-listed",
            5,
            "oldest stale tickets listed in the alert",
        ))
        .setting(SettingSpec::text(
            "status",
            "in_progress",
            "ticket status that is checked, matched exactly",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        let limits = Limits::from_settings(settings)?;
        let status = Value::Text(limits.status.clone());
        let stale_days = Value::Integer(limits.stale_days);

        let rows = query(COUNT_SQL, &[status.clone(), stale_days.clone()])?;
        let counts = rows.one()?;
        let stale = counts.integer("stale_tickets")?;
        log::debug(format!(
            "{stale} {} tickets older than {} days",
            limits.status, limits.stale_days
        ));
        let Some(finding) = limits.assess(stale) else {
            return Ok(Vec::new());
        };
        // Not NULL here: at least one ticket with a non-NULL updated_at counted.
        let mut finding = finding.metric("oldest_days", counts.integer("oldest_days")?);

        if limits.max_listed > 0 {
            let rows = query(
                LIST_SQL,
                &[status, stale_days, Value::Integer(limits.max_listed)],
            )?;
            for row in &rows {
                finding = finding.detail(ticket_line(
                    row.optional_text("id")?,
                    row.optional_text("title")?,
                    row.integer("idle_days")?,
                ));
            }
        }
        Ok(vec![finding])
    }
}

export_detector!(StaleKanban);

struct Limits {
    stale_days: i64,
    max_listed: i64,
    status: String,
}

impl Limits {
    fn from_settings(settings: &Settings) -> Result<Self, SettingError> {
        let status = settings.text("status")?;
        if status.is_empty() {
            return Err(SettingError::invalid("status", status, "is empty"));
        }
        Ok(Limits {
            stale_days: settings.integer_in("stale-days", 1..=MAX_STALE_DAYS)?,
            max_listed: settings.integer_in("max-listed", 0..=MAX_LISTED)?,
            status: status.to_string(),
        })
    }

    /// Builds the basin finding, without `oldest_days` and detail lines,
    /// when any ticket is stale.
    fn assess(&self, stale_tickets: i64) -> Option<Finding> {
        if stale_tickets < 1 {
            return None;
        }
        let summary = format!(
            "{} in status {} not updated for more than {}",
            format_count(stale_tickets, "kanban ticket", "kanban tickets"),
            self.status,
            format_count(self.stale_days, "day", "days")
        );
        Some(
            Finding::basin(SIGNAL, summary)
                .severity(stale_tickets as f64)
                .metric("stale_tickets", stale_tickets)
                .metric("stale_days", self.stale_days),
        )
    }
}

fn ticket_line(id: Option<&str>, title: Option<&str>, idle_days: i64) -> String {
    let title = title.unwrap_or("(untitled)");
    let idle = format_count(idle_days, "day", "days");
    match id {
        Some(id) => format!("#{id} {title} (idle {idle})"),
        None => format!("(no id) {title} (idle {idle})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_limits() -> Limits {
        let settings = Settings::new(&StaleKanban::manifest().settings, Vec::new());
        Limits::from_settings(&settings).unwrap()
    }

    #[test]
    fn one_ticket_is_a_basin() {
        let limits = default_limits();
        assert!(limits.assess(0).is_none());
        assert!(limits.assess(1).is_some());
    }

    #[test]
    fn summary_and_metrics() {
        let finding = default_limits().assess(3).unwrap();

        assert_eq!(finding.signal, "stale-kanban");
        assert!(finding.basin);
        assert_eq!(
            finding.summary,
            "3 kanban tickets in status in_progress not updated for more than 7 days"
        );
        let names: Vec<&str> = finding
            .metrics
            .iter()
            .map(|metric| metric.name.as_str())
            .collect();
        assert_eq!(names, ["stale_tickets", "stale_days"]);
    }

    #[test]
    fn empty_status_is_rejected() {
        let settings = Settings::new(
            &StaleKanban::manifest().settings,
            vec![tpm_autonomic_sdk::Setting {
                name: "status".into(),
                value: String::new(),
            }],
        );
        let error = Limits::from_settings(&settings).err().unwrap();
        assert_eq!(
            error.to_string(),
            "invalid setting \"status\": the value \"\" is empty"
        );
    }

    #[test]
    fn ticket_line_handles_nulls() {
        assert_eq!(
            ticket_line(Some("1819"), Some("Build daemon"), 9),
            "#1819 Build daemon (idle 9 days)"
        );
        assert_eq!(
            ticket_line(Some("7"), None, 1),
            "#7 (untitled) (idle 1 day)"
        );
        assert_eq!(ticket_line(None, Some("x"), 8), "(no id) x (idle 8 days)");
    }
}
