use std::fmt;

use crate::bindings::tpm::autonomic::query as host;
use crate::bindings::tpm::autonomic::types::QueryError as HostQueryError;
use crate::{Rows, Value};

/// Runs one read-only `SELECT` (or `WITH … SELECT`) on the federation
/// database and returns its rows.
///
/// Bind values with `$1`, `$2`, … in `sql` and pass them in `params`. The
/// host sends [`Value::Integer`] as `bigint`, [`Value::Float`] as
/// `double precision` and [`Value::Text`] as `text`, so cast in SQL where
/// another type is needed (`make_interval(hours => $1::int)`).
///
/// # Errors
///
/// Returns a [`QueryError`] when the host's query guard rejects the
/// statement, the statement times out, the database is unreachable or
/// rejects the statement, or the result is over the host's limits. The host
/// also limits how many queries one `detect` call may make.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, QueryError> {
    let result = host::query(sql, params)?;
    Ok(Rows::new(result.columns, result.rows))
}

/// Kind of query failure, as the host reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The query guard rejected the statement, for example a table the
    /// manifest does not declare or a function that is not allowed.
    Denied,
    /// The statement ran longer than the host's statement timeout.
    TimedOut,
    /// The database could not be reached.
    Unavailable,
    /// The database rejected the statement (syntax, missing column, wrong
    /// parameter type) or a value could not be converted.
    Invalid,
    /// The result was over the host's row or byte limit, or the detector
    /// made more queries than its limit for one call.
    TooLarge,
}

impl fmt::Display for QueryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryErrorKind::Denied => "denied",
            QueryErrorKind::TimedOut => "timed out",
            QueryErrorKind::Unavailable => "unavailable",
            QueryErrorKind::Invalid => "invalid",
            QueryErrorKind::TooLarge => "too large",
        })
    }
}

/// A failed [`query`]: its kind and the host's explanation.
///
/// It renders as `query <kind>: <detail>`, for example
/// `query denied: table "users" is not declared in the manifest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    kind: QueryErrorKind,
    detail: String,
}

impl QueryError {
    /// Creates an error, for tests of code that handles query errors.
    pub fn new(kind: QueryErrorKind, detail: impl Into<String>) -> Self {
        QueryError {
            kind,
            detail: detail.into(),
        }
    }

    /// Returns why the query failed.
    pub fn kind(&self) -> QueryErrorKind {
        self.kind
    }

    /// Returns the host's explanation, such as the database's error message.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<HostQueryError> for QueryError {
    fn from(error: HostQueryError) -> Self {
        match error {
            HostQueryError::Denied(detail) => QueryError::new(QueryErrorKind::Denied, detail),
            HostQueryError::TimedOut(detail) => QueryError::new(QueryErrorKind::TimedOut, detail),
            HostQueryError::Unavailable(detail) => {
                QueryError::new(QueryErrorKind::Unavailable, detail)
            }
            HostQueryError::Invalid(detail) => QueryError::new(QueryErrorKind::Invalid, detail),
            HostQueryError::TooLarge(detail) => QueryError::new(QueryErrorKind::TooLarge, detail),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "query {}", self.kind)
        } else {
            write!(f, "query {}: {}", self.kind, self.detail)
        }
    }
}

impl std::error::Error for QueryError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_error_keeps_kind_and_detail() {
        let cases = [
            (HostQueryError::Denied("d".into()), QueryErrorKind::Denied),
            (
                HostQueryError::TimedOut("t".into()),
                QueryErrorKind::TimedOut,
            ),
            (
                HostQueryError::Unavailable("u".into()),
                QueryErrorKind::Unavailable,
            ),
            (HostQueryError::Invalid("i".into()), QueryErrorKind::Invalid),
            (
                HostQueryError::TooLarge("l".into()),
                QueryErrorKind::TooLarge,
            ),
        ];
        for (host_error, kind) in cases {
            let error = QueryError::from(host_error);
            assert_eq!(error.kind(), kind);
            assert_eq!(error.detail().len(), 1);
        }
    }

    #[test]
    fn query_error_text_names_kind() {
        let cases = [
            (
                QueryErrorKind::Denied,
                "query denied: function pg_sleep is not allowed",
            ),
            (
                QueryErrorKind::TimedOut,
                "query timed out: function pg_sleep is not allowed",
            ),
            (
                QueryErrorKind::Unavailable,
                "query unavailable: function pg_sleep is not allowed",
            ),
            (
                QueryErrorKind::Invalid,
                "query invalid: function pg_sleep is not allowed",
            ),
            (
                QueryErrorKind::TooLarge,
                "query too large: function pg_sleep is not allowed",
            ),
        ];
        for (kind, text) in cases {
            let error = QueryError::new(kind, "function pg_sleep is not allowed");
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn query_error_without_detail() {
        let error = QueryError::new(QueryErrorKind::TimedOut, "");
        assert_eq!(error.to_string(), "query timed out");
    }
}
