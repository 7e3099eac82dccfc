//! A throwaway PostgreSQL cluster for the integration tests, and one
//! database per test.
//!
//! [`PgCluster::start`] runs `initdb` and `pg_ctl` into a new folder under the
//! system temp folder. The server listens on a free port on 127.0.0.1 only,
//! keeps its Unix socket inside that folder, and has one superuser, `tpm`,
//! with a random password that host connections must send with
//! SCRAM-SHA-256. [`PgCluster::shared`] is one such cluster for the whole test
//! process, and [`PgCluster::database`] gives each test its own database with
//! the federation schema.
//!
//! initdb refuses to run as root, so a root test process runs the PostgreSQL
//! binaries as the `postgres` user through `runuser`.
//!
//! The binaries come from `/usr/lib/postgresql/15/bin`, or from the folder in
//! `TPM_TEST_PG_BIN`.

mod database;
mod server;

pub use database::{describe_pg_error, TestDb, ThermalRecord};

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio_postgres::Client;

use super::{patience, sample_path, PATIENCE_VAR};

/// Environment variable naming the folder with `initdb`, `pg_ctl` and
/// `postgres`.
pub const PG_BIN_VAR: &str = "TPM_TEST_PG_BIN";

/// Folder of the PostgreSQL binaries when `TPM_TEST_PG_BIN` is not set
/// (Debian's `postgresql-15` package).
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Superuser that owns every test database.
pub const SUPERUSER: &str = "tpm";

/// Address the server listens on. Tests never use another one.
pub const HOST: &str = "127.0.0.1";

/// Lines of the server log quoted in a failure message.
const LOG_TAIL_LINES: usize = 40;

/// A PostgreSQL cluster in its own folder, stopped and removed on drop.
///
/// A watchdog process also stops and removes it when the test process is
/// gone, because a cluster in a `static`, such as [`PgCluster::shared`], is
/// never dropped.
pub struct PgCluster {
    folder: PathBuf,
    bin: PathBuf,
    run_as_postgres: bool,
    password: String,
    port: u16,
    watchdog: Mutex<Option<Child>>,
}

impl PgCluster {
    /// Creates and starts a cluster of its own, for a test that stops,
    /// restarts or reconfigures the server.
    ///
    /// Panics with the failing command, its output and the server log when
    /// any step fails.
    pub fn start() -> PgCluster {
        let bin = server::pg_bin_folder();
        let run_as_postgres = server::running_as_root();
        let folder = server::create_cluster_folder(run_as_postgres);

        let mut cluster = PgCluster {
            folder,
            bin,
            run_as_postgres,
            password: server::random_password(),
            port: 0,
            watchdog: Mutex::new(None),
        };

        // From here on, Drop removes the folder if a later step panics, and
        // the watchdog removes it if the whole test process dies.
        cluster.spawn_watchdog();
        cluster.init();
        cluster.start_on_free_port();
        cluster
    }

    /// Returns the cluster shared by every test in this process, starting it
    /// on first use.
    ///
    /// Tests must not stop or reconfigure it: use [`PgCluster::start`] for
    /// that. Its watchdog removes it after the test process exits.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start)
    }

    /// Port on 127.0.0.1 that the server listens on. It stays the same across
    /// stops and [`PgCluster::start_again`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Password of the `tpm` superuser, random for each cluster.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Folder that contains the data folder, the socket and `server.log`.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Path of the server log.
    pub fn log_path(&self) -> PathBuf {
        self.folder.join("server.log")
    }

    /// Returns the last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// Connection URL of database `database` as the `tpm` superuser,
    /// password included.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@{HOST}:{}/{database}",
            self.password, self.port
        )
    }

    /// Creates a new database for one test, named from `test_name` and a
    /// counter, and loads `sample/schema.sql` into it.
    pub async fn database(&self, test_name: &str) -> TestDb {
        TestDb::create(self, test_name).await
    }

    /// Opens a connection to `database` as the superuser.
    pub async fn connect(&self, database: &str) -> Client {
        database::connect(self.port, &self.password, database, &self.log_path()).await
    }

    /// Stops the server the way a crash or `kill -9` would: no shutdown
    /// checkpoint, and clients see their connections drop.
    pub fn stop_immediate(&self) {
        self.stop("immediate");
    }

    /// Stops the server cleanly: open sessions are terminated first.
    pub fn stop_fast(&self) {
        self.stop("fast");
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn start_again(&self) {
        if let Err(failure) = self.pg_ctl_start() {
            panic!("could not start PostgreSQL again\n{failure}");
        }
    }

    /// Reports whether the server is running, according to `pg_ctl status`.
    pub fn is_running(&self) -> bool {
        let data = self.data_folder();
        let status = self.run_pg_tool("pg_ctl", |command| {
            command.arg("status").arg("-D").arg(&data);
        });
        status.is_ok()
    }

    /// Sets a server setting with `ALTER SYSTEM`, reloads the configuration,
    /// and returns once new sessions see the new value.
    ///
    /// A setting that only a restart applies, such as `max_connections`,
    /// restarts the server with [`PgCluster::stop_fast`] and
    /// [`PgCluster::start_again`], which ends every open session.
    pub async fn set_config(&self, name: &str, value: &str) {
        let statement = format!(
            "ALTER SYSTEM SET {} = {}",
            setting_name(name),
            quote_literal(value)
        );
        self.change_config(name, &statement).await;
    }

    /// Removes a setting made with [`PgCluster::set_config`] and reloads, so
    /// the server default applies again.
    pub async fn reset_config(&self, name: &str) {
        let statement = format!("ALTER SYSTEM RESET {}", setting_name(name));
        self.change_config(name, &statement).await;
    }

    async fn change_config(&self, name: &str, statement: &str) {
        let admin = self.connect("postgres").await;
        let loaded_before = config_load_time(&admin).await;

        if let Err(error) = admin.batch_execute(statement).await {
            panic!("{statement} failed: {}", describe_pg_error(&error));
        }
        if let Err(error) = admin.batch_execute("SELECT pg_reload_conf()").await {
            panic!("pg_reload_conf() failed: {}", describe_pg_error(&error));
        }

        // The reload is asynchronous. A new session inherits the time of the
        // postmaster's last reload, so a later time means that new sessions
        // get the new value.
        let deadline = Instant::now() + patience();
        loop {
            let probe = self.connect("postgres").await;
            if config_load_time(&probe).await > loaded_before {
                let pending = probe
                    .query_one(
                        "SELECT pending_restart FROM pg_settings WHERE name = $1",
                        &[&name],
                    )
                    .await;
                drop(probe);
                drop(admin);
                if matches!(pending, Ok(row) if row.get::<_, bool>(0)) {
                    self.stop_fast();
                    self.start_again();
                }
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server did not reload its configuration after {statement} \
                     within {:?}. Set {PATIENCE_VAR} to wait longer.\nserver log:\n{}",
                    patience(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn data_folder(&self) -> PathBuf {
        self.folder.join("data")
    }

    fn socket_folder(&self) -> PathBuf {
        self.folder.join("socket")
    }
}

async fn config_load_time(client: &Client) -> SystemTime {
    match client.query_one("SELECT pg_conf_load_time()", &[]).await {
        Ok(row) => row.get(0),
        Err(error) => panic!("pg_conf_load_time() failed: {}", describe_pg_error(&error)),
    }
}

/// Checks a setting name before it is put into `ALTER SYSTEM`, which takes no
/// parameters.
fn setting_name(name: &str) -> &str {
    let valid = !name.is_empty()
        && name.chars().all(|character| {
            character.is_ascii_alphanumeric() || character == '_' || character == '.'
        });
    if !valid {
        panic!("invalid setting name {name:?}: use letters, digits, '_' and '.' only");
    }
    name
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(error) => format!("(could not read {}: {error})", path.display()),
    }
}
