//! Leadership among daemons that share a database.
//!
//! Several daemons may run against one database for availability; exactly
//! one of them, the leader, runs cycles and alerts. Leadership is a
//! PostgreSQL session-level advisory lock held on a connection of its own:
//! when the leader stops, crashes or loses that connection, the server
//! releases the lock and a standby takes it at its next cycle.
//!
//! The leader's session turns `idle_session_timeout` off for itself, so a
//! server that closes idle sessions does not end the leadership between
//! two cycles.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::db;

/// The leadership role of this daemon at the start of a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This daemon holds the lock; `acquired` is true when it just took it.
    Leader {
        /// True on the cycle that took the lock.
        acquired: bool,
    },
    /// Another daemon holds the lock.
    Standby,
    /// The database could not be reached to tell.
    Unknown(String),
}

/// Takes and keeps the leadership lock.
pub struct Leadership {
    pg: tokio_postgres::Config,
    lock_key: i64,
    client: Option<Client>,
    leader: bool,
}

/// Time allowed for a leadership statement.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Derives the advisory-lock key of a deployment from its name, so that
/// daemons of the same deployment contend for the same lock.
pub fn lock_key(deployment: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("tpm-autonomic leadership {deployment}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a digest has 32 bytes"))
}

impl Leadership {
    /// Creates the leadership of a deployment; nothing connects yet.
    pub fn new(pg: &tokio_postgres::Config, deployment: &str) -> Leadership {
        let mut pg = pg.clone();
        pg.application_name("tpm-autonomic leadership");
        Leadership {
            pg,
            lock_key: lock_key(deployment),
            client: None,
            leader: false,
        }
    }

    /// True while this daemon holds the lock, as of the last check.
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Checks the lock before a cycle: keeps it, takes it if it is free, or
    /// reports the standby role.
    pub async fn check(&mut self) -> Role {
        if self.leader {
            match self.ping().await {
                Ok(()) => return Role::Leader { acquired: false },
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        "leadership connection lost; the lock is released and will be taken again"
                    );
                    self.leader = false;
                    self.client = None;
                }
            }
        }

        if let Err(error) = self.connect().await {
            return Role::Unknown(error);
        }
        let client = self.client.as_ref().expect("connected above");
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&self.lock_key];
        let attempt = client.query_one("SELECT pg_try_advisory_lock($1)", &params);
        match tokio::time::timeout(STATEMENT_TIMEOUT, attempt).await {
            Ok(Ok(row)) => {
                if row.get::<_, bool>(0) {
                    self.leader = true;
                    Role::Leader { acquired: true }
                } else {
                    Role::Standby
                }
            }
            Ok(Err(error)) => {
                self.client = None;
                Role::Unknown(db::describe_error(&error))
            }
            Err(_) => {
                self.client = None;
                Role::Unknown("timed out taking the leadership lock".into())
            }
        }
    }

    async fn ping(&self) -> Result<(), String> {
        let Some(client) = &self.client else {
            return Err("no connection".into());
        };
        if client.is_closed() {
            return Err("the connection closed".into());
        }
        match tokio::time::timeout(STATEMENT_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(db::describe_error(&error)),
            Err(_) => Err("no answer within 10 s".into()),
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        if self
            .client
            .as_ref()
            .is_some_and(|client| !client.is_closed())
        {
            return Ok(());
        }
        let (client, connection) = self
            .pg
            .connect(NoTls)
            .await
            .map_err(|error| db::describe_error(&error))?;
        tokio::spawn(async move {
            // The connection ends when the server or the network goes away;
            // the next check notices and connects again.
            let _ = connection.await;
        });
        client
            .batch_execute("SET idle_session_timeout = 0")
            .await
            .map_err(|error| db::describe_error(&error))?;
        self.client = Some(client);
        Ok(())
    }

    /// Gives the lock up, for a clean shutdown; a standby takes it at once.
    pub async fn release(&mut self) {
        if let (true, Some(client)) = (self.leader, &self.client) {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&self.lock_key];
            let unlock = client.query_one("SELECT pg_advisory_unlock($1)", &params);
            let _ = tokio::time::timeout(Duration::from_secs(2), unlock).await;
        }
        self.leader = false;
        self.client = None;
    }
}
