//! Names of the environment variables the daemon reads, and the map they are
//! read from.
//!
//! Resolution never reads the process environment directly: it reads an
//! [`EnvMap`] built once at start-up from the environment and the secrets
//! file, so tests can pass a map instead of changing the process.

use std::collections::BTreeMap;

/// Database connection URL (`postgresql://user@host:port/dbname`).
pub const DATABASE_URL: &str = "TPM_DATABASE_URL";
/// libpq host variable.
pub const PGHOST: &str = "PGHOST";
/// libpq port variable.
pub const PGPORT: &str = "PGPORT";
/// libpq user variable.
pub const PGUSER: &str = "PGUSER";
/// libpq database-name variable.
pub const PGDATABASE: &str = "PGDATABASE";
/// libpq password variable.
pub const PGPASSWORD: &str = "PGPASSWORD";
/// Federation alias of `PGHOST`.
pub const CHEROKEE_DB_HOST: &str = "CHEROKEE_DB_HOST";
/// Federation alias of `PGPORT`.
pub const CHEROKEE_DB_PORT: &str = "CHEROKEE_DB_PORT";
/// Federation alias of `PGDATABASE`.
pub const CHEROKEE_DB_NAME: &str = "CHEROKEE_DB_NAME";
/// Federation alias of `PGUSER`.
pub const CHEROKEE_DB_USER: &str = "CHEROKEE_DB_USER";
/// Federation alias of `PGPASSWORD`.
pub const CHEROKEE_DB_PASS: &str = "CHEROKEE_DB_PASS";
/// Telegram bot token.
pub const TELEGRAM_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
/// Telegram chat that receives alerts.
pub const TELEGRAM_CHAT_ID: &str = "TELEGRAM_CHIEF_CHAT_ID";
/// Base URL of the Telegram Bot API.
pub const TELEGRAM_API_BASE: &str = "TELEGRAM_API_BASE";
/// Seconds between cycles.
pub const POLL_INTERVAL: &str = "TPM_POLL_INTERVAL";
/// Plugins folder.
pub const PLUGINS_DIR: &str = "TPM_PLUGINS_DIR";
/// Log file.
pub const LOG_FILE: &str = "TPM_LOG_FILE";
/// Configuration file.
pub const CONFIG_FILE: &str = "TPM_CONFIG";
/// Secrets file.
pub const SECRETS_FILE: &str = "TPM_SECRETS_FILE";
/// Folder of the compiled-plugin cache.
pub const CACHE_DIR: &str = "TPM_CACHE_DIR";
/// Folder where the daemon keeps its state between restarts.
pub const STATE_DIR: &str = "TPM_STATE_DIR";
/// tracing filter directive that replaces the default log levels.
pub const LOG_FILTER: &str = "TPM_LOG";

/// A variable's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    /// The value.
    pub value: String,
    /// True when the secrets file supplied it, false for the environment.
    pub from_secrets_file: bool,
}

/// Environment variables, with the secrets file's entries below the real
/// environment's.
#[derive(Debug, Clone, Default)]
pub struct EnvMap {
    values: BTreeMap<String, EnvValue>,
}

impl EnvMap {
    /// Builds a map from the process environment. Variables that are not
    /// valid UTF-8 are skipped.
    pub fn from_process() -> EnvMap {
        let mut map = EnvMap::default();
        for (name, value) in std::env::vars_os() {
            if let (Ok(name), Ok(value)) = (name.into_string(), value.into_string()) {
                map.set(name, value);
            }
        }
        map
    }

    /// Builds a map from pairs, as the environment would supply them.
    pub fn from_pairs<I, K, V>(pairs: I) -> EnvMap
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = EnvMap::default();
        for (name, value) in pairs {
            map.set(name.into(), value.into());
        }
        map
    }

    /// Sets a variable as the environment would.
    pub fn set(&mut self, name: String, value: String) {
        let value = EnvValue {
            value,
            from_secrets_file: false,
        };
        self.values.insert(name, value);
    }

    /// Adds a secrets-file entry unless the environment already sets it.
    /// Of two entries with the same key the later one wins, as with a shell
    /// or systemd's `EnvironmentFile=`.
    pub fn add_from_secrets_file(&mut self, name: String, value: String) {
        let value = EnvValue {
            value,
            from_secrets_file: true,
        };
        match self.values.get(&name) {
            Some(existing) if !existing.from_secrets_file => {}
            _ => {
                self.values.insert(name, value);
            }
        }
    }

    /// Returns a variable's value when it is set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entry(name).map(|entry| entry.value.as_str())
    }

    /// Returns a variable with its origin when it is set and not empty.
    pub fn entry(&self, name: &str) -> Option<&EnvValue> {
        self.values
            .get(name)
            .filter(|entry| !entry.value.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_secrets_file() {
        let mut map = EnvMap::from_pairs([(PGPASSWORD, "from-env")]);
        map.add_from_secrets_file(PGPASSWORD.into(), "from-file".into());
        map.add_from_secrets_file(PGUSER.into(), "claude".into());

        assert_eq!(map.get(PGPASSWORD), Some("from-env"));
        assert_eq!(map.get(PGUSER), Some("claude"));
        assert!(map.entry(PGUSER).unwrap().from_secrets_file);
    }

    #[test]
    fn later_secrets_entry_wins() {
        let mut map = EnvMap::default();
        map.add_from_secrets_file(PGPASSWORD.into(), "first".into());
        map.add_from_secrets_file(PGPASSWORD.into(), "second".into());
        assert_eq!(map.get(PGPASSWORD), Some("second"));
    }

    #[test]
    fn empty_variable_counts_as_unset() {
        let map = EnvMap::from_pairs([(PGHOST, "")]);
        assert_eq!(map.get(PGHOST), None);
    }
}
