//! Resolution of the daemon's configuration.
//!
//! Sources, strongest first: command-line options, environment variables,
//! the secrets file (read like environment variables), the configuration
//! file, built-in defaults. Resolution reads files and variables and
//! validates every value before anything is started, so an invalid value
//! never leaves a half-started daemon; each error names the value's source
//! and how to fix it.

pub mod env;
pub mod file;
pub mod secrets;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::cli::{Cli, ReportFormat};
use crate::plugin::limits::Limits;
use crate::query::QuerySettings;
use env::EnvMap;
use file::{DurationValue, FileConfig, SizeValue};

/// Default time between cycles.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Default log file, as the federation's other daemons use.
pub const DEFAULT_LOG_FILE: &str = "/ganuda/logs/tpm_autonomic.log";
/// Default plugins folder, relative to the working directory.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";
/// Default base URL of the Telegram Bot API.
pub const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";

/// A value that must never be printed: its `Debug` and `Display` show a
/// placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// Origin of a setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line option, such as `--interval`.
    Flag(&'static str),
    /// An environment variable.
    Env(String),
    /// A line of the secrets file.
    SecretsFile(String),
    /// A key of the configuration file, such as `limits.memory`.
    File(String),
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "option {flag}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::SecretsFile(name) => write!(f, "secrets file entry {name}"),
            Source::File(key) => write!(f, "configuration file key {key}"),
            Source::Default => f.write_str("built-in default"),
        }
    }
}

/// An invalid or unreadable configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A value could not be parsed or is out of range.
    #[error("invalid {origin} value {value:?}: {reason}")]
    Invalid {
        /// Origin of the value.
        origin: Source,
        /// The value, or a placeholder for a secret.
        value: String,
        /// The problem and its fix.
        reason: String,
    },
    /// A required combination of values is missing.
    #[error("{0}")]
    Missing(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has an unknown key.
    #[error("invalid configuration file {}: {message}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The secrets file could not be read or has an invalid line.
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
}

/// Connection settings of the federation database.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// Connection parameters; its `Debug` output hides the password.
    pub pg: tokio_postgres::Config,
    /// `user@host:port/dbname`, for log lines.
    pub display: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// The password, kept apart so it can be searched for in tests.
    pub password: Option<Secret>,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("target", &self.display)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Settings of the Telegram Bot API.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// Bot token; it is part of every request URL.
    pub token: Secret,
    /// Chat that receives alerts.
    pub chat_id: String,
    /// Base URL of the Bot API, without a trailing slash.
    pub api_base: String,
    /// Time allowed for one request.
    pub timeout: Duration,
}

/// Alert delivery and repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// Time after which an unchanged basin is alerted again; zero repeats it
    /// every cycle.
    pub repeat_interval: Duration,
    /// Send a short message when an alerted basin clears.
    pub send_resolved: bool,
    /// Failed cycles in a row after which a detector is reported blind.
    pub blind_after: u32,
    /// Delivery attempts within one cycle.
    pub max_attempts: u32,
}

impl Default for AlertSettings {
    fn default() -> AlertSettings {
        AlertSettings {
            repeat_interval: Duration::from_secs(4 * 3600),
            send_resolved: true,
            blind_after: 3,
            max_attempts: 4,
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Run one cycle and exit.
    pub once: bool,
    /// Log at DEBUG level.
    pub verbose: bool,
    /// Print alerts and records instead of sending and writing them.
    pub dry_run: bool,
    /// Report format for `--once`.
    pub format: ReportFormat,
    /// Time between the starts of two cycles.
    pub interval: Duration,
    /// Plugins folder.
    pub plugins_dir: PathBuf,
    /// Log file.
    pub log_file: PathBuf,
    /// Folder of the compiled-plugin cache; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Folder where the daemon keeps state across restarts.
    pub state_dir: Option<PathBuf>,
    /// Detectors that run at the same time.
    pub concurrency: usize,
    /// Name of the deployment: daemons with the same name and database
    /// share one leadership lock and one alert state.
    pub deployment: String,
    /// Load plugins from a folder or files that other users can write.
    pub allow_writable_plugins: bool,
    /// Database connection.
    pub database: DatabaseConfig,
    /// Telegram, or why it is not configured.
    pub telegram: Result<TelegramConfig, String>,
    /// Alert delivery and repetition.
    pub alerts: AlertSettings,
    /// Sandbox limits of one detector call.
    pub limits: Limits,
    /// Query guard and database limits.
    pub query: QuerySettings,
    /// `[plugins.<name>]` settings from the configuration file.
    pub plugin_settings: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Origin of each setting, for the debug log.
    pub sources: Vec<(&'static str, Source)>,
}

/// Resolves the configuration from the command line, the environment
/// (the secrets file already merged in) and the configuration file.
pub fn resolve(cli: &Cli, env: &EnvMap) -> Result<Config, ConfigError> {
    let file = match &cli.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let mut sources = Vec::new();

    let interval = resolve_interval(cli, env, &file, &mut sources)?;
    let plugins_dir = pick_path(
        cli.plugins_dir.as_ref(),
        Source::Flag("--plugins-dir"),
        file.plugins_dir.as_ref(),
        "plugins_dir",
        PathBuf::from(DEFAULT_PLUGINS_DIR),
        ("plugins_dir", &mut sources),
    );
    let log_file = pick_path(
        cli.log_file.as_ref(),
        Source::Flag("--log-file"),
        file.log_file.as_ref(),
        "log_file",
        PathBuf::from(DEFAULT_LOG_FILE),
        ("log_file", &mut sources),
    );
    let cache_dir = env
        .get(env::CACHE_DIR)
        .map(PathBuf::from)
        .or_else(|| file.cache_dir.clone())
        .or_else(|| default_cache_dir(env));
    let state_dir = env
        .get(env::STATE_DIR)
        .map(PathBuf::from)
        .or_else(|| file.state_dir.clone())
        .or_else(|| default_state_dir(env));

    let deployment = file
        .deployment
        .clone()
        .unwrap_or_else(|| "tpm-autonomic".into());
    let valid_name = !deployment.is_empty()
        && deployment.len() <= 64
        && deployment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(invalid_file(
            "deployment",
            &deployment,
            "use 1 to 64 letters, digits, '-' and '_'",
        ));
    }
    let concurrency = file.concurrency.unwrap_or(4);
    if concurrency == 0 {
        return Err(invalid_file("concurrency", "0", "must be at least 1"));
    }

    Ok(Config {
        once: cli.once,
        verbose: cli.verbose,
        dry_run: cli.dry_run || file.dry_run.unwrap_or(false),
        format: cli.format,
        interval,
        plugins_dir,
        log_file,
        cache_dir,
        state_dir,
        concurrency,
        deployment,
        allow_writable_plugins: file.allow_writable_plugins.unwrap_or(false),
        database: resolve_database(env, &file, &mut sources)?,
        telegram: resolve_telegram(env, &file)?,
        alerts: resolve_alerts(&file)?,
        limits: resolve_limits(&file)?,
        query: resolve_query(&file)?,
        plugin_settings: file.plugins,
        sources,
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|error| ConfigError::ParseFile {
        path: path.to_path_buf(),
        message: error.to_string().trim_end().to_string(),
    })
}

fn resolve_interval(
    cli: &Cli,
    env: &EnvMap,
    file: &FileConfig,
    sources: &mut Vec<(&'static str, Source)>,
) -> Result<Duration, ConfigError> {
    // clap fills `cli.interval` from the option or the real environment; the
    // secrets file is only in `env`.
    // An empty TPM_POLL_INTERVAL reaches `cli.interval` as an empty text;
    // like every empty variable, it counts as unset.
    let (text, source) = if let Some(text) = cli.interval.as_ref().filter(|t| !t.trim().is_empty())
    {
        let source = match env.entry(env::POLL_INTERVAL) {
            Some(entry) if !entry.from_secrets_file && entry.value == *text => {
                Source::Env(env::POLL_INTERVAL.into())
            }
            _ => Source::Flag("--interval"),
        };
        (text.clone(), source)
    } else if let Some(entry) = env.entry(env::POLL_INTERVAL) {
        (
            entry.value.clone(),
            env_source(env::POLL_INTERVAL, entry.from_secrets_file),
        )
    } else if let Some(value) = &file.interval {
        let interval = file_duration(value, "interval")?;
        sources.push(("interval", Source::File("interval".into())));
        return check_interval(interval, Source::File("interval".into()), value_text(value));
    } else {
        sources.push(("interval", Source::Default));
        return Ok(DEFAULT_INTERVAL);
    };

    let seconds = parse_seconds(&text).map_err(|reason| ConfigError::Invalid {
        origin: source.clone(),
        value: text.clone(),
        reason,
    })?;
    sources.push(("interval", source.clone()));
    check_interval(seconds, source, text)
}

fn check_interval(
    interval: Duration,
    source: Source,
    text: String,
) -> Result<Duration, ConfigError> {
    if interval < Duration::from_millis(1) {
        return Err(ConfigError::Invalid {
            origin: source,
            value: text,
            reason: "the interval must be at least 0.001 seconds; the default is 300".into(),
        });
    }
    Ok(interval)
}

/// Parses a number of seconds, such as `300` or `0.5`, or a duration with a
/// unit, such as `5m`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| "expected zero or more seconds, such as 300".to_string()),
        Err(_) => humantime::parse_duration(text).map_err(|_| {
            "expected a number of seconds, such as 300, or a duration such as 5m".to_string()
        }),
    }
}

fn env_source(name: &str, from_secrets_file: bool) -> Source {
    if from_secrets_file {
        Source::SecretsFile(name.into())
    } else {
        Source::Env(name.into())
    }
}

fn pick_path(
    flag_or_env: Option<&PathBuf>,
    flag_source: Source,
    file_value: Option<&PathBuf>,
    file_key: &str,
    default: PathBuf,
    (name, sources): (&'static str, &mut Vec<(&'static str, Source)>),
) -> PathBuf {
    if let Some(path) = flag_or_env {
        sources.push((name, flag_source));
        path.clone()
    } else if let Some(path) = file_value {
        sources.push((name, Source::File(file_key.into())));
        path.clone()
    } else {
        sources.push((name, Source::Default));
        default
    }
}

fn default_cache_dir(env: &EnvMap) -> Option<PathBuf> {
    // systemd sets CACHE_DIRECTORY for units with CacheDirectory=.
    if let Some(dir) = env.get("CACHE_DIRECTORY") {
        return Some(PathBuf::from(dir.split(':').next().unwrap_or(dir)));
    }
    if let Some(dir) = env.get("XDG_CACHE_HOME") {
        return Some(Path::new(dir).join("tpm-autonomic"));
    }
    env.get("HOME")
        .map(|home| Path::new(home).join(".cache/tpm-autonomic"))
}

fn default_state_dir(env: &EnvMap) -> Option<PathBuf> {
    // systemd sets STATE_DIRECTORY for units with StateDirectory=.
    if let Some(dir) = env.get("STATE_DIRECTORY") {
        return Some(PathBuf::from(dir.split(':').next().unwrap_or(dir)));
    }
    if let Some(dir) = env.get("XDG_STATE_HOME") {
        return Some(Path::new(dir).join("tpm-autonomic"));
    }
    env.get("HOME")
        .map(|home| Path::new(home).join(".local/state/tpm-autonomic"))
}

fn resolve_database(
    env: &EnvMap,
    file: &FileConfig,
    sources: &mut Vec<(&'static str, Source)>,
) -> Result<DatabaseConfig, ConfigError> {
    let section = &file.database;
    let mut pg = if let Some(entry) = env.entry(env::DATABASE_URL) {
        sources.push((
            "database url",
            env_source(env::DATABASE_URL, entry.from_secrets_file),
        ));
        parse_database_url(
            &entry.value,
            env_source(env::DATABASE_URL, entry.from_secrets_file),
        )?
    } else if let Some(url) = &section.url {
        sources.push(("database url", Source::File("database.url".into())));
        parse_database_url(url, Source::File("database.url".into()))?
    } else {
        tokio_postgres::Config::new()
    };

    // As libpq does, variables fill in what the URL leaves out.
    if pg.get_hosts().is_empty() {
        let (host, source) = lookup(env, env::PGHOST, env::CHEROKEE_DB_HOST)
            .or_else(|| {
                section
                    .host
                    .clone()
                    .map(|h| (h, Source::File("database.host".into())))
            })
            .unwrap_or_else(|| ("localhost".into(), Source::Default));
        sources.push(("database host", source));
        pg.host(&host);
    }
    if pg.get_ports().is_empty() {
        let port = match lookup(env, env::PGPORT, env::CHEROKEE_DB_PORT) {
            Some((text, source)) => {
                let port = text
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| ConfigError::Invalid {
                        origin: source.clone(),
                        value: text.clone(),
                        reason: "expected a TCP port number from 1 to 65535, such as 5432".into(),
                    })?;
                sources.push(("database port", source));
                port
            }
            None => section.port.unwrap_or(5432),
        };
        pg.port(port);
    }
    if pg.get_user().is_none() {
        let (user, source) = lookup(env, env::PGUSER, env::CHEROKEE_DB_USER)
            .or_else(|| {
                section
                    .user
                    .clone()
                    .map(|u| (u, Source::File("database.user".into())))
            })
            .or_else(|| {
                env.get("USER")
                    .map(|u| (u.to_string(), Source::Env("USER".into())))
            })
            .unwrap_or_else(|| ("postgres".into(), Source::Default));
        sources.push(("database user", source));
        pg.user(&user);
    }
    if pg.get_dbname().is_none() {
        let dbname = lookup(env, env::PGDATABASE, env::CHEROKEE_DB_NAME)
            .map(|(name, source)| {
                sources.push(("database name", source));
                name
            })
            .or_else(|| section.dbname.clone())
            .unwrap_or_else(|| pg.get_user().unwrap_or("postgres").to_string());
        pg.dbname(&dbname);
    }
    if pg.get_password().is_none() {
        if let Some((password, source)) = lookup(env, env::PGPASSWORD, env::CHEROKEE_DB_PASS) {
            sources.push(("database password", source));
            pg.password(password);
        }
    }

    let connect_timeout = match &section.connect_timeout {
        Some(value) => file_duration(value, "database.connect_timeout")?,
        None => Duration::from_secs(10),
    };
    pg.connect_timeout(connect_timeout);
    // The daemon's own statements (thermal records, alert state) must not
    // hang on a lock or a stuck server either; detector queries set their
    // own, shorter limits per transaction.
    let statement_timeout = match &section.statement_timeout {
        Some(value) => file_duration(value, "database.statement_timeout")?,
        None => Duration::from_secs(30),
    };
    if statement_timeout < Duration::from_millis(1) {
        return Err(invalid_file(
            "database.statement_timeout",
            "0",
            "must be at least 1ms",
        ));
    }
    let millis = statement_timeout.as_millis();
    pg.options(&format!(
        "-c statement_timeout={millis} -c lock_timeout={millis}"
    ));
    pg.application_name("tpm-autonomic");
    // Keepalives notice a peer that vanished without closing the socket,
    // such as a database host that lost power.
    pg.keepalives(true);
    pg.keepalives_idle(Duration::from_secs(60));

    let pool_size = section.pool_size.unwrap_or(4);
    if pool_size == 0 {
        return Err(invalid_file(
            "database.pool_size",
            "0",
            "must be at least 1",
        ));
    }

    let password = pg
        .get_password()
        .map(|p| Secret::new(String::from_utf8_lossy(p)));
    Ok(DatabaseConfig {
        display: describe_target(&pg),
        pg,
        pool_size,
        password,
    })
}

/// Looks up a libpq variable, then its federation alias.
fn lookup(env: &EnvMap, name: &str, alias: &str) -> Option<(String, Source)> {
    for variable in [name, alias] {
        if let Some(entry) = env.entry(variable) {
            return Some((
                entry.value.clone(),
                env_source(variable, entry.from_secrets_file),
            ));
        }
    }
    None
}

fn parse_database_url(url: &str, source: Source) -> Result<tokio_postgres::Config, ConfigError> {
    // The URL may contain a password, so neither it nor the parser's message
    // (which can quote it) is shown.
    url.parse::<tokio_postgres::Config>()
        .map_err(|_| ConfigError::Invalid {
            origin: source,
            value: "[hidden]".into(),
            reason: "not a valid PostgreSQL connection URL; expected \
                 postgresql://user@host:port/dbname (put the password in PGPASSWORD)"
                .into(),
        })
}

/// Describes a connection target as `user@host:port/dbname`, without the
/// password.
pub fn describe_target(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{}/{}",
        pg.get_user().unwrap_or("?"),
        host,
        port,
        pg.get_dbname().unwrap_or("?")
    )
}

fn resolve_telegram(
    env: &EnvMap,
    file: &FileConfig,
) -> Result<Result<TelegramConfig, String>, ConfigError> {
    let section = &file.telegram;
    let api_base = match env.entry(env::TELEGRAM_API_BASE) {
        Some(entry) => {
            let source = env_source(env::TELEGRAM_API_BASE, entry.from_secrets_file);
            check_api_base(&entry.value, source)?
        }
        None => match &section.api_base {
            Some(base) => check_api_base(base, Source::File("telegram.api_base".into()))?,
            None => DEFAULT_TELEGRAM_API_BASE.to_string(),
        },
    };
    let timeout = match &section.timeout {
        Some(value) => file_duration(value, "telegram.timeout")?,
        None => Duration::from_secs(10),
    };

    let token = env.entry(env::TELEGRAM_BOT_TOKEN);
    let chat_id = env
        .get(env::TELEGRAM_CHAT_ID)
        .map(str::to_string)
        .or_else(|| section.chat_id.clone());
    let (token, chat_id) = match (token, chat_id) {
        (Some(token), Some(chat_id)) => (token, chat_id),
        (None, None) => {
            return Ok(Err(format!(
                "{} and {} are not set",
                env::TELEGRAM_BOT_TOKEN,
                env::TELEGRAM_CHAT_ID
            )))
        }
        (None, Some(_)) => return Ok(Err(format!("{} is not set", env::TELEGRAM_BOT_TOKEN))),
        (Some(_), None) => {
            return Ok(Err(format!(
                "{} is not set (nor telegram.chat_id)",
                env::TELEGRAM_CHAT_ID
            )))
        }
    };

    if !is_bot_token(&token.value) {
        return Err(ConfigError::Invalid {
            origin: env_source(env::TELEGRAM_BOT_TOKEN, token.from_secrets_file),
            value: "[hidden]".into(),
            reason: "a bot token is the bot's numeric id, a colon and a key of letters, \
                     digits, '_' and '-', as @BotFather issues it"
                .into(),
        });
    }
    if !is_chat_id(&chat_id) {
        return Err(ConfigError::Invalid {
            origin: Source::Env(env::TELEGRAM_CHAT_ID.into()),
            value: chat_id,
            reason: "expected a numeric chat id (such as 123456789 or -1001234567890) \
                     or a channel name starting with @"
                .into(),
        });
    }

    Ok(Ok(TelegramConfig {
        token: Secret::new(token.value.clone()),
        chat_id,
        api_base,
        timeout,
    }))
}

fn check_api_base(base: &str, source: Source) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(base).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.query().is_none()
    });
    match parsed {
        Some(_) => Ok(base.trim_end_matches('/').to_string()),
        None => Err(ConfigError::Invalid {
            origin: source,
            value: base.to_string(),
            reason: format!(
                "expected an http or https URL without a query, such as {DEFAULT_TELEGRAM_API_BASE}"
            ),
        }),
    }
}

fn is_bot_token(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, key)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    }
}

fn is_chat_id(chat_id: &str) -> bool {
    if let Some(name) = chat_id.strip_prefix('@') {
        return !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    }
    chat_id.parse::<i64>().is_ok()
}

fn resolve_alerts(file: &FileConfig) -> Result<AlertSettings, ConfigError> {
    let section = &file.alerts;
    let defaults = AlertSettings::default();
    let max_attempts = section.max_attempts.unwrap_or(defaults.max_attempts);
    if max_attempts == 0 {
        return Err(invalid_file(
            "alerts.max_attempts",
            "0",
            "must be at least 1",
        ));
    }
    let blind_after = section.blind_after.unwrap_or(defaults.blind_after);
    if blind_after == 0 {
        return Err(invalid_file(
            "alerts.blind_after",
            "0",
            "must be at least 1",
        ));
    }
    Ok(AlertSettings {
        repeat_interval: match &section.repeat_interval {
            Some(value) => file_duration(value, "alerts.repeat_interval")?,
            None => defaults.repeat_interval,
        },
        send_resolved: section.send_resolved.unwrap_or(defaults.send_resolved),
        blind_after,
        max_attempts,
    })
}

fn resolve_limits(file: &FileConfig) -> Result<Limits, ConfigError> {
    let section = &file.limits;
    let defaults = Limits::default();
    let limits = Limits {
        deadline: optional_duration(&section.deadline, "limits.deadline", defaults.deadline)?,
        memory_bytes: optional_size(&section.memory, "limits.memory", defaults.memory_bytes)?,
        table_elements: section.table_elements.unwrap_or(defaults.table_elements),
        instances: section.instances.unwrap_or(defaults.instances),
        stack_bytes: optional_size(&section.stack, "limits.stack", defaults.stack_bytes)?,
        queries: section.queries.unwrap_or(defaults.queries),
        rows: section.rows.unwrap_or(defaults.rows),
        result_bytes: optional_size(
            &section.result_size,
            "limits.result_size",
            defaults.result_bytes,
        )?,
        findings: section.findings.unwrap_or(defaults.findings),
        summary_bytes: optional_size(
            &section.summary_size,
            "limits.summary_size",
            defaults.summary_bytes,
        )?,
        details: section.details.unwrap_or(defaults.details),
        metrics: section.metrics.unwrap_or(defaults.metrics),
        log_lines: section.log_lines.unwrap_or(defaults.log_lines),
    };

    if limits.deadline.is_zero() {
        return Err(invalid_file(
            "limits.deadline",
            "0",
            "must be longer than zero",
        ));
    }
    // A Rust guest needs some linear memory and stack before it runs a line
    // of its own code; below these floors every detector would fail.
    if limits.memory_bytes < 1 << 20 {
        return Err(invalid_file(
            "limits.memory",
            &limits.memory_bytes.to_string(),
            "must be at least 1 MiB",
        ));
    }
    if limits.stack_bytes < 64 << 10 {
        return Err(invalid_file(
            "limits.stack",
            &limits.stack_bytes.to_string(),
            "must be at least 64 KiB",
        ));
    }
    if limits.stack_bytes > 64 << 20 {
        return Err(invalid_file(
            "limits.stack",
            &limits.stack_bytes.to_string(),
            "must be at most 64 MiB",
        ));
    }
    Ok(limits)
}

fn resolve_query(file: &FileConfig) -> Result<QuerySettings, ConfigError> {
    let section = &file.query;
    let defaults = QuerySettings::default();
    let settings = QuerySettings {
        allowed_tables: match &section.allowed_tables {
            Some(tables) => tables
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            None => defaults.allowed_tables,
        },
        extra_functions: section
            .allowed_functions
            .iter()
            .flatten()
            .map(|f| f.trim().to_ascii_lowercase())
            .collect(),
        statement_timeout: optional_duration(
            &section.statement_timeout,
            "query.statement_timeout",
            defaults.statement_timeout,
        )?,
        lock_timeout: optional_duration(
            &section.lock_timeout,
            "query.lock_timeout",
            defaults.lock_timeout,
        )?,
    };
    if settings.statement_timeout < Duration::from_millis(1) {
        return Err(invalid_file(
            "query.statement_timeout",
            "0",
            "must be at least 1ms",
        ));
    }
    if settings.lock_timeout < Duration::from_millis(1) {
        return Err(invalid_file(
            "query.lock_timeout",
            "0",
            "must be at least 1ms",
        ));
    }
    Ok(settings)
}

fn invalid_file(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: Source::File(key.into()),
        value: value.into(),
        reason: reason.into(),
    }
}

fn value_text(value: &DurationValue) -> String {
    match value {
        DurationValue::Seconds(seconds) => seconds.to_string(),
        DurationValue::Text(text) => text.clone(),
    }
}

fn file_duration(value: &DurationValue, key: &str) -> Result<Duration, ConfigError> {
    let parsed = match value {
        DurationValue::Seconds(seconds) => Duration::try_from_secs_f64(*seconds)
            .map_err(|_| "expected zero or more seconds".to_string()),
        DurationValue::Text(text) => humantime::parse_duration(text.trim()).map_err(|error| {
            format!("{error}; write a number of seconds or a duration such as \"500ms\" or \"4h\"")
        }),
    };
    parsed.map_err(|reason| ConfigError::Invalid {
        origin: Source::File(key.into()),
        value: value_text(value),
        reason,
    })
}

fn optional_duration(
    value: &Option<DurationValue>,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    value
        .as_ref()
        .map_or(Ok(default), |value| file_duration(value, key))
}

fn optional_size(value: &Option<SizeValue>, key: &str, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(SizeValue::Bytes(bytes)) => Ok(*bytes),
        Some(SizeValue::Text(text)) => text
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|size| size.as_u64())
            .map_err(|_| ConfigError::Invalid {
                origin: Source::File(key.into()),
                value: text.clone(),
                reason: "expected a number of bytes or a size such as \"64 MiB\"".into(),
            }),
    }
}

#[cfg(test)]
mod tests;
