use clap::Parser;

use super::*;

fn cli(args: &[&str]) -> Cli {
    let mut argv = vec!["tpm-autonomic"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap()
}

fn resolve_with(args: &[&str], pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    resolve(&cli(args), &EnvMap::from_pairs(pairs.iter().copied()))
}

#[test]
fn defaults_apply_without_any_source() {
    let config = resolve_with(&[], &[("HOME", "/home/op")]).unwrap();
    assert_eq!(config.interval, DEFAULT_INTERVAL);
    assert_eq!(config.plugins_dir, PathBuf::from("plugins"));
    assert_eq!(config.log_file, PathBuf::from(DEFAULT_LOG_FILE));
    assert_eq!(
        config.cache_dir,
        Some(PathBuf::from("/home/op/.cache/tpm-autonomic"))
    );
    assert!(config.telegram.is_err());
    assert_eq!(config.database.pool_size, 4);
}

#[test]
fn interval_flag_accepts_fractions() {
    let config = resolve_with(&["--interval", "0.01"], &[]).unwrap();
    assert_eq!(config.interval, Duration::from_millis(10));
}

#[test]
fn interval_flag_accepts_units() {
    let config = resolve_with(&["--interval", "5m"], &[]).unwrap();
    assert_eq!(config.interval, Duration::from_secs(300));
}

#[test]
fn invalid_interval_names_the_flag() {
    let error = resolve_with(&["--interval", "five"], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("option --interval"), "{error}");
    assert!(error.contains("\"five\""), "{error}");
    assert!(error.contains("number of seconds"), "{error}");
}

#[test]
fn zero_interval_is_rejected() {
    let error = resolve_with(&["--interval", "0"], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("at least"), "{error}");
}

#[test]
fn database_url_wins_and_libpq_fills_gaps() {
    let config = resolve_with(
        &[],
        &[
            (
                "TPM_DATABASE_URL",
                "postgresql://claude@127.0.0.1:5433/zammad_production",
            ),
            ("PGHOST", "10.0.0.9"),
            ("PGPASSWORD", "hunter2"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.database.display,
        "claude@127.0.0.1:5433/zammad_production"
    );
    assert_eq!(
        config.database.password.as_ref().map(Secret::expose),
        Some("hunter2")
    );
}

#[test]
fn cherokee_aliases_fill_libpq_variables() {
    let config = resolve_with(
        &[],
        &[
            ("CHEROKEE_DB_HOST", "127.0.0.1"),
            ("CHEROKEE_DB_PORT", "6543"),
            ("CHEROKEE_DB_NAME", "fed"),
            ("CHEROKEE_DB_USER", "claude"),
            ("CHEROKEE_DB_PASS", "pw"),
        ],
    )
    .unwrap();
    assert_eq!(config.database.display, "claude@127.0.0.1:6543/fed");
}

#[test]
fn libpq_variable_wins_over_alias() {
    let config = resolve_with(&[], &[("PGUSER", "a"), ("CHEROKEE_DB_USER", "b")]).unwrap();
    assert!(
        config.database.display.starts_with("a@"),
        "{}",
        config.database.display
    );
}

#[test]
fn invalid_port_names_variable() {
    let error = resolve_with(&[], &[("PGPORT", "54x")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("PGPORT"), "{error}");
    assert!(error.contains("1 to 65535"), "{error}");
}

#[test]
fn invalid_database_url_hides_value() {
    let error = resolve_with(
        &[],
        &[("TPM_DATABASE_URL", "postgresql://u:hunter2@h:notaport/db")],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("TPM_DATABASE_URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn database_debug_output_hides_password() {
    let config = resolve_with(&[], &[("PGPASSWORD", "hunter2")]).unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn telegram_needs_token_and_chat() {
    let config = resolve_with(&[], &[("TELEGRAM_BOT_TOKEN", "123:abc")]).unwrap();
    assert!(config
        .telegram
        .unwrap_err()
        .contains("TELEGRAM_CHIEF_CHAT_ID"));

    let config = resolve_with(
        &[],
        &[
            ("TELEGRAM_BOT_TOKEN", "123:abc"),
            ("TELEGRAM_CHIEF_CHAT_ID", "-100123"),
        ],
    )
    .unwrap();
    let telegram = config.telegram.unwrap();
    assert_eq!(telegram.api_base, DEFAULT_TELEGRAM_API_BASE);
    assert_eq!(telegram.chat_id, "-100123");
}

#[test]
fn malformed_token_is_rejected_without_value() {
    let error = resolve_with(
        &[],
        &[
            ("TELEGRAM_BOT_TOKEN", "not a token"),
            ("TELEGRAM_CHIEF_CHAT_ID", "1"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("TELEGRAM_BOT_TOKEN"), "{error}");
    assert!(!error.contains("not a token"), "{error}");
}

#[test]
fn api_base_must_be_http_url() {
    let error = resolve_with(&[], &[("TELEGRAM_API_BASE", "ftp://x")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("TELEGRAM_API_BASE"), "{error}");
    let config = resolve_with(
        &[],
        &[
            ("TELEGRAM_API_BASE", "http://127.0.0.1:8081/"),
            ("TELEGRAM_BOT_TOKEN", "1:a"),
            ("TELEGRAM_CHIEF_CHAT_ID", "1"),
        ],
    )
    .unwrap();
    assert_eq!(config.telegram.unwrap().api_base, "http://127.0.0.1:8081");
}

fn write_config(text: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new();
    let path = dir.path().join("tpm.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn config_file_sets_limits_with_units() {
    let (_dir, path) = write_config(
        "interval = \"1m\"\n[limits]\ndeadline = \"2s\"\nmemory = \"32 MiB\"\nrows = 50\n",
    );
    let config = resolve_with(&["--config", path.to_str().unwrap()], &[]).unwrap();
    assert_eq!(config.interval, Duration::from_secs(60));
    assert_eq!(config.limits.deadline, Duration::from_secs(2));
    assert_eq!(config.limits.memory_bytes, 32 << 20);
    assert_eq!(config.limits.rows, 50);
}

#[test]
fn flag_wins_over_config_file() {
    let (_dir, path) = write_config("interval = 60\nplugins_dir = \"/opt/plugins\"\n");
    let config = resolve_with(
        &[
            "--config",
            path.to_str().unwrap(),
            "--interval",
            "5",
            "--plugins-dir",
            "/p",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(config.interval, Duration::from_secs(5));
    assert_eq!(config.plugins_dir, PathBuf::from("/p"));
}

#[test]
fn unknown_config_key_is_reported_with_line() {
    let (_dir, path) = write_config("interval = 60\n\n[limits]\ndeadlin = \"2s\"\n");
    let error = resolve_with(&["--config", path.to_str().unwrap()], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("deadlin"), "{error}");
    assert!(error.contains("line 4"), "{error}");
}

#[test]
fn invalid_size_names_key() {
    let (_dir, path) = write_config("[limits]\nmemory = \"lots\"\n");
    let error = resolve_with(&["--config", path.to_str().unwrap()], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("limits.memory"), "{error}");
}

#[test]
fn plugin_settings_are_kept_for_loading() {
    let (_dir, path) = write_config("[plugins.dlq-depth]\nthreshold = 7\n");
    let config = resolve_with(&["--config", path.to_str().unwrap()], &[]).unwrap();
    assert_eq!(
        config.plugin_settings["dlq-depth"]["threshold"],
        toml::Value::Integer(7)
    );
}

/// A temporary folder removed on drop.
mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "tpm-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
