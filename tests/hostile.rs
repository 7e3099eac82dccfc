//! Hostile plugins: however a plugin is written, the host stays up, the
//! other detectors' findings and alert are intact, and the log and the
//! report say what happened in an operator's words.

use serde_json::Value;

use crate::support::daemon::{set_mode, DETECTORS};
use crate::support::scenario::{assert_alert_intact, run_beside_detectors};
use crate::support::{Daemon, FakeTelegram, Finished, PgCluster};

/// Checks that a plugin failed to run with `kind`, that the reason contains
/// each of `words`, and that the log's failure line carries the reason.
fn assert_run_failed(finished: &Finished, plugin: &str, kind: &str, words: &[&str]) -> String {
    let row = finished.plugin(plugin);
    assert_eq!(row["run"]["status"], "failed", "{plugin}: {row}");
    assert_eq!(row["run"]["kind"], kind, "{plugin}: {row}");
    let reason = row["run"]["reason"].as_str().unwrap().to_string();
    for word in words {
        assert!(
            reason.contains(word),
            "{plugin}: {word:?} missing from {reason:?}"
        );
    }
    let line = finished
        .stderr
        .lines()
        .find(|line| {
            line.contains("WARNING detector failed") && line.contains(&format!("plugin={plugin}"))
        })
        .unwrap_or_else(|| panic!("no failure line for {plugin}\n{}", finished.describe()));
    assert!(line.contains(&format!("kind={kind}")), "{line}");
    finished.assert_code(1);
    reason
}

/// Checks that a file failed to load with `kind` and a reason with `words`.
fn assert_load_failed(finished: &Finished, file: &str, kind: &str, words: &[&str]) -> String {
    let report = finished.report();
    let row = report["report"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["file"] == file)
        .cloned()
        .unwrap_or_else(|| panic!("no row for {file}\n{}", finished.describe()));
    assert_eq!(row["load"]["status"], "failed", "{file}: {row}");
    assert_eq!(row["load"]["kind"], kind, "{file}: {row}");
    let reason = row["load"]["reason"].as_str().unwrap().to_string();
    for word in words {
        assert!(
            reason.contains(word),
            "{file}: {word:?} missing from {reason:?}"
        );
    }
    assert!(
        finished
            .stderr
            .lines()
            .any(|line| line.contains("ERROR plugin failed to load") && line.contains(file)),
        "no load failure line for {file}\n{}",
        finished.describe()
    );
    finished.assert_code(1);
    reason
}

/// Runs one plugin alone with `config` on an empty federation.
async fn run_alone(label: &str, plugin: &str, config: &str) -> Finished {
    let db = PgCluster::shared().database(label).await;
    let mut daemon = Daemon::with_database(label, &db);
    daemon.plugins(&[plugin]).config(config);
    daemon.run_once(&["--format", "json", "--dry-run"]).await
}

fn assert_ran(finished: &Finished, plugin: &str) -> Value {
    let row = finished.plugin(plugin);
    assert_eq!(
        row["run"]["status"],
        "ok",
        "{plugin} must run\n{}",
        finished.describe()
    );
    finished.assert_code(0);
    row
}

#[tokio::test]
async fn memory_bomb_hits_memory_limit() {
    let (finished, _db) = run_beside_detectors("memory-bomb", &["memory-hog"], "").await;
    let reason = assert_run_failed(
        &finished,
        "memory-hog",
        "memory-limit",
        &["limits.memory", "64 MiB"],
    );
    assert!(
        reason.starts_with("linear memory limit reached"),
        "{reason}"
    );
}

#[tokio::test]
async fn memory_limit_pair() {
    let config = "[limits]\nmemory = \"32 MiB\"\n[plugins.memory-hog]\nmegabytes = 8\n";
    let under = run_alone("memory-under", "memory-hog", config).await;
    assert_eq!(
        assert_ran(&under, "memory-hog")["findings"][0]["metrics"]["megabytes"],
        8
    );
    assert!(
        under.plugin("memory-hog")["peak_memory_bytes"]
            .as_u64()
            .unwrap()
            >= 8 << 20
    );

    let config = "[limits]\nmemory = \"32 MiB\"\n[plugins.memory-hog]\nmegabytes = 40\n";
    let over = run_alone("memory-over", "memory-hog", config).await;
    assert_run_failed(
        &over,
        "memory-hog",
        "memory-limit",
        &["limits.memory", "32 MiB"],
    );
}

#[tokio::test]
async fn deep_recursion_overflows_stack() {
    let (finished, _db) = run_beside_detectors("deep-recursion", &["deep-recursion"], "").await;
    assert_run_failed(
        &finished,
        "deep-recursion",
        "trap",
        &["stack overflow", "limits.stack"],
    );
}

#[tokio::test]
async fn stack_limit_pair() {
    let under = run_alone(
        "stack-under",
        "deep-recursion",
        "[plugins.deep-recursion]\ndepth = 500\n",
    )
    .await;
    assert_ran(&under, "deep-recursion");

    let config = "[limits]\nstack = \"64 KiB\"\n[plugins.deep-recursion]\ndepth = 2000\n";
    let over = run_alone("stack-over", "deep-recursion", config).await;
    assert_run_failed(
        &over,
        "deep-recursion",
        "trap",
        &["stack overflow", "limits.stack"],
    );
    let default_stack = run_alone(
        "stack-default",
        "deep-recursion",
        "[plugins.deep-recursion]\ndepth = 2000\n",
    )
    .await;
    assert_ran(&default_stack, "deep-recursion");
}

#[tokio::test]
async fn deadline_pair() {
    let config = "[limits]\ndeadline = \"1s\"\n[plugins.slow-detector]\nmillis = 200\n";
    assert_ran(
        &run_alone("deadline-under", "slow-detector", config).await,
        "slow-detector",
    );

    let config = "[limits]\ndeadline = \"1s\"\n[plugins.slow-detector]\nmillis = 1500\n";
    let over = run_alone("deadline-over", "slow-detector", config).await;
    assert_run_failed(
        &over,
        "slow-detector",
        "deadline",
        &["limits.deadline", "1000 ms"],
    );
}

#[tokio::test]
async fn million_findings_are_refused() {
    let (finished, _db) = run_beside_detectors("million-findings", &["many-findings"], "").await;
    // A million findings do not fit in the default memory, so the guest
    // fails before it returns them.
    assert_run_failed(
        &finished,
        "many-findings",
        "memory-limit",
        &["limits.memory"],
    );
}

#[tokio::test]
async fn findings_limit_pair() {
    let under = run_alone(
        "findings-under",
        "many-findings",
        "[plugins.many-findings]\ncount = 64\n",
    )
    .await;
    assert_eq!(
        assert_ran(&under, "many-findings")["findings"]
            .as_array()
            .unwrap()
            .len(),
        64
    );

    let over = run_alone(
        "findings-over",
        "many-findings",
        "[plugins.many-findings]\ncount = 65\n",
    )
    .await;
    assert_run_failed(
        &over,
        "many-findings",
        "rejected-result",
        &["65 findings", "limits.findings"],
    );
}

#[tokio::test]
async fn huge_summary_is_refused() {
    let (finished, _db) = run_beside_detectors("huge-summary", &["huge-summary"], "").await;
    assert_run_failed(
        &finished,
        "huge-summary",
        "rejected-result",
        &["52428800 bytes", "limits.summary_size"],
    );
}

#[tokio::test]
async fn summary_limit_pair() {
    let under = run_alone(
        "summary-under",
        "huge-summary",
        "[plugins.huge-summary]\nbytes = 1000\n",
    )
    .await;
    assert_ran(&under, "huge-summary");

    let over = run_alone(
        "summary-over",
        "huge-summary",
        "[plugins.huge-summary]\nbytes = 1001\n",
    )
    .await;
    assert_run_failed(
        &over,
        "huge-summary",
        "rejected-result",
        &["1001 bytes", "limits.summary_size"],
    );
}

#[tokio::test]
async fn sleeping_query_is_denied() {
    let config = "[plugins.sql-runner]\nsql = \"SELECT pg_sleep(60)\"\n";
    let (finished, _db) = run_beside_detectors("pg-sleep", &["sql-runner"], config).await;
    let reason = assert_run_failed(
        &finished,
        "sql-runner",
        "detector-error",
        &["denied", "pg_sleep"],
    );
    assert!(reason.contains("never allowed"), "{reason}");
    assert!(
        finished
            .stderr
            .contains("WARNING query rejected by the guard"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn endless_cross_join_times_out() {
    let config = "[query]\nstatement_timeout = \"1s\"\n[plugins.sql-runner]\n\
                  sql = \"SELECT count(*) FROM jr_work_queue a, jr_work_queue b, jr_work_queue c\"\n";
    let started = std::time::Instant::now();
    let (finished, db) = run_beside_detectors("cross-join", &["sql-runner"], config).await;
    assert_run_failed(
        &finished,
        "sql-runner",
        "detector-error",
        &["timed out", "query.statement_timeout"],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The statement was cancelled on the server, not only abandoned.
    let running = db
        .query_i64("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%jr_work_queue a, jr_work_queue b%' AND pid <> pg_backend_pid()")
        .await;
    assert_eq!(running, 0, "the cross join is still running on the server");
}

#[tokio::test]
async fn forbidden_statements_are_denied() {
    let (finished, db) = run_beside_detectors("forbidden-sql", &["forbidden-sql"], "").await;
    let row = assert_ran_beside(&finished, "forbidden-sql");
    let findings = row["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 18, "{row}");
    for finding in findings {
        assert_eq!(
            finding["metrics"]["outcome"], "denied",
            "{} was not denied: {}",
            finding["summary"], finding["details"]
        );
    }
    let rows = db.query_i64("SELECT count(*) FROM jr_work_queue").await;
    assert_eq!(rows, 1000, "rows were inserted or deleted");
    let created = db
        .query_i64(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('fixture_created', 'fixture_copy')",
        )
        .await;
    assert_eq!(created, 0, "a table was created");
    let changed = db
        .query_i64("SELECT count(*) FROM jr_work_queue WHERE status = 'x' OR title = 'x'")
        .await;
    assert_eq!(changed, 0, "rows were changed");
}

fn assert_ran_beside(finished: &Finished, plugin: &str) -> Value {
    let row = finished.plugin(plugin);
    assert_eq!(
        row["run"]["status"],
        "ok",
        "{plugin} must run\n{}",
        finished.describe()
    );
    row
}

#[tokio::test]
async fn undeclared_table_is_denied_by_name() {
    let config = "[plugins.sql-runner]\nsql = \"SELECT count(*) FROM duyuktv_tickets\"\n";
    let (finished, _db) = run_beside_detectors("undeclared-table", &["sql-runner"], config).await;
    assert_run_failed(
        &finished,
        "sql-runner",
        "detector-error",
        &["denied", "duyuktv_tickets", "not declared"],
    );
}

#[tokio::test]
async fn system_catalog_is_denied() {
    let config = "[plugins.sql-runner]\nsql = \"SELECT rolname, rolpassword FROM pg_authid\"\n";
    let (finished, _db) = run_beside_detectors("pg-authid", &["sql-runner"], config).await;
    assert_run_failed(
        &finished,
        "sql-runner",
        "detector-error",
        &["denied", "pg_authid", "system catalog"],
    );
}

#[tokio::test]
async fn wasi_gives_no_files_env_or_network() {
    let marker = std::path::Path::new("/tmp/wasi-probe-was-here");
    let _ = std::fs::remove_file(marker);
    let (finished, _db) = run_beside_detectors("wasi-probe", &["wasi-probe"], "").await;
    let row = assert_ran_beside(&finished, "wasi-probe");
    let findings = row["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 8, "{row}");
    for finding in findings {
        assert_eq!(
            finding["metrics"]["outcome"], "denied",
            "{} was allowed: {}",
            finding["summary"], finding["details"]
        );
    }
    assert!(!marker.exists(), "the plugin created a file on the host");
}

#[tokio::test]
async fn files_that_are_not_components_are_refused() {
    let db = PgCluster::shared().database("not-components").await;
    db.load_sample("data.sql").await;
    let telegram = FakeTelegram::start().await;
    let mut daemon = Daemon::with_database("not-components", &db);
    daemon.plugins(&DETECTORS).telegram(&telegram);
    let plugins = daemon.plugins_dir();
    std::fs::write(plugins.join("random.wasm"), b"this is not webassembly").unwrap();
    // The smallest valid core module: magic and version 1.
    std::fs::write(plugins.join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(plugins.join("notes.txt"), b"ignored").unwrap();
    std::fs::write(plugins.join(".hidden.wasm"), b"ignored").unwrap();
    for file in [
        "random.wasm",
        "core-module.wasm",
        "notes.txt",
        ".hidden.wasm",
    ] {
        set_mode(&plugins.join(file), 0o644);
    }

    let finished = daemon.run_once(&["--format", "json"]).await;

    assert_alert_intact(&finished, &telegram);
    assert_load_failed(&finished, "random.wasm", "not-wasm", &["not WebAssembly"]);
    assert_load_failed(
        &finished,
        "core-module.wasm",
        "core-module",
        &["core WebAssembly module", "wasm32-wasip2"],
    );
    let files: Vec<String> = finished.report()["report"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["file"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f == "notes.txt" || f == ".hidden.wasm"),
        "{files:?}"
    );
}

#[tokio::test]
async fn component_of_another_world_is_refused() {
    let (finished, _db) = run_beside_detectors("other-world", &["other-world"], "").await;
    assert_load_failed(
        &finished,
        "other-world.wasm",
        "wrong-world",
        &["tpm:autonomic/detector@0.1.0", "not a detector"],
    );
}

#[tokio::test]
async fn other_contract_version_names_expected_version() {
    let (finished, _db) = run_beside_detectors("other-version", &["other-version"], "").await;
    assert_load_failed(
        &finished,
        "other-version.wasm",
        "contract-version",
        &[
            "tpm:autonomic@0.2.0",
            "this host implements tpm:autonomic@0.1.0",
        ],
    );
}

#[tokio::test]
async fn unknown_import_is_refused() {
    let (finished, _db) = run_beside_detectors("unknown-import", &["unknown-import"], "").await;
    assert_load_failed(
        &finished,
        "unknown-import.wasm",
        "unknown-import",
        &["tpm:autonomic/shell@0.1.0", "does not provide"],
    );
}

#[tokio::test]
async fn duplicate_plugin_names_keep_first() {
    let (finished, _db) =
        run_beside_detectors("duplicate-names", &["greeter-v1", "greeter-v2"], "").await;
    let reason = assert_load_failed(
        &finished,
        "greeter-v2.wasm",
        "duplicate-name",
        &["`greeter`", "greeter-v1.wasm"],
    );
    assert!(reason.contains("greeter-v2.wasm"), "{reason}");
    let greeter = finished.plugin("greeter");
    assert_eq!(greeter["version"], "1.0.0");
    assert_eq!(greeter["run"]["status"], "ok");
}

#[tokio::test]
async fn table_not_allowed_fails_conformance() {
    let config =
        "[query]\nallowed_tables = [\"jr_work_queue\", \"duyuktv_tickets\", \"council_votes\"]\n";
    let db = PgCluster::shared().database("table-not-allowed").await;
    let mut daemon = Daemon::with_database("table-not-allowed", &db);
    daemon
        .plugins(&["sql-runner", "dlq-depth"])
        .config("[query]\nallowed_tables = [\"jr_work_queue\"]\n");
    let finished = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    assert_load_failed(
        &finished,
        "sql-runner.wasm",
        "table-not-allowed",
        &["`council_votes`", "query.allowed_tables"],
    );
    assert_eq!(finished.plugin("dlq-depth")["run"]["status"], "ok");

    let mut daemon = Daemon::with_database("table-allowed", &db);
    daemon.plugins(&["sql-runner"]).config(config);
    assert_ran(
        &daemon.run_once(&["--format", "json", "--dry-run"]).await,
        "sql-runner",
    );
}

#[tokio::test]
async fn writable_plugins_folder_is_refused() {
    let db = PgCluster::shared().database("writable-folder").await;
    let mut daemon = Daemon::with_database("writable-folder", &db);
    daemon.plugins(&["dlq-depth"]);
    set_mode(&daemon.plugins_dir(), 0o777);

    let finished = daemon.run_once(&["--format", "json"]).await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("writable by group or others"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("chmod go-w"),
        "{}",
        finished.describe()
    );

    daemon.config("allow_writable_plugins = true\n");
    let allowed = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    assert_ran(&allowed, "dlq-depth");
}

#[tokio::test]
async fn writable_folder_stops_interval_start() {
    let db = PgCluster::shared().database("writable-folder-live").await;
    let mut daemon = Daemon::with_database("writable-folder-live", &db);
    daemon.plugins(&["dlq-depth"]);
    set_mode(&daemon.plugins_dir(), 0o777);

    let mut running = daemon.spawn(&["--interval", "1"]);
    let finished = running.wait_exit().await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("chmod go-w"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn missing_plugins_folder_names_the_fix() {
    let db = PgCluster::shared().database("missing-folder").await;
    let daemon = Daemon::with_database("missing-folder", &db);
    std::fs::remove_dir(daemon.plugins_dir()).unwrap();
    let finished = daemon.run_once(&[]).await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("not found"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("--plugins-dir"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn settings_for_unknown_plugin_are_reported() {
    let finished = run_alone(
        "unknown-section",
        "dlq-depth",
        "[plugins.dlq-detph]\nthreshold = 7\n",
    )
    .await;
    finished.assert_code(0);
    let line = finished
        .stderr
        .lines()
        .find(|line| line.contains("settings for a plugin that is not loaded"))
        .unwrap_or_else(|| panic!("no warning\n{}", finished.describe()));
    assert!(line.contains("plugin=dlq-detph"), "{line}");
}

#[tokio::test]
async fn writable_plugin_file_is_refused() {
    let db = PgCluster::shared().database("writable-file").await;
    let mut daemon = Daemon::with_database("writable-file", &db);
    daemon.plugins(&["dlq-depth", "work-state"]);
    set_mode(&daemon.plugins_dir().join("dlq-depth.wasm"), 0o666);

    let finished = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    assert_load_failed(
        &finished,
        "dlq-depth.wasm",
        "untrusted",
        &["writable by group or others", "mode 666"],
    );
    assert_eq!(finished.plugin("work-state")["run"]["status"], "ok");
}

#[tokio::test]
async fn instance_and_table_limits_pair() {
    let ok = run_alone("instances-under", "work-state", "").await;
    assert_ran(&ok, "work-state");

    // describe() runs under the same limits, so the plugin fails to load.
    let over = run_alone("instances-over", "work-state", "[limits]\ninstances = 1\n").await;
    assert_load_failed(
        &over,
        "work-state.wasm",
        "describe-failed",
        &["instance limit", "limits.instances"],
    );

    let over = run_alone(
        "tables-over",
        "work-state",
        "[limits]\ntable_elements = 1\n",
    )
    .await;
    assert_load_failed(
        &over,
        "work-state.wasm",
        "describe-failed",
        &["table limit", "limits.table_elements"],
    );
}

#[tokio::test]
async fn query_count_limit_pair() {
    let under = run_alone(
        "queries-under",
        "sql-runner",
        "[plugins.sql-runner]\nrepeat = 32\n",
    )
    .await;
    assert_eq!(assert_ran(&under, "sql-runner")["queries"], 32);

    let over = run_alone(
        "queries-over",
        "sql-runner",
        "[plugins.sql-runner]\nrepeat = 33\n",
    )
    .await;
    assert_run_failed(
        &over,
        "sql-runner",
        "detector-error",
        &["too large", "limits.queries"],
    );
}

#[tokio::test]
async fn row_limit_pair() {
    let config = |n: u32| {
        format!("[limits]\nrows = 10\n[plugins.sql-runner]\nsql = \"SELECT g FROM generate_series(1, {n}) AS g\"\n")
    };
    let under = run_alone("rows-under", "sql-runner", &config(10)).await;
    assert_eq!(
        assert_ran(&under, "sql-runner")["findings"][0]["metrics"]["rows"],
        10
    );

    let over = run_alone("rows-over", "sql-runner", &config(11)).await;
    assert_run_failed(
        &over,
        "sql-runner",
        "detector-error",
        &["too large", "limits.rows"],
    );
}

#[tokio::test]
async fn result_size_limit_pair() {
    let config = |n: u32| {
        format!(
            "[limits]\nresult_size = \"1 KiB\"\n[plugins.sql-runner]\n\
             sql = \"SELECT md5(g::text) FROM generate_series(1, {n}) AS g\"\n"
        )
    };
    let under = run_alone("bytes-under", "sql-runner", &config(20)).await;
    assert_ran(&under, "sql-runner");

    let over = run_alone("bytes-over", "sql-runner", &config(64)).await;
    assert_run_failed(
        &over,
        "sql-runner",
        "detector-error",
        &["too large", "limits.result_size"],
    );
}

#[tokio::test]
async fn log_flood_is_capped() {
    let finished = run_alone("log-flood", "chatty", "").await;
    assert_ran(&finished, "chatty");
    let lines = finished
        .stderr
        .lines()
        .filter(|line| line.contains("chatty line"))
        .count();
    assert_eq!(lines, 200, "limits.log_lines allows 200 lines per call");
    assert!(
        finished.stderr.contains("plugin log limit reached"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn memory_returns_after_breaches() {
    let db = PgCluster::shared().database("memory-baseline").await;
    let mut daemon = Daemon::with_database("memory-baseline", &db);
    daemon
        .plugins(&["memory-hog", "work-state"])
        .config("[limits]\nmemory = \"64 MiB\"\n");
    let mut running = daemon.spawn(&["--interval", "0.2", "--dry-run"]);

    running
        .wait_for_lines(&["WARNING incomplete cycle"], 3)
        .await;
    let early = running.rss_kib();
    running
        .wait_for_lines(&["WARNING incomplete cycle"], 15)
        .await;
    let late = running.rss_kib();
    assert!(
        late <= early + 16 * 1024,
        "resident memory grew from {early} KiB to {late} KiB over 12 cycles with a 64 MiB breach each"
    );
    let breaches = running.count_lines(&["detector failed", "kind=memory-limit"]);
    assert!(
        breaches >= 15,
        "every cycle must breach the limit, saw {breaches}"
    );
    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}
