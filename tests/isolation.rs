//! A detector that traps, loops forever or whose query fails fails alone:
//! the other detectors run and their alert goes out.

use std::time::{Duration, Instant};

use crate::support::scenario::run_beside_detectors;

#[tokio::test]
async fn panicking_plugin_does_not_stop_alert() {
    let (finished, _db) = run_beside_detectors("panic-plugin", &["panic-detector"], "").await;

    finished.assert_code(1);
    let row = finished.plugin("panic-detector");
    assert_eq!(row["run"]["status"], "failed");
    assert_eq!(row["run"]["kind"], "trap");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("fixture panic: deliberate"),
        "panic message missing: {reason}"
    );
    let line = finished
        .stderr
        .lines()
        .find(|line| {
            line.contains("WARNING detector failed") && line.contains("plugin=panic-detector")
        })
        .unwrap_or_else(|| panic!("no failure line\n{}", finished.describe()));
    assert!(line.contains("fixture panic: deliberate"), "{line}");
}

#[tokio::test]
async fn unreachable_plugin_is_reported_as_trap() {
    let (finished, _db) =
        run_beside_detectors("unreachable-plugin", &["unreachable-detector"], "").await;

    finished.assert_code(1);
    let row = finished.plugin("unreachable-detector");
    assert_eq!(row["run"]["kind"], "trap");
    assert!(
        row["run"]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{row}"
    );
}

#[tokio::test]
async fn endless_loop_plugin_hits_deadline() {
    let started = Instant::now();
    let (finished, _db) = run_beside_detectors(
        "endless-loop",
        &["endless-loop"],
        "[limits]\ndeadline = \"1s\"\n",
    )
    .await;

    finished.assert_code(1);
    let row = finished.plugin("endless-loop");
    assert_eq!(row["run"]["kind"], "deadline");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("limits.deadline"), "{reason}");
    assert!(reason.contains("1000 ms"), "{reason}");
    // The loop is stopped at the deadline, not at the end of the test's
    // patience: loading and one cycle take well under 20 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn failing_query_does_not_stop_others() {
    let config = "[plugins.sql-runner]\nsql = \"SELECT no_such_column FROM jr_work_queue\"\n";
    let (finished, _db) = run_beside_detectors("failing-query", &["sql-runner"], config).await;

    finished.assert_code(1);
    let row = finished.plugin("sql-runner");
    assert_eq!(row["run"]["status"], "failed");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no_such_column"),
        "the database's message is missing: {reason}"
    );
    assert!(
        finished.stderr.contains("WARNING query failed"),
        "{}",
        finished.describe()
    );
}
