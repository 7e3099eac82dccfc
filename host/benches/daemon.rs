//! Whole-daemon benchmarks: the real binary against PostgreSQL clusters
//! started by the bench.
//!
//! ```text
//! cargo bench --bench daemon -- [smoke] [once] [startup] [memory] [plugins] [scale]
//! ```
//!
//! With no case every case runs at full size; `smoke` runs every case at a
//! tiny size, to check in CI that the benchmarks still work. Each case prints
//! a Markdown table; docs/benchmarks.md records the figures.
//!
//! - `once`: `--once` on the sample data with warm caches: wall time and
//!   peak RSS of the whole process.
//! - `startup`: time to the first cycle, cold (empty compiled-plugin cache)
//!   and warm, with 5 and with 100 plugins.
//! - `memory`: 2000 cycles at a 10 ms interval: peak RSS, and the mean RSS
//!   of the first and the last 500 cycles.
//! - `plugins`: cycle time with 1, 10 and 100 plugins on a pool of 4
//!   connections.
//! - `scale`: the five detectors on 10^3, 10^6 and 10^7 rows per table,
//!   with and without the README's indexes, against the database's own
//!   execution time for the same statements from its statement log.

#[path = "../../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::daemon::{component, set_mode, TempFolder, DETECTORS};
use support::{PgCluster, TestDb};

/// Indexes the README recommends for large federation tables.
pub const INDEXES: &str = "\
CREATE INDEX IF NOT EXISTS jr_work_queue_status_updated ON jr_work_queue (status, updated_at);
CREATE INDEX IF NOT EXISTS council_votes_voted_at ON council_votes (voted_at);
CREATE INDEX IF NOT EXISTS duyuktv_tickets_status_updated ON duyuktv_tickets (status, updated_at);
ANALYZE;";

/// Size of one run of the benchmarks.
#[derive(Clone, Copy)]
struct Size {
    once_runs: usize,
    startup_runs: usize,
    many_plugins: usize,
    middle_plugins: usize,
    placements: usize,
    memory_cycles: usize,
    plugin_counts: &'static [usize],
    plugin_cycles: usize,
    scales: &'static [u64],
    scale_runs: usize,
}

const FULL: Size = Size {
    once_runs: 21,
    startup_runs: 5,
    many_plugins: 100,
    middle_plugins: 50,
    placements: 10,
    memory_cycles: 2000,
    plugin_counts: &[1, 10, 100],
    plugin_cycles: 30,
    scales: &[1_000, 1_000_000, 10_000_000],
    scale_runs: 3,
};

const SMOKE: Size = Size {
    once_runs: 2,
    startup_runs: 1,
    many_plugins: 10,
    middle_plugins: 7,
    placements: 1,
    memory_cycles: 40,
    plugin_counts: &[1, 10],
    plugin_cycles: 3,
    scales: &[1_000],
    scale_runs: 1,
};

fn main() {
    let mut cases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let size = if cases.iter().any(|c| c == "smoke") {
        SMOKE
    } else {
        FULL
    };
    cases.retain(|c| c != "smoke");
    if cases.is_empty() {
        cases = ["once", "startup", "placement", "memory", "plugins", "scale"]
            .map(String::from)
            .to_vec();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("# tpm-autonomic daemon benchmarks\n");
    println!("machine: {} cores, {}\n", cores(), kernel());
    for case in &cases {
        match case.as_str() {
            "once" => runtime.block_on(once(size)),
            "startup" => runtime.block_on(startup(size)),
            "memory" => runtime.block_on(memory(size)),
            "plugins" => runtime.block_on(plugins(size)),
            "scale" => runtime.block_on(scale(size)),
            "placement" => runtime.block_on(placement(size)),
            other => panic!(
                "unknown case {other}; use once, startup, memory, plugins, scale, placement or smoke"
            ),
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|v| format!("Linux {}", v.trim()))
        .unwrap_or_else(|_| "unknown kernel".into())
}

/// One finished process: wall time, peak RSS and its output.
struct Run {
    wall: Duration,
    peak_rss_kib: u64,
    stderr: String,
    code: i32,
}

/// The daemon's command line and environment for one case.
struct Setup {
    folder: TempFolder,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(label: &str, db: &TestDb) -> Setup {
        let folder = TempFolder::new(label);
        for sub in ["plugins", "home"] {
            std::fs::create_dir(folder.path().join(sub)).unwrap();
        }
        set_mode(&folder.path().join("plugins"), 0o755);
        let env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            (
                "HOME".to_string(),
                folder.path().join("home").display().to_string(),
            ),
            ("TPM_DATABASE_URL".to_string(), db.url()),
        ];
        Setup { folder, env }
    }

    fn plugins_dir(&self) -> PathBuf {
        self.folder.path().join("plugins")
    }

    fn add(&self, names: &[&str]) {
        for name in names {
            let target = self.plugins_dir().join(format!("{name}.wasm"));
            std::fs::copy(component(name), &target).unwrap();
            set_mode(&target, 0o644);
        }
    }

    /// Adds `count` bench-probe plugins, each with its own name.
    fn add_probes(&self, count: usize, sql: &str) {
        let bytes = std::fs::read(component("bench-probe")).unwrap();
        let marker = b"bench-probe-00000000";
        let at = bytes
            .windows(marker.len())
            .position(|window| window == marker)
            .expect("bench-probe carries its name marker");
        for index in 0..count {
            let mut copy = bytes.clone();
            copy[at + 12..at + 20].copy_from_slice(format!("{index:08}").as_bytes());
            let target = self
                .plugins_dir()
                .join(format!("bench-probe-{index:08}.wasm"));
            std::fs::write(&target, copy).unwrap();
            set_mode(&target, 0o644);
        }
        let mut config = String::new();
        for index in 0..count {
            config.push_str(&format!(
                "[plugins.bench-probe-{index:08}]\nsql = \"{sql}\"\n"
            ));
        }
        std::fs::write(self.folder.path().join("probes.toml"), config).unwrap();
    }

    fn clear_cache(&self) {
        let _ = std::fs::remove_dir_all(self.folder.path().join("home/.cache"));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpm-autonomic"));
        command
            .arg("--plugins-dir")
            .arg(self.plugins_dir())
            .arg("--log-file")
            .arg(self.folder.path().join("tpm.log"))
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.folder.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the daemon to the end and measures it with wait4(2).
    fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let child = self.command(args).spawn().expect("the daemon starts");
        let pid = child.id() as libc::pid_t;
        let output_threads = collect_output(child);
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be filled in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid pointers to locals.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(waited, pid, "wait4 failed");
        let wall = started.elapsed();
        let (_stdout, stderr) = output_threads.join().unwrap();
        Run {
            wall,
            peak_rss_kib: usage.ru_maxrss as u64,
            stderr,
            code: if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            },
        }
    }
}

fn collect_output(mut child: std::process::Child) -> std::thread::JoinHandle<(String, String)> {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let err_thread = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        // The child is reaped by wait4 in the caller; forget it here.
        std::mem::forget(child);
        (out, err_thread.join().unwrap())
    })
}

/// Median, minimum and maximum.
fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = values[values.len() / 2];
    (median, values[0], values[values.len() - 1])
}

fn show((median, min, max): (f64, f64, f64), unit: &str) -> String {
    format!("{median:.1} {unit} ({min:.1}–{max:.1})")
}

/// `elapsed_ms` of every cycle line in a log.
fn cycle_elapsed_ms(stderr: &str) -> Vec<f64> {
    field_ms(stderr, "elapsed_ms=")
}

async fn sample_database(label: &str) -> (PgCluster, TestDb) {
    let cluster = PgCluster::start();
    let db = cluster.database(label).await;
    db.load_sample("data.sql").await;
    (cluster, db)
}

async fn once(size: Size) {
    let (_cluster, db) = sample_database("bench_once").await;
    let setup = Setup::new("bench-once", &db);
    setup.add(&DETECTORS);
    // Warm the compiled-plugin cache and the database's own caches.
    let first = setup.run(&["--once", "--dry-run"]);
    assert_eq!(first.code, 0, "{}", first.stderr);

    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..size.once_runs {
        let run = setup.run(&["--once", "--dry-run"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        walls.push(run.wall.as_secs_f64() * 1000.0);
        rss.push(run.peak_rss_kib as f64 / 1024.0);
    }
    println!(
        "## `--once` on the sample data, warm caches ({} runs)\n",
        size.once_runs
    );
    println!("| wall time | peak RSS |\n|---|---|");
    println!(
        "| {} | {} |\n",
        show(stats(walls), "ms"),
        show(stats(rss), "MiB")
    );
}

/// Time from a plugin file being placed (by rename, as the README says) in
/// the folder of a running daemon until it is loaded and until its first
/// run, with the five detectors running at a 100 ms interval.
async fn placement(size: Size) {
    let (_cluster, db) = sample_database("bench_placement").await;
    let setup = Setup::new("bench-placement", &db);
    setup.add(&DETECTORS);
    let staging = TempFolder::new("bench-placement-staging");
    let source = Setup::new("bench-placement-source", &db);
    source.add_probes(size.placements, "SELECT 1 AS n");
    let log = setup.folder.path().join("tpm.log");
    let mut child = setup
        .command(&["--interval", "0.1", "--dry-run", "--verbose"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut loaded = Vec::new();
    let mut first_run = Vec::new();
    wait_for_log(&log, "clean cycle", Duration::from_secs(60))
        .or_else(|| wait_for_log(&log, "basin cycle", Duration::from_secs(60)));
    for index in 0..size.placements {
        let name = format!("bench-probe-{index:08}");
        let file = format!("{name}.wasm");
        let temporary = staging.path().join(&file);
        std::fs::copy(source.plugins_dir().join(&file), &temporary).unwrap();
        set_mode(&temporary, 0o644);
        // A rename within one file system: the file appears whole.
        let hidden = setup.plugins_dir().join(format!(".{file}.tmp"));
        std::fs::copy(&temporary, &hidden).unwrap();
        set_mode(&hidden, 0o644);
        let placed = Instant::now();
        std::fs::rename(&hidden, setup.plugins_dir().join(&file)).unwrap();
        let load_line = format!("plugin loaded plugin={name} ");
        let run_line = "detector finished";
        let mut loaded_at = None;
        let deadline = placed + Duration::from_secs(60);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if loaded_at.is_none() && text.contains(&load_line) {
                loaded_at = Some(placed.elapsed());
            }
            let ran = text
                .lines()
                .any(|l| l.contains(run_line) && l.contains(&format!("plugin={name}")));
            if ran {
                loaded.push(loaded_at.unwrap_or(placed.elapsed()).as_secs_f64() * 1000.0);
                first_run.push(placed.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    println!(
        "## From a plugin file placed to its first run ({} placements, 100 ms interval)\n",
        first_run.len()
    );
    println!("| placed → loaded | placed → first run |\n|---|---|");
    println!(
        "| {} | {} |\n",
        show(stats(loaded), "ms"),
        show(stats(first_run), "ms")
    );
}

fn wait_for_log(log: &std::path::Path, needle: &str, patience: Duration) -> Option<()> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(needle)
        {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

async fn startup(size: Size) {
    let (_cluster, db) = sample_database("bench_startup").await;
    println!(
        "## Start-up to the first cycle ({} runs of each)\n",
        size.startup_runs
    );
    println!("Wall time of `--once` minus the cycle's own `elapsed_ms`.\n");
    println!("| plugins | cold (compiling) | warm (cached) |\n|---|---|---|");
    for plugins in [5, size.middle_plugins, size.many_plugins] {
        let setup = Setup::new("bench-startup", &db);
        if plugins == 5 {
            setup.add(&DETECTORS);
        } else {
            setup.add_probes(plugins, "SELECT 1 AS n");
        }
        let config = setup.folder.path().join("probes.toml");
        let mut args = vec!["--once", "--dry-run"];
        let config_arg = config.display().to_string();
        if config.exists() {
            args.extend(["--config", &config_arg]);
        }
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..size.startup_runs {
            setup.clear_cache();
            let run = setup.run(&args);
            assert_eq!(run.code, 0, "{}", run.stderr);
            cold.push(startup_ms(&run));
            let run = setup.run(&args);
            assert_eq!(run.code, 0, "{}", run.stderr);
            warm.push(startup_ms(&run));
        }
        println!(
            "| {plugins} | {} | {} |",
            show(stats(cold), "ms"),
            show(stats(warm), "ms")
        );
    }
    println!();
}

fn startup_ms(run: &Run) -> f64 {
    let cycle = cycle_elapsed_ms(&run.stderr).last().copied().unwrap_or(0.0);
    run.wall.as_secs_f64() * 1000.0 - cycle
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn memory(size: Size) {
    let (_cluster, db) = sample_database("bench_memory").await;
    println!(
        "## Memory over {} cycles at a 10 ms interval\n",
        size.memory_cycles
    );
    println!("Mean RSS over the twentieth of the cycles that ends the first quarter");
    println!("(cycles 400 to 500 of 2000), and over the last twentieth: the difference");
    println!("is the growth.\n");
    println!("| plugins | peak RSS | RSS after the first quarter | RSS at the end | growth |\n|---|---|---|---|---|");
    for plugins in [5, size.many_plugins] {
        let setup = Setup::new("bench-memory", &db);
        if plugins == 5 {
            setup.add(&DETECTORS);
        } else {
            setup.add_probes(plugins, "SELECT count(*) FROM jr_work_queue");
        }
        let config = setup.folder.path().join("probes.toml");
        let config_arg = config.display().to_string();
        // Not a dry run: leadership, the saved state and the thermal writes
        // are part of every cycle. Telegram is not configured.
        let mut args = vec!["--interval", "0.01"];
        if config.exists() {
            args.extend(["--config", &config_arg]);
        }
        let log = setup.folder.path().join("tpm.log");
        let mut child = setup
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let quarter = size.memory_cycles / 4;
        let mut samples: Vec<(usize, u64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let cycles = std::fs::read_to_string(&log)
                .map(|text| {
                    text.lines()
                        .filter(|l| l.contains(" cycle ") && l.contains("elapsed_ms="))
                        .count()
                })
                .unwrap_or(0);
            samples.push((cycles, rss_kib(pid)));
            if cycles >= size.memory_cycles || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let _ = child.wait();
        let peak = samples.iter().map(|s| s.1).max().unwrap_or(0) as f64 / 1024.0;
        let mean = |range: std::ops::Range<usize>| {
            let values: Vec<f64> = samples
                .iter()
                .filter(|(cycles, rss)| range.contains(cycles) && *rss > 0)
                .map(|s| s.1 as f64 / 1024.0)
                .collect();
            values.iter().sum::<f64>() / values.len().max(1) as f64
        };
        // The samples of the twentieth of the cycles that ends the first
        // quarter, and of the last twentieth; at least the nearest sample.
        let window = (size.memory_cycles / 20).max(1);
        let nearest = |cycle: usize| {
            samples
                .iter()
                .min_by_key(|(cycles, _)| cycles.abs_diff(cycle))
                .map_or(0.0, |s| s.1 as f64 / 1024.0)
        };
        let first = Some(mean(quarter.saturating_sub(window)..quarter + 1))
            .filter(|m| *m > 0.0)
            .unwrap_or_else(|| nearest(quarter));
        let last = Some(mean(size.memory_cycles - window..usize::MAX))
            .filter(|m| *m > 0.0)
            .unwrap_or_else(|| nearest(size.memory_cycles));
        println!(
            "| {plugins} | {peak:.1} MiB | {first:.1} MiB | {last:.1} MiB | {:+.1} MiB |",
            last - first
        );
    }
    println!();
}

async fn plugins(size: Size) {
    let (_cluster, db) = sample_database("bench_plugins").await;
    println!(
        "## Cycle time by number of plugins ({} cycles, pool of 4, concurrency 4)\n",
        size.plugin_cycles
    );
    println!("Each plugin runs `SELECT count(*) FROM jr_work_queue` on 1,000 rows.\n");
    println!("| plugins | cycle time | per plugin |\n|---|---|---|");
    for &count in size.plugin_counts {
        let setup = Setup::new("bench-plugins", &db);
        setup.add_probes(count, "SELECT count(*) FROM jr_work_queue");
        let config = setup.folder.path().join("probes.toml");
        let config_arg = config.display().to_string();
        let interval = "0.05";
        let mut child = setup
            .command(&["--interval", interval, "--config", &config_arg])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let log = setup.folder.path().join("tpm.log");
        let deadline = Instant::now() + Duration::from_secs(300);
        let times = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let times = cycle_elapsed_ms(&text);
            // The first cycle also waits for the pool to connect; skip it.
            if times.len() > size.plugin_cycles || Instant::now() > deadline {
                break times.into_iter().skip(1).collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let (median, min, max) = stats(times);
        println!(
            "| {count} | {} | {:.2} ms |",
            show((median, min, max), "ms"),
            median / count as f64
        );
    }
    println!();
}

/// Runs `--once` with the five detectors `runs` times and returns the median
/// time of the detector phase (the cycle without its database check and
/// connection set-up), the median database execution time of the same
/// statements, and the median peak RSS in MiB.
async fn scale_run(
    cluster: &PgCluster,
    db: &TestDb,
    concurrency: usize,
    runs: usize,
) -> (f64, f64, f64) {
    let setup = Setup::new("bench-scale", db);
    setup.add(&DETECTORS);
    let config = setup.folder.path().join("scale.toml");
    std::fs::write(
        &config,
        format!(
            "concurrency = {concurrency}\n[query]\nstatement_timeout = \"600s\"\n\
             [limits]\ndeadline = \"900s\"\n"
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let args = ["--once", "--dry-run", "--config", &config_arg];
    // The first run fills the compiled-plugin cache and the server's cache.
    let warm = setup.run(&args);
    assert!(warm.code <= 1, "{}", warm.stderr);
    let mut phases = Vec::new();
    let mut database = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let before = std::fs::read_to_string(cluster.log_path())
            .unwrap_or_default()
            .len();
        let run = setup.run(&args);
        assert!(run.code <= 1, "{}", run.stderr);
        let log = std::fs::read_to_string(cluster.log_path()).unwrap_or_default();
        database.push(database_ms(&log[before.min(log.len())..]));
        phases.push(
            field_ms(&run.stderr, "detectors_ms=")
                .last()
                .copied()
                .unwrap_or(f64::NAN),
        );
        rss.push(run.peak_rss_kib as f64 / 1024.0);
    }
    (stats(phases).0, stats(database).0, stats(rss).0)
}

/// Values of a `name=` field in the cycle lines of a log.
fn field_ms(stderr: &str, name: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter(|l| l.contains(" basin cycle ") || l.contains(" clean cycle "))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

/// Fills the three federation tables with `rows` rows each.
async fn seed(db: &TestDb, rows: u64) {
    let sql = format!(
        "TRUNCATE council_votes, jr_work_queue, duyuktv_tickets;
         INSERT INTO council_votes (audit_hash, question, recommendation, confidence, specialist_count, voted_at)
         SELECT md5(g::text), 'question ' || g, (ARRAY['PROCEED','HOLD','REVISE'])[1 + g % 3],
                round((0.5 + (g::bigint * 7919 % 500) / 1000.0)::numeric, 3), 7,
                now() - make_interval(secs => (g::bigint * 104729 % 7776000))
         FROM generate_series(1, {rows}) AS g;
         INSERT INTO jr_work_queue (task_id, title, assigned_jr, status, priority, created_at, updated_at)
         SELECT 'jr-' || g, 'task ' || g, 'jr-' || (g % 12),
                (ARRAY['completed','completed','completed','pending','failed','in_progress'])[1 + g % 6],
                g % 5, now() - interval '100 days',
                (now() - make_interval(secs => (g::bigint * 15485863 % 7776000)))::timestamp
         FROM generate_series(1, {rows}) AS g;
         INSERT INTO duyuktv_tickets (title, status, assignee, story_points, created_at, updated_at)
         SELECT 'ticket ' || g, (ARRAY['open','in_progress','done','closed','backlog'])[1 + g % 5],
                'jr-' || (g % 9), g % 8, now() - interval '100 days',
                now() - make_interval(secs => (g::bigint * 32452843 % 7776000))
         FROM generate_series(1, {rows}) AS g;"
    );
    db.execute(&sql).await;
    // VACUUM cannot run in the implicit transaction of a multi-statement
    // batch, so it goes alone.
    db.execute("VACUUM ANALYZE council_votes, jr_work_queue, duyuktv_tickets")
        .await;
}

/// Sum of the server's `duration:` lines for the detectors' statements
/// (`execute` steps, BEGIN and ROLLBACK excluded) logged after `from`.
fn database_ms(log: &str) -> f64 {
    log.lines()
        .filter(|l| {
            l.contains("tpm-autonomic ") && l.contains("duration:") && l.contains(" execute ")
        })
        .filter(|l| !l.contains("BEGIN") && !l.contains("ROLLBACK") && !l.contains("SELECT 1"))
        .filter(|l| !l.contains("tpm_autonomic_state") && !l.contains("pg_try_advisory"))
        .filter_map(|l| {
            l.split("duration:")
                .nth(1)
                .and_then(|rest| rest.trim().split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .sum()
}

async fn scale(size: Size) {
    let cluster = PgCluster::start();
    let db = cluster.database("bench_scale").await;
    cluster.set_config("log_min_duration_statement", "0").await;
    cluster.set_config("log_line_prefix", "%m [%p] %a ").await;
    println!(
        "## The five detectors by table size ({} runs of each, median)\n",
        size.scale_runs
    );
    println!("Detectors: the cycle's detector phase (`detectors_ms`: every detector's");
    println!("sandbox, queries and checks, without the database check and connection");
    println!("set-up). Database: the sum of the server's logged execution times of");
    println!("the same detector statements.\n");
    println!("| rows per table | indexes | concurrency | detectors | database | detectors / database | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for &rows in size.scales {
        let started = Instant::now();
        seed(&db, rows).await;
        eprintln!("seeded {rows} rows per table in {:?}", started.elapsed());
        for indexes in [false, true] {
            if indexes {
                db.execute(INDEXES).await;
            }
            for concurrency in [1, 4] {
                let (cycle, db_ms, rss) =
                    scale_run(&cluster, &db, concurrency, size.scale_runs).await;
                println!(
                    "| {rows} | {} | {concurrency} | {cycle:.1} ms | {db_ms:.1} ms | {:.2} | {rss:.1} MiB |",
                    if indexes { "yes" } else { "no" },
                    cycle / db_ms,
                );
            }
        }
        db.execute(
            "DROP INDEX IF EXISTS jr_work_queue_status_updated, council_votes_voted_at, \
             duyuktv_tickets_status_updated",
        )
        .await;
    }
    println!();
}
