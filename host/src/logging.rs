//! Log output: every line to stderr and to the log file, in the
//! federation's format.
//!
//! A line reads `2026-02-18 14:03:07,512 [TPM-AUTO] INFO message key=value`:
//! local time with milliseconds after a comma, Python's level names, a fixed
//! message, then the event's fields and the fields of its spans (`cycle`,
//! `plugin`). The log file is opened for appending and its folder created;
//! when it cannot be opened or written, one warning goes to stderr and the
//! daemon goes on with stderr alone. [`LogHandle::reopen`] reopens it after
//! logrotate moved it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Levels when `--verbose` is off: our crate at INFO, dependencies at WARN.
const DEFAULT_FILTER: &str = "warn,tpm_autonomic=info";
/// Levels with `--verbose`.
const VERBOSE_FILTER: &str = "warn,tpm_autonomic=debug";

/// The federation's line format.
#[derive(Debug, Clone, Copy, Default)]
pub struct FederationFormat;

/// Writes an event's fields as `key=value`, logfmt style: the message as it
/// is, and a value with spaces, quotes or `=` in double quotes, so that a
/// line splits into its fields without guessing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtFields;

impl<'writer> FormatFields<'writer> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = LogfmtVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LogfmtVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl LogfmtVisitor<'_> {
    fn write(&mut self, name: &str, value: &str, already_quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value}")
        } else if already_quoted || !needs_quotes(value) {
            write!(self.writer, "{separator}{name}={value}")
        } else {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            write!(self.writer, "{separator}{name}=\"{escaped}\"")
        };
    }
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=')
}

impl tracing::field::Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.write(field.name(), value, false);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // A `?` string field is already quoted by its Debug form.
        let quoted = text.len() >= 2 && text.starts_with('"') && text.ends_with('"');
        self.write(field.name(), &text, quoted);
    }
}

/// Describes an error and its chain of causes in one line, skipping a
/// cause whose text the line already contains.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Python's name of a tracing level.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for FederationFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = chrono::Local::now();
        write!(
            writer,
            "{} [TPM-AUTO] {} ",
            now.format("%Y-%m-%d %H:%M:%S,%3f"),
            level_name(event.metadata().level())
        )?;
        let mut body = String::with_capacity(128);
        ctx.field_format()
            .format_fields(Writer::new(&mut body), event)?;

        // Span fields come after the event's own, outermost span first.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        body.push(' ');
                        body.push_str(fields);
                    }
                }
            }
        }

        // One event is one line, whatever its fields contain: a detector's
        // text cannot break the format or forge a line of its own.
        if body.contains(['\n', '\r']) {
            body = body.replace('\r', "\\r").replace('\n', "\\n");
        }
        writeln!(writer, "{body}")
    }
}

/// The log file, shared by the writer and the handle that reopens it.
struct LogFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// Set once a write failure was reported, so it is reported once.
    write_failed: AtomicBool,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<File> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn write_line(&self, bytes: &[u8]) {
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(file) = guard.as_mut() else {
            return;
        };
        if let Err(error) = file.write_all(bytes) {
            if !self.write_failed.swap(true, Ordering::Relaxed) {
                // The log itself cannot carry this, so it goes to stderr
                // directly, in the same format.
                eprintln!(
                    "{} [TPM-AUTO] WARNING cannot write the log file; logging to stderr only \
                     file={} error={error}",
                    chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f"),
                    self.path.display()
                );
            }
        }
    }
}

/// A writer of one formatted line into the log file.
pub struct LogFileWriter {
    file: Arc<LogFile>,
    buffer: Vec<u8>,
}

impl Write for LogFileWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogFileWriter {
    fn drop(&mut self) {
        // One write per line, so lines from different threads never mix.
        if !self.buffer.is_empty() {
            self.file.write_line(&self.buffer);
        }
    }
}

#[derive(Clone)]
struct MakeLogFileWriter(Arc<LogFile>);

impl<'a> MakeWriter<'a> for MakeLogFileWriter {
    type Writer = LogFileWriter;

    fn make_writer(&'a self) -> LogFileWriter {
        LogFileWriter {
            file: self.0.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Controls the log file after start-up.
#[derive(Clone)]
pub struct LogHandle {
    file: Arc<LogFile>,
}

impl LogHandle {
    /// Reopens the log file at its path, for logrotate. On failure the old
    /// file stays in use and the error is returned.
    pub fn reopen(&self) -> std::io::Result<()> {
        let file = LogFile::open(&self.file.path)?;
        let mut guard = self
            .file
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Some(file);
        self.file.write_failed.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes the log file to disk.
    pub fn flush(&self) {
        let guard = self
            .file
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(file) = guard.as_ref() {
            let _ = file.sync_data();
        }
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Installs the global subscriber: stderr and the log file, with the
/// default levels or those of `TPM_LOG`. A log file that cannot be opened
/// is reported once, after which the daemon logs to stderr alone.
pub fn init(verbose: bool, log_file: &Path, filter_override: Option<&str>) -> LogHandle {
    let (file, open_error) = match LogFile::open(log_file) {
        Ok(file) => (Some(file), None),
        Err(error) => (None, Some(error)),
    };
    let shared = Arc::new(LogFile {
        path: log_file.to_path_buf(),
        file: Mutex::new(file),
        write_failed: AtomicBool::new(false),
    });

    let default = if verbose {
        VERBOSE_FILTER
    } else {
        DEFAULT_FILTER
    };
    let (filter, filter_error) = match filter_override {
        Some(directives) => match EnvFilter::try_new(directives) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(default), Some(error)),
        },
        None => (EnvFilter::new(default), None),
    };

    let stderr_layer = tracing_subscriber::fmt::layer()
        .fmt_fields(LogfmtFields)
        .event_format(FederationFormat)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    let file_layer = tracing_subscriber::fmt::layer()
        .fmt_fields(LogfmtFields)
        .event_format(FederationFormat)
        .with_ansi(false)
        .with_writer(MakeLogFileWriter(shared.clone()));
    // A second init (in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(file_layer)
        .try_init();

    if let Some(error) = open_error {
        tracing::warn!(
            file = %log_file.display(),
            error = %error,
            "cannot open the log file; logging to stderr only (set --log-file or TPM_LOG_FILE \
             to a writable path)"
        );
    }
    if let Some(error) = filter_error {
        tracing::warn!(
            variable = %crate::config::env::LOG_FILTER,
            error = %error,
            "invalid log filter ignored; using the default levels"
        );
    }
    LogHandle { file: shared }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_spaces_are_quoted() {
        assert!(needs_quotes("7 failed tasks"));
        assert!(needs_quotes("a=b"));
        assert!(needs_quotes(""));
        assert!(!needs_quotes("dlq-depth"));
        assert!(!needs_quotes("0.7"));
    }

    #[test]
    fn error_chain_skips_repeated_causes() {
        let inner = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(format!("cannot connect: {inner}"));
        assert_eq!(error_chain(&outer), "cannot connect: connection refused");
    }
}
