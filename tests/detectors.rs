//! Each detector at the edges of its thresholds, with NULLs present and with
//! the column types real deployments use. Every case runs the real binary
//! with `--once --format json --dry-run` against its own database.

use serde_json::Value;

use crate::support::{Daemon, PgCluster, TestDb};

/// Runs one detector and returns its report row, which must say it ran.
async fn run_detector(label: &str, database: &TestDb, plugin: &str) -> Value {
    let mut daemon = Daemon::with_database(label, database);
    daemon.plugins(&[plugin]);
    let finished = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    let row = finished.plugin(plugin);
    assert_eq!(
        row["run"]["status"],
        "ok",
        "{plugin} did not run cleanly\n{}",
        finished.describe()
    );
    row
}

/// The basin finding of a report row, if any.
fn basin(row: &Value) -> Option<Value> {
    row["findings"]
        .as_array()
        .expect("findings is a list")
        .iter()
        .find(|finding| finding["basin"] == true)
        .cloned()
}

async fn database(label: &str) -> TestDb {
    PgCluster::shared().database(label).await
}

fn failed_rows(count: usize, age: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                "INSERT INTO jr_work_queue (task_id, title, status, updated_at) \
                 VALUES ('t{i}', 'task {i}', 'failed', now() - interval '{age}');"
            )
        })
        .collect()
}

#[tokio::test]
async fn dlq_depth_fires_at_five_failed_rows() {
    let db = database("dlq_four").await;
    db.execute(&failed_rows(4, "1 hour")).await;
    let row = run_detector("dlq-four", &db, "dlq-depth").await;
    assert_eq!(basin(&row), None, "4 failed rows must not fire: {row}");

    let db = database("dlq_five").await;
    db.execute(&failed_rows(5, "1 hour")).await;
    let row = run_detector("dlq-five", &db, "dlq-depth").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("5 failed rows must fire: {row}"));
    assert_eq!(finding["signal"], "dlq-depth");
    assert_eq!(finding["metrics"]["failed_tasks"], 5);
    assert_eq!(finding["metrics"]["threshold"], 5);
    assert_eq!(finding["details"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn dlq_depth_ignores_old_and_null_rows() {
    let db = database("dlq_window").await;
    db.execute(&failed_rows(4, "47 hours")).await;
    db.execute(&failed_rows(3, "49 hours")).await;
    db.execute(
        "INSERT INTO jr_work_queue (task_id, title, status, updated_at) \
         VALUES ('n', NULL, 'failed', NULL), ('c', 'done', 'completed', now());",
    )
    .await;
    let row = run_detector("dlq-window", &db, "dlq-depth").await;
    assert_eq!(basin(&row), None, "only 4 rows are in the window: {row}");
}

#[tokio::test]
async fn dlq_depth_reads_timestamptz_columns() {
    let db = database("dlq_timestamptz").await;
    db.execute("ALTER TABLE jr_work_queue ALTER COLUMN updated_at TYPE timestamptz")
        .await;
    db.execute(&failed_rows(6, "2 hours")).await;
    let row = run_detector("dlq-timestamptz", &db, "dlq-depth").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("6 failed rows must fire: {row}"));
    assert_eq!(finding["metrics"]["failed_tasks"], 6);
}

fn finished_rows(failed: usize, completed: usize) -> String {
    let mut sql = failed_rows(failed, "1 hour");
    for i in 0..completed {
        sql.push_str(&format!(
            "INSERT INTO jr_work_queue (task_id, title, status, updated_at) \
             VALUES ('c{i}', 'done {i}', 'completed', now() - interval '1 hour');"
        ));
    }
    sql
}

#[tokio::test]
async fn jr_failure_rate_needs_four_finished_tasks() {
    let db = database("rate_three").await;
    db.execute(&finished_rows(3, 0)).await;
    let row = run_detector("rate-three", &db, "jr-failure-rate").await;
    assert_eq!(
        basin(&row),
        None,
        "3 finished tasks must not fire even at 100 %: {row}"
    );

    let db = database("rate_four").await;
    db.execute(&finished_rows(2, 2)).await;
    let row = run_detector("rate-four", &db, "jr-failure-rate").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("2 of 4 failed must fire: {row}"));
    assert_eq!(finding["metrics"]["finished_tasks"], 4);
    assert_eq!(finding["metrics"]["failed_tasks"], 2);
}

#[tokio::test]
async fn jr_failure_rate_fires_only_above_quarter() {
    let db = database("rate_exact").await;
    db.execute(&finished_rows(25, 75)).await;
    let row = run_detector("rate-exact", &db, "jr-failure-rate").await;
    assert_eq!(basin(&row), None, "exactly 25 % must not fire: {row}");

    let db = database("rate_above").await;
    db.execute(&finished_rows(26, 74)).await;
    let row = run_detector("rate-above", &db, "jr-failure-rate").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("26 % must fire: {row}"));
    assert_eq!(finding["metrics"]["failure_percent"], 26.0);
}

#[tokio::test]
async fn jr_failure_rate_ignores_old_and_other_rows() {
    let db = database("rate_window").await;
    db.execute(&finished_rows(1, 3)).await;
    db.execute(
        "INSERT INTO jr_work_queue (task_id, title, status, updated_at) VALUES \
         ('o1', 'old', 'failed', now() - interval '25 hours'), \
         ('o2', 'old', 'failed', now() - interval '30 hours'), \
         ('p', 'pending', 'pending', now()), \
         ('n', NULL, 'failed', NULL);",
    )
    .await;
    let row = run_detector("rate-window", &db, "jr-failure-rate").await;
    assert_eq!(basin(&row), None, "1 of 4 in the window is 25 %: {row}");
}

async fn insert_vote(db: &TestDb, hash: &str, confidence: &str, age: &str) {
    db.execute(&format!(
        "INSERT INTO council_votes (audit_hash, question, recommendation, confidence, voted_at) \
         VALUES ('{hash}', 'q', 'PROCEED WITH CAUTION', {confidence}, now() - interval '{age}');"
    ))
    .await;
}

#[tokio::test]
async fn council_threshold_is_strict() {
    let db = database("council_exact").await;
    insert_vote(&db, "aaaaaaaa11111111", "0.7", "1 hour").await;
    insert_vote(&db, "bbbbbbbb22222222", "NULL", "1 hour").await;
    insert_vote(&db, "cccccccc33333333", "0.5", "25 hours").await;
    db.execute(
        "INSERT INTO council_votes (audit_hash, confidence, voted_at) VALUES ('d', 0.1, NULL)",
    )
    .await;
    let row = run_detector("council-exact", &db, "council-disagreement").await;
    assert_eq!(
        basin(&row),
        None,
        "0.7, NULL, old and undated votes must not fire: {row}"
    );

    let db = database("council_below").await;
    insert_vote(&db, "b82aea3e6ceb8906", "0.69", "1 hour").await;
    insert_vote(&db, "aaaaaaaa11111111", "0.9", "1 hour").await;
    let row = run_detector("council-below", &db, "council-disagreement").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("0.69 must fire: {row}"));
    assert_eq!(finding["metrics"]["low_confidence_votes"], 1);
    assert_eq!(finding["metrics"]["lowest_confidence"], 0.69);
    let details = finding["details"].as_array().unwrap();
    assert_eq!(details.len(), 1);
    let line = details[0].as_str().unwrap();
    assert!(line.starts_with("b82aea3e "), "hash prefix missing: {line}");
    assert!(line.contains("0.69"), "confidence missing: {line}");
}

#[tokio::test]
async fn council_reads_double_precision_confidence() {
    let db = database("council_double").await;
    db.execute("ALTER TABLE council_votes ALTER COLUMN confidence TYPE double precision")
        .await;
    insert_vote(&db, "1234567890abcdef", "0.69", "2 hours").await;
    let row = run_detector("council-double", &db, "council-disagreement").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("0.69 must fire: {row}"));
    assert_eq!(finding["metrics"]["lowest_confidence"], 0.69);
}

async fn insert_ticket(db: &TestDb, title: &str, status: &str, age: &str) {
    db.execute(&format!(
        "INSERT INTO duyuktv_tickets (title, status, updated_at) \
         VALUES ({title}, '{status}', now() - interval '{age}');"
    ))
    .await;
}

#[tokio::test]
async fn stale_kanban_seven_day_boundary() {
    let db = database("stale_inside").await;
    insert_ticket(&db, "'recent'", "in_progress", "6 days 23 hours 59 minutes").await;
    insert_ticket(&db, "'old but done'", "done", "30 days").await;
    db.execute("INSERT INTO duyuktv_tickets (title, status, updated_at) VALUES ('never', 'in_progress', NULL)")
        .await;
    let row = run_detector("stale-inside", &db, "stale-kanban").await;
    assert_eq!(
        basin(&row),
        None,
        "7 days minus a minute must not fire: {row}"
    );

    let db = database("stale_outside").await;
    insert_ticket(
        &db,
        "'build-7 (retry) [v2.1]_final!'",
        "in_progress",
        "7 days 1 minute",
    )
    .await;
    insert_ticket(&db, "NULL", "in_progress", "20 days").await;
    let row = run_detector("stale-outside", &db, "stale-kanban").await;
    let finding = basin(&row).unwrap_or_else(|| panic!("7 days plus a minute must fire: {row}"));
    assert_eq!(finding["metrics"]["stale_tickets"], 2);
    assert_eq!(finding["metrics"]["oldest_days"], 20);
    let details: Vec<&str> = finding["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[1].contains("build-7 (retry) [v2.1]_final!"),
        "{details:?}"
    );
}

#[tokio::test]
async fn work_state_counts_and_never_alerts() {
    let db = database("work_state").await;
    db.execute(
        "INSERT INTO jr_work_queue (task_id, status, updated_at) VALUES \
         ('a', 'pending', now()), ('b', 'pending', NULL), ('c', 'failed', now()); \
         INSERT INTO duyuktv_tickets (title, status, updated_at) VALUES \
         ('x', 'open', now()), ('y', 'in_progress', now()), ('z', 'done', now()), \
         ('w', NULL, now());",
    )
    .await;
    let row = run_detector("work-state", &db, "work-state").await;
    assert_eq!(basin(&row), None, "work-state is informational: {row}");
    let finding = &row["findings"][0];
    assert_eq!(finding["signal"], "work-state");
    assert_eq!(finding["metrics"]["pending_jr_tasks"], 2);
    assert_eq!(finding["metrics"]["open_kanban_items"], 2);
}

#[tokio::test]
async fn configured_threshold_overrides_default() {
    let db = database("dlq_configured").await;
    db.execute(&failed_rows(5, "1 hour")).await;
    let mut daemon = Daemon::with_database("dlq-configured", &db);
    daemon
        .plugins(&["dlq-depth"])
        .config("[plugins.dlq-depth]\nthreshold = 6\n");
    let finished = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    let row = finished.plugin("dlq-depth");
    assert_eq!(
        basin(&row),
        None,
        "threshold 6 must not fire on 5 rows: {row}"
    );
    assert!(
        row["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "threshold=6"),
        "effective settings must show the configured value: {row}"
    );
}
