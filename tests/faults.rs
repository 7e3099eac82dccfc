//! Alerts arrive exactly once, only when they matter, through every fault:
//! Telegram failing, slow or strict; the database stopping, hanging or
//! closing idle sessions; the daemon restarting; two daemons sharing one
//! database.

use std::time::{Duration, Instant};

use crate::support::daemon::DETECTORS;
use crate::support::{Daemon, FakeTelegram, PgCluster, Reply, RunningDaemon, TestDb};

const SOURCE: &str = "tpm-autonomic-basin-detect";

/// Settings for fast live tests: short Telegram timeouts and few attempts.
const FAST: &str = "[telegram]\ntimeout = \"1s\"\n[alerts]\nmax_attempts = 2\n";

async fn sample_db(label: &str) -> TestDb {
    let db = PgCluster::shared().database(label).await;
    db.load_sample("data.sql").await;
    db
}

fn live(daemon: &Daemon, interval: &str) -> RunningDaemon {
    daemon.spawn(&["--interval", interval])
}

async fn stop(mut running: RunningDaemon) -> crate::support::Finished {
    running.signal(libc::SIGTERM);
    let finished = running.wait_exit().await;
    finished.assert_code(0);
    finished
}

fn accepted(telegram: &FakeTelegram) -> Vec<String> {
    telegram
        .messages()
        .into_iter()
        .filter(|request| request.status == Some(200))
        .map(|request| request.text.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn server_errors_are_retried() {
    let db = sample_db("telegram-500").await;
    let telegram = FakeTelegram::start().await;
    telegram.push_replies([Reply::ServerError, Reply::ServerError]);
    let mut daemon = Daemon::with_database("telegram-500", &db);
    daemon
        .plugins(&DETECTORS)
        .telegram(&telegram)
        .config("[alerts]\nmax_attempts = 3\n");

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    assert_eq!(
        telegram.messages().len(),
        3,
        "{}",
        telegram.describe_requests()
    );
    assert_eq!(accepted(&telegram).len(), 1);
    assert_eq!(
        finished
            .stderr
            .matches("Telegram delivery failed; retrying")
            .count(),
        2
    );
}

#[tokio::test]
async fn rate_limit_waits_retry_after() {
    let db = sample_db("telegram-429").await;
    let telegram = FakeTelegram::start().await;
    telegram.push_reply(Reply::TooManyRequests { retry_after: 2 });
    let mut daemon = Daemon::with_database("telegram-429", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    daemon.run_once(&[]).await.assert_code(0);

    let requests = telegram.messages();
    assert_eq!(requests.len(), 2, "{}", telegram.describe_requests());
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before retry_after"
    );
    assert_eq!(requests[1].status, Some(200));
}

#[tokio::test]
async fn rejected_markup_is_resent_plain() {
    let db = sample_db("telegram-entities").await;
    let telegram = FakeTelegram::start().await;
    telegram.push_reply(Reply::CantParseEntities("Character '-' is reserved".into()));
    let mut daemon = Daemon::with_database("telegram-entities", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    let requests = telegram.messages();
    assert_eq!(requests.len(), 2, "{}", telegram.describe_requests());
    assert_eq!(requests[0].parse_mode.as_deref(), Some("MarkdownV2"));
    assert_eq!(
        requests[1].parse_mode, None,
        "the resend must be plain text"
    );
    let plain = requests[1].text.as_deref().unwrap();
    assert!(plain.contains("build-7 (retry) [v2.1]_final!"), "{plain}");
    assert!(!plain.contains('\\'), "escapes must be removed: {plain}");
    assert!(
        finished.stderr.contains("resending it as plain text"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn too_long_answer_condenses_message() {
    let db = sample_db("telegram-too-long").await;
    let telegram = FakeTelegram::start().await;
    telegram.push_reply(Reply::MessageTooLong);
    let mut daemon = Daemon::with_database("telegram-too-long", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);

    daemon.run_once(&[]).await.assert_code(0);

    let texts = accepted(&telegram);
    assert_eq!(texts.len(), 1, "{}", telegram.describe_requests());
    assert!(
        texts[0].contains("full detail is in thermal memory"),
        "{}",
        texts[0]
    );
}

#[tokio::test]
async fn long_alert_is_split_into_numbered_parts() {
    let db = sample_db("telegram-split").await;
    let title =
        "Reconcile the council ledger with the kanban board (retry) [v2.1]_final! ".repeat(6);
    let mut sql = String::new();
    for i in 0..50 {
        sql.push_str(&format!(
            "INSERT INTO duyuktv_tickets (title, status, updated_at) VALUES ('{title} #{i}', 'in_progress', now() - interval '60 days');"
        ));
    }
    db.execute(&sql).await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("telegram-split", &db);
    daemon
        .plugins(&DETECTORS)
        .telegram(&telegram)
        .config("[plugins.stale-kanban]\nmax-listed = 50\n");

    daemon.run_once(&[]).await.assert_code(0);

    let texts = accepted(&telegram);
    assert!(
        texts.len() >= 3,
        "expected several parts, got {}",
        texts.len()
    );
    for (index, text) in texts.iter().enumerate() {
        let units: usize = text.chars().map(char::len_utf16).sum();
        assert!(units <= 4096, "part {index} has {units} UTF-16 units");
        let prefix = format!("\\({}/{}\\)", index + 1, texts.len());
        assert!(
            text.starts_with(&prefix),
            "part {index} is not numbered: {}",
            &text[..40]
        );
    }
    let listed: usize = texts
        .iter()
        .map(|t| t.matches("Reconcile the council ledger").count())
        .sum();
    assert_eq!(listed, 50 * 6, "every ticket line must arrive, none cut");
}

#[tokio::test]
async fn undelivered_alert_is_retried_next_cycle() {
    let db = sample_db("telegram-outage").await;
    let telegram = FakeTelegram::start().await;
    telegram.set_default_reply(Reply::ServerError);
    let mut daemon = Daemon::with_database("telegram-outage", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram).config(FAST);
    let mut running = live(&daemon, "0.5");

    running
        .wait_for_lines(
            &["ERROR alert delivery failed; it is kept and retried next cycle"],
            1,
        )
        .await;
    running.wait_for_lines(&["INFO basin cycle"], 3).await;
    assert_eq!(
        running.count_lines(&["alert delivery failed; it is kept"]),
        1,
        "a continuing outage is logged once, not every cycle"
    );
    telegram.set_default_reply(Reply::Ok);
    running.wait_for_lines(&["INFO alert sent"], 1).await;
    let cycles = running.count_lines(&["INFO basin cycle"]);
    running
        .wait_for_lines(&["INFO basin cycle"], cycles + 3)
        .await;

    assert_eq!(
        accepted(&telegram).len(),
        1,
        "{}",
        telegram.describe_requests()
    );
    assert!(running.stderr().contains("Telegram delivery works again"));
    stop(running).await;
}

#[tokio::test]
async fn undelivered_alert_survives_restart() {
    let db = sample_db("telegram-restart").await;
    let telegram = FakeTelegram::start().await;
    telegram.set_default_reply(Reply::ServerError);
    let mut daemon = Daemon::with_database("telegram-restart", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram).config(FAST);

    let mut running = live(&daemon, "0.5");
    running
        .wait_for_lines(&["ERROR alert delivery failed"], 1)
        .await;
    stop(running).await;
    assert!(accepted(&telegram).is_empty());

    telegram.set_default_reply(Reply::Ok);
    let mut running = live(&daemon, "0.5");
    running.wait_for_lines(&["INFO alert sent"], 1).await;
    running.wait_for_lines(&["INFO basin cycle"], 3).await;
    stop(running).await;

    // And a third start finds nothing new to say.
    let mut running = live(&daemon, "0.5");
    running.wait_for_lines(&["INFO basin cycle"], 3).await;
    stop(running).await;
    assert_eq!(
        accepted(&telegram).len(),
        1,
        "{}",
        telegram.describe_requests()
    );
}

#[tokio::test]
async fn unchanged_basin_repeats_only_after_interval() {
    let db = sample_db("repeat").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("repeat", &db);
    daemon
        .plugins(&DETECTORS)
        .telegram(&telegram)
        .config("[alerts]\nrepeat_interval = \"3s\"\n");
    let mut running = live(&daemon, "0.5");

    running.wait_for_lines(&["INFO alert sent"], 1).await;
    running.wait_for_lines(&["INFO basin cycle"], 4).await;
    assert_eq!(
        accepted(&telegram).len(),
        1,
        "no repeat before the repeat interval"
    );
    running.wait_for_lines(&["INFO alert sent"], 2).await;
    let texts = accepted(&telegram);
    assert!(texts[1].contains("still present"), "{}", texts[1]);
    stop(running).await;
}

#[tokio::test]
async fn zero_repeat_alerts_every_cycle() {
    let db = sample_db("repeat-zero").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("repeat-zero", &db);
    daemon
        .plugins(&DETECTORS)
        .telegram(&telegram)
        .config("[alerts]\nrepeat_interval = 0\n");
    let mut running = live(&daemon, "0.3");
    running.wait_for_lines(&["INFO alert sent"], 3).await;
    stop(running).await;
}

#[tokio::test]
async fn worse_basin_alerts_and_clear_resolves_once() {
    let db = sample_db("worse-and-clear").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("worse-and-clear", &db);
    daemon.plugins(&["dlq-depth"]).telegram(&telegram);
    let mut running = live(&daemon, "0.4");
    running.wait_for_lines(&["INFO alert sent"], 1).await;

    db.execute(
        "INSERT INTO jr_work_queue (task_id, title, status, updated_at) VALUES \
         ('w1', 'worse one', 'failed', now()), ('w2', 'worse two', 'failed', now());",
    )
    .await;
    running.wait_for_lines(&["INFO alert sent"], 2).await;
    let texts = accepted(&telegram);
    assert!(texts[1].contains("⬆️ *dlq\\-depth*"), "{}", texts[1]);
    assert!(texts[1].contains("9 failed Jr tasks"), "{}", texts[1]);

    db.execute("UPDATE jr_work_queue SET status = 'completed' WHERE status = 'failed'")
        .await;
    running
        .wait_for_lines(&["INFO basin signals cleared"], 1)
        .await;
    running.wait_for_lines(&["INFO alert sent"], 3).await;
    let cycles = running.count_lines(&["INFO clean cycle"]);
    running
        .wait_for_lines(&["INFO clean cycle"], cycles + 3)
        .await;
    let texts = accepted(&telegram);
    assert_eq!(texts.len(), 3, "one resolved message, no more");
    assert!(texts[2].contains("resolved"), "{}", texts[2]);
    assert!(texts[2].contains("Cleared: dlq\\-depth"), "{}", texts[2]);
    stop(running).await;
}

#[tokio::test]
async fn failing_detector_is_blind_not_resolved() {
    let db = sample_db("blind-spot").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("blind-spot", &db);
    daemon.plugins(&["dlq-depth"]).telegram(&telegram);
    let mut running = live(&daemon, "0.4");
    running.wait_for_lines(&["INFO alert sent"], 1).await;

    // The detector's query now fails: the signal must not count as cleared.
    db.execute("ALTER TABLE jr_work_queue RENAME COLUMN status TO state")
        .await;
    running
        .wait_for_lines(&["ERROR detector keeps failing", "plugin=dlq-depth"], 1)
        .await;
    running.wait_for_lines(&["INFO alert sent"], 2).await;
    let failures = running.count_lines(&["WARNING detector failed"]);
    running
        .wait_for_lines(&["WARNING detector failed"], failures + 3)
        .await;
    let texts = accepted(&telegram);
    assert_eq!(texts.len(), 2, "one blind-spot report for many failures");
    assert!(
        texts[1].contains("failed 3 cycles in a row"),
        "{}",
        texts[1]
    );
    assert!(
        !texts.iter().any(|t| t.contains("resolved")),
        "a failing detector is not a cleared basin"
    );

    db.execute("ALTER TABLE jr_work_queue RENAME COLUMN state TO status")
        .await;
    running
        .wait_for_lines(&["INFO detector runs again"], 1)
        .await;
    running.wait_for_lines(&["INFO alert sent"], 3).await;
    let texts = accepted(&telegram);
    assert!(
        texts[2].contains("running again: dlq\\-depth"),
        "{}",
        texts[2]
    );
    stop(running).await;
}

#[tokio::test]
async fn two_daemons_speak_with_one_voice() {
    let db = sample_db("two-daemons").await;
    let telegram = FakeTelegram::start().await;
    let mut first = Daemon::with_database("daemon-a", &db);
    first.plugins(&DETECTORS).telegram(&telegram);
    let mut second = Daemon::with_database("daemon-b", &db);
    second.plugins(&DETECTORS).telegram(&telegram);

    let mut a = live(&first, "0.5");
    a.wait_for_lines(&["INFO leadership taken"], 1).await;
    let mut b = live(&second, "0.5");
    b.wait_for_lines(&["INFO standby"], 1).await;
    a.wait_for_lines(&["INFO alert sent"], 1).await;
    b.wait_for_lines(&["INFO standby"], 1).await;

    // The leader dies without a goodbye; the standby takes over within an
    // interval or two and does not repeat the leader's alert.
    a.signal(libc::SIGKILL);
    b.wait_for_lines(&["INFO leadership taken"], 1).await;
    let line = b
        .stderr()
        .lines()
        .find(|l| l.contains("leadership taken"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("active_signals=4"),
        "the standby must load the leader's state: {line}"
    );
    b.wait_for_lines(&["INFO basin cycle"], 3).await;
    assert_eq!(
        accepted(&telegram).len(),
        1,
        "{}",
        telegram.describe_requests()
    );

    // A new signal is alerted by the new leader, once.
    db.execute(
        "INSERT INTO jr_work_queue (task_id, title, status, updated_at) \
         SELECT 'x' || g, 'more', 'failed', now() FROM generate_series(1, 5) AS g",
    )
    .await;
    b.wait_for_lines(&["INFO alert sent"], 1).await;
    assert_eq!(accepted(&telegram).len(), 2);
    let _ = a.wait_exit().await;
    stop(b).await;
}

#[tokio::test]
async fn detection_survives_database_drop_mid_cycle() {
    let cluster = PgCluster::start();
    let db = cluster.database("mid-cycle").await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("mid-cycle", &db);
    daemon
        .plugins(&["dlq-depth", "slow-detector"])
        .telegram(&telegram)
        .config("[plugins.slow-detector]\nmillis = 3000\n[limits]\ndeadline = \"20s\"\n");
    let mut running = daemon.spawn(&["--interval", "1", "--verbose"]);

    // dlq-depth has its finding; slow-detector is still busy. The database
    // goes away before the cycle writes its thermal record.
    running
        .wait_for_lines(&["detector finished", "plugin=dlq-depth"], 1)
        .await;
    cluster.stop_immediate();
    running
        .wait_for_lines(
            &[
                "ERROR thermal record write failed",
                "kept_for_next_cycle=true",
            ],
            1,
        )
        .await;
    running.wait_for_lines(&["INFO alert sent"], 1).await;
    cluster.start_again();
    running
        .wait_for_lines(
            &[
                "INFO thermal record from an earlier cycle written",
                "inserted=true",
            ],
            1,
        )
        .await;
    running
        .wait_for_lines(&["INFO thermal record already present"], 1)
        .await;

    stop(running).await;
    assert_eq!(
        db.thermal_records(SOURCE).await.len(),
        1,
        "written exactly once"
    );
    assert_eq!(accepted(&telegram).len(), 1);
}

#[tokio::test]
async fn hanging_statement_is_cut_and_retried() {
    let db = sample_db("hanging").await;
    let mut daemon = Daemon::with_database("hanging-live", &db);
    daemon
        .plugins(&["dlq-depth"])
        .config("[database]\nstatement_timeout = \"1s\"\n");
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE thermal_memory_archive IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut running = daemon.spawn(&["--interval", "1"]);
    running
        .wait_for_lines(&["ERROR thermal record write failed"], 1)
        .await;
    let line = running
        .stderr()
        .lines()
        .find(|l| l.contains("thermal record write failed"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("timeout"),
        "the failure must say it timed out: {line}"
    );
    blocker.batch_execute("ROLLBACK").await.unwrap();
    running
        .wait_for_lines(&["INFO thermal record from an earlier cycle written"], 1)
        .await;
    stop(running).await;
    assert_eq!(db.thermal_records(SOURCE).await.len(), 1);
}

#[tokio::test]
async fn idle_session_timeout_does_not_break_cycles() {
    let cluster = PgCluster::start();
    let db = cluster.database("idle-timeout").await;
    db.load_sample("data.sql").await;
    cluster.set_config("idle_session_timeout", "500ms").await;
    let mut daemon = Daemon::with_database("idle-timeout", &db);
    daemon.plugins(&DETECTORS);
    let mut running = daemon.spawn(&["--interval", "1.5"]);

    running.wait_for_lines(&["INFO basin cycle"], 4).await;
    let log = stop(running).await.stderr;
    assert!(!log.contains("detector failed"), "{log}");
    assert!(!log.contains("database unreachable"), "{log}");
    assert_eq!(
        log.matches("leadership taken").count(),
        1,
        "leadership must not flap:\n{log}"
    );
}

#[tokio::test]
async fn sigterm_stops_within_ten_seconds() {
    let db = sample_db("sigterm").await;
    let mut daemon = Daemon::with_database("sigterm", &db);
    daemon
        .plugins(&["dlq-depth", "endless-loop"])
        .config("[limits]\ndeadline = \"60s\"\n");
    let mut running = daemon.spawn(&["--interval", "1", "--dry-run", "--verbose"]);
    running
        .wait_for_lines(&["detector finished", "plugin=dlq-depth"], 1)
        .await;

    let asked = Instant::now();
    running.signal(libc::SIGTERM);
    let finished = running.wait_exit().await;
    let took = asked.elapsed();
    finished.assert_code(0);
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    assert!(
        finished.stderr.contains("stop requested"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.log.contains("tpm-autonomic stopped"),
        "the log file must be flushed"
    );
}

#[tokio::test]
async fn secrets_never_reach_logs_or_report() {
    let cluster = PgCluster::start();
    let db = cluster.database("secrets").await;
    db.load_sample("data.sql").await;
    let token = "987654321:SECRETtokenValue_xyz";
    let password = db.password().to_string();
    let telegram = FakeTelegram::start_with_token(token).await;
    let mut outputs = Vec::new();

    // Telegram failures of every kind, one cycle each.
    for reply in [
        Reply::ServerError,
        Reply::TooManyRequests { retry_after: 1 },
        Reply::CantParseEntities("bad".into()),
        Reply::MessageTooLong,
        Reply::Unauthorized,
        Reply::Hang,
    ] {
        telegram.set_default_reply(reply);
        let mut daemon = Daemon::with_database("secrets-telegram", &db);
        daemon.plugins(&DETECTORS).telegram(&telegram).config(FAST);
        daemon.env("TELEGRAM_BOT_TOKEN", token);
        let finished = daemon.run_once(&["--verbose"]).await;
        outputs.push(format!(
            "{}{}{}",
            finished.stdout, finished.stderr, finished.log
        ));
    }

    // Telegram unreachable: nothing listens on its address any more.
    let base = telegram.base_url().to_string();
    telegram.shutdown();
    let mut daemon = Daemon::with_database("secrets-closed", &db);
    daemon.plugins(&["dlq-depth"]).config(FAST);
    daemon
        .env("TELEGRAM_API_BASE", &base)
        .env("TELEGRAM_BOT_TOKEN", token)
        .env("TELEGRAM_CHIEF_CHAT_ID", "1");
    let finished = daemon.run_once(&["--verbose", "--format", "json"]).await;
    outputs.push(format!(
        "{}{}{}",
        finished.stdout, finished.stderr, finished.log
    ));

    // A wrong password, a timed-out query, and the database down.
    let mut daemon = Daemon::new("secrets-wrong-password");
    daemon.plugins(&["dlq-depth"]);
    daemon.env(
        "TPM_DATABASE_URL",
        &format!("postgresql://tpm@127.0.0.1:{}/{}", db.port(), db.name()),
    );
    daemon.env("PGPASSWORD", &format!("{password}-wrong"));
    let finished = daemon.run_once(&["--verbose", "--format", "json"]).await;
    finished.assert_code(3);
    outputs.push(format!(
        "{}{}{}",
        finished.stdout, finished.stderr, finished.log
    ));

    let mut daemon = Daemon::with_database("secrets-timeout", &db);
    daemon.plugins(&["sql-runner"]).config(
        "[query]\nstatement_timeout = \"1s\"\n[plugins.sql-runner]\n\
         sql = \"SELECT count(*) FROM jr_work_queue a, jr_work_queue b, jr_work_queue c\"\n",
    );
    let finished = daemon.run_once(&["--verbose", "--format", "json"]).await;
    outputs.push(format!(
        "{}{}{}",
        finished.stdout, finished.stderr, finished.log
    ));

    cluster.stop_immediate();
    let mut daemon = Daemon::with_database("secrets-down", &db);
    daemon.plugins(&["dlq-depth"]);
    let finished = daemon.run_once(&["--verbose", "--format", "json"]).await;
    outputs.push(format!(
        "{}{}{}",
        finished.stdout, finished.stderr, finished.log
    ));

    for output in &outputs {
        assert!(
            !output.contains("SECRETtokenValue"),
            "the bot token leaked:\n{output}"
        );
        assert!(
            !output.contains(&password),
            "the database password leaked:\n{output}"
        );
    }
    let all = outputs.join("\n");
    for expected in [
        "HTTP 500",
        "429",
        "Unauthorized",
        "no answer within",
        "password authentication failed",
        "timed out",
    ] {
        assert!(
            all.contains(expected),
            "{expected:?} should appear among the failures"
        );
    }
}

#[tokio::test]
async fn alert_waits_until_telegram_is_configured() {
    let db = sample_db("telegram-later").await;
    let mut daemon = Daemon::with_database("telegram-later", &db);
    daemon.plugins(&DETECTORS);
    let mut running = live(&daemon, "0.5");
    running
        .wait_for_lines(&["WARNING alert not sent: Telegram is not configured"], 1)
        .await;
    running.wait_for_lines(&["INFO basin cycle"], 3).await;
    let finished = stop(running).await;
    assert_eq!(
        finished.stderr.matches("alert not sent").count(),
        1,
        "warned once, not every cycle"
    );

    // Configured at the next start: the basins already present are news.
    let telegram = FakeTelegram::start().await;
    daemon.telegram(&telegram);
    let mut running = live(&daemon, "0.5");
    running.wait_for_lines(&["INFO alert sent"], 1).await;
    stop(running).await;
    let texts = accepted(&telegram);
    assert_eq!(texts.len(), 1, "{}", telegram.describe_requests());
    assert!(texts[0].contains("🆕"), "{}", texts[0]);
}
