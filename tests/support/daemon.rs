//! Runs the real `tpm-autonomic` binary as a child process, the way an
//! operator runs it, with everything it touches in a folder of its own.
//!
//! [`Daemon`] builds the command: a plugins folder with chosen detectors
//! and fixtures, a log file, a configuration file, the database and the
//! fake Telegram. The child starts with an empty environment plus what the
//! test sets, so nothing from the machine running the tests leaks in.
//! [`Daemon::run_once`] runs `--once` to the end; [`Daemon::spawn`] starts
//! the interval loop and returns a [`RunningDaemon`] to watch and stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::{patience, repo_root, FakeTelegram, TestDb, PATIENCE_VAR};

/// Bot token the daemon is given; the fake accepts it.
pub const TOKEN: &str = super::telegram::DEFAULT_TOKEN;

/// Chat the daemon is given.
pub const CHAT_ID: &str = "424242";

/// A folder under the system temp folder, removed on drop, readable by
/// everyone (the plugins folder trust check rejects only writable ones).
pub struct TempFolder {
    path: PathBuf,
}

impl TempFolder {
    /// Creates a new folder named after `label`.
    pub fn new(label: &str) -> TempFolder {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = std::env::temp_dir().join(format!(
            "tpm-it-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            safe
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        set_mode(&path, 0o755);
        TempFolder { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("cannot chmod {}: {error}", path.display()));
}

/// Path of a built component: a detector in `plugins/` or a fixture in
/// `tests/fixtures/`. Panics with the build command when it is missing.
pub fn component(name: &str) -> PathBuf {
    let root = repo_root();
    for folder in ["plugins", "tests/fixtures"] {
        let path = root.join(folder).join(format!("{name}.wasm"));
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "component {name}.wasm is not built. Run `scripts/build-plugins.sh --fixtures` \
         (or `scripts/test.sh`, which builds everything) before the tests."
    );
}

/// The five detectors of `plugins/`.
pub const DETECTORS: [&str; 5] = [
    "council-disagreement",
    "dlq-depth",
    "jr-failure-rate",
    "stale-kanban",
    "work-state",
];

/// The command line and environment of one daemon.
pub struct Daemon {
    folder: TempFolder,
    log_file: PathBuf,
    config_file: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The outcome of a finished daemon.
#[derive(Debug)]
pub struct Finished {
    /// Exit code, or None when a signal ended it.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The log file's content.
    pub log: String,
}

impl Finished {
    /// Parses standard output as the JSON conformance report.
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not a JSON report ({error}):\n{}",
                self.describe()
            )
        })
    }

    /// The report row of a plugin, by name.
    pub fn plugin(&self, name: &str) -> serde_json::Value {
        let report = self.report();
        report["report"]["plugins"]
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no plugin {name} in the report:\n{}", self.describe()))
    }

    /// Everything the process printed, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics unless the exit code is `expected`.
    pub fn assert_code(&self, expected: i32) {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n{}",
            self.describe()
        );
    }
}

impl Daemon {
    /// A daemon with its own folder, an empty plugins folder, a log file and
    /// `HOME` in that folder. No database, no Telegram.
    pub fn new(label: &str) -> Daemon {
        let folder = TempFolder::new(label);
        std::fs::create_dir(folder.path().join("plugins")).unwrap();
        set_mode(&folder.path().join("plugins"), 0o755);
        let home = folder.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let log_file = folder.path().join("logs/tpm_autonomic.log");
        let mut daemon = Daemon {
            folder,
            log_file,
            config_file: None,
            args: Vec::new(),
            env: Vec::new(),
        };
        daemon.env("PATH", &std::env::var("PATH").unwrap_or_default());
        daemon.env("HOME", home.to_str().unwrap());
        let plugins = daemon.plugins_dir();
        daemon.arg("--plugins-dir").arg(plugins.to_str().unwrap());
        daemon
    }

    /// A daemon pointed at a test database with `TPM_DATABASE_URL`.
    pub fn with_database(label: &str, database: &TestDb) -> Daemon {
        let mut daemon = Daemon::new(label);
        daemon.env("TPM_DATABASE_URL", &database.url());
        daemon
    }

    /// The daemon's own folder.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }

    /// The plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.folder.path().join("plugins")
    }

    /// The log file.
    pub fn log_file(&self) -> PathBuf {
        self.log_file.clone()
    }

    /// Moves the log file, which is passed with `--log-file`.
    pub fn set_log_file(&mut self, path: &Path) -> &mut Daemon {
        self.log_file = path.to_path_buf();
        self
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: &str) -> &mut Daemon {
        self.args.push(arg.to_string());
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Daemon {
        self.env.retain(|(existing, _)| existing != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Copies components into the plugins folder, as `<name>.wasm`.
    pub fn plugins(&mut self, names: &[&str]) -> &mut Daemon {
        for name in names {
            self.add_plugin(name, &format!("{name}.wasm"));
        }
        self
    }

    /// Copies a component into the plugins folder under another file name.
    pub fn add_plugin(&mut self, name: &str, file_name: &str) -> &mut Daemon {
        let target = self.plugins_dir().join(file_name);
        std::fs::copy(component(name), &target)
            .unwrap_or_else(|error| panic!("cannot copy {name} to {}: {error}", target.display()));
        set_mode(&target, 0o644);
        self
    }

    /// Points the daemon at a fake Telegram.
    pub fn telegram(&mut self, fake: &FakeTelegram) -> &mut Daemon {
        self.env("TELEGRAM_API_BASE", fake.base_url());
        self.env("TELEGRAM_BOT_TOKEN", fake.token());
        self.env("TELEGRAM_CHIEF_CHAT_ID", CHAT_ID);
        self
    }

    /// Writes the configuration file, passed with `--config`; a second
    /// call replaces the first file's content.
    pub fn config(&mut self, toml: &str) -> &mut Daemon {
        let path = self.folder.path().join("tpm-autonomic.toml");
        std::fs::write(&path, toml).unwrap();
        self.config_file = Some(path);
        self
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpm-autonomic"));
        command
            .args(&self.args)
            .arg("--log-file")
            .arg(&self.log_file)
            .args(
                self.config_file
                    .iter()
                    .flat_map(|path| [std::ffi::OsStr::new("--config"), path.as_os_str()]),
            )
            .args(extra)
            .env_clear()
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(self.folder.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `--once` with `extra` arguments and waits for the exit.
    pub async fn run_once(&self, extra: &[&str]) -> Finished {
        let mut args = vec!["--once"];
        args.extend_from_slice(extra);
        let child = self
            .command(&args)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start tpm-autonomic: {error}"));
        let mut running = RunningDaemon::watch(child, self.log_file());
        running.wait_exit().await
    }

    /// Runs `--once --format json --dry-run` and returns the outcome.
    pub async fn run_once_json(&self) -> Finished {
        self.run_once(&["--format", "json"]).await
    }

    /// Starts the interval loop with `extra` arguments.
    pub fn spawn(&self, extra: &[&str]) -> RunningDaemon {
        let child = self
            .command(extra)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start tpm-autonomic: {error}"));
        RunningDaemon::watch(child, self.log_file())
    }
}

async fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin, sink: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        sink.lock().unwrap().extend_from_slice(&buffer[..n]);
    }
}

/// A daemon process that is running.
pub struct RunningDaemon {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    log_file: PathBuf,
}

impl RunningDaemon {
    fn watch(mut child: Child, log_file: PathBuf) -> RunningDaemon {
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(tokio::spawn(collect(pipe, stdout.clone())));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(tokio::spawn(collect(pipe, stderr.clone())));
        }
        RunningDaemon {
            child,
            stdout,
            stderr,
            readers,
            log_file,
        }
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Counts log lines (stderr) that contain every one of `needles`.
    pub fn count_lines(&self, needles: &[&str]) -> usize {
        self.stderr()
            .lines()
            .filter(|line| needles.iter().all(|needle| line.contains(needle)))
            .count()
    }

    /// Waits until stderr has at least `count` lines containing every one of
    /// `needles`. Panics with the output when patience runs out or the
    /// process exits first.
    pub async fn wait_for_lines(&mut self, needles: &[&str], count: usize) {
        let deadline = Instant::now() + patience();
        loop {
            if self.count_lines(needles) >= count {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the pipe readers a moment to drain.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.count_lines(needles) >= count {
                    return;
                }
                panic!(
                    "the daemon exited ({status}) before logging {count} lines with {needles:?}\n\
                     --- stderr ---\n{}",
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {:?} waiting for {count} log lines with {needles:?} \
                     (set {PATIENCE_VAR} to wait longer)\n--- stderr ---\n{}",
                    patience(),
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory of the process, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the daemon is still running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the daemon is still running")
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("the daemon is still running") as i32;
        // SAFETY: kill(2) with a pid of our own child and a valid signal
        // number has no memory-safety preconditions.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the process to exit, for at most the patience.
    pub async fn wait_exit(&mut self) -> Finished {
        let status = match tokio::time::timeout(patience(), self.child.wait()).await {
            Ok(status) => status.expect("waiting for the daemon failed"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "the daemon did not exit within {:?} (set {PATIENCE_VAR} to wait longer)\n\
                     --- stderr ---\n{}",
                    patience(),
                    self.stderr()
                );
            }
        };
        // The pipes close when the process exits, which ends the readers.
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        Finished {
            code: status.code(),
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: self.stderr(),
            log: self.log(),
        }
    }
}
