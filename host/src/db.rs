//! Connections to the federation database.
//!
//! A bounded pool of connections is created without connecting; the first
//! cycle opens them. A dead connection (server restarted, idle session
//! closed by the server) is noticed when it is checked out and replaced, so
//! the daemon reconnects on the next cycle without special handling.
//! [`Health`] turns a run of failed checks into one error line, periodic
//! reminders and one recovery line.

use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;

/// Time the health check waits for an answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a caller waits for a free pooled connection before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled connection to the federation database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Creates the pool; no connection is opened until one is needed.
    pub fn new(config: &DatabaseConfig) -> Database {
        let manager = Manager::from_config(
            config.pg.clone(),
            NoTls,
            // `Fast` trusts a connection unless its socket has closed; a
            // connection that broke silently fails its first statement, and
            // the pool then drops it.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect_timeout = config.pg.get_connect_timeout().copied();
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CHECKOUT_TIMEOUT))
            .create_timeout(connect_timeout.map(|t| t + Duration::from_secs(1)))
            .build()
            .expect("a pool with a runtime and a positive size always builds");
        Database {
            pool,
            target: config.display.clone(),
        }
    }

    /// `user@host:port/dbname`, without the password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Checks out a connection; the error is one line for the log. A
    /// pooled connection that the server has closed in the meantime (a
    /// restart, `idle_session_timeout`) is dropped and another taken.
    pub async fn connection(&self) -> Result<Object, String> {
        for _ in 0..3 {
            let connection = self
                .pool
                .get()
                .await
                .map_err(|error| describe_pool_error(&error))?;
            if !connection.is_closed() {
                return Ok(connection);
            }
            discard(connection);
        }
        self.pool
            .get()
            .await
            .map_err(|error| describe_pool_error(&error))
    }

    /// Checks that the database answers a trivial statement. A connection
    /// that turns out to be closed is replaced once before the check fails.
    pub async fn check(&self) -> Result<(), String> {
        let mut last_error = String::new();
        for _ in 0..2 {
            let connection = self.connection().await?;
            let answer =
                tokio::time::timeout(CHECK_TIMEOUT, connection.simple_query("SELECT 1")).await;
            match answer {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => {
                    last_error = describe_error(&error);
                    let closed = error.is_closed();
                    discard(connection);
                    if !closed {
                        break;
                    }
                }
                Err(_) => {
                    discard(connection);
                    return Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()));
                }
            }
        }
        Err(last_error)
    }

    /// Opens connections until `count` are in the pool (at most its size),
    /// by checking out that many at once. Failures are left to the caller's
    /// next checkout, which reports them.
    pub async fn warm(&self, count: usize) {
        let count = count.min(self.pool.status().max_size);
        if self.pool.status().size >= count {
            return;
        }
        let checkouts = (0..count).map(|_| self.connection());
        let _held: Vec<_> = futures::future::join_all(checkouts).await;
    }

    /// Drops every idle connection, so the next checkout connects afresh.
    pub fn reset(&self) {
        self.pool.retain(|_, _| false);
    }
}

/// Removes a connection from the pool instead of returning it, for a
/// connection whose state is unknown.
pub fn discard(connection: Object) {
    drop(Object::take(connection));
}

/// Describes a database error in one line without any secret: the
/// connection parameters never appear in tokio-postgres's messages.
pub fn describe_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db_error) => {
            let code = db_error.code().code();
            let hint = match code {
                "28P01" | "28000" => "; check the database user and password (PGUSER, PGPASSWORD)",
                "3D000" => "; check the database name (PGDATABASE)",
                _ => "",
            };
            format!("{} ({code}){hint}", db_error.message())
        }
        None => crate::logging::error_chain(error),
    }
}

fn describe_pool_error(error: &PoolError) -> String {
    match error {
        PoolError::Backend(error) => describe_error(error),
        PoolError::Timeout(kind) => format!("timed out waiting for a connection ({kind:?})"),
        other => other.to_string(),
    }
}

/// Follows whether the database is reachable across cycles, so that a long
/// outage is logged once, then reminded about, then reported recovered.
#[derive(Debug, Default)]
pub struct Health {
    failing_since: Option<Instant>,
    failures: u64,
}

/// Change of health after a check, which decides what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// Reachable as before: nothing to log.
    StillUp,
    /// The first failure of a run: log an error.
    WentDown,
    /// Another failure: log a reminder with the count.
    StillDown {
        /// Failed checks in a row.
        failures: u64,
    },
    /// Another failure, not worth a line of its own.
    Quiet,
    /// Reachable after a run of failures.
    CameBack {
        /// Failed checks in the run.
        failures: u64,
        /// Time since the first failure.
        downtime: Duration,
    },
}

impl Health {
    /// Records a successful check.
    pub fn record_up(&mut self) -> HealthChange {
        match self.failing_since.take() {
            Some(since) => {
                let failures = std::mem::take(&mut self.failures);
                HealthChange::CameBack {
                    failures,
                    downtime: since.elapsed(),
                }
            }
            None => HealthChange::StillUp,
        }
    }

    /// Records a failed check. Reminders come after 10, 100, 1000… failures
    /// in a row, so a long outage costs a handful of lines.
    pub fn record_down(&mut self) -> HealthChange {
        self.failures += 1;
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            return HealthChange::WentDown;
        }
        let failures = self.failures;
        let is_power_of_ten = failures >= 10 && {
            let mut n = failures;
            while n % 10 == 0 {
                n /= 10;
            }
            n == 1
        };
        if is_power_of_ten {
            HealthChange::StillDown { failures }
        } else {
            HealthChange::Quiet
        }
    }

    /// True while the last check failed.
    pub fn is_down(&self) -> bool {
        self.failing_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_is_logged_once_then_at_powers_of_ten() {
        let mut health = Health::default();
        assert_eq!(health.record_up(), HealthChange::StillUp);
        assert_eq!(health.record_down(), HealthChange::WentDown);
        let mut reminders = Vec::new();
        for _ in 2..=1000 {
            if let HealthChange::StillDown { failures } = health.record_down() {
                reminders.push(failures);
            }
        }
        assert_eq!(reminders, vec![10, 100, 1000]);
        match health.record_up() {
            HealthChange::CameBack { failures, .. } => assert_eq!(failures, 1000),
            other => panic!("expected CameBack, got {other:?}"),
        }
        assert!(!health.is_down());
    }
}
