//! What an operator sees: the log line format in the log file and on
//! stderr, the help text, and exit codes for invalid configuration.

use crate::support::daemon::DETECTORS;
use crate::support::{repo_root, Daemon, PgCluster};

/// Checks one line against `2026-02-18 14:03:07,512 [TPM-AUTO] INFO message`.
fn is_federation_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    if bytes.len() < 31 {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let stamp = digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b' '
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes[19] == b','
        && digits(20..23);
    let rest = &line[23..];
    stamp
        && ["DEBUG", "INFO", "WARNING", "ERROR"]
            .iter()
            .any(|level| rest.starts_with(&format!(" [TPM-AUTO] {level} ")))
}

#[test]
fn line_check_accepts_only_federation_format() {
    assert!(is_federation_line(
        "2026-02-18 14:03:07,512 [TPM-AUTO] INFO clean cycle"
    ));
    assert!(!is_federation_line(
        "2026-02-18T14:03:07.512Z INFO clean cycle"
    ));
    assert!(!is_federation_line(
        "2026-02-18 14:03:07,512 [TPM-AUTO] WARN x"
    ));
}

#[tokio::test]
async fn log_file_has_federation_format() {
    let db = PgCluster::shared().database("log_format").await;
    db.load_sample("data.sql").await;
    let mut daemon = Daemon::with_database("log-format", &db);
    daemon.plugins(&DETECTORS);

    let finished = daemon.run_once(&["--verbose", "--dry-run"]).await;
    finished.assert_code(0);

    assert!(
        daemon.log_file().is_file(),
        "the log folder must be created"
    );
    let lines: Vec<&str> = finished.log.lines().collect();
    assert!(lines.len() > 10, "too few log lines:\n{}", finished.log);
    for line in &lines {
        assert!(
            is_federation_line(line),
            "log file line in another format: {line}"
        );
    }
    for line in finished.stderr.lines() {
        assert!(
            is_federation_line(line),
            "stderr line in another format: {line}"
        );
    }
    for expected in [
        " DEBUG query ",
        " INFO plugin loaded ",
        " WARNING basin signal ",
        " INFO basin cycle ",
    ] {
        assert!(
            finished.log.contains(expected),
            "no {expected:?} line:\n{}",
            finished.log
        );
    }
    assert!(
        finished.log.contains("cycle=1"),
        "cycle field missing:\n{}",
        finished.log
    );
}

#[tokio::test]
async fn unwritable_log_file_warns_and_goes_on() {
    let db = PgCluster::shared().database("log_unwritable").await;
    let mut daemon = Daemon::with_database("log-unwritable", &db);
    daemon.plugins(&["work-state"]);
    // A path below a regular file can never be created.
    let blocker = daemon.folder().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let log_file = blocker.join("tpm.log");
    daemon.set_log_file(&log_file);

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    let warnings = finished.stderr.matches("cannot open the log file").count();
    assert_eq!(warnings, 1, "{}", finished.describe());
    assert!(
        finished.stderr.contains("INFO clean cycle"),
        "{}",
        finished.describe()
    );
}

#[test]
fn help_documents_every_option_in_readme() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tpm-autonomic"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let options: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--"))
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'))
        .collect();
    for option in [
        "--once",
        "--interval",
        "--verbose",
        "--plugins-dir",
        "--log-file",
        "--config",
        "--secrets-file",
        "--dry-run",
        "--format",
    ] {
        assert!(
            options.contains(&option),
            "{option} missing from --help:\n{help}"
        );
    }
    for option in options {
        assert!(
            readme.contains(&format!("`{option}")),
            "{option} is not documented in README.md"
        );
    }
    for code in ["0 ", "1 ", "2 ", "3 "] {
        assert!(
            help.contains(&format!("  {code}")),
            "exit code {code} missing from --help"
        );
    }
}

#[tokio::test]
async fn invalid_config_exits_two_with_fix() {
    let mut daemon = Daemon::new("bad-config");
    daemon.config("[limits]\nmemory = \"lots\"\n");
    let finished = daemon.run_once(&[]).await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("limits.memory"),
        "{}",
        finished.describe()
    );
    assert!(
        finished.stderr.contains("64 MiB"),
        "the fix is missing\n{}",
        finished.describe()
    );
}

#[tokio::test]
async fn invalid_interval_exits_two() {
    let daemon = Daemon::new("bad-interval");
    let finished = daemon.run_once(&["--interval", "soon"]).await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("--interval"),
        "{}",
        finished.describe()
    );
}

#[tokio::test]
async fn secrets_file_supplies_database_password() {
    let db = PgCluster::shared().database("secrets_file").await;
    let mut daemon = Daemon::new("secrets-file");
    daemon.plugins(&["work-state"]);
    for (name, value) in db.libpq_env() {
        if name != "PGPASSWORD" {
            daemon.env(name, &value);
        }
    }
    let secrets = daemon.folder().join("secrets.env");
    std::fs::write(
        &secrets,
        format!(
            "# federation secrets\nexport CHEROKEE_DB_PASS=\"{}\"\n",
            db.password()
        ),
    )
    .unwrap();
    daemon.arg("--secrets-file").arg(secrets.to_str().unwrap());

    let finished = daemon.run_once(&[]).await;

    finished.assert_code(0);
    assert!(
        !finished.stderr.contains(db.password()),
        "the password leaked\n{}",
        finished.describe()
    );
    assert!(
        !finished.log.contains(db.password()),
        "the password leaked into the log"
    );
}

#[tokio::test]
async fn bad_secrets_line_names_line_number() {
    let mut daemon = Daemon::new("bad-secrets");
    let secrets = daemon.folder().join("secrets.env");
    std::fs::write(&secrets, "A=1\nthis line is hunter2\n").unwrap();
    daemon.arg("--secrets-file").arg(secrets.to_str().unwrap());
    let finished = daemon.run_once(&[]).await;
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("line 2"),
        "{}",
        finished.describe()
    );
    assert!(
        !finished.stderr.contains("hunter2"),
        "{}",
        finished.describe()
    );
}
