//! The database going away: restarted between cycles, down at start, and
//! unreachable in a `--once` run. The daemon keeps running, says so once,
//! and the next cycle after the database returns succeeds.

use crate::support::daemon::DETECTORS;
use crate::support::{Daemon, PgCluster};

#[tokio::test]
async fn restarted_database_next_cycle_succeeds() {
    let cluster = PgCluster::start();
    let db = cluster.database("restart").await;
    db.load_sample("data.sql").await;
    let mut daemon = Daemon::with_database("restart", &db);
    daemon.plugins(&DETECTORS);
    let mut running = daemon.spawn(&["--interval", "1"]);

    running.wait_for_lines(&["INFO basin cycle"], 1).await;
    cluster.stop_immediate();
    cluster.start_again();
    let before = running.count_lines(&["INFO basin cycle"]);
    running
        .wait_for_lines(&["INFO basin cycle"], before + 1)
        .await;

    running.signal(libc::SIGTERM);
    let finished = running.wait_exit().await;
    finished.assert_code(0);
    assert!(
        finished.stderr.contains("tpm-autonomic stopped"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn database_down_at_start_is_logged_once() {
    let cluster = PgCluster::start();
    let db = cluster.database("down_at_start").await;
    db.load_sample("data.sql").await;
    cluster.stop_fast();
    let mut daemon = Daemon::with_database("down-at-start", &db);
    daemon.plugins(&["dlq-depth"]);
    let mut running = daemon.spawn(&["--interval", "0.2"]);

    running
        .wait_for_lines(&["ERROR database unreachable"], 1)
        .await;
    // Several more cycles fail without another line each.
    running.wait_for_lines(&["INFO plugin loaded"], 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        running.count_lines(&["database unreachable"]),
        1,
        "{}",
        running.stderr()
    );

    cluster.start_again();
    running
        .wait_for_lines(&["INFO database reachable again"], 1)
        .await;
    running.wait_for_lines(&["INFO basin cycle"], 1).await;

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

#[tokio::test]
async fn once_with_database_down_exits_three() {
    let cluster = PgCluster::start();
    let db = cluster.database("once_down").await;
    cluster.stop_fast();
    let mut daemon = Daemon::with_database("once-down", &db);
    daemon.plugins(&["dlq-depth"]);

    let finished = daemon.run_once(&["--format", "json"]).await;

    finished.assert_code(3);
    let report = finished.report();
    assert!(report["report"]["database_error"].is_string(), "{report}");
    assert_eq!(finished.plugin("dlq-depth")["run"]["status"], "not-run");
    assert!(
        !finished.stderr.contains(db.password()),
        "the password leaked\n{}",
        finished.describe()
    );
}
