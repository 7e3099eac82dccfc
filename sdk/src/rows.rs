use std::fmt;

use crate::Value;

/// The result of a [`query`](crate::query): column names in select-list
/// order and the rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Creates a result from column names and rows, each row one value per
    /// column. [`query`](crate::query) builds it from the host's result, and
    /// tests build it by hand.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        Rows { columns, rows }
    }

    /// Returns the column names, as the database reports them.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Returns the number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Returns true when the query returned no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Returns the row at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| self.row(values))
    }

    /// Iterates over the rows in the order the database returned them.
    pub fn iter(&self) -> RowIter<'_> {
        RowIter {
            columns: &self.columns,
            rows: self.rows.iter(),
        }
    }

    /// Returns the only row, as for an aggregate query like
    /// `SELECT count(*) AS failed FROM …`.
    ///
    /// # Errors
    ///
    /// [`RowError::RowCount`] when the result has no row or more than one.
    pub fn one(&self) -> Result<Row<'_>, RowError> {
        match self.rows.as_slice() {
            [values] => Ok(self.row(values)),
            rows => Err(RowError::RowCount { actual: rows.len() }),
        }
    }

    fn row<'a>(&'a self, values: &'a [Value]) -> Row<'a> {
        Row {
            columns: &self.columns,
            values,
        }
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = RowIter<'a>;

    fn into_iter(self) -> RowIter<'a> {
        self.iter()
    }
}

/// Iterator over the rows of [`Rows`], from [`Rows::iter`].
#[derive(Debug, Clone)]
pub struct RowIter<'a> {
    columns: &'a [String],
    rows: std::slice::Iter<'a, Vec<Value>>,
}

impl<'a> Iterator for RowIter<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let values = self.rows.next()?;
        Some(Row {
            columns: self.columns,
            values,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl ExactSizeIterator for RowIter<'_> {}

/// One row of [`Rows`], read by column name.
///
/// Each typed accessor fails with a [`RowError`] that names the column when
/// the column is missing or contains another type. The plain accessors also
/// fail on SQL NULL, and the `optional_*` ones return `None` for it.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// Returns the raw value of `column`.
    ///
    /// # Errors
    ///
    /// [`RowError::MissingColumn`] when the result has no such column, and
    /// [`RowError::MissingValue`] when the row is shorter than the column
    /// list (a malformed result from the host).
    pub fn value(&self, column: &str) -> Result<&'a Value, RowError> {
        let Some(index) = self.columns.iter().position(|name| name == column) else {
            return Err(RowError::MissingColumn {
                column: column.to_string(),
                available: self.columns.to_vec(),
            });
        };
        self.values
            .get(index)
            .ok_or_else(|| RowError::MissingValue {
                column: column.to_string(),
            })
    }

    /// Reads a `smallint`, `integer` or `bigint` column, such as `count(*)`.
    pub fn integer(&self, column: &str) -> Result<i64, RowError> {
        require(column, "integer", self.optional_integer(column)?)
    }

    /// Reads an integer column that may be NULL.
    pub fn optional_integer(&self, column: &str) -> Result<Option<i64>, RowError> {
        self.typed(column, "integer", |value| match value {
            Value::Integer(number) => Some(*number),
            _ => None,
        })
    }

    /// Reads a `real`, `double precision` or `numeric` column. An integer
    /// column is accepted too and converted to the nearest `f64`.
    pub fn float(&self, column: &str) -> Result<f64, RowError> {
        require(column, "float", self.optional_float(column)?)
    }

    /// Reads a float or integer column that may be NULL.
    pub fn optional_float(&self, column: &str) -> Result<Option<f64>, RowError> {
        self.typed(column, "float", |value| match value {
            Value::Float(number) => Some(*number),
            Value::Integer(number) => Some(*number as f64),
            _ => None,
        })
    }

    /// Reads a text column (`text`, `varchar`, `char`, `name`, `uuid`,
    /// `date` and enum types arrive as text).
    pub fn text(&self, column: &str) -> Result<&'a str, RowError> {
        require(column, "text", self.optional_text(column)?)
    }

    /// Reads a text column that may be NULL.
    pub fn optional_text(&self, column: &str) -> Result<Option<&'a str>, RowError> {
        self.typed(column, "text", |value| match value {
            Value::Text(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// Reads a `boolean` column.
    pub fn boolean(&self, column: &str) -> Result<bool, RowError> {
        require(column, "boolean", self.optional_boolean(column)?)
    }

    /// Reads a boolean column that may be NULL.
    pub fn optional_boolean(&self, column: &str) -> Result<Option<bool>, RowError> {
        self.typed(column, "boolean", |value| match value {
            Value::Boolean(flag) => Some(*flag),
            _ => None,
        })
    }

    /// Reads a `timestamp` or `timestamptz` column as the host's text form:
    /// ISO 8601 without an offset for `timestamp`, RFC 3339 in UTC for
    /// `timestamptz`, or `infinity` / `-infinity`.
    pub fn timestamp(&self, column: &str) -> Result<&'a str, RowError> {
        require(column, "timestamp", self.optional_timestamp(column)?)
    }

    /// Reads a timestamp column that may be NULL.
    pub fn optional_timestamp(&self, column: &str) -> Result<Option<&'a str>, RowError> {
        self.typed(column, "timestamp", |value| match value {
            Value::Timestamp(text) | Value::Timestamptz(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// Reads a `json` or `jsonb` column as JSON text.
    pub fn json(&self, column: &str) -> Result<&'a str, RowError> {
        require(column, "json", self.optional_json(column)?)
    }

    /// Reads a JSON column that may be NULL.
    pub fn optional_json(&self, column: &str) -> Result<Option<&'a str>, RowError> {
        self.typed(column, "json", |value| match value {
            Value::Json(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// Looks up `column` and converts it with `convert`, which returns
    /// `None` for a value of the wrong type. NULL becomes `Ok(None)`.
    fn typed<T>(
        &self,
        column: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, RowError> {
        let value = self.value(column)?;
        if let Value::Null = value {
            return Ok(None);
        }
        match convert(value) {
            Some(converted) => Ok(Some(converted)),
            None => Err(RowError::WrongType {
                column: column.to_string(),
                expected,
                actual: type_name(value),
            }),
        }
    }
}

fn require<T>(column: &str, expected: &'static str, value: Option<T>) -> Result<T, RowError> {
    value.ok_or_else(|| RowError::UnexpectedNull {
        column: column.to_string(),
        expected,
    })
}

/// Names a value's case as the contract's `sql-value` does.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Timestamp(_) => "timestamp",
        Value::Timestamptz(_) => "timestamptz",
        Value::Json(_) => "json",
    }
}

/// A query result that does not have the shape the detector expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// The result has no column of that name.
    MissingColumn {
        /// The requested column.
        column: String,
        /// The columns the result has.
        available: Vec<String>,
    },
    /// The column contains a value of another type.
    WrongType {
        /// The requested column.
        column: String,
        /// The type the accessor reads, such as `integer`.
        expected: &'static str,
        /// The type of the value, as named by the contract's `sql-value`.
        actual: &'static str,
    },
    /// The column is NULL, but a plain accessor was used.
    UnexpectedNull {
        /// The requested column.
        column: String,
        /// The type the accessor reads. The accessor named `optional_`
        /// followed by this type accepts NULL.
        expected: &'static str,
    },
    /// [`Rows::one`] found no row or more than one.
    RowCount {
        /// The number of rows in the result.
        actual: usize,
    },
    /// The row has fewer values than the result has columns.
    MissingValue {
        /// The requested column.
        column: String,
    },
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::MissingColumn { column, available } if available.is_empty() => {
                write!(f, "no column \"{column}\" in the query result, which has no columns")
            }
            RowError::MissingColumn { column, available } => write!(
                f,
                "no column \"{column}\" in the query result, which has columns: {}",
                available.join(", ")
            ),
            RowError::WrongType {
                column,
                expected,
                actual,
            } => write!(f, "column \"{column}\" is {actual}, expected {expected}"),
            RowError::UnexpectedNull { column, expected } => write!(
                f,
                "column \"{column}\" is NULL, expected {expected} (optional_{expected} accepts NULL)"
            ),
            RowError::RowCount { actual } => {
                write!(f, "expected exactly one row, the query returned {actual}")
            }
            RowError::MissingValue { column } => write!(
                f,
                "the query result row has no value for column \"{column}\" (the row is shorter than the column list)"
            ),
        }
    }
}

impl std::error::Error for RowError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Rows {
        Rows::new(
            vec![
                "failed".into(),
                "ratio".into(),
                "title".into(),
                "done".into(),
                "seen_at".into(),
                "seen_at_utc".into(),
                "meta".into(),
                "missing".into(),
            ],
            vec![vec![
                Value::Integer(7),
                Value::Float(0.25),
                Value::Text("Fix DLQ".into()),
                Value::Boolean(true),
                Value::Timestamp("2026-02-18T14:03:07.512".into()),
                Value::Timestamptz("2026-02-18T14:03:07.512Z".into()),
                Value::Json("{\"a\":1}".into()),
                Value::Null,
            ]],
        )
    }

    #[test]
    fn typed_accessors_read_values() {
        let rows = sample();
        let row = rows.one().unwrap();

        assert_eq!(row.integer("failed"), Ok(7));
        assert_eq!(row.float("ratio"), Ok(0.25));
        assert_eq!(row.text("title"), Ok("Fix DLQ"));
        assert_eq!(row.boolean("done"), Ok(true));
        assert_eq!(row.timestamp("seen_at"), Ok("2026-02-18T14:03:07.512"));
        assert_eq!(row.timestamp("seen_at_utc"), Ok("2026-02-18T14:03:07.512Z"));
        assert_eq!(row.json("meta"), Ok("{\"a\":1}"));
    }

    #[test]
    fn float_accepts_integer() {
        let rows = sample();
        let row = rows.one().unwrap();
        assert_eq!(row.float("failed"), Ok(7.0));
        assert_eq!(row.optional_float("failed"), Ok(Some(7.0)));
    }

    #[test]
    fn optional_accessors_map_null_to_none() {
        let rows = sample();
        let row = rows.one().unwrap();

        assert_eq!(row.optional_integer("missing"), Ok(None));
        assert_eq!(row.optional_float("missing"), Ok(None));
        assert_eq!(row.optional_text("missing"), Ok(None));
        assert_eq!(row.optional_boolean("missing"), Ok(None));
        assert_eq!(row.optional_timestamp("missing"), Ok(None));
        assert_eq!(row.optional_json("missing"), Ok(None));
        assert_eq!(row.optional_integer("failed"), Ok(Some(7)));
        assert_eq!(row.optional_text("title"), Ok(Some("Fix DLQ")));
    }

    #[test]
    fn plain_accessor_rejects_null() {
        let rows = sample();
        let error = rows.one().unwrap().integer("missing").unwrap_err();

        assert_eq!(
            error,
            RowError::UnexpectedNull {
                column: "missing".into(),
                expected: "integer",
            }
        );
        assert_eq!(
            error.to_string(),
            "column \"missing\" is NULL, expected integer (optional_integer accepts NULL)"
        );
    }

    #[test]
    fn wrong_type_names_column_and_types() {
        let rows = sample();
        let row = rows.one().unwrap();

        let error = row.integer("title").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column \"title\" is text, expected integer"
        );

        let error = row.text("failed").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column \"failed\" is integer, expected text"
        );

        let error = row.integer("ratio").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column \"ratio\" is float, expected integer"
        );

        let error = row.json("title").unwrap_err();
        assert_eq!(error.to_string(), "column \"title\" is text, expected json");
    }

    #[test]
    fn missing_column_lists_available_columns() {
        let rows = Rows::new(
            vec!["failed".into(), "total".into()],
            vec![vec![Value::Integer(1), Value::Integer(2)]],
        );
        let error = rows.one().unwrap().integer("fail").unwrap_err();

        assert_eq!(
            error.to_string(),
            "no column \"fail\" in the query result, which has columns: failed, total"
        );
    }

    #[test]
    fn missing_column_in_empty_column_list() {
        let rows = Rows::new(Vec::new(), vec![Vec::new()]);
        let error = rows.one().unwrap().integer("failed").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no column \"failed\" in the query result, which has no columns"
        );
    }

    #[test]
    fn short_row_reports_missing_value() {
        let rows = Rows::new(vec!["a".into(), "b".into()], vec![vec![Value::Integer(1)]]);
        let error = rows.one().unwrap().integer("b").unwrap_err();
        assert_eq!(error, RowError::MissingValue { column: "b".into() });
    }

    #[test]
    fn one_requires_exactly_one_row() {
        let empty = Rows::new(vec!["a".into()], Vec::new());
        let error = empty.one().unwrap_err();
        assert_eq!(error, RowError::RowCount { actual: 0 });
        assert_eq!(
            error.to_string(),
            "expected exactly one row, the query returned 0"
        );

        let two = Rows::new(
            vec!["a".into()],
            vec![vec![Value::Integer(1)], vec![Value::Integer(2)]],
        );
        assert_eq!(two.one().unwrap_err(), RowError::RowCount { actual: 2 });
    }

    #[test]
    fn iteration_keeps_database_order() {
        let rows = Rows::new(
            vec!["id".into()],
            vec![
                vec![Value::Integer(3)],
                vec![Value::Integer(1)],
                vec![Value::Integer(2)],
            ],
        );

        let ids: Vec<i64> = rows.iter().map(|row| row.integer("id").unwrap()).collect();
        assert_eq!(ids, [3, 1, 2]);
        assert_eq!(rows.len(), 3);
        assert!(!rows.is_empty());
        assert_eq!(rows.get(1).unwrap().integer("id"), Ok(1));
        assert!(rows.get(3).is_none());

        let mut count = 0;
        for row in &rows {
            assert!(row.integer("id").is_ok());
            count += 1;
        }
        assert_eq!(count, 3);
    }
}
