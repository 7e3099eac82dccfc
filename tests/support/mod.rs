//! Harness for the integration tests: real servers on loopback that the
//! tests start and stop themselves.
//!
//! - [`postgres`]: a throwaway PostgreSQL cluster and one database per test,
//!   loaded with `sample/schema.sql`.
//! - [`telegram`]: a fake Telegram Bot API that records requests, can be
//!   scripted to fail, and rejects what the real API rejects.
//! - [`markdown`]: the MarkdownV2 checker the fake uses, also handy for
//!   building expected messages.
//!
//! Every wait is bounded by [`patience`], which CI can raise through
//! `TPM_TEST_PATIENCE_SECS`. Failures panic with what the person on call
//! needs: commands, exit statuses, output, server log lines and the requests
//! the fake received.

// Each test module uses a different part of the harness, so items that the
// current set of tests does not use are expected.
#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod markdown;
pub mod postgres;
pub mod scenario;
pub mod telegram;

#[cfg(test)]
mod selftest;

pub use daemon::{Daemon, Finished, RunningDaemon};
pub use postgres::{PgCluster, TestDb, ThermalRecord};
pub use telegram::{FakeTelegram, Reply, TelegramRequest};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variable that raises the time every bounded wait allows, in
/// whole seconds. Slow CI machines set it.
pub const PATIENCE_VAR: &str = "TPM_TEST_PATIENCE_SECS";

/// Time a bounded wait allows when `TPM_TEST_PATIENCE_SECS` is not set.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(15);

/// Interval between two checks of a polled condition.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Returns how long a bounded wait may take: `TPM_TEST_PATIENCE_SECS` when it
/// is set and larger than the default, otherwise the default.
///
/// Panics when the variable is set but is not a whole number of seconds.
pub fn patience() -> Duration {
    static PATIENCE: OnceLock<Duration> = OnceLock::new();
    *PATIENCE.get_or_init(|| match std::env::var(PATIENCE_VAR) {
        Err(_) => DEFAULT_PATIENCE,
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(seconds) => DEFAULT_PATIENCE.max(Duration::from_secs(seconds)),
            Err(error) => panic!(
                "invalid {PATIENCE_VAR}={value:?}: {error}. \
                 Set it to a whole number of seconds, such as 60."
            ),
        },
    })
}

/// Polls `condition` until it returns true, for at most [`patience`].
///
/// Panics with `description` when time runs out. Use it for effects that
/// arrive in the background, such as a record written by a running daemon.
pub async fn wait_until<F, Fut>(description: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + patience();
    loop {
        if condition().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {:?} waiting until {description}. \
                 Set {PATIENCE_VAR} to wait longer.",
                patience()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Returns the repository root: the nearest folder that contains
/// `sample/schema.sql`, searched from this crate's manifest folder, this
/// source file and the current folder.
///
/// Panics with every folder it searched when none has the file.
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(find_repo_root)
}

/// Returns the path of a file in `sample/`, such as `data.sql`.
pub fn sample_path(file_name: &str) -> PathBuf {
    repo_root().join("sample").join(file_name)
}

fn find_repo_root() -> PathBuf {
    let current_dir = std::env::current_dir().unwrap_or_default();

    // file!() is absolute when the module was included with #[path], and
    // otherwise relative to the folder rustc ran in, usually the workspace
    // root.
    let source_file = Path::new(file!());
    let source_file = if source_file.is_absolute() {
        source_file.to_path_buf()
    } else {
        current_dir.join(source_file)
    };
    let starts = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        source_file,
        current_dir,
    ];

    let mut searched = Vec::new();
    for start in &starts {
        for folder in start.ancestors() {
            if folder.join("sample/schema.sql").is_file() {
                return folder.to_path_buf();
            }
            searched.push(folder.display().to_string());
        }
    }
    panic!(
        "sample/schema.sql not found in any of these folders: {}. \
         Run the tests from inside the tpm-autonomic repository.",
        searched.join(", ")
    );
}
