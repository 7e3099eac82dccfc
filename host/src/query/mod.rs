//! The read-only query capability that detectors call.
//!
//! A detector never holds a connection. Each `query` call is checked by the
//! [`guard`], then run by [`execute`] on a pooled connection inside its own
//! `BEGIN READ ONLY` transaction with server-side timeouts, and its rows are
//! converted by [`convert`] into the contract's `sql-value`.

pub mod convert;
pub mod execute;
pub mod guard;

use std::collections::BTreeSet;
use std::time::Duration;

use thiserror::Error;

/// Tables detectors may read unless the operator sets `query.allowed_tables`:
/// the federation's four tables.
pub const DEFAULT_ALLOWED_TABLES: [&str; 4] = [
    "council_votes",
    "jr_work_queue",
    "duyuktv_tickets",
    "thermal_memory_archive",
];

/// Operator settings of the query capability.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySettings {
    /// Tables detectors may read; a detector must also declare each one.
    pub allowed_tables: BTreeSet<String>,
    /// Functions allowed in addition to the built-in list.
    pub extra_functions: BTreeSet<String>,
    /// `statement_timeout` of every detector query.
    pub statement_timeout: Duration,
    /// `lock_timeout` of every detector query.
    pub lock_timeout: Duration,
}

impl Default for QuerySettings {
    fn default() -> QuerySettings {
        QuerySettings {
            allowed_tables: DEFAULT_ALLOWED_TABLES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            extra_functions: BTreeSet::new(),
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(1),
        }
    }
}

/// Why a detector's query failed; each variant maps onto the contract's
/// `query-error` case of the same name.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum QueryError {
    /// The guard rejected the statement.
    #[error("denied: {0}")]
    Denied(String),
    /// The statement ran past the statement timeout and was cancelled.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database rejected the statement, or a value could not be
    /// converted.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The result or the number of queries exceeded a limit.
    #[error("too large: {0}")]
    TooLarge(String),
}

impl QueryError {
    /// Short name of the kind, as used in log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::Denied(_) => "denied",
            QueryError::TimedOut(_) => "timed-out",
            QueryError::Unavailable(_) => "unavailable",
            QueryError::Invalid(_) => "invalid",
            QueryError::TooLarge(_) => "too-large",
        }
    }
}
