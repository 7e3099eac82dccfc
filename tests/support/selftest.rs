//! Tests of the harness itself and of the sample data it loads, so a broken
//! harness fails here and not as a puzzling daemon test.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::markdown;
use super::postgres::{PgCluster, TestDb};
use super::telegram::{FakeTelegram, Reply, DEFAULT_TOKEN, MAX_MESSAGE_LENGTH};

// === PostgreSQL ===

#[tokio::test]
async fn shared_cluster_gives_separate_databases() {
    let cluster = PgCluster::shared();
    let first = cluster.database("selftest::separate first").await;
    let second = cluster.database("selftest::separate second").await;

    first
        .execute("INSERT INTO council_votes (audit_hash, confidence) VALUES ('a1', 0.5)")
        .await;

    assert_ne!(first.name(), second.name());
    assert!(
        first.name().starts_with("t_selftest_separate_first_"),
        "{}",
        first.name()
    );
    assert_eq!(
        first.query_i64("SELECT count(*) FROM council_votes").await,
        1
    );
    assert_eq!(
        second.query_i64("SELECT count(*) FROM council_votes").await,
        0
    );
}

#[tokio::test]
async fn database_has_federation_schema() {
    let db = PgCluster::shared().database("selftest::schema").await;

    let tables = db
        .query_i64(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN \
             ('council_votes', 'jr_work_queue', 'duyuktv_tickets', 'thermal_memory_archive')",
        )
        .await;
    let confidence_type = db
        .query_text(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'council_votes' AND column_name = 'confidence'",
        )
        .await;
    let jr_updated_type = db
        .query_text(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'jr_work_queue' AND column_name = 'updated_at'",
        )
        .await;

    assert_eq!(tables, 4);
    assert_eq!(confidence_type.as_deref(), Some("numeric"));
    assert_eq!(
        jr_updated_type.as_deref(),
        Some("timestamp without time zone")
    );
}

#[tokio::test]
async fn schema_loads_twice_without_error() {
    let db = PgCluster::shared().database("selftest::schema twice").await;

    db.load_sample("schema.sql").await;

    assert_eq!(
        db.query_i64("SELECT count(*) FROM thermal_memory_archive")
            .await,
        0
    );
}

#[tokio::test]
async fn url_and_libpq_env_reach_database() {
    let db = PgCluster::shared().database("selftest::url").await;
    let url = db.url();
    let env = db.libpq_env();

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the URL of a test database must connect");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT current_database(), current_user", &[])
        .await
        .unwrap();

    assert_eq!(row.get::<_, String>(0), db.name());
    assert_eq!(row.get::<_, String>(1), "tpm");
    assert!(url.starts_with("postgresql://tpm:"), "{url}");
    assert!(url.contains(&format!("@127.0.0.1:{}/", db.port())), "{url}");
    assert!(url.contains(db.password()));
    assert!(env.contains(&("PGPASSWORD", db.password().to_string())));
    assert!(env.contains(&("PGDATABASE", db.name().to_string())));
    assert!(!format!("{db:?}").contains(db.password()), "{db:?}");
}

#[tokio::test]
async fn wrong_password_is_rejected() {
    let db = PgCluster::shared()
        .database("selftest::wrong password")
        .await;
    let url = db.url().replace(db.password(), "not-the-password");

    let error = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(_) => panic!("a wrong password must not connect"),
        Err(error) => error,
    };

    let code = error
        .as_db_error()
        .map(|db_error| db_error.code().code().to_string());
    assert_eq!(code.as_deref(), Some("28P01"), "{error:?}");
}

#[tokio::test]
async fn sample_data_trips_every_signal() {
    let db = PgCluster::shared().database("selftest::sample data").await;
    db.load_sample("data.sql").await;

    assert_signals(
        &db,
        Signals {
            low_votes: 3,
            failed_48h: 7,
            finished_24h: 13,
            failed_24h: 4,
            stale: 4,
        },
    )
    .await;
    assert_eq!(
        count(&db, "jr_work_queue WHERE status = 'pending'").await,
        85
    );
    assert_eq!(
        count(&db, "duyuktv_tickets WHERE status = 'open'").await,
        144
    );
    for table in [
        "council_votes",
        "jr_work_queue",
        "duyuktv_tickets",
        "thermal_memory_archive",
    ] {
        assert_eq!(count(&db, table).await, 1000, "rows in {table}");
    }
    assert_eq!(
        count(&db, "council_votes WHERE confidence IS NULL").await,
        1
    );
    assert_eq!(count(&db, "jr_work_queue WHERE title IS NULL").await, 1);
    assert_eq!(count(&db, "duyuktv_tickets WHERE title IS NULL").await, 1);
    assert_eq!(
        count(
            &db,
            "duyuktv_tickets WHERE status = 'in_progress' AND updated_at IS NULL"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn clean_sample_trips_no_signal() {
    let db = PgCluster::shared().database("selftest::clean data").await;
    db.load_sample("clean.sql").await;

    assert_signals(
        &db,
        Signals {
            low_votes: 0,
            failed_48h: 2,
            finished_24h: 11,
            failed_24h: 1,
            stale: 0,
        },
    )
    .await;
    assert_eq!(
        count(&db, "jr_work_queue WHERE status = 'pending'").await,
        30
    );
    assert_eq!(
        count(&db, "duyuktv_tickets WHERE status = 'open'").await,
        76
    );
}

#[tokio::test]
async fn sample_data_refuses_second_load() {
    let db = PgCluster::shared().database("selftest::second load").await;
    db.load_sample("clean.sql").await;
    let sql = std::fs::read_to_string(super::sample_path("data.sql")).unwrap();

    let client = db.client().await;
    let error = client
        .batch_execute(&sql)
        .await
        .expect_err("a second load must fail");

    let message = super::postgres::describe_pg_error(&error);
    assert!(
        message.contains("sample data needs empty federation tables"),
        "{message}"
    );
    assert_eq!(count(&db, "council_votes").await, 500);
}

#[tokio::test]
async fn thermal_records_filter_by_source() {
    let db = PgCluster::shared().database("selftest::thermal").await;
    db.load_sample("clean.sql").await;
    db.execute(
        "INSERT INTO thermal_memory_archive (original_content, temperature_score, memory_hash, metadata) \
         VALUES ('probe', 75, encode(sha256('probe'), 'hex'), '{\"source\": \"tpm-autonomic-basin-detect\"}')",
    )
    .await;

    let records = db.thermal_records("tpm-autonomic-basin-detect").await;

    assert_eq!(records.len(), 1);
    assert_eq!(records[0].original_content, "probe");
    assert_eq!(records[0].temperature_score, Some(75.0));
    assert_eq!(records[0].sacred_pattern, Some(false));
    assert_eq!(records[0].memory_hash.len(), 64);
    assert_eq!(
        records[0].metadata,
        Some(json!({ "source": "tpm-autonomic-basin-detect" }))
    );
    assert!(records[0].created_at.is_some());
}

#[tokio::test]
async fn terminated_sessions_see_an_error() {
    let db = PgCluster::shared().database("selftest::terminate").await;
    let victim = db.client().await;

    let ended = db.terminate_sessions().await;
    let result = victim.query_one("SELECT 1", &[]).await;

    assert_eq!(ended, 1);
    assert!(result.is_err());
}

#[tokio::test]
async fn own_cluster_stops_and_starts_again() {
    let cluster = PgCluster::start();
    let folder = cluster.folder().to_path_buf();
    let port = cluster.port();
    let db = cluster.database("selftest::restart").await;
    db.execute("INSERT INTO jr_work_queue (task_id, status) VALUES ('jr-restart', 'pending')")
        .await;
    let listen = db.query_text("SHOW listen_addresses").await;
    let socket = db
        .query_text("SHOW unix_socket_directories")
        .await
        .unwrap_or_default();
    let client = db.client().await;

    cluster.stop_immediate();
    let while_stopped = client.query_one("SELECT 1", &[]).await;
    let running_while_stopped = cluster.is_running();
    cluster.start_again();

    assert_eq!(listen.as_deref(), Some("127.0.0.1"));
    assert!(
        socket.starts_with(&folder.display().to_string()),
        "{socket}"
    );
    assert!(while_stopped.is_err());
    assert!(!running_while_stopped);
    assert!(cluster.is_running());
    assert_eq!(cluster.port(), port);
    assert_eq!(
        count(&db, "jr_work_queue WHERE task_id = 'jr-restart'").await,
        1
    );

    cluster.stop_fast();
    cluster.start_again();
    assert_eq!(count(&db, "jr_work_queue").await, 1);

    drop(db);
    drop(cluster);
    assert!(!folder.exists(), "{} was not removed", folder.display());
}

#[tokio::test]
async fn set_config_reaches_new_sessions() {
    let cluster = PgCluster::start();
    let db = cluster.database("selftest::set config").await;

    cluster.set_config("idle_session_timeout", "400ms").await;
    let changed = db.query_text("SHOW idle_session_timeout").await;
    let idle = db.client().await;
    let alive = idle.query_one("SELECT 1", &[]).await;
    super::wait_until("the idle session is closed by the server", || async {
        idle.is_closed()
    })
    .await;
    cluster.reset_config("idle_session_timeout").await;
    let reset = db.query_text("SHOW idle_session_timeout").await;
    cluster.set_config("max_connections", "150").await;
    let after_restart = db.query_text("SHOW max_connections").await;

    assert_eq!(changed.as_deref(), Some("400ms"));
    assert!(alive.is_ok());
    assert_eq!(reset.as_deref(), Some("0"));
    assert_eq!(after_restart.as_deref(), Some("150"));
}

#[tokio::test]
async fn failed_command_reports_output_and_log() {
    let cluster = PgCluster::start();

    // Starting a running server fails, because the data folder is in use.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| cluster.start_again()));

    let message = panic_text(outcome.expect_err("starting a running server must fail"));
    assert!(message.contains("command:"), "{message}");
    assert!(message.contains("pg_ctl"), "{message}");
    assert!(message.contains("status: exit status"), "{message}");
    assert!(message.contains("stderr:"), "{message}");
    assert!(message.contains("server log (last"), "{message}");
    assert!(
        !message.contains(cluster.password()),
        "the password leaked: {message}"
    );
    assert!(cluster.is_running());
}

struct Signals {
    low_votes: i64,
    failed_48h: i64,
    finished_24h: i64,
    failed_24h: i64,
    stale: i64,
}

/// Runs the basin detectors' conditions as plain SQL.
async fn assert_signals(db: &TestDb, expected: Signals) {
    let low_votes = count(
        db,
        "council_votes WHERE voted_at > now() - interval '24 hours' AND confidence < 0.7",
    )
    .await;
    let failed_48h = count(
        db,
        "jr_work_queue WHERE status = 'failed' AND updated_at > now() - interval '48 hours'",
    )
    .await;
    let finished_24h = count(
        db,
        "jr_work_queue WHERE status IN ('completed', 'failed') AND updated_at > now() - interval '24 hours'",
    )
    .await;
    let failed_24h = count(
        db,
        "jr_work_queue WHERE status = 'failed' AND updated_at > now() - interval '24 hours'",
    )
    .await;
    let stale = count(
        db,
        "duyuktv_tickets WHERE status = 'in_progress' AND updated_at < now() - interval '7 days'",
    )
    .await;

    assert_eq!(
        low_votes, expected.low_votes,
        "council votes below 0.7 in 24 h"
    );
    assert_eq!(failed_48h, expected.failed_48h, "failed Jr tasks in 48 h");
    assert_eq!(
        finished_24h, expected.finished_24h,
        "finished Jr tasks in 24 h"
    );
    assert_eq!(failed_24h, expected.failed_24h, "failed Jr tasks in 24 h");
    assert_eq!(stale, expected.stale, "stale in-progress tickets");
}

async fn count(db: &TestDb, from: &str) -> i64 {
    db.query_i64(&format!("SELECT count(*) FROM {from}")).await
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else {
        String::new()
    }
}

// === Fake Telegram ===

/// Sends one HTTP/1.1 request and returns the raw response, which is empty
/// when the server closed the connection without a response. Written by hand
/// so the harness tests need no HTTP client crate.
async fn send_raw(base_url: &str, http_method: &str, path: &str, body: &str) -> String {
    let address = base_url
        .strip_prefix("http://")
        .expect("base URL starts with http://");
    let mut stream = TcpStream::connect(address)
        .await
        .expect("connect to the fake Telegram");
    let request = format!(
        "{http_method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // A reset connection ends the response like a close does.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8(response).expect("the response is UTF-8")
}

/// Sends one HTTP/1.1 request and returns the status and the JSON body.
async fn send(base_url: &str, http_method: &str, path: &str, body: &str) -> (u16, Value) {
    let response = send_raw(base_url, http_method, path, body).await;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("the response has no header and body: {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("status line");
    let value = serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("body is not JSON ({error}): {body}"));
    (status, value)
}

async fn send_message(fake: &FakeTelegram, body: Value) -> (u16, Value) {
    let path = format!("/bot{}/sendMessage", fake.token());
    send(fake.base_url(), "POST", &path, &body.to_string()).await
}

fn description(value: &Value) -> &str {
    value["description"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn fake_telegram_accepts_valid_message() {
    let fake = FakeTelegram::start().await;
    let text = format!(
        "*Basin signals:* {}",
        markdown::escape("build-7 (retry) [v2.1]_final!")
    );

    let (status, reply) = send_message(
        &fake,
        json!({ "chat_id": 4242, "text": text, "parse_mode": "MarkdownV2" }),
    )
    .await;
    let messages = fake.wait_for_messages(1).await;

    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ok"], json!(true));
    assert_eq!(reply["result"]["message_id"], json!(1));
    assert_eq!(reply["result"]["chat"]["id"], json!(4242));
    assert_eq!(
        reply["result"]["text"],
        json!("Basin signals: build-7 (retry) [v2.1]_final!")
    );
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].token, DEFAULT_TOKEN);
    assert_eq!(messages[0].chat_id.as_deref(), Some("4242"));
    assert_eq!(messages[0].text.as_deref(), Some(text.as_str()));
    assert_eq!(messages[0].parse_mode.as_deref(), Some("MarkdownV2"));
    assert_eq!(messages[0].status, Some(200));
    fake.shutdown();
}

#[tokio::test]
async fn fake_telegram_rejects_unescaped_markdown() {
    let fake = FakeTelegram::start().await;

    let (status, reply) = send_message(
        &fake,
        json!({ "chat_id": "4242", "text": "Stale: build-7 (retry)", "parse_mode": "MarkdownV2" }),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(reply["ok"], json!(false));
    assert_eq!(reply["error_code"], json!(400));
    assert!(
        description(&reply).starts_with("Bad Request: can't parse entities: "),
        "{reply}"
    );
    assert!(
        description(&reply).contains("'-' at byte offset 12"),
        "{reply}"
    );
    assert_eq!(fake.requests()[0].status, Some(400));
}

#[tokio::test]
async fn fake_telegram_accepts_plain_text_unchecked() {
    let fake = FakeTelegram::start().await;

    let (status, _) = send_message(&fake, json!({ "chat_id": 1, "text": "a-b (c) [d]." })).await;

    assert_eq!(status, 200);
}

#[tokio::test]
async fn fake_telegram_limits_length_in_utf16() {
    let fake = FakeTelegram::start().await;
    let longest = "a".repeat(MAX_MESSAGE_LENGTH);
    let too_long = "a".repeat(MAX_MESSAGE_LENGTH + 1);
    // Each emoji is two UTF-16 code units.
    let emoji_longest = "🔥".repeat(MAX_MESSAGE_LENGTH / 2);
    let emoji_too_long = "🔥".repeat(MAX_MESSAGE_LENGTH / 2 + 1);

    let mut statuses = Vec::new();
    for text in [&longest, &too_long, &emoji_longest, &emoji_too_long] {
        let (status, reply) = send_message(&fake, json!({ "chat_id": 1, "text": text })).await;
        statuses.push((status, description(&reply).to_string()));
    }

    assert_eq!(statuses[0].0, 200);
    assert_eq!(
        statuses[1],
        (400, "Bad Request: message is too long".to_string())
    );
    assert_eq!(statuses[2].0, 200);
    assert_eq!(
        statuses[3],
        (400, "Bad Request: message is too long".to_string())
    );
}

#[tokio::test]
async fn fake_telegram_rejects_wrong_token() {
    let fake = FakeTelegram::start_with_token("42:right").await;

    let (status, reply) = send(
        fake.base_url(),
        "POST",
        "/bot42:wrong/sendMessage",
        r#"{"chat_id":1,"text":"x"}"#,
    )
    .await;

    assert_eq!(status, 401);
    assert_eq!(
        reply,
        json!({ "ok": false, "error_code": 401, "description": "Unauthorized" })
    );
    assert_eq!(fake.requests()[0].token, "42:wrong");
}

#[tokio::test]
async fn fake_telegram_rejects_missing_fields() {
    let fake = FakeTelegram::start().await;

    let (no_chat, no_chat_reply) = send_message(&fake, json!({ "text": "x" })).await;
    let (no_text, no_text_reply) = send_message(&fake, json!({ "chat_id": 1 })).await;
    let (unknown_mode, unknown_mode_reply) = send_message(
        &fake,
        json!({ "chat_id": 1, "text": "x", "parse_mode": "Markdown3" }),
    )
    .await;

    assert_eq!(
        (no_chat, description(&no_chat_reply)),
        (400, "Bad Request: chat_id is empty")
    );
    assert_eq!(
        (no_text, description(&no_text_reply)),
        (400, "Bad Request: message text is empty")
    );
    assert_eq!(
        (unknown_mode, description(&unknown_mode_reply)),
        (400, "Bad Request: unsupported parse_mode")
    );
}

#[tokio::test]
async fn fake_telegram_routes_api_methods() {
    let fake = FakeTelegram::start().await;

    let (me_status, me) = send(
        fake.base_url(),
        "POST",
        &format!("/bot{}/getMe", fake.token()),
        "",
    )
    .await;
    let (unknown_status, _) = send(
        fake.base_url(),
        "POST",
        &format!("/bot{}/sendPigeon", fake.token()),
        "{}",
    )
    .await;
    let (bad_path_status, _) = send(fake.base_url(), "GET", "/", "").await;
    let (lower_case_status, _) = send(
        fake.base_url(),
        "POST",
        &format!("/bot{}/sendmessage", fake.token()),
        r#"{"chat_id":1,"text":"x"}"#,
    )
    .await;

    assert_eq!(me_status, 200);
    assert_eq!(me["result"]["id"], json!(123456789));
    assert_eq!(me["result"]["is_bot"], json!(true));
    assert_eq!(unknown_status, 404);
    assert_eq!(bad_path_status, 404);
    assert_eq!(lower_case_status, 200);
    assert_eq!(fake.requests().len(), 4);
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn fake_telegram_plays_queued_replies() {
    let fake = FakeTelegram::start().await;
    fake.push_replies([
        Reply::ServerError,
        Reply::TooManyRequests { retry_after: 3 },
        Reply::CantParseEntities("scripted".to_string()),
        Reply::MessageTooLong,
        Reply::Unauthorized,
    ]);

    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(send_message(&fake, json!({ "chat_id": 1, "text": "fine" })).await);
    }

    assert_eq!(
        (replies[0].0, description(&replies[0].1)),
        (500, "Internal Server Error")
    );
    assert_eq!(
        (replies[1].0, description(&replies[1].1)),
        (429, "Too Many Requests: retry after 3")
    );
    assert_eq!(replies[1].1["parameters"]["retry_after"], json!(3));
    assert_eq!(
        (replies[2].0, description(&replies[2].1)),
        (400, "Bad Request: can't parse entities: scripted")
    );
    assert_eq!(
        (replies[3].0, description(&replies[3].1)),
        (400, "Bad Request: message is too long")
    );
    assert_eq!(
        (replies[4].0, description(&replies[4].1)),
        (401, "Unauthorized")
    );
    assert_eq!(replies[5].0, 200);
    assert_eq!(replies[5].1["result"]["message_id"], json!(1));
}

#[tokio::test]
async fn fake_telegram_default_reply_applies_after_queue() {
    let fake = FakeTelegram::start().await;
    fake.set_default_reply(Reply::ServerError);
    fake.push_reply(Reply::Ok);

    let (first, _) = send_message(&fake, json!({ "chat_id": 1, "text": "x" })).await;
    let (second, _) = send_message(&fake, json!({ "chat_id": 1, "text": "x" })).await;

    assert_eq!(first, 200);
    assert_eq!(second, 500);
}

#[tokio::test]
async fn fake_telegram_validation_can_be_turned_off() {
    let fake = FakeTelegram::start().await;
    fake.set_validation(false);

    let (status, _) = send_message(
        &fake,
        json!({ "chat_id": 1, "text": "a-b", "parse_mode": "MarkdownV2" }),
    )
    .await;

    assert_eq!(status, 200);
}

#[tokio::test]
async fn hanging_reply_closes_on_shutdown() {
    let fake = FakeTelegram::start().await;
    fake.push_reply(Reply::Hang);
    let base_url = fake.base_url().to_string();
    let path = format!("/bot{}/sendMessage", fake.token());

    let pending = tokio::spawn(async move {
        send_raw(&base_url, "POST", &path, r#"{"chat_id":1,"text":"x"}"#).await
    });
    let requests = fake.wait_for_requests(1).await;
    let still_waiting = !pending.is_finished();
    fake.shutdown();
    let response = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the connection must close when the fake shuts down")
        .unwrap();

    assert_eq!(requests[0].status, None);
    assert!(still_waiting);
    assert!(
        response.is_empty(),
        "a hanging request got a response: {response}"
    );
}

#[tokio::test]
async fn handler_panic_reaches_test() {
    let fake = FakeTelegram::start().await;
    fake.push_reply(Reply::Panic("scripted handler failure".to_string()));
    let path = format!("/bot{}/sendMessage", fake.token());

    let response = send_raw(
        fake.base_url(),
        "POST",
        &path,
        r#"{"chat_id":1,"text":"x"}"#,
    )
    .await;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| fake.shutdown()));

    let message = panic_text(outcome.expect_err("the handler's panic must reach the test"));
    assert!(
        response.is_empty(),
        "a panicking handler sent a response: {response}"
    );
    assert!(message.contains("scripted handler failure"), "{message}");
}
