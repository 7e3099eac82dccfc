//! What a cycle sends and records: nothing on a clean cycle, one Telegram
//! message and one thermal record on a basin cycle, and no second record
//! for the same detection.

use sha2::{Digest, Sha256};

use crate::support::daemon::{CHAT_ID, DETECTORS};
use crate::support::{markdown, Daemon, FakeTelegram, PgCluster};

const SOURCE: &str = "tpm-autonomic-basin-detect";

#[tokio::test]
async fn clean_cycle_sends_and_writes_nothing() {
    let db = PgCluster::shared().database("clean_cycle").await;
    db.load_sample("clean.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("clean-cycle", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    assert!(
        telegram.requests().is_empty(),
        "{}",
        telegram.describe_requests()
    );
    assert!(db.thermal_records(SOURCE).await.is_empty());
    let clean_line = finished
        .stderr
        .lines()
        .find(|line| line.contains(" INFO clean cycle "))
        .unwrap_or_else(|| panic!("no clean-cycle line\n{}", finished.describe()));
    assert!(
        clean_line.contains("pending Jr tasks"),
        "work state missing: {clean_line}"
    );
    assert!(
        clean_line.contains("open kanban items"),
        "work state missing: {clean_line}"
    );
}

#[tokio::test]
async fn basin_cycle_sends_one_message_and_one_record() {
    let db = PgCluster::shared().database("basin_cycle").await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("basin-cycle", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    let finished = daemon.run_once(&[]).await;
    finished.assert_code(0);

    let messages = telegram.messages();
    assert_eq!(messages.len(), 1, "{}", telegram.describe_requests());
    let message = &messages[0];
    assert_eq!(
        message.status,
        Some(200),
        "{}",
        telegram.describe_requests()
    );
    assert_eq!(message.chat_id.as_deref(), Some(CHAT_ID));
    assert_eq!(message.parse_mode.as_deref(), Some("MarkdownV2"));
    let text = message.text.as_deref().unwrap();
    markdown::check(text).unwrap_or_else(|error| panic!("invalid MarkdownV2 ({error:?}):\n{text}"));
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
    assert!(
        text.contains("7 failed Jr tasks"),
        "numbers missing:\n{text}"
    );
    assert!(
        text.contains("build\\-7 \\(retry\\) \\[v2\\.1\\]\\_final\\!"),
        "title not escaped:\n{text}"
    );
    assert!(text.contains("work\\-state"), "work state missing:\n{text}");

    let records = db.thermal_records(SOURCE).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        record.memory_hash,
        hex::encode(Sha256::digest(record.original_content.as_bytes()))
    );
    assert_eq!(record.temperature_score, Some(75.0));
    assert_eq!(record.sacred_pattern, Some(false));
    assert!(
        record.original_content.starts_with("TPM AUTONOMIC BASIN DETECTION: 4 signals detected. Types: council-disagreement, dlq-depth, jr-failure-rate, stale-kanban. Details: "),
        "{}",
        record.original_content
    );
    let metadata = record.metadata.as_ref().expect("metadata is set");
    assert_eq!(metadata["source"], SOURCE);
    assert_eq!(metadata["signals"].as_array().map(Vec::len), Some(4));
    assert!(metadata["detected_at"].is_string(), "{metadata}");
    assert!(
        finished.stderr.contains("thermal record written"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains(" INFO alert sent "),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn same_detection_writes_one_record() {
    let db = PgCluster::shared().database("same_detection").await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("same-detection", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    daemon.run_once(&[]).await.assert_code(0);
    let second = daemon.run_once(&[]).await;
    second.assert_code(0);

    assert_eq!(db.thermal_records(SOURCE).await.len(), 1);
    assert!(
        second.stderr.contains("thermal record already present"),
        "{}",
        second.describe()
    );
}

#[tokio::test]
async fn dry_run_prints_and_sends_nothing() {
    let db = PgCluster::shared().database("dry_run").await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("dry-run", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    let finished = daemon.run_once(&["--dry-run"]).await;

    finished.assert_code(0);
    assert!(
        telegram.requests().is_empty(),
        "{}",
        telegram.describe_requests()
    );
    assert!(db.thermal_records(SOURCE).await.is_empty());
    assert!(
        finished
            .stdout
            .contains("Telegram alert (dry run: not sent)"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stdout.contains("temperature_score: 75"),
        "{}",
        finished.describe()
    );
    assert!(finished
        .stdout
        .contains("\"source\":\"tpm-autonomic-basin-detect\""));
}

#[tokio::test]
async fn missing_telegram_warns_and_records() {
    let db = PgCluster::shared().database("no_telegram").await;
    db.load_sample("data.sql").await;
    let mut daemon = Daemon::with_database("no-telegram", &db);
    daemon.plugins(&DETECTORS);

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    let warnings = finished
        .stderr
        .lines()
        .filter(|line| line.contains("WARNING Telegram is not configured"))
        .count();
    assert_eq!(warnings, 1, "{}", finished.describe());
    assert_eq!(db.thermal_records(SOURCE).await.len(), 1);
}
