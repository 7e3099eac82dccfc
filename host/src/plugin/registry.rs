//! The set of loaded plugins, kept in step with the plugins folder.
//!
//! [`Registry::refresh`] compares the folder with what is loaded: new files
//! are loaded, changed files reloaded and removed files unloaded. A file
//! that fails to load never displaces a working version of the same file:
//! the old version keeps running, the error is logged once for those bytes,
//! and the file is tried again as soon as its content changes. Two files
//! that declare the same plugin name: the one loaded first keeps running.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::loader::{self, LoadError};
use super::{LoadOutcome, Plugin, PluginHost};

/// A file modified more recently than this may still be being written; a
/// refresh with settling leaves it for a later pass.
pub const SETTLE_TIME: Duration = Duration::from_millis(500);

/// Size, modification time, owner and mode: a cheap test of whether a file
/// changed. Owner and mode are part of it so that a file refused for its
/// permissions is tried again as soon as they are fixed.
type Fingerprint = (u64, Option<SystemTime>, u32, u32);

#[derive(Debug)]
struct Entry {
    fingerprint: Option<Fingerprint>,
    /// The working version, if any.
    active: Option<Arc<Plugin>>,
    /// The failure of the file's current bytes, with their hash.
    failure: Option<(String, LoadError)>,
    /// Order in which the active version was first loaded, for duplicate
    /// names.
    loaded_order: u64,
}

/// Changes made by one refresh.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Plugins loaded from new files.
    pub loaded: Vec<String>,
    /// Plugins replaced by a new version.
    pub replaced: Vec<String>,
    /// Plugins unloaded because their file was removed.
    pub removed: Vec<String>,
    /// Files that failed to load (each logged once).
    pub failed: Vec<PathBuf>,
}

impl RefreshSummary {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}

/// The loaded plugins of one folder.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    /// Skip the ownership and permission checks of [`super::trust`].
    allow_writable: bool,
    entries: BTreeMap<PathBuf, Entry>,
    next_order: u64,
    folder_error: Option<String>,
    /// Skipped entries already logged, so each is logged once.
    skipped: BTreeSet<PathBuf>,
    /// True when the last refresh left a file that was still being written.
    settling: bool,
}

impl Registry {
    /// Creates an empty registry for a folder; nothing is loaded yet. With
    /// `allow_writable`, plugins load from a folder or files that other
    /// users can write.
    pub fn new(dir: &Path, allow_writable: bool) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
            allow_writable,
            entries: BTreeMap::new(),
            next_order: 0,
            folder_error: None,
            skipped: BTreeSet::new(),
            settling: false,
        }
    }

    /// The plugins folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The working plugins, in file-name order.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.entries
            .values()
            .filter_map(|entry| entry.active.clone())
            .collect()
    }

    /// Every file with its state: the working plugin, or the error of its
    /// current content when it has no working version.
    pub fn outcomes(&self) -> Vec<LoadOutcome> {
        self.entries
            .iter()
            .map(|(path, entry)| {
                let result = match (&entry.failure, &entry.active) {
                    (Some((_, error)), _) => Err(error.clone()),
                    (None, Some(plugin)) => Ok(plugin.clone()),
                    (None, None) => Err(LoadError::new("pending", "not loaded yet")),
                };
                LoadOutcome {
                    path: path.clone(),
                    result,
                }
            })
            .collect()
    }

    /// True when the last refresh left a file for later because it was
    /// still being written.
    pub fn is_settling(&self) -> bool {
        self.settling
    }

    /// Makes the next refresh read every file again, changed or not. A file
    /// whose content is unchanged keeps its loaded plugin.
    pub fn forget_fingerprints(&mut self) {
        for entry in self.entries.values_mut() {
            entry.fingerprint = None;
        }
    }

    /// Returns why the folder was refused or unreadable at the last
    /// refresh, if it was.
    pub fn folder_error(&self) -> Option<&str> {
        self.folder_error.as_deref()
    }

    /// Brings the loaded set in line with the folder. With `settle`, files
    /// modified within [`SETTLE_TIME`] are left for a later refresh.
    pub async fn refresh(&mut self, host: &PluginHost, settle: bool) -> RefreshSummary {
        let mut summary = RefreshSummary::default();
        self.settling = false;
        let scanned = if self.allow_writable {
            loader::scan(&self.dir)
                .map_err(|error| format!("cannot read the plugins folder: {error}"))
        } else {
            super::trust::check_folder(&self.dir).and_then(|()| {
                loader::scan(&self.dir).map_err(|error| {
                    format!(
                        "cannot read the plugins folder {}: {error}",
                        self.dir.display()
                    )
                })
            })
        };
        let paths = match scanned {
            Ok(scan) => {
                if self.folder_error.take().is_some() {
                    tracing::info!(dir = %self.dir.display(), "plugins folder readable again");
                }
                for (path, reason) in &scan.skipped {
                    if !self.skipped.contains(path) {
                        tracing::debug!(file = %path.display(), reason = %reason, "skipping entry in the plugins folder");
                    }
                }
                self.skipped = scan.skipped.into_iter().map(|(path, _)| path).collect();
                scan.files
            }
            Err(message) => {
                if self.folder_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %message,
                        "plugins folder refused; no new plugin is loaded from it"
                    );
                }
                self.folder_error = Some(message);
                return summary;
            }
        };

        self.unload_removed(&paths, &mut summary);
        let mut files = Vec::new();
        for path in &paths {
            if let Some(file) = self.examine(path, settle, &mut summary) {
                files.push(file);
            }
        }

        // Compiling is the slow part of loading; a few files compile at
        // once, one per core, and the results are applied in file order.
        let parallel = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        let loaded: Vec<(PathBuf, String, Result<Arc<Plugin>, LoadError>)> =
            futures::stream::iter(files)
                .map(|file| async move {
                    let path = file.path.clone();
                    let sha256 = file.sha256.clone();
                    (path, sha256, host.load(file).await)
                })
                .buffered(parallel)
                .collect()
                .await;
        for (path, sha256, result) in loaded {
            self.apply(&path, sha256, result, &mut summary);
        }
        summary
    }

    fn unload_removed(&mut self, present: &[PathBuf], summary: &mut RefreshSummary) {
        let removed: Vec<PathBuf> = self
            .entries
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        for path in removed {
            let Some(entry) = self.entries.remove(&path) else {
                continue;
            };
            if let Some(plugin) = entry.active {
                tracing::info!(
                    plugin = %plugin.name(),
                    version = %plugin.manifest.version,
                    sha256 = %short_hash(&plugin.sha256),
                    file = %path.display(),
                    "plugin unloaded: its file was removed"
                );
                summary.removed.push(plugin.name().to_string());
                // A file refused for taking this name may load now.
                for other in self.entries.values_mut() {
                    if matches!(&other.failure, Some((_, error)) if error.kind == "duplicate-name")
                    {
                        other.failure = None;
                        other.fingerprint = None;
                    }
                }
            }
        }
    }

    /// Decides whether a file needs loading: returns its bytes when its
    /// content is new, or records why it cannot be read.
    fn examine(
        &mut self,
        path: &Path,
        settle: bool,
        summary: &mut RefreshSummary,
    ) -> Option<loader::PluginFile> {
        let fingerprint = match std::fs::metadata(path) {
            Ok(metadata) => (
                metadata.len(),
                metadata.modified().ok(),
                std::os::unix::fs::MetadataExt::uid(&metadata),
                std::os::unix::fs::MetadataExt::mode(&metadata),
            ),
            // Removed between the scan and now: the next refresh unloads it.
            Err(_) => return None,
        };
        let entry = self.entries.entry(path.to_path_buf()).or_insert(Entry {
            fingerprint: None,
            active: None,
            failure: None,
            loaded_order: 0,
        });
        if entry.fingerprint == Some(fingerprint) {
            return None;
        }
        if settle && is_settling(fingerprint.1) {
            self.settling = true;
            tracing::debug!(file = %path.display(), "plugin file was just modified; waiting for it to settle");
            return None;
        }

        let checked = if self.allow_writable {
            Ok(())
        } else {
            super::trust::check_file(path)
        };
        let file = match checked
            .map_err(|reason| LoadError::new("untrusted", reason))
            .and_then(|()| loader::read(path))
        {
            Ok(file) => file,
            Err(error) => {
                record_failure(entry, path, String::new(), error, summary);
                entry.fingerprint = Some(fingerprint);
                return None;
            }
        };
        entry.fingerprint = Some(fingerprint);
        if entry
            .active
            .as_ref()
            .is_some_and(|active| active.sha256 == file.sha256)
        {
            entry.failure = None;
            return None;
        }
        if entry
            .failure
            .as_ref()
            .is_some_and(|(hash, _)| *hash == file.sha256)
        {
            return None;
        }
        Some(file)
    }

    /// Puts the outcome of loading a file in place, in file-name order, so
    /// that of two files with the same plugin name the first one wins.
    fn apply(
        &mut self,
        path: &Path,
        sha256: String,
        loaded: Result<Arc<Plugin>, LoadError>,
        summary: &mut RefreshSummary,
    ) {
        let loaded = loaded.and_then(|plugin| self.check_duplicate(path, plugin));
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        match loaded {
            Ok(plugin) => {
                match entry.active.replace(plugin.clone()) {
                    Some(old) => {
                        tracing::info!(
                            plugin = %plugin.name(),
                            old_version = %old.manifest.version,
                            version = %plugin.manifest.version,
                            sha256 = %short_hash(&plugin.sha256),
                            cache = %plugin.cache,
                            file = %path.display(),
                            "plugin replaced"
                        );
                        summary.replaced.push(plugin.name().to_string());
                    }
                    None => {
                        tracing::info!(
                            plugin = %plugin.name(),
                            version = %plugin.manifest.version,
                            sha256 = %short_hash(&plugin.sha256),
                            cache = %plugin.cache,
                            file = %path.display(),
                            "plugin loaded"
                        );
                        summary.loaded.push(plugin.name().to_string());
                        entry.loaded_order = self.next_order;
                        self.next_order += 1;
                    }
                }
                entry.failure = None;
            }
            Err(error) => record_failure(entry, path, sha256, error, summary),
        }
    }

    fn check_duplicate(&self, path: &Path, plugin: Arc<Plugin>) -> Result<Arc<Plugin>, LoadError> {
        let holder = self.entries.iter().find(|(other_path, other)| {
            other_path.as_path() != path
                && other
                    .active
                    .as_ref()
                    .is_some_and(|active| active.name() == plugin.name())
        });
        match holder {
            Some((other_path, _)) => Err(LoadError::new(
                "duplicate-name",
                format!(
                    "plugin name `{}` is already used by {}, which keeps running; {} is refused. \
                     Remove one of the two files or give the detector another name",
                    plugin.name(),
                    other_path.display(),
                    path.display()
                ),
            )),
            None => Ok(plugin),
        }
    }
}

fn record_failure(
    entry: &mut Entry,
    path: &Path,
    sha256: String,
    error: LoadError,
    summary: &mut RefreshSummary,
) {
    match &entry.active {
        Some(active) => tracing::error!(
            plugin = %active.name(),
            file = %path.display(),
            kind = %error.kind,
            reason = %error,
            "plugin file failed to load; the running version stays in place"
        ),
        None => tracing::error!(
            file = %path.display(),
            kind = %error.kind,
            reason = %error,
            "plugin failed to load"
        ),
    }
    summary.failed.push(path.to_path_buf());
    entry.failure = Some((sha256, error));
}

fn is_settling(modified: Option<SystemTime>) -> bool {
    modified
        .and_then(|time| time.elapsed().ok())
        .is_some_and(|age| age < SETTLE_TIME)
}

/// The first 12 hex digits of a hash, enough to tell versions apart in a
/// log line.
pub fn short_hash(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}
