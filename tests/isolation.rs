//! A detector that traps, loops forever or whose query fails fails alone:
//! the other detectors run and their alert goes out.

use std::time::{Duration, Instant};

use crate::support::daemon::DETECTORS;
use crate::support::{Daemon, FakeTelegram, PgCluster};

/// Runs the five detectors plus `fixtures` on the sample data with a fake
/// Telegram, and checks that the alert still went out with every signal.
async fn run_with_fixtures(
    label: &str,
    fixtures: &[&str],
    config: &str,
) -> (crate::support::Finished, FakeTelegram) {
    let db = PgCluster::shared().database(label).await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database(label, &db);
    daemon.plugins(&DETECTORS).plugins(fixtures).telegram(&telegram).config(config);

    let finished = daemon.run_once(&["--format", "json"]).await;

    let messages = telegram.messages();
    assert_eq!(messages.len(), 1, "the alert must go out\n{}", finished.describe());
    let text = messages[0].text.clone().unwrap_or_default();
    for signal in ["council\\-disagreement", "dlq\\-depth", "jr\\-failure\\-rate", "stale\\-kanban"] {
        assert!(text.contains(signal), "{signal} missing from the alert:\n{text}");
    }
    for detector in DETECTORS {
        assert_eq!(
            finished.plugin(detector)["run"]["status"],
            "ok",
            "{detector} must still run\n{}",
            finished.describe()
        );
    }
    assert_eq!(db.thermal_records("tpm-autonomic-basin-detect").await.len(), 1);
    (finished, telegram)
}

#[tokio::test]
async fn panicking_plugin_does_not_stop_alert() {
    let (finished, _telegram) = run_with_fixtures("panic-plugin", &["panic-detector"], "").await;

    finished.assert_code(1);
    let row = finished.plugin("panic-detector");
    assert_eq!(row["run"]["status"], "failed");
    assert_eq!(row["run"]["kind"], "trap");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("fixture panic: deliberate"), "panic message missing: {reason}");
    let line = finished
        .stderr
        .lines()
        .find(|line| line.contains("WARNING detector failed") && line.contains("plugin=panic-detector"))
        .unwrap_or_else(|| panic!("no failure line\n{}", finished.describe()));
    assert!(line.contains("fixture panic: deliberate"), "{line}");
}

#[tokio::test]
async fn unreachable_plugin_is_reported_as_trap() {
    let (finished, _telegram) =
        run_with_fixtures("unreachable-plugin", &["unreachable-detector"], "").await;

    finished.assert_code(1);
    let row = finished.plugin("unreachable-detector");
    assert_eq!(row["run"]["kind"], "trap");
    assert!(row["run"]["reason"].as_str().unwrap().contains("unreachable"), "{row}");
}

#[tokio::test]
async fn endless_loop_plugin_hits_deadline() {
    let started = Instant::now();
    let (finished, _telegram) =
        run_with_fixtures("endless-loop", &["endless-loop"], "[limits]\ndeadline = \"1s\"\n").await;

    finished.assert_code(1);
    let row = finished.plugin("endless-loop");
    assert_eq!(row["run"]["kind"], "deadline");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("limits.deadline"), "{reason}");
    assert!(reason.contains("1000 ms"), "{reason}");
    // The loop is stopped at the deadline, not at the end of the test's
    // patience: loading and one cycle take well under 20 s.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn failing_query_does_not_stop_others() {
    let config = "[plugins.sql-runner]\nsql = \"SELECT no_such_column FROM jr_work_queue\"\n";
    let (finished, _telegram) = run_with_fixtures("failing-query", &["sql-runner"], config).await;

    finished.assert_code(1);
    let row = finished.plugin("sql-runner");
    assert_eq!(row["run"]["status"], "failed");
    let reason = row["run"]["reason"].as_str().unwrap();
    assert!(reason.contains("no_such_column"), "the database's message is missing: {reason}");
    assert!(finished.stderr.contains("WARNING query failed"), "{}", finished.describe());
}
