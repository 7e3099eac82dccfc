//! work-state: how much work is waiting, for the clean-cycle log line.
//!
//! Never a basin: it always returns one informational finding with the
//! number of pending Jr tasks and of open kanban items.

use tpm_autonomic_sdk::prelude::*;

const SIGNAL: &str = "work-state";

const PENDING_SQL: &str = "\
SELECT count(*) AS pending_jr_tasks
FROM jr_work_queue
WHERE status = 'pending'";

// Parameters cannot be arrays, so the closed statuses arrive as one
// comma-separated text. `<> ALL` of an empty array is true, so with no
// closed statuses every ticket with a status is open.
const OPEN_SQL: &str = "\
SELECT count(*) AS open_kanban_items
FROM duyuktv_tickets
WHERE status IS NOT NULL
  AND status::text <> ALL (string_to_array($1, ','))";

struct WorkState;

impl Detector for WorkState {
    fn manifest() -> Manifest {
        Manifest::new(
            SIGNAL,
            env!("CARGO_PKG_VERSION"),
            "Pending Jr tasks and open kanban items (informational)",
        )
        .reads("jr_work_queue")
        .reads("duyuktv_tickets")
        .setting(SettingSpec::text(
            "closed-statuses",
            "done,closed,completed,cancelled,archived",
            "comma-separated ticket statuses that are not open, matched exactly",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        // Trimmed and rejoined so that `done, closed` matches `closed`.
        let closed_statuses = settings.text_list("closed-statuses")?.join(",");

        let pending = query(PENDING_SQL, &[])?
            .one()?
            .integer("pending_jr_tasks")?;
        let open = query(OPEN_SQL, &[Value::Text(closed_statuses)])?
            .one()?
            .integer("open_kanban_items")?;

        Ok(vec![summarize(pending, open)])
    }
}

export_detector!(WorkState);

fn summarize(pending_jr_tasks: i64, open_kanban_items: i64) -> Finding {
    let summary = format!(
        "{}, {}",
        format_count(pending_jr_tasks, "pending Jr task", "pending Jr tasks"),
        format_count(open_kanban_items, "open kanban item", "open kanban items")
    );
    Finding::info(SIGNAL, summary)
        .metric("pending_jr_tasks", pending_jr_tasks)
        .metric("open_kanban_items", open_kanban_items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_is_informational() {
        let finding = summarize(12, 30);

        assert_eq!(finding.signal, "work-state");
        assert!(!finding.basin);
        assert_eq!(finding.summary, "12 pending Jr tasks, 30 open kanban items");
        assert_eq!(finding.metrics[0].name, "pending_jr_tasks");
        assert_eq!(finding.metrics[0].value, MetricValue::Integer(12));
        assert_eq!(finding.metrics[1].name, "open_kanban_items");
        assert_eq!(finding.metrics[1].value, MetricValue::Integer(30));
    }

    #[test]
    fn summary_uses_singular() {
        assert_eq!(
            summarize(1, 1).summary,
            "1 pending Jr task, 1 open kanban item"
        );
    }

    #[test]
    fn default_closed_statuses() {
        let settings = Settings::new(&WorkState::manifest().settings, Vec::new());
        assert_eq!(
            settings.text_list("closed-statuses").unwrap(),
            ["done", "closed", "completed", "cancelled", "archived"]
        );
    }
}
