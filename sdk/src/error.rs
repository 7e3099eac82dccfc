use std::fmt;

use crate::{QueryError, RowError, SettingError};

/// Error that fails one detection. The host logs its text and reports it
/// for this detector and cycle.
///
/// Query, row and setting errors convert into it, so `?` works on all of
/// them inside [`Detector::detect`](crate::Detector::detect). Its text is
/// always one line: line breaks inside a message, such as those in a
/// database error, become spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectError {
    /// A query failed.
    Query(QueryError),
    /// A query result did not have the expected shape.
    Row(RowError),
    /// A setting is missing or invalid.
    Setting(SettingError),
    /// Any other failure, with its message.
    Other(String),
}

impl DetectError {
    /// Creates an error from a message, for failures the other variants do
    /// not cover.
    pub fn new(message: impl Into<String>) -> Self {
        DetectError::Other(message.into())
    }
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DetectError::Query(error) => error.to_string(),
            DetectError::Row(error) => format!("unexpected query result: {error}"),
            DetectError::Setting(error) => error.to_string(),
            DetectError::Other(message) => message.clone(),
        };
        f.write_str(&single_line(&text))
    }
}

impl std::error::Error for DetectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DetectError::Query(error) => Some(error),
            DetectError::Row(error) => Some(error),
            DetectError::Setting(error) => Some(error),
            DetectError::Other(_) => None,
        }
    }
}

impl From<QueryError> for DetectError {
    fn from(error: QueryError) -> Self {
        DetectError::Query(error)
    }
}

impl From<RowError> for DetectError {
    fn from(error: RowError) -> Self {
        DetectError::Row(error)
    }
}

impl From<SettingError> for DetectError {
    fn from(error: SettingError) -> Self {
        DetectError::Setting(error)
    }
}

impl From<String> for DetectError {
    fn from(message: String) -> Self {
        DetectError::Other(message)
    }
}

impl From<&str> for DetectError {
    fn from(message: &str) -> Self {
        DetectError::Other(message.to_string())
    }
}

/// Joins the non-blank lines of `text` with single spaces, because the host
/// writes each error as one log line.
fn single_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryErrorKind;

    fn detect_step(error: impl Into<DetectError>) -> Result<(), DetectError> {
        Err(error.into())
    }

    #[test]
    fn query_error_keeps_kind_in_text() {
        let error = DetectError::from(QueryError::new(
            QueryErrorKind::Denied,
            "table \"users\" is not in the allow list",
        ));
        assert_eq!(
            error.to_string(),
            "query denied: table \"users\" is not in the allow list"
        );
    }

    #[test]
    fn multiline_detail_becomes_one_line() {
        let error = DetectError::from(QueryError::new(
            QueryErrorKind::Invalid,
            "syntax error at or near \"FORM\"\nLINE 1: SELECT count(*) FORM x\n        ^\r\n",
        ));
        let text = error.to_string();

        assert!(!text.contains('\n'), "{text:?}");
        assert!(!text.contains('\r'), "{text:?}");
        assert_eq!(
            text,
            "query invalid: syntax error at or near \"FORM\" LINE 1: SELECT count(*) FORM x ^"
        );
    }

    #[test]
    fn row_error_text_says_result_was_unexpected() {
        let error = DetectError::from(RowError::RowCount { actual: 2 });
        assert_eq!(
            error.to_string(),
            "unexpected query result: expected exactly one row, the query returned 2"
        );
    }

    #[test]
    fn setting_error_text_is_unchanged() {
        let error = DetectError::from(SettingError::invalid(
            "threshold",
            "x",
            "is not a whole number",
        ));
        assert_eq!(
            error.to_string(),
            "invalid setting \"threshold\": the value \"x\" is not a whole number"
        );
    }

    #[test]
    fn question_mark_converts_each_error() {
        let query = detect_step(QueryError::new(QueryErrorKind::TimedOut, "after 5 s"));
        assert!(matches!(query, Err(DetectError::Query(_))));

        let row = detect_step(RowError::RowCount { actual: 0 });
        assert!(matches!(row, Err(DetectError::Row(_))));

        let setting = detect_step(SettingError::Undeclared { name: "x".into() });
        assert!(matches!(setting, Err(DetectError::Setting(_))));

        let other = detect_step("no rows to compare");
        assert_eq!(other.unwrap_err().to_string(), "no rows to compare");
    }
}
