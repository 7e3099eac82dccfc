//! One call into a detector: a fresh store with its limits, the host side of
//! the `query` and `log` imports, and the translation of whatever happened
//! into a result or a [`CallFailure`].
//!
//! A store is never reused: a store that trapped cannot be entered again,
//! and a reused store would carry one cycle's memory into the next.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Breach, CallLimiter, Limits};
use crate::contract::{self, Level, QueryResult, SqlValue};
use crate::db::Database;
use crate::query::guard::QueryGuard;
use crate::query::{execute, QueryError, QuerySettings};

/// Bytes of a detector's stderr kept for the log (a Rust panic message goes
/// there before the trap).
const STDERR_CAPACITY: usize = 16 * 1024;

/// Longest query text shown in a debug line, in characters.
const LOGGED_SQL_CHARS: usize = 160;

/// What a detector call may use of the database.
#[derive(Clone)]
pub struct QueryAccess {
    /// The database.
    pub database: Database,
    /// Operator settings of the query capability.
    pub settings: Arc<QuerySettings>,
    /// The detector's guard.
    pub guard: Arc<QueryGuard>,
}

/// Counters of one call, for the log and the conformance report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Queries the detector made, accepted or not.
    pub queries: u64,
    /// Queries the guard rejected.
    pub denied: u64,
    /// Rows returned to the detector.
    pub rows: u64,
    /// Log lines dropped past the limit.
    pub dropped_log_lines: u64,
    /// Highest linear memory in use, in bytes.
    pub peak_memory: u64,
}

/// The store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    limits: Arc<Limits>,
    query: Option<QueryAccess>,
    stats: CallStats,
    log_lines: u64,
    started: Instant,
    deadline_passed: bool,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl contract::tpm::autonomic::types::Host for CallState {}

impl contract::tpm::autonomic::query::Host for CallState {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> wasmtime::Result<Result<QueryResult, contract::QueryError>> {
        self.stats.queries += 1;
        let result = self.run_query(&sql, &params).await;
        Ok(result.map_err(|error| to_contract_error(&error)))
    }
}

impl contract::tpm::autonomic::log::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > self.limits.log_lines {
            if self.log_lines == self.limits.log_lines + 1 {
                tracing::warn!(
                    limit = self.limits.log_lines,
                    "plugin log limit reached; later lines of this call are dropped (setting limits.log_lines)"
                );
            }
            self.stats.dropped_log_lines += 1;
            return Ok(());
        }
        // The message is the plugin's own text; the caller's span names the
        // plugin.
        let message = one_line(&truncate_chars(
            &message,
            self.limits.summary_bytes as usize,
        ));
        match level {
            Level::Debug => tracing::debug!(target: "tpm_autonomic::plugin", "{message}"),
            Level::Info => tracing::info!(target: "tpm_autonomic::plugin", "{message}"),
            Level::Warning => tracing::warn!(target: "tpm_autonomic::plugin", "{message}"),
            Level::Error => tracing::error!(target: "tpm_autonomic::plugin", "{message}"),
        }
        Ok(())
    }
}

impl CallState {
    /// Creates the state of one call, with WASI that grants nothing: no
    /// files, no environment, no arguments, no network, and a captured
    /// stderr.
    pub fn new(limits: Arc<Limits>, query: Option<QueryAccess>) -> (CallState, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(&limits),
            limits,
            query,
            stats: CallStats::default(),
            log_lines: 0,
            started: Instant::now(),
            deadline_passed: false,
        };
        (state, stderr)
    }

    /// The call's counters, with the peak memory filled in.
    pub fn stats(&self) -> CallStats {
        CallStats {
            peak_memory: self.limiter.peak_memory,
            ..self.stats.clone()
        }
    }

    async fn run_query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<QueryResult, QueryError> {
        let Some(access) = self.query.clone() else {
            return Err(QueryError::Unavailable(
                "the database is not available while a plugin is being loaded".into(),
            ));
        };
        if self.stats.queries > self.limits.queries {
            return Err(QueryError::TooLarge(format!(
                "more than {} queries in one call (setting limits.queries)",
                self.limits.queries
            )));
        }

        if let Err(error) = access.guard.check(sql) {
            self.stats.denied += 1;
            // One line per plugin and cycle; the count goes in the report.
            if self.stats.denied == 1 {
                tracing::warn!(
                    sql = %short_sql(sql),
                    reason = %error,
                    "query rejected by the guard"
                );
            }
            return Err(error);
        }

        let started = Instant::now();
        let limits = execute::ResultLimits {
            rows: self.limits.rows,
            bytes: self.limits.result_bytes,
        };
        let result = execute::run(&access.database, &access.settings, sql, params, limits).await;
        match &result {
            Ok(rows) => {
                self.stats.rows += rows.rows.len() as u64;
                tracing::debug!(
                    sql = %short_sql(sql),
                    rows = rows.rows.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "query"
                );
            }
            Err(error) => tracing::warn!(
                sql = %short_sql(sql),
                kind = %error.kind(),
                error = %error,
                "query failed"
            ),
        }
        result
    }
}

fn to_contract_error(error: &QueryError) -> contract::QueryError {
    match error.clone() {
        QueryError::Denied(detail) => contract::QueryError::Denied(detail),
        QueryError::TimedOut(detail) => contract::QueryError::TimedOut(detail),
        QueryError::Unavailable(detail) => contract::QueryError::Unavailable(detail),
        QueryError::Invalid(detail) => contract::QueryError::Invalid(detail),
        QueryError::TooLarge(detail) => contract::QueryError::TooLarge(detail),
    }
}

/// Collapses runs of white space, line breaks included, into single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A query's text for a log line: one line, shortened.
fn short_sql(sql: &str) -> String {
    truncate_chars(&one_line(sql), LOGGED_SQL_CHARS)
}

/// Shortens text to at most `max` characters, marking the cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Why one call into a detector failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The call ran past `limits.deadline`.
    Deadline {
        /// The limit.
        limit: Duration,
    },
    /// A memory or table limit was refused, and the guest failed because of
    /// it.
    Limit(Breach),
    /// The guest trapped: a panic, `unreachable`, a stack overflow, …
    Trap {
        /// The trap in words.
        reason: String,
        /// The guest's stderr, such as a Rust panic message.
        stderr: String,
    },
    /// The detector returned an error of its own.
    Detector(String),
    /// The detector returned something the host does not accept.
    Malformed(String),
    /// The host could not set up the call.
    Host(String),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Deadline { limit } => write!(
                f,
                "deadline exceeded: the call ran longer than {} ms (setting limits.deadline)",
                limit.as_millis()
            ),
            CallFailure::Limit(breach) => breach.fmt(f),
            CallFailure::Trap { reason, stderr } if stderr.is_empty() => {
                write!(f, "trapped: {reason}")
            }
            CallFailure::Trap { reason, stderr } => write!(f, "trapped: {reason}: {stderr}"),
            CallFailure::Detector(message) => write!(f, "detector error: {message}"),
            CallFailure::Malformed(message) => write!(f, "rejected result: {message}"),
            CallFailure::Host(message) => write!(f, "host error: {message}"),
        }
    }
}

impl CallFailure {
    /// Short kind for log fields and the JSON report.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Deadline { .. } => "deadline",
            CallFailure::Limit(Breach::Memory { .. }) => "memory-limit",
            CallFailure::Limit(Breach::TableElements { .. }) => "table-limit",
            CallFailure::Limit(Breach::Instances { .. }) => "instance-limit",
            CallFailure::Trap { .. } => "trap",
            CallFailure::Detector(_) => "detector-error",
            CallFailure::Malformed(_) => "rejected-result",
            CallFailure::Host(_) => "host-error",
        }
    }
}

/// Creates a store for one call, with its limits and deadline.
pub fn new_store(
    engine: &wasmtime::Engine,
    state: CallState,
    deadline: Duration,
) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    // The guest yields to the executor on every epoch tick, so a busy loop
    // never holds a worker thread, and traps once the deadline has passed.
    store.epoch_deadline_callback(move |mut context| {
        if context.data().started.elapsed() >= deadline {
            context.data_mut().deadline_passed = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    store
}

/// Time allowed for a call future: the deadline plus two epoch ticks. The
/// epoch callback catches guest code that computes; this timer catches a
/// guest that waits in a host call.
pub fn wall_limit(deadline: Duration) -> Duration {
    deadline + super::engine::EPOCH_TICK * 2
}

/// Turns the outcome of a call future, run under [`wall_limit`], into a
/// value or a [`CallFailure`].
pub fn classify<T>(
    outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    store: &Store<CallState>,
    stderr: &MemoryOutputPipe,
    deadline: Duration,
) -> Result<T, CallFailure> {
    let error = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(error)) => error,
        Err(_) => return Err(CallFailure::Deadline { limit: deadline }),
    };

    let state = store.data();
    if state.deadline_passed {
        return Err(CallFailure::Deadline { limit: deadline });
    }
    if let Some(breach) = &state.limiter.breach {
        return Err(CallFailure::Limit(breach.clone()));
    }
    let text = error.to_string();
    if text.contains("resource limit exceeded") && text.contains("count too high") {
        return Err(CallFailure::Limit(Breach::Instances {
            limit: state.limits.instances,
        }));
    }
    let stderr = describe_stderr(&String::from_utf8_lossy(&stderr.contents()));
    match error.downcast_ref::<Trap>() {
        Some(trap) => Err(CallFailure::Trap {
            reason: describe_trap(*trap),
            stderr,
        }),
        None => Err(CallFailure::Trap {
            reason: first_line(&error.to_string()),
            stderr,
        }),
    }
}

/// Turns a guest's stderr into one line for the log: a Rust panic becomes
/// `panicked at FILE:LINE: MESSAGE`, other text is joined and shortened.
fn describe_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let text = match lines.split_first() {
        Some((first, rest)) if first.starts_with("thread ") && first.contains(" panicked at ") => {
            let location = first
                .split(" panicked at ")
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches(':');
            format!("panicked at {location}: {}", rest.join(" "))
        }
        _ => lines.join(" "),
    };
    truncate_chars(&text, 1_000)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

fn describe_trap(trap: Trap) -> String {
    match trap {
        Trap::StackOverflow => {
            "stack overflow: the plugin recursed deeper than the stack limit (setting limits.stack)"
                .into()
        }
        Trap::UnreachableCodeReached => {
            "the plugin reached `unreachable` (a Rust panic or abort ends this way)".into()
        }
        Trap::MemoryOutOfBounds => "out-of-bounds memory access".into(),
        Trap::IntegerDivisionByZero => "integer division by zero".into(),
        Trap::Interrupt => "interrupted".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_becomes_one_line() {
        let stderr = "thread '<unnamed>' (1) panicked at panic-detector/src/lib.rs:21:9:\n\
                      fixture panic: deliberate\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            describe_stderr(stderr),
            "panicked at panic-detector/src/lib.rs:21:9: fixture panic: deliberate"
        );
    }

    #[test]
    fn other_stderr_is_joined() {
        assert_eq!(describe_stderr("first\n\n  second  \n"), "first second");
        assert_eq!(describe_stderr(""), "");
    }
}
