//! One test's database on a test cluster, with helpers to load sample data
//! and read results.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

use super::{log_tail, patience, sample_path, PgCluster, HOST, LOG_TAIL_LINES, SUPERUSER};

/// Maximum number of characters of a failed statement shown in a failure
/// message.
const MAX_SQL_SHOWN: usize = 2000;

/// One test's database, dropped when this value is dropped.
pub struct TestDb {
    name: String,
    port: u16,
    password: String,
    log_path: PathBuf,
}

impl TestDb {
    /// Creates a uniquely named database on `cluster` and loads
    /// `sample/schema.sql` into it.
    pub(super) async fn create(cluster: &PgCluster, test_name: &str) -> TestDb {
        let name = database_name(test_name);
        let admin = cluster.connect("postgres").await;
        let create = format!("CREATE DATABASE \"{name}\"");
        if let Err(error) = admin.batch_execute(&create).await {
            panic!(
                "{create} failed on port {}: {}\nserver log (last {LOG_TAIL_LINES} lines):\n{}",
                cluster.port(),
                describe_pg_error(&error),
                cluster.log_tail()
            );
        }

        let db = TestDb {
            name,
            port: cluster.port(),
            password: cluster.password().to_string(),
            log_path: cluster.log_path(),
        };
        db.execute_file(&sample_path("schema.sql")).await;
        db
    }

    /// Database name, such as `t_clean_cycle_sends_no_alert_3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection URL with user, password, host, port and database, in the
    /// form the daemon's `TPM_DATABASE_URL` accepts.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@{HOST}:{}/{}",
            self.password, self.port, self.name
        )
    }

    /// Password inside [`TestDb::url`], so a test can check that it never
    /// shows in logs, alerts or errors.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Server address, always 127.0.0.1.
    pub fn host(&self) -> &str {
        HOST
    }

    /// Server port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// User name, always `tpm`.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// Returns the same connection settings as libpq variables (`PGHOST`,
    /// `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`), for a daemon started
    /// as a child process.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", HOST.to_string()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", SUPERUSER.to_string()),
            ("PGDATABASE", self.name.clone()),
            ("PGPASSWORD", self.password.clone()),
        ]
    }

    /// Opens a new connection. Its connection task runs on the caller's
    /// tokio runtime.
    pub async fn client(&self) -> Client {
        connect(self.port, &self.password, &self.name, &self.log_path).await
    }

    /// Runs one or more SQL statements, panicking with the statement and the
    /// server's error when one fails.
    pub async fn execute(&self, sql: &str) {
        let client = self.client().await;
        if let Err(error) = client.batch_execute(sql).await {
            panic!(
                "SQL failed in database {}: {}\nstatement:\n{}",
                self.name,
                describe_pg_error(&error),
                shorten(sql, MAX_SQL_SHOWN)
            );
        }
    }

    /// Runs the SQL file at `path`.
    pub async fn execute_file(&self, path: &Path) {
        let sql = fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("could not read {}: {error}", path.display()));
        let client = self.client().await;
        if let Err(error) = client.batch_execute(&sql).await {
            panic!(
                "loading {} into database {} failed: {}",
                path.display(),
                self.name,
                describe_pg_error(&error)
            );
        }
    }

    /// Loads a file of `sample/`, such as `data.sql` (a federation with all
    /// four basin signals) or `clean.sql` (a healthy one).
    pub async fn load_sample(&self, file_name: &str) {
        self.execute_file(&sample_path(file_name)).await;
    }

    /// Runs a query that returns one row with one integer column
    /// (`smallint`, `integer` or `bigint`), such as `SELECT count(*) ...`.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let client = self.client().await;
        let row = match client.query_one(sql, &[]).await {
            Ok(row) => row,
            Err(error) => panic!("query failed: {}\nquery: {sql}", describe_pg_error(&error)),
        };
        let column_type = row.columns()[0].type_().clone();
        if column_type == Type::INT8 {
            row.get::<_, i64>(0)
        } else if column_type == Type::INT4 {
            i64::from(row.get::<_, i32>(0))
        } else if column_type == Type::INT2 {
            i64::from(row.get::<_, i16>(0))
        } else {
            panic!(
                "query_i64 expected an integer column but got {column_type}. \
                 Cast it with ::bigint.\nquery: {sql}"
            )
        }
    }

    /// Runs a query that returns at most one row with one column and returns
    /// that value as text, or None for SQL NULL or no row. Cast non-text
    /// columns with `::text`.
    pub async fn query_text(&self, sql: &str) -> Option<String> {
        let client = self.client().await;
        let row = match client.query_opt(sql, &[]).await {
            Ok(Some(row)) => row,
            Ok(None) => return None,
            Err(error) => panic!("query failed: {}\nquery: {sql}", describe_pg_error(&error)),
        };
        match row.try_get::<_, Option<String>>(0) {
            Ok(value) => value,
            Err(error) => panic!(
                "query_text expected a text column: {error}. Cast it with ::text.\nquery: {sql}"
            ),
        }
    }

    /// Returns the rows of `thermal_memory_archive` whose
    /// `metadata ->> 'source'` is `source`, oldest first.
    pub async fn thermal_records(&self, source: &str) -> Vec<ThermalRecord> {
        let client = self.client().await;
        let query = "SELECT id, original_content, temperature_score, memory_hash, sacred_pattern, \
                     metadata, created_at \
                     FROM thermal_memory_archive WHERE metadata ->> 'source' = $1 ORDER BY id";
        let rows = match client.query(query, &[&source]).await {
            Ok(rows) => rows,
            Err(error) => panic!(
                "reading thermal_memory_archive failed: {}",
                describe_pg_error(&error)
            ),
        };
        rows.iter()
            .map(|row| ThermalRecord {
                id: row.get(0),
                original_content: row.get(1),
                temperature_score: row.get(2),
                memory_hash: row.get(3),
                sacred_pattern: row.get(4),
                metadata: row.get(5),
                created_at: row.get(6),
            })
            .collect()
    }

    /// Terminates every other session on this database, as a database
    /// failover or a network cut would, and returns how many it ended.
    pub async fn terminate_sessions(&self) -> i64 {
        let client = self.client().await;
        let query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()";
        match client.query_one(query, &[&self.name]).await {
            Ok(row) => row.get(0),
            Err(error) => panic!("terminating sessions failed: {}", describe_pg_error(&error)),
        }
    }
}

impl fmt::Debug for TestDb {
    // The password stays out of test output.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TestDb")
            .field("name", &self.name)
            .field("host", &HOST)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the caller may be inside a runtime that must
        // not be blocked, so a short-lived thread with its own runtime drops
        // the database. A stopped cluster simply leaves it behind.
        let port = self.port;
        let password = self.password.clone();
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut config = tokio_postgres::Config::new();
                config
                    .host(HOST)
                    .port(port)
                    .user(SUPERUSER)
                    .password(password)
                    .dbname("postgres")
                    .connect_timeout(Duration::from_secs(5));
                let (client, connection) = config.connect(NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await.ok()
            })
        });
        let _ = dropper.join();
    }
}

/// One row of `thermal_memory_archive`.
#[derive(Debug, Clone)]
pub struct ThermalRecord {
    pub id: i64,
    pub original_content: String,
    pub temperature_score: Option<f64>,
    pub memory_hash: String,
    pub sacred_pattern: Option<bool>,
    pub metadata: Option<serde_json::Value>,
    pub created_at: Option<SystemTime>,
}

pub(super) async fn connect(port: u16, password: &str, database: &str, log_path: &Path) -> Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host(HOST)
        .port(port)
        .user(SUPERUSER)
        .password(password)
        .dbname(database)
        .connect_timeout(patience());
    match config.connect(NoTls).await {
        Ok((client, connection)) => {
            // The task ends with an error when the server goes away, which
            // stop and restart tests do on purpose.
            tokio::spawn(connection);
            client
        }
        Err(error) => panic!(
            "could not connect to database {database} as {SUPERUSER} on {HOST}:{port}: {}\n\
             server log (last {LOG_TAIL_LINES} lines):\n{}",
            describe_pg_error(&error),
            log_tail(log_path)
        ),
    }
}

/// Formats a tokio-postgres error with the server's message, detail, hint
/// and SQLSTATE, which its Display leaves out.
pub fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    let Some(db_error) = error.as_db_error() else {
        return match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        };
    };
    let mut text = format!(
        "{}: {} (SQLSTATE {})",
        db_error.severity(),
        db_error.message(),
        db_error.code().code()
    );
    if let Some(detail) = db_error.detail() {
        text.push_str(&format!("\ndetail: {detail}"));
    }
    if let Some(hint) = db_error.hint() {
        text.push_str(&format!("\nhint: {hint}"));
    }
    if let Some(location) = db_error.where_() {
        text.push_str(&format!("\nwhere: {location}"));
    }
    text
}

/// Builds a database name from a test name and a process-wide counter:
/// lower-case letters, digits and underscores, at most 63 bytes.
fn database_name(test_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);

    let mut sanitized = String::new();
    for character in test_name.chars() {
        let character = character.to_ascii_lowercase();
        if character.is_ascii_alphanumeric() {
            sanitized.push(character);
        } else if !sanitized.ends_with('_') {
            sanitized.push('_');
        }
    }
    let sanitized = sanitized.trim_matches('_');
    let stem: String = sanitized.chars().take(40).collect();
    format!("t_{stem}_{number}")
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let head: String = text.chars().take(max_chars).collect();
    format!("{head}… ({} characters in all)", text.chars().count())
}
