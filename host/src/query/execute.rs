//! Execution of one guarded query on a pooled connection.
//!
//! Every query runs in its own `BEGIN READ ONLY` transaction with
//! `statement_timeout` and `lock_timeout` set locally, so a query that fails
//! rolls back alone and never affects another query or another detector.
//! A client-side timer backs up the server's timeout: when it fires, the
//! statement is cancelled on the server, not only abandoned by the client.

use std::pin::pin;
use std::time::Duration;

use futures::TryStreamExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::convert::{to_sql_value, Param, RawValue};
use super::{QueryError, QuerySettings};
use crate::contract::{QueryResult, SqlValue};
use crate::db::Database;

/// Time the client waits beyond the statement timeout before it cancels the
/// statement itself; the server's own timeout normally fires first.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Row and byte limits of one query's result.
#[derive(Debug, Clone, Copy)]
pub struct ResultLimits {
    /// Rows.
    pub rows: u64,
    /// Bytes as sent by the server.
    pub bytes: u64,
}

/// Runs one query that the guard has already accepted.
pub async fn run(
    database: &Database,
    settings: &QuerySettings,
    sql: &str,
    params: &[SqlValue],
    limits: ResultLimits,
) -> Result<QueryResult, QueryError> {
    let params = params
        .iter()
        .enumerate()
        .map(|(index, value)| Param::new(index, value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(QueryError::Invalid)?;

    let begin = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
        settings.statement_timeout.as_millis().max(1),
        settings.lock_timeout.as_millis().max(1),
    );
    // A pooled connection may have been closed by the server since its
    // last use without the client noticing yet; such a connection fails
    // at BEGIN, before the query ran, so one retry on a fresh one is safe.
    let mut connection = database
        .connection()
        .await
        .map_err(QueryError::Unavailable)?;
    if let Err(error) = connection.batch_execute(&begin).await {
        if !error.is_closed() {
            return Err(map_error(&error, settings));
        }
        crate::db::discard(connection);
        connection = database
            .connection()
            .await
            .map_err(QueryError::Unavailable)?;
        connection
            .batch_execute(&begin)
            .await
            .map_err(|error| map_error(&error, settings))?;
    }
    let client: &tokio_postgres::Client = &connection;

    let fetch = fetch_rows(client, sql, &params, limits, settings);
    let outcome = match tokio::time::timeout(settings.statement_timeout + CLIENT_GRACE, fetch).await
    {
        Ok(outcome) => outcome,
        Err(_) => {
            cancel(client).await;
            // The connection's state is unknown after a cancel: drop it
            // rather than return it to the pool.
            crate::db::discard(connection);
            return Err(QueryError::TimedOut(format!(
                "no answer within query.statement_timeout ({} ms); the statement was cancelled",
                settings.statement_timeout.as_millis()
            )));
        }
    };

    if matches!(outcome, Err(QueryError::TooLarge(_))) {
        // Stop the server from producing rows nobody will read.
        cancel(client).await;
    }
    if let Err(error) = client.batch_execute("ROLLBACK").await {
        if outcome.is_ok() {
            return Err(map_error(&error, settings));
        }
    }
    outcome
}

async fn fetch_rows(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[Param],
    limits: ResultLimits,
    settings: &QuerySettings,
) -> Result<QueryResult, QueryError> {
    let typed = params.iter().map(|param| {
        (
            param as &(dyn tokio_postgres::types::ToSql + Sync),
            param.pg_type(),
        )
    });
    let stream = client
        .query_typed_raw(sql, typed)
        .await
        .map_err(|error| map_error(&error, settings))?;
    let mut stream = pin!(stream);

    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut bytes: u64 = 0;
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|error| map_error(&error, settings))?
    {
        if columns.is_none() {
            columns = Some(row.columns().iter().map(|c| c.name().to_string()).collect());
        }
        if rows.len() as u64 >= limits.rows {
            return Err(QueryError::TooLarge(format!(
                "the result has more than {} rows (setting limits.rows); aggregate in SQL or \
                 add a LIMIT",
                limits.rows
            )));
        }
        bytes += row.raw_size_bytes() as u64;
        if bytes > limits.bytes {
            return Err(QueryError::TooLarge(format!(
                "the result is larger than {} (setting limits.result_size); select fewer \
                 columns or rows",
                crate::plugin::limits::format_bytes(limits.bytes)
            )));
        }

        let mut values = Vec::with_capacity(row.len());
        for (index, column) in row.columns().iter().enumerate() {
            let raw: RawValue = row.try_get(index).map_err(|error| {
                QueryError::Invalid(format!("column {}: {error}", column.name()))
            })?;
            let value = to_sql_value(column.type_(), raw.0).map_err(|reason| {
                QueryError::Invalid(format!("column {}: {reason}", column.name()))
            })?;
            values.push(value);
        }
        rows.push(values);
    }

    // A result with no rows still has columns, but the row stream only
    // carries them on rows; detectors look up columns by name in rows, so an
    // empty list loses nothing.
    Ok(QueryResult {
        columns: columns.unwrap_or_default(),
        rows,
    })
}

async fn cancel(client: &tokio_postgres::Client) {
    if let Err(error) = client.cancel_token().cancel_query(NoTls).await {
        tracing::warn!(error = %error, "cannot cancel a detector query on the server");
    }
}

/// Maps a database error onto the contract's query-error kinds.
pub fn map_error(error: &tokio_postgres::Error, settings: &QuerySettings) -> QueryError {
    if error.is_closed() {
        return QueryError::Unavailable("the database connection closed".into());
    }
    let Some(db_error) = error.as_db_error() else {
        return QueryError::Unavailable(error.to_string());
    };
    let code = db_error.code();
    let message = db_error.message();
    if *code == SqlState::QUERY_CANCELED {
        QueryError::TimedOut(format!(
            "the statement ran longer than query.statement_timeout ({} ms) and was cancelled",
            settings.statement_timeout.as_millis()
        ))
    } else if *code == SqlState::LOCK_NOT_AVAILABLE {
        QueryError::TimedOut(format!(
            "the statement waited longer than query.lock_timeout ({} ms) for a lock",
            settings.lock_timeout.as_millis()
        ))
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        QueryError::Denied(format!("{message}; detector queries run read-only"))
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        QueryError::Denied(format!(
            "{message}; the daemon's database role lacks the privilege"
        ))
    } else if code.code().starts_with("08") || code.code().starts_with("57P") {
        QueryError::Unavailable(message.to_string())
    } else {
        let mut text = message.to_string();
        if let Some(hint) = db_error.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        QueryError::Invalid(text)
    }
}
