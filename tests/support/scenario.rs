//! The scenario most hostile-plugin tests share: the five detectors on
//! the sample data, plus the plugins under test, with a fake Telegram.

use super::daemon::DETECTORS;
use super::{Daemon, FakeTelegram, Finished, PgCluster, TestDb};

/// `metadata.source` of the daemon's thermal records.
pub const SOURCE: &str = "tpm-autonomic-basin-detect";

/// Runs `--once --format json` with the five detectors and `fixtures` on
/// the sample data with `config`, and checks that the alert went out with
/// all four signals, that the five detectors ran, and that one thermal
/// record was written.
pub async fn run_beside_detectors(
    label: &str,
    fixtures: &[&str],
    config: &str,
) -> (Finished, TestDb) {
    let db = PgCluster::shared().database(label).await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database(label, &db);
    daemon
        .plugins(&DETECTORS)
        .plugins(fixtures)
        .telegram(&telegram)
        .config(config);

    let finished = daemon.run_once(&["--format", "json"]).await;

    assert_alert_intact(&finished, &telegram);
    assert_eq!(
        db.thermal_records(SOURCE).await.len(),
        1,
        "one thermal record expected"
    );
    (finished, db)
}

/// Checks that one alert went out with the four basin signals of the sample
/// data and that the five detectors ran.
pub fn assert_alert_intact(finished: &Finished, telegram: &FakeTelegram) {
    let messages = telegram.messages();
    assert_eq!(
        messages.len(),
        1,
        "the alert must go out\n{}",
        finished.describe()
    );
    assert_eq!(
        messages[0].status,
        Some(200),
        "{}",
        telegram.describe_requests()
    );
    let text = messages[0].text.clone().unwrap_or_default();
    for signal in [
        "council\\-disagreement",
        "dlq\\-depth",
        "jr\\-failure\\-rate",
        "stale\\-kanban",
    ] {
        assert!(
            text.contains(signal),
            "{signal} missing from the alert:\n{text}"
        );
    }
    for detector in DETECTORS {
        assert_eq!(
            finished.plugin(detector)["run"]["status"],
            "ok",
            "{detector} must still run\n{}",
            finished.describe()
        );
    }
}
