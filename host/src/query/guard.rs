//! The query guard: what a detector's SQL may do, checked on the parsed
//! statement before it reaches the database.
//!
//! A query passes when it is exactly one `SELECT` (or `WITH … SELECT`,
//! `VALUES`, or set operations of them) that writes nothing, locks nothing,
//! reads only tables that the detector declared and the operator allows,
//! and calls only functions on the allow list. The read-only transaction and
//! the server-side timeouts stay in place behind the guard.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::{QueryError, QuerySettings};

/// Longest query text the guard parses, in bytes.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Functions a detector may call: aggregates, window functions, date and
/// time, string, math, JSON and array functions that read nothing but their
/// arguments. Functions that can build values of unbounded size from small
/// arguments (`repeat`, `lpad`, `rpad`) are left out.
const ALLOWED_FUNCTIONS: &[&str] = &[
    // Aggregates.
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_slope",
    // Window functions.
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // Date and time.
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "clock_timestamp",
    "date_trunc",
    "date_part",
    "date_bin",
    "extract",
    "age",
    "make_interval",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "to_timestamp",
    "to_char",
    "to_date",
    "to_number",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    "timezone",
    // Strings.
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "lower",
    "upper",
    "initcap",
    "left",
    "right",
    "substr",
    "substring",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "replace",
    "split_part",
    "strpos",
    "position",
    "concat",
    "concat_ws",
    "format",
    "md5",
    "reverse",
    "translate",
    "regexp_replace",
    "regexp_match",
    "regexp_like",
    "starts_with",
    "string_to_array",
    "array_to_string",
    "to_hex",
    "ascii",
    "chr",
    "quote_literal",
    "quote_nullable",
    // Math.
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "sign",
    "sqrt",
    "cbrt",
    "power",
    "pow",
    "exp",
    "ln",
    "log",
    "log10",
    "mod",
    "div",
    "width_bucket",
    "pi",
    "degrees",
    "radians",
    "random",
    "scale",
    // Conditionals.
    "coalesce",
    "nullif",
    "greatest",
    "least",
    // JSON.
    "to_json",
    "to_jsonb",
    "row_to_json",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_extract_path_text",
    "jsonb_extract_path_text",
    "json_array_length",
    "jsonb_array_length",
    "json_typeof",
    "jsonb_typeof",
    // Arrays and sets.
    "array_length",
    "cardinality",
    "unnest",
    "array_position",
    "array_remove",
    "array_append",
    "generate_series",
];

/// Function name prefixes and names that stay rejected even when the
/// operator lists them in `query.allowed_functions`: they change server
/// state, wait, take locks, read files or reach other servers.
const NEVER_ALLOWED_PREFIXES: &[&str] = &[
    "set_config",
    "pg_sleep",
    "pg_advisory",
    "pg_try_advisory",
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "lo_",
    "dblink",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_notify",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "current_setting",
    "pg_file",
];

/// Schemas whose tables are system catalogs.
const CATALOG_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

/// Distinct query texts whose decision the guard remembers per detector.
/// Detectors send the same few statements every cycle, so this is plenty;
/// past it the memory is cleared and filled again.
const REMEMBERED_DECISIONS: usize = 256;

/// Checks the SQL of one detector against its declared tables and the
/// operator's settings.
#[derive(Debug)]
pub struct QueryGuard {
    declared: BTreeSet<String>,
    allowed: BTreeSet<String>,
    extra_functions: BTreeSet<String>,
    /// Decisions by query text: parsing costs tens of microseconds, and a
    /// decision depends only on the text and the settings above.
    decisions: std::sync::Mutex<HashMap<String, Result<(), QueryError>>>,
}

impl QueryGuard {
    /// Creates the guard of one detector.
    pub fn new(declared_tables: &[String], settings: &QuerySettings) -> QueryGuard {
        QueryGuard {
            declared: declared_tables.iter().map(|t| normalize_table(t)).collect(),
            allowed: settings
                .allowed_tables
                .iter()
                .map(|t| normalize_table(t))
                .collect(),
            extra_functions: settings.extra_functions.clone(),
            decisions: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Checks one statement. The error is `denied` for a rule the statement
    /// breaks and `invalid` for text that is not SQL.
    pub fn check(&self, sql: &str) -> Result<(), QueryError> {
        if sql.len() <= MAX_SQL_BYTES {
            let decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(decision) = decisions.get(sql) {
                return decision.clone();
            }
        }
        let decision = self.decide(sql);
        if sql.len() <= MAX_SQL_BYTES {
            let mut decisions = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
            if decisions.len() >= REMEMBERED_DECISIONS {
                decisions.clear();
            }
            decisions.insert(sql.to_string(), decision.clone());
        }
        decision
    }

    fn decide(&self, sql: &str) -> Result<(), QueryError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(QueryError::Denied(format!(
                "the query text is {} bytes; the limit is {MAX_SQL_BYTES}",
                sql.len()
            )));
        }
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .map_err(|error| QueryError::Invalid(format!("cannot parse the query: {error}")))?;
        let statement = match statements.as_slice() {
            [statement] => statement,
            [] => return Err(QueryError::Denied("the query text has no statement".into())),
            more => {
                return Err(QueryError::Denied(format!(
                    "the query text has {} statements; send exactly one SELECT per query",
                    more.len()
                )))
            }
        };
        let Statement::Query(query) = statement else {
            return Err(QueryError::Denied(format!(
                "only SELECT is allowed, not {}",
                statement_kind(statement)
            )));
        };

        let mut walker = Walker {
            guard: self,
            scopes: vec![BTreeSet::new()],
            cte_scopes: HashMap::new(),
            function_tables: BTreeSet::new(),
        };
        match query.visit(&mut walker) {
            ControlFlow::Break(reason) => Err(QueryError::Denied(reason)),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    /// Checks a table reference, already folded as PostgreSQL folds it.
    fn check_table(&self, name: &str) -> Result<(), String> {
        let table = name.strip_prefix("public.").unwrap_or(name).to_string();
        if is_catalog(&table) {
            return Err(format!(
                "system catalog `{table}` is never readable by a detector"
            ));
        }
        if !self.declared.contains(&table) {
            return Err(format!(
                "table `{table}` is not declared by this plugin; a detector may read only the \
                 tables its describe() lists (declared: {})",
                join_or_none(&self.declared)
            ));
        }
        if !self.allowed.contains(&table) {
            return Err(format!(
                "table `{table}` is not in the operator's allow list; add it to \
                 query.allowed_tables in the configuration file to allow it"
            ));
        }
        Ok(())
    }

    fn check_function(&self, name: &str) -> Result<(), String> {
        if NEVER_ALLOWED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            return Err(format!(
                "function `{name}` is never allowed: it changes server state, waits, locks, \
                 or reads outside the allowed tables"
            ));
        }
        if name.starts_with("pg_") && !self.extra_functions.contains(name) {
            return Err(format!(
                "function `{name}` is not allowed; add it to query.allowed_functions in the \
                 configuration file if it only computes from its arguments"
            ));
        }
        if ALLOWED_FUNCTIONS.contains(&name) || self.extra_functions.contains(name) {
            return Ok(());
        }
        Err(format!(
            "function `{name}` is not on the allow list; add it to query.allowed_functions in \
             the configuration file to allow it"
        ))
    }
}

/// Folds a table name as PostgreSQL folds an unquoted one, and drops the
/// default `public.` schema so that both spellings match.
fn normalize_table(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    match name.strip_prefix("public.") {
        Some(rest) => rest.to_string(),
        None => name,
    }
}

fn is_catalog(table: &str) -> bool {
    let (schema, relation) = match table.split_once('.') {
        Some((schema, relation)) => (Some(schema), relation),
        None => (None, table),
    };
    relation.starts_with("pg_")
        || schema
            .is_some_and(|schema| CATALOG_SCHEMAS.contains(&schema) || schema.starts_with("pg_"))
}

fn join_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_string()
    } else {
        set.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Renders an object name the way PostgreSQL resolves it: unquoted parts
/// lower-cased, quoted parts kept.
fn object_name(name: &ObjectName) -> Result<String, String> {
    let mut parts = Vec::with_capacity(name.0.len());
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(ident) => {
                if ident.quote_style.is_some() {
                    parts.push(ident.value.clone());
                } else {
                    parts.push(ident.value.to_ascii_lowercase());
                }
            }
            ObjectNamePart::Function(_) => {
                return Err(format!("the name `{name}` is not a plain identifier"));
            }
        }
    }
    Ok(parts.join("."))
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let word: String = text.split_whitespace().take(1).collect();
    if word.is_empty() {
        "this statement".to_string()
    } else {
        word.to_ascii_uppercase()
    }
}

/// Walks one statement. CTE names are visible only where PostgreSQL makes
/// them visible, so a CTE cannot be used to hide a reference to a real table
/// of the same name.
struct Walker<'a> {
    guard: &'a QueryGuard,
    /// CTE names visible in the query being walked, innermost last.
    scopes: Vec<BTreeSet<String>>,
    /// For each CTE's query (by address), the CTE names visible inside it.
    cte_scopes: HashMap<*const Query, BTreeSet<String>>,
    /// Names in `FROM` that are table functions, not tables (by address).
    function_tables: BTreeSet<*const ObjectName>,
}

impl Walker<'_> {
    fn visible_ctes(&self) -> &BTreeSet<String> {
        self.scopes.last().expect("the walker always has a scope")
    }
}

impl Visitor for Walker<'_> {
    type Break = String;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(
                "FOR UPDATE and FOR SHARE take row locks; detectors may not lock rows".into(),
            );
        }
        if let SetExpr::Table(_) = query.body.as_ref() {
            return ControlFlow::Break(
                "write `SELECT * FROM table` instead of `TABLE table`".into(),
            );
        }

        let outer = self
            .cte_scopes
            .remove(&(query as *const Query))
            .unwrap_or_else(|| self.visible_ctes().clone());
        let mut body_scope = outer.clone();
        if let Some(with) = &query.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|cte| fold_ident(&cte.alias.name))
                .collect();
            for (index, cte) in with.cte_tables.iter().enumerate() {
                // In WITH RECURSIVE every CTE sees all of them; otherwise a
                // CTE sees only the ones before it.
                let visible_names = if with.recursive {
                    &names[..]
                } else {
                    &names[..index]
                };
                let mut scope = outer.clone();
                scope.extend(visible_names.iter().cloned());
                self.cte_scopes
                    .insert(cte.query.as_ref() as *const Query, scope);
            }
            body_scope.extend(names);
        }
        self.scopes.push(body_scope);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &sqlparser::ast::Select) -> ControlFlow<String> {
        if select.into.is_some() {
            return ControlFlow::Break("SELECT … INTO creates a table; detectors may not".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<String> {
        // Statements nested in a query are data-modifying CTEs.
        ControlFlow::Break(format!(
            "{} inside a query modifies data; detectors are read-only",
            statement_kind(statement)
        ))
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                let function = match object_name(name) {
                    Ok(function) => function,
                    Err(reason) => return ControlFlow::Break(reason),
                };
                let bare = function.rsplit('.').next().unwrap_or(&function).to_string();
                if let Err(reason) = self.guard.check_function(&bare) {
                    return ControlFlow::Break(reason);
                }
                self.function_tables.insert(name as *const ObjectName);
                ControlFlow::Continue(())
            }
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::TableFunction { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            TableFactor::Function { name, .. } => {
                let function = match object_name(name) {
                    Ok(function) => function,
                    Err(reason) => return ControlFlow::Break(reason),
                };
                let bare = function.rsplit('.').next().unwrap_or(&function).to_string();
                match self.guard.check_function(&bare) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(reason) => ControlFlow::Break(reason),
                }
            }
            other => ControlFlow::Break(format!(
                "the FROM item `{other}` is not supported by the query guard"
            )),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<String> {
        if self
            .function_tables
            .contains(&(relation as *const ObjectName))
        {
            return ControlFlow::Continue(());
        }
        let name = match object_name(relation) {
            Ok(name) => name,
            Err(reason) => return ControlFlow::Break(reason),
        };
        if !name.contains('.') && self.visible_ctes().contains(&name) {
            return ControlFlow::Continue(());
        }
        match self.guard.check_table(&name) {
            Ok(()) => ControlFlow::Continue(()),
            Err(reason) => ControlFlow::Break(reason),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let name = match object_name(&function.name) {
            Ok(name) => name,
            Err(reason) => return ControlFlow::Break(reason),
        };
        let bare = match name.split_once('.') {
            Some(("pg_catalog", bare)) => bare.to_string(),
            Some(_) => {
                return ControlFlow::Break(format!(
                    "function `{name}` is in another schema; detectors may call only built-in \
                     functions"
                ))
            }
            None => name,
        };
        match self.guard.check_function(&bare) {
            Ok(()) => ControlFlow::Continue(()),
            Err(reason) => ControlFlow::Break(reason),
        }
    }
}

fn fold_ident(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests;
