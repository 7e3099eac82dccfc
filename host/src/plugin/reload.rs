//! Following the plugins folder while the daemon runs.
//!
//! A background task owns the [`Registry`]. It refreshes it when the folder
//! changes (a file watch), when a cycle starts (a safety net for changes the
//! watch missed), and on `SIGHUP` (a full rescan that re-reads every file).
//! Loading and compiling happen in that task, never in a cycle: each cycle
//! takes the latest published [`Snapshot`], so a working detector is never
//! missing while its replacement compiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::registry::{RefreshSummary, Registry, SETTLE_TIME};
use super::{LoadOutcome, Plugin, PluginHost};

/// The plugins as loaded at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Working plugins, in file-name order.
    pub plugins: Vec<Arc<Plugin>>,
    /// Every file with its state.
    pub outcomes: Vec<LoadOutcome>,
    /// Why the folder was refused or could not be read, if it was.
    pub folder_error: Option<String>,
}

impl Snapshot {
    fn of(registry: &Registry) -> Snapshot {
        Snapshot {
            plugins: registry.plugins(),
            outcomes: registry.outcomes(),
            folder_error: registry.folder_error().map(str::to_string),
        }
    }

    /// The working plugins whose file is still in place. A plugin whose
    /// file was removed stops at once, even before the reloader noticed.
    pub fn present_plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins
            .iter()
            .filter(|plugin| plugin.path.exists())
            .cloned()
            .collect()
    }
}

enum Request {
    /// Look for changed files.
    Rescan,
    /// Re-read every file, changed or not.
    FullRescan,
}

/// The handle of the background reloader.
pub struct Reloader {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    requests: Option<mpsc::UnboundedSender<Request>>,
}

impl Reloader {
    /// Loads the folder once and returns its snapshot, without following it
    /// afterwards (for `--once`).
    pub async fn load_once(host: &PluginHost, mut registry: Registry) -> Reloader {
        registry.refresh(host, false).await;
        let (_, snapshot) = watch::channel(Arc::new(Snapshot::of(&registry)));
        Reloader {
            snapshot,
            requests: None,
        }
    }

    /// Loads the folder, then follows it in a background task.
    pub async fn start(host: Arc<PluginHost>, mut registry: Registry) -> Reloader {
        registry.refresh(&host, false).await;
        let (publisher, snapshot) = watch::channel(Arc::new(Snapshot::of(&registry)));
        let (requests, receiver) = mpsc::unbounded_channel();
        tokio::spawn(follow(host, registry, publisher, receiver));
        Reloader {
            snapshot,
            requests: Some(requests),
        }
    }

    /// The latest snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Asks for a rescan without waiting for it.
    pub fn request_rescan(&self) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(Request::Rescan);
        }
    }

    /// Asks for a full rescan (after `SIGHUP`) without waiting for it.
    pub fn request_full_rescan(&self) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(Request::FullRescan);
        }
    }

    /// Waits until a snapshot newer than the current one is published, for
    /// at most `timeout`. Returns false on timeout.
    pub async fn changed(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.snapshot.changed()).await,
            Ok(Ok(()))
        )
    }
}

async fn follow(
    host: Arc<PluginHost>,
    mut registry: Registry,
    publisher: watch::Sender<Arc<Snapshot>>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let (events_sender, mut events) = mpsc::unbounded_channel::<()>();
    let _watcher = watch_folder(registry.dir(), events_sender);

    // A refresh is due at this instant: after a burst of file events has
    // been quiet for the settle time, or when a file was still settling.
    let mut due: Option<Instant> = None;
    loop {
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            request = requests.recv() => match request {
                // The daemon is gone.
                None => return,
                Some(Request::Rescan) => {}
                Some(Request::FullRescan) => registry.forget_fingerprints(),
            },
            Some(()) = events.recv() => {
                // Wait for the burst of events of one copy to end.
                due = Some(Instant::now() + SETTLE_TIME);
                continue;
            }
            () = sleep => {}
        }

        due = None;
        let summary = registry.refresh(&host, true).await;
        if registry.is_settling() {
            due = Some(Instant::now() + SETTLE_TIME);
        }
        if changed(&summary)
            || publisher.borrow().folder_error.as_deref() != registry.folder_error()
        {
            publisher.send_replace(Arc::new(Snapshot::of(&registry)));
        }
    }
}

fn changed(summary: &RefreshSummary) -> bool {
    !summary.is_empty()
}

/// Watches the plugins folder; each event sends a unit on `events`. Without
/// a watch (no inotify), changes are still found by the rescan at the start
/// of every cycle.
fn watch_folder(
    dir: &std::path::Path,
    events: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        if result.is_ok() {
            let _ = events.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(
                error = %error,
                "cannot watch the plugins folder; changes are picked up at the start of each cycle"
            );
            return None;
        }
    };
    if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(
            dir = %dir.display(),
            error = %error,
            "cannot watch the plugins folder; changes are picked up at the start of each cycle"
        );
        return None;
    }
    Some(watcher)
}
