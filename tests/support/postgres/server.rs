//! Running the server's own tools: the cluster folder, initdb, pg_ctl and
//! the watchdog that cleans up after a test process that died.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    patience, quote_literal, PgCluster, DEFAULT_PG_BIN, HOST, LOG_TAIL_LINES, PG_BIN_VAR, SUPERUSER,
};

/// Attempts at starting the server, each on a new free port, because another
/// process can take a port between the check and the server's bind.
const START_ATTEMPTS: usize = 3;

/// Shortest time pg_ctl waits for the server to start or stop, in seconds.
/// A longer patience raises it.
const MIN_PG_CTL_WAIT_SECS: u64 = 60;

/// Settings appended to `postgresql.conf`. Nothing is synced to disk because
/// the cluster is thrown away, but commits still reach the WAL before they
/// return, so committed rows survive `stop_immediate`. Messages are in
/// English so tests can match them.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "'127.0.0.1'"),
    ("max_connections", "200"),
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("timezone", "'UTC'"),
    ("log_timezone", "'UTC'"),
    ("lc_messages", "'C'"),
    ("log_line_prefix", "'%m [%p] %q%u@%d '"),
];

impl PgCluster {
    /// Runs initdb with the `tpm` superuser and appends the harness's
    /// settings to `postgresql.conf`.
    pub(super) fn init(&mut self) {
        let socket = self.socket_folder();
        fs::create_dir(&socket)
            .unwrap_or_else(|error| panic!("could not create {}: {error}", socket.display()));

        // initdb reads the superuser password from a file, so it never shows
        // in a process list. The file goes away once initdb is done.
        let password_file = self.folder.join("password");
        write_private_file(&password_file, &format!("{}\n", self.password));

        if self.run_as_postgres {
            give_to_postgres(&self.folder);
        }

        let data = self.data_folder();
        let result = self.run_pg_tool("initdb", |command| {
            command
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--pwfile"])
                .arg(&password_file)
                .args(["--auth", "scram-sha-256", "--encoding", "UTF8"])
                .args(["--no-locale", "--no-sync"]);
        });
        let _ = fs::remove_file(&password_file);
        if let Err(failure) = result {
            panic!("initdb failed\n{failure}");
        }

        let mut settings = String::from("\n# Added by the tpm-autonomic test harness.\n");
        for (name, value) in SERVER_SETTINGS {
            settings.push_str(&format!("{name} = {value}\n"));
        }
        settings.push_str(&format!(
            "unix_socket_directories = {}\n",
            quote_literal(&socket.to_string_lossy())
        ));
        self.append_to_config(&settings);
    }

    pub(super) fn start_on_free_port(&mut self) {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            self.port = free_port();
            self.append_to_config(&format!("port = {}\n", self.port));
            match self.pg_ctl_start() {
                Ok(()) => return,
                Err(failure) if failure.log_tail.contains("could not bind") => {
                    failures.push(failure.to_string());
                }
                Err(failure) => panic!("could not start PostgreSQL\n{failure}"),
            }
        }
        panic!(
            "could not start PostgreSQL: the port was taken {START_ATTEMPTS} times in a row\n{}",
            failures.join("\n")
        );
    }

    pub(super) fn pg_ctl_start(&self) -> Result<(), Box<CommandFailure>> {
        let data = self.data_folder();
        let log = self.log_path();
        self.run_pg_tool("pg_ctl", |command| {
            command
                .arg("start")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", &pg_ctl_wait_secs()]);
        })
        .map(drop)
    }

    /// Stops the server with pg_ctl's shutdown `mode`: `fast` or `immediate`.
    pub(super) fn stop(&self, mode: &str) {
        if let Err(failure) = self.pg_ctl_stop(mode) {
            panic!("could not stop PostgreSQL ({mode} mode)\n{failure}");
        }
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), Box<CommandFailure>> {
        let data = self.data_folder();
        self.run_pg_tool("pg_ctl", |command| {
            command.arg("stop").arg("-D").arg(&data).args([
                "-m",
                mode,
                "-w",
                "-t",
                &pg_ctl_wait_secs(),
            ]);
        })
        .map(drop)
    }

    fn append_to_config(&self, text: &str) {
        let path = self.data_folder().join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("could not open {}: {error}", path.display()));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|error| panic!("could not write {}: {error}", path.display()));
    }

    /// Runs one PostgreSQL binary with the arguments that `add_args` adds, as
    /// the `postgres` user when this process is root, and returns its output
    /// when it exits with status 0.
    pub(super) fn run_pg_tool(
        &self,
        program: &str,
        add_args: impl FnOnce(&mut Command),
    ) -> Result<Output, Box<CommandFailure>> {
        let program_path = self.bin.join(program);
        let mut command = if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program_path);
            command
        } else {
            Command::new(&program_path)
        };
        add_args(&mut command);

        // The postgres user may not be allowed into the caller's current
        // folder, and initdb resolves paths against it.
        command
            .current_dir(&self.folder)
            .stdin(Stdio::null())
            .env("LC_ALL", "C");

        // The caller's libpq variables must not steer the server's own tools.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                command.env_remove(name);
            }
        }

        let mut failure = Box::new(CommandFailure {
            command: format!("{command:?}"),
            folder: self.folder.clone(),
            status: None,
            stdout: String::new(),
            stderr: String::new(),
            log_tail: String::new(),
        });
        match command.output() {
            Ok(output) if output.status.success() => Ok(output),
            Ok(output) => {
                failure.status = Some(output.status);
                failure.stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                failure.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                failure.log_tail = self.log_tail();
                Err(failure)
            }
            Err(error) => {
                failure.stderr = format!("could not run the command: {error}");
                failure.log_tail = self.log_tail();
                Err(failure)
            }
        }
    }

    /// Starts a shell loop that waits for this test process to exit, then
    /// stops the server and removes the folder. Drop kills it first.
    pub(super) fn spawn_watchdog(&self) {
        const SCRIPT: &str = r#"
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            if [ -f "$2/data/postmaster.pid" ]; then
                if [ "$4" = postgres ]; then
                    runuser -u postgres -- "$3/pg_ctl" stop -D "$2/data" -m immediate -w
                else
                    "$3/pg_ctl" stop -D "$2/data" -m immediate -w
                fi
            fi
            rm -rf "$2"
        "#;
        let user = if self.run_as_postgres { "postgres" } else { "" };
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("tpm-test-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.folder)
            .arg(&self.bin)
            .arg(user)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so a Ctrl-C aimed at the tests does not
            // kill the watchdog before it has cleaned up.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("could not start the cluster watchdog (sh): {error}"));
        let mut watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *watchdog = Some(child);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(mut child) = watchdog.take() {
            let _ = child.kill();
            let _ = child.wait();
        }

        if self.data_folder().join("postmaster.pid").exists() {
            if let Err(failure) = self.pg_ctl_stop("immediate") {
                eprintln!("could not stop the test PostgreSQL cluster on drop\n{failure}");
            }
        }

        if let Err(error) = fs::remove_dir_all(&self.folder) {
            eprintln!(
                "could not remove the test cluster folder {}: {error}",
                self.folder.display()
            );
        }
    }
}

/// A PostgreSQL tool that could not run or exited with an error, with what
/// the person on call needs to see.
#[derive(Debug)]
pub(super) struct CommandFailure {
    command: String,
    folder: PathBuf,
    /// None when the command could not be started at all.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    log_tail: String,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Some(status) => status.to_string(),
            None => "not started".to_string(),
        };
        writeln!(formatter, "command: {}", self.command)?;
        writeln!(formatter, "folder: {}", self.folder.display())?;
        writeln!(formatter, "status: {status}")?;
        writeln!(formatter, "stdout:\n{}", self.stdout.trim_end())?;
        writeln!(formatter, "stderr:\n{}", self.stderr.trim_end())?;
        write!(
            formatter,
            "server log (last {LOG_TAIL_LINES} lines):\n{}",
            self.log_tail
        )
    }
}

pub(super) fn pg_bin_folder() -> PathBuf {
    let folder = std::env::var_os(PG_BIN_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BIN));
    for program in ["initdb", "pg_ctl", "postgres"] {
        if !folder.join(program).is_file() {
            panic!(
                "{program} not found in {}. Install PostgreSQL 15 \
                 (apt-get install postgresql-15) or set {PG_BIN_VAR} to the folder \
                 that contains initdb, pg_ctl and postgres.",
                folder.display()
            );
        }
    }
    folder
}

pub(super) fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Creates an empty folder for one cluster under the system temp folder,
/// with mode 0755 so the `postgres` user can reach it.
pub(super) fn create_cluster_folder(run_as_postgres: bool) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    if run_as_postgres {
        check_reachable_by_others(&base);
    }

    loop {
        let number = COUNTER.fetch_add(1, Ordering::Relaxed);
        let folder = base.join(format!("tpm-autonomic-pg-{}-{number}", std::process::id()));
        match fs::DirBuilder::new().mode(0o755).create(&folder) {
            Ok(()) => {
                // The umask may have removed bits that the mode asked for.
                fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap_or_else(
                    |error| panic!("could not set the mode of {}: {error}", folder.display()),
                );
                return folder;
            }
            // A folder left over from an earlier process with the same id.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => panic!(
                "could not create the cluster folder {}: {error}",
                folder.display()
            ),
        }
    }
}

/// Panics unless every folder from `/` down to `folder` lets other users
/// enter it, because the server runs as `postgres` and must reach its data.
fn check_reachable_by_others(folder: &Path) {
    for ancestor in folder.ancestors() {
        let mode = match fs::metadata(ancestor) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(error) => panic!("could not read the mode of {}: {error}", ancestor.display()),
        };
        if mode & 0o001 == 0 {
            panic!(
                "the postgres user cannot enter {} (mode {:o}), so the test cluster \
                 cannot live under {}. Set TMPDIR to a folder that every user can \
                 enter, such as /tmp.",
                ancestor.display(),
                mode & 0o7777,
                folder.display()
            );
        }
    }
}

fn give_to_postgres(folder: &Path) {
    let output = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(folder)
        .output()
        .unwrap_or_else(|error| panic!("could not run chown: {error}"));
    if !output.status.success() {
        panic!(
            "chown -R postgres:postgres {} failed with {}: {}. The postgres user \
             must exist (apt-get install postgresql-15 creates it).",
            folder.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
}

fn write_private_file(path: &Path, contents: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|error| panic!("could not create {}: {error}", path.display()));
    file.write_all(contents.as_bytes())
        .unwrap_or_else(|error| panic!("could not write {}: {error}", path.display()));
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((HOST, 0))
        .unwrap_or_else(|error| panic!("could not bind {HOST}:0: {error}"));
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("could not read the bound port: {error}"))
        .port()
}

/// Returns 32 random hexadecimal characters from the kernel's random
/// source. Hex keeps the password safe inside a URL.
pub(super) fn random_password() -> String {
    let mut bytes = [0u8; 16];
    let mut source = fs::File::open("/dev/urandom")
        .unwrap_or_else(|error| panic!("could not open /dev/urandom: {error}"));
    std::io::Read::read_exact(&mut source, &mut bytes)
        .unwrap_or_else(|error| panic!("could not read /dev/urandom: {error}"));
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn pg_ctl_wait_secs() -> String {
    patience().as_secs().max(MIN_PG_CTL_WAIT_SECS).to_string()
}
