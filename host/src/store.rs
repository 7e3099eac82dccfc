//! Where the alert state lives between cycles, restarts and leaders.
//!
//! The state is kept in two places. The database table
//! `tpm_autonomic_state` is the copy every daemon of a deployment can read,
//! so a standby that takes over knows what the leader already sent. A file
//! in the state folder is the copy that survives a restart while the
//! database is down. Each save stamps the state with the time (and bumps
//! its generation); on loading, the copy saved last wins.
//!
//! The table is created when it is missing; an operator whose daemon role
//! may not create tables creates it by hand with [`CREATE_TABLE`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alert::state::AlertState;
use crate::db::{self, Database};

/// The table's definition, also given in the README for operators.
pub const CREATE_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS tpm_autonomic_state (
    name        text PRIMARY KEY,
    generation  bigint NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL
)";

/// Time allowed for one save or load in the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Picks the copy saved last; the generation breaks a tie.
fn newer(file: Option<AlertState>, table: Option<AlertState>) -> Option<AlertState> {
    match (file, table) {
        (Some(file), Some(table)) => {
            if (file.saved_at, file.generation) > (table.saved_at, table.generation) {
                Some(file)
            } else {
                Some(table)
            }
        }
        (file, table) => table.or(file),
    }
}

/// Saves and loads the alert state of one deployment.
#[derive(Debug, Clone)]
pub struct StateStore {
    /// Row name in the table, one per deployment sharing the database.
    name: String,
    /// Identity of the saving daemon for the `updated_by` column: host name
    /// and process id.
    owner: String,
    file: Option<PathBuf>,
    table_ready: bool,
}

impl StateStore {
    /// Creates a store for the deployment `name`, with its file in
    /// `state_dir` (none when the folder is not set).
    pub fn new(name: &str, state_dir: Option<&Path>) -> StateStore {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown-host".into());
        StateStore {
            name: name.to_string(),
            owner: format!("{host}:{}", std::process::id()),
            file: state_dir.map(|dir| dir.join(format!("{name}.json"))),
            table_ready: false,
        }
    }

    /// The state file, if there is one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Loads the newest copy: the database's or the file's. A copy that
    /// cannot be read is logged and skipped; with none, the state is empty.
    pub async fn load(&mut self, database: &Database) -> AlertState {
        let from_file = self.load_file();
        let from_database = match self.load_database(database).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(error = %error, "cannot load the alert state from the database");
                None
            }
        };
        newer(from_file, from_database).unwrap_or_default()
    }

    fn load_file(&self) -> Option<AlertState> {
        let path = self.file.as_ref()?;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(file = %path.display(), error = %error, "cannot read the state file");
                return None;
            }
        };
        match serde_json::from_str(&text) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(
                    file = %path.display(),
                    error = %error,
                    "the state file is not valid; starting from the database's copy or empty"
                );
                None
            }
        }
    }

    async fn load_database(&mut self, database: &Database) -> Result<Option<AlertState>, String> {
        self.ensure_table(database).await?;
        let connection = database.connection().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&self.name];
        let query = connection.query_opt(
            "SELECT state FROM tpm_autonomic_state WHERE name = $1",
            &params,
        );
        let row = tokio::time::timeout(DATABASE_TIMEOUT, query)
            .await
            .map_err(|_| "timed out loading the alert state".to_string())?
            .map_err(|error| db::describe_error(&error))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let value: serde_json::Value = row.get(0);
                serde_json::from_value(value)
                    .map(Some)
                    .map_err(|error| format!("the stored alert state is not valid: {error}"))
            }
        }
    }

    async fn ensure_table(&mut self, database: &Database) -> Result<(), String> {
        if self.table_ready {
            return Ok(());
        }
        let connection = database.connection().await?;
        let create = connection.batch_execute(CREATE_TABLE);
        match tokio::time::timeout(DATABASE_TIMEOUT, create).await {
            Ok(Ok(())) => {
                self.table_ready = true;
                Ok(())
            }
            Ok(Err(error)) => Err(format!(
                "cannot create table tpm_autonomic_state ({}); create it as shown in the README",
                db::describe_error(&error)
            )),
            Err(_) => Err("timed out creating table tpm_autonomic_state".into()),
        }
    }

    /// Saves the state to the file, then to the database when `database`
    /// is given. Failures are logged; the in-memory state stays the truth
    /// until the next save succeeds.
    pub async fn save(&mut self, state: &mut AlertState, database: Option<&Database>) -> bool {
        state.generation += 1;
        state.saved_at = Some(chrono::Utc::now());
        let mut saved = self.save_file(state);
        if let Some(database) = database {
            match self.save_database(database, state).await {
                Ok(()) => saved = true,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot save the alert state in the database");
                }
            }
        }
        saved
    }

    fn save_file(&self, state: &AlertState) -> bool {
        let Some(path) = &self.file else {
            return false;
        };
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let temporary = path.with_extension("json.tmp");
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&serde_json::to_vec(state).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        match write() {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(file = %path.display(), error = %error, "cannot write the state file");
                false
            }
        }
    }

    async fn save_database(
        &mut self,
        database: &Database,
        state: &AlertState,
    ) -> Result<(), String> {
        self.ensure_table(database).await?;
        let value = serde_json::to_value(state).map_err(|error| error.to_string())?;
        let generation = state.generation as i64;
        let connection = database.connection().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&self.name, &generation, &value, &self.owner];
        let upsert = connection.execute(
            "INSERT INTO tpm_autonomic_state (name, generation, state, updated_at, updated_by) \
             VALUES ($1, $2, $3, now(), $4) \
             ON CONFLICT (name) DO UPDATE SET generation = EXCLUDED.generation, \
               state = EXCLUDED.state, updated_at = now(), updated_by = EXCLUDED.updated_by",
            &params,
        );
        match tokio::time::timeout(DATABASE_TIMEOUT, upsert).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(db::describe_error(&error)),
            Err(_) => Err("timed out saving the alert state".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn state(generation: u64, minute: u32) -> AlertState {
        AlertState {
            generation,
            saved_at: Some(Utc.with_ymd_and_hms(2026, 2, 18, 14, minute, 0).unwrap()),
            ..AlertState::default()
        }
    }

    #[test]
    fn later_copy_wins_over_higher_generation() {
        // A file from an earlier turn as leader, with a higher generation.
        let picked = newer(Some(state(500, 1)), Some(state(100, 30))).unwrap();
        assert_eq!(picked.generation, 100);
    }

    #[test]
    fn file_wins_when_saved_later() {
        let picked = newer(Some(state(101, 31)), Some(state(100, 30))).unwrap();
        assert_eq!(picked.generation, 101);
    }

    #[test]
    fn single_copy_is_taken() {
        assert_eq!(newer(None, Some(state(3, 0))).unwrap().generation, 3);
        assert_eq!(newer(Some(state(4, 0)), None).unwrap().generation, 4);
        assert!(newer(None, None).is_none());
    }
}
