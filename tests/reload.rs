//! Detectors that come and go while the daemon runs, the compiled-plugin
//! cache, and SIGHUP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::{component, set_mode};
use crate::support::{Daemon, PgCluster, RunningDaemon};

/// Lines that show a cycle ran the greeter detector.
const GREETER_RAN: [&str; 2] = ["detector finished", "plugin=greeter"];

/// Writes a file the way `install` does: a temporary file in the same
/// folder, then a rename, so the daemon never sees it half written.
fn place(source: &Path, target: &Path) {
    let temporary = target.with_file_name(format!(
        ".{}.partial",
        target.file_name().unwrap().to_string_lossy()
    ));
    std::fs::copy(source, &temporary).unwrap();
    set_mode(&temporary, 0o644);
    std::fs::rename(&temporary, target).unwrap();
}

async fn start_live(label: &str, plugins: &[&str]) -> (Daemon, RunningDaemon) {
    let db = PgCluster::shared().database(label).await;
    let mut daemon = Daemon::with_database(label, &db);
    daemon.plugins(plugins);
    // The database must outlive the daemon; dropping it would refuse the
    // daemon's connections.
    std::mem::forget(db);
    let mut running = daemon.spawn(&["--interval", "0.3", "--verbose", "--dry-run"]);
    running.wait_for_lines(&["INFO clean cycle"], 1).await;
    (daemon, running)
}

#[tokio::test]
async fn plugins_added_replaced_and_removed_live() {
    let (daemon, mut running) = start_live("live-lifecycle", &["work-state"]).await;
    let greeter = daemon.plugins_dir().join("greeter.wasm");

    place(&component("greeter-v1"), &greeter);
    running
        .wait_for_lines(
            &["INFO plugin loaded", "plugin=greeter", "version=1.0.0"],
            1,
        )
        .await;
    let ran = running.count_lines(&GREETER_RAN);
    running.wait_for_lines(&GREETER_RAN, ran + 1).await;

    place(&component("greeter-v2"), &greeter);
    running
        .wait_for_lines(
            &[
                "INFO plugin replaced",
                "plugin=greeter",
                "old_version=1.0.0",
                "version=2.0.0",
            ],
            1,
        )
        .await;
    running
        .wait_for_lines(&["INFO clean cycle", "greeter 2.0.0"], 1)
        .await;

    std::fs::remove_file(&greeter).unwrap();
    running
        .wait_for_lines(
            &["INFO plugin unloaded", "plugin=greeter", "version=2.0.0"],
            1,
        )
        .await;
    let cycles = running.count_lines(&["INFO clean cycle"]);
    running
        .wait_for_lines(&["INFO clean cycle"], cycles + 2)
        .await;
    let last_cycles = running.stderr();
    let tail: Vec<&str> = last_cycles
        .lines()
        .rev()
        .take_while(|l| !l.contains("plugin unloaded"))
        .collect();
    assert!(
        !tail.iter().any(|line| line.contains("greeter 2.0.0")),
        "the removed plugin still ran:\n{}",
        tail.join("\n")
    );

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

#[tokio::test]
async fn half_written_file_loads_once_complete() {
    let (daemon, mut running) = start_live("live-half-written", &["work-state"]).await;
    let greeter = daemon.plugins_dir().join("greeter.wasm");
    let bytes = std::fs::read(component("greeter-v1")).unwrap();

    // A copy in progress that stalls halfway.
    std::fs::write(&greeter, &bytes[..bytes.len() / 2]).unwrap();
    set_mode(&greeter, 0o644);
    running
        .wait_for_lines(&["ERROR plugin failed to load", "greeter.wasm"], 1)
        .await;
    let cycles = running.count_lines(&["INFO clean cycle"]);
    running
        .wait_for_lines(&["INFO clean cycle"], cycles + 3)
        .await;
    assert_eq!(
        running.count_lines(&["plugin failed to load", "greeter.wasm"]),
        1,
        "the error must be logged once, not every cycle"
    );

    // The copy finishes.
    std::fs::write(&greeter, &bytes).unwrap();
    running
        .wait_for_lines(
            &["INFO plugin loaded", "plugin=greeter", "version=1.0.0"],
            1,
        )
        .await;
    let ran = running.count_lines(&GREETER_RAN);
    running.wait_for_lines(&GREETER_RAN, ran + 1).await;

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

#[tokio::test]
async fn broken_replacement_keeps_old_version() {
    let (daemon, mut running) = start_live("live-broken", &["work-state", "greeter-v1"]).await;
    let greeter = daemon.plugins_dir().join("greeter-v1.wasm");
    running.wait_for_lines(&GREETER_RAN, 1).await;

    // A replacement that is not a component at all.
    let broken = daemon.folder().join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0garbage").unwrap();
    place(&broken, &greeter);
    running
        .wait_for_lines(
            &[
                "ERROR plugin file failed to load; the running version stays in place",
                "plugin=greeter",
            ],
            1,
        )
        .await;
    let ran = running.count_lines(&GREETER_RAN);
    running.wait_for_lines(&GREETER_RAN, ran + 3).await;
    assert_eq!(
        running.count_lines(&["plugin file failed to load"]),
        1,
        "logged once"
    );
    assert!(running
        .stderr()
        .lines()
        .rev()
        .take(40)
        .any(|l| l.contains("greeter 1.0.0")));

    place(&component("greeter-v2"), &greeter);
    running
        .wait_for_lines(
            &["INFO plugin replaced", "old_version=1.0.0", "version=2.0.0"],
            1,
        )
        .await;

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

#[tokio::test]
async fn duplicate_name_waits_for_first_to_leave() {
    let (daemon, mut running) = start_live("live-duplicate", &["work-state"]).await;
    let first = daemon.plugins_dir().join("a-greeter.wasm");
    let second = daemon.plugins_dir().join("b-greeter.wasm");

    place(&component("greeter-v1"), &first);
    running
        .wait_for_lines(
            &["INFO plugin loaded", "plugin=greeter", "version=1.0.0"],
            1,
        )
        .await;
    place(&component("greeter-v2"), &second);
    running
        .wait_for_lines(
            &[
                "ERROR plugin failed to load",
                "kind=duplicate-name",
                "b-greeter.wasm",
            ],
            1,
        )
        .await;
    let line = running
        .stderr()
        .lines()
        .find(|line| line.contains("kind=duplicate-name"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("a-greeter.wasm"),
        "both files must be named: {line}"
    );

    std::fs::remove_file(&first).unwrap();
    running
        .wait_for_lines(&["INFO plugin unloaded", "version=1.0.0"], 1)
        .await;
    running
        .wait_for_lines(
            &["INFO plugin loaded", "plugin=greeter", "version=2.0.0"],
            1,
        )
        .await;

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

fn cache_entries(daemon: &Daemon) -> Vec<PathBuf> {
    let dir = daemon.folder().join("home/.cache/tpm-autonomic");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.retain(|path| path.extension().is_some_and(|e| e == "cwasm"));
    entries.sort();
    entries
}

#[tokio::test]
async fn compiled_plugins_come_from_cache() {
    let db = PgCluster::shared().database("cache").await;
    let mut daemon = Daemon::with_database("cache", &db);
    daemon.plugins(&["work-state", "greeter-v1"]);

    let cold = daemon.run_once(&["--dry-run"]).await;
    cold.assert_code(0);
    assert_eq!(
        cold.stderr.matches("cache=miss").count(),
        2,
        "{}",
        cold.describe()
    );
    assert_eq!(cache_entries(&daemon).len(), 2);

    let warm = daemon.run_once(&["--dry-run"]).await;
    warm.assert_code(0);
    assert_eq!(
        warm.stderr.matches("cache=hit").count(),
        2,
        "{}",
        warm.describe()
    );

    // A changed file is compiled again and gets an entry of its own.
    place(
        &component("greeter-v2"),
        &daemon.plugins_dir().join("greeter-v1.wasm"),
    );
    let changed = daemon.run_once(&["--dry-run"]).await;
    assert!(
        changed.stderr.contains("plugin=greeter version=2.0.0"),
        "{}",
        changed.describe()
    );
    assert_eq!(
        changed.stderr.matches("cache=miss").count(),
        1,
        "{}",
        changed.describe()
    );
    assert_eq!(
        changed.stderr.matches("cache=hit").count(),
        1,
        "{}",
        changed.describe()
    );
    assert_eq!(cache_entries(&daemon).len(), 3);
}

#[tokio::test]
async fn corrupt_cache_entry_is_rebuilt() {
    let db = PgCluster::shared().database("cache-corrupt").await;
    let mut daemon = Daemon::with_database("cache-corrupt", &db);
    daemon.plugins(&["work-state"]);
    daemon.run_once(&["--dry-run"]).await.assert_code(0);
    let entry = cache_entries(&daemon).pop().expect("one cache entry");

    // A flipped byte in the compiled code, length unchanged.
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let flipped = daemon.run_once(&["--dry-run"]).await;
    flipped.assert_code(0);
    assert!(
        flipped
            .stderr
            .contains("compiled-plugin cache entry discarded"),
        "{}",
        flipped.describe()
    );
    assert!(
        flipped.stderr.contains("checksum does not match"),
        "{}",
        flipped.describe()
    );
    assert!(
        flipped.stderr.contains("cache=rebuilt"),
        "{}",
        flipped.describe()
    );

    // A truncated entry.
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..20]).unwrap();
    let truncated = daemon.run_once(&["--dry-run"]).await;
    truncated.assert_code(0);
    assert!(
        truncated.stderr.contains("cache=rebuilt"),
        "{}",
        truncated.describe()
    );

    let healed = daemon.run_once(&["--dry-run"]).await;
    assert!(healed.stderr.contains("cache=hit"), "{}", healed.describe());
}

#[tokio::test]
async fn precompiled_file_in_plugins_folder_is_refused() {
    let db = PgCluster::shared().database("precompiled").await;
    let mut daemon = Daemon::with_database("precompiled", &db);
    daemon.plugins(&["work-state"]);
    daemon.run_once(&["--dry-run"]).await.assert_code(0);
    let entry = cache_entries(&daemon).pop().expect("one cache entry");
    // The artifact after the cache's 40-byte header is wasmtime's own format.
    let bytes = std::fs::read(&entry).unwrap();
    let planted = daemon.plugins_dir().join("planted.wasm");
    std::fs::write(&planted, &bytes[40..]).unwrap();
    set_mode(&planted, 0o644);

    let finished = daemon.run_once(&["--format", "json", "--dry-run"]).await;
    finished.assert_code(1);
    let row = finished.report()["report"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["file"] == "planted.wasm")
        .cloned()
        .unwrap();
    assert_eq!(row["load"]["kind"], "precompiled", "{row}");
}

#[tokio::test]
async fn sighup_rescans_and_reopens_log() {
    let (daemon, mut running) = start_live("sighup", &["work-state", "greeter-v1"]).await;
    running
        .wait_for_lines(&["INFO clean cycle", "greeter 1.0.0"], 1)
        .await;

    // Same size, same modification time, other content: only a full
    // rescan notices.
    let greeter = daemon.plugins_dir().join("greeter-v1.wasm");
    let modified = std::fs::metadata(&greeter).unwrap().modified().unwrap();
    let v2 = std::fs::read(component("greeter-v2")).unwrap();
    assert_eq!(
        v2.len() as u64,
        std::fs::metadata(&greeter).unwrap().len(),
        "fixtures differ in size"
    );
    std::fs::write(&greeter, &v2).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&greeter)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let cycles = running.count_lines(&["INFO clean cycle"]);
    running
        .wait_for_lines(&["INFO clean cycle"], cycles + 3)
        .await;
    assert_eq!(
        running.count_lines(&["plugin replaced"]),
        0,
        "a cheap rescan must not notice"
    );

    // logrotate moves the file, then sends SIGHUP.
    let rotated = daemon.log_file().with_extension("log.1");
    std::fs::rename(daemon.log_file(), &rotated).unwrap();
    running.signal(libc::SIGHUP);
    running
        .wait_for_lines(&["INFO plugin replaced", "version=2.0.0"], 1)
        .await;
    running
        .wait_for_lines(&["INFO clean cycle", "greeter 2.0.0"], 1)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = std::fs::read_to_string(daemon.log_file()).expect("SIGHUP reopens the log file");
    assert!(
        fresh.contains("greeter 2.0.0"),
        "new lines go to the new file:\n{fresh}"
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        !old.contains("greeter 2.0.0"),
        "the rotated file must stop growing"
    );

    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}

#[tokio::test]
async fn fixed_permissions_load_without_sighup() {
    let (daemon, mut running) = start_live("live-permissions", &["work-state"]).await;
    let greeter = daemon.plugins_dir().join("greeter.wasm");
    place(&component("greeter-v1"), &greeter);
    // Made writable by the group just after it was placed, as a careless
    // copy would leave it.
    set_mode(&greeter, 0o664);
    running
        .wait_for_lines(
            &[
                "ERROR plugin failed to load",
                "kind=untrusted",
                "greeter.wasm",
            ],
            1,
        )
        .await;

    set_mode(&greeter, 0o644);
    running
        .wait_for_lines(
            &["INFO plugin loaded", "plugin=greeter", "version=1.0.0"],
            1,
        )
        .await;
    running.signal(libc::SIGTERM);
    running.wait_exit().await.assert_code(0);
}
