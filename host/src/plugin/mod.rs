//! Detector plugins: the engine, loading, the sandbox limits and calls.
//!
//! A *plugin* is a `.wasm` file in the plugins folder that holds a detector
//! component. [`PluginHost`] owns the engine and the settings every plugin
//! shares; [`Plugin`] is one loaded, described and configured detector,
//! ready to be called once per cycle.

pub mod cache;
pub mod call;
pub mod engine;
pub mod limits;
pub mod loader;
pub mod registry;
pub mod reload;
pub mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::contract::{BasinDetectorPre, Finding, Manifest, Setting};
use crate::db::Database;
use crate::detector;
use crate::query::guard::QueryGuard;
use crate::query::QuerySettings;
use call::{CallFailure, CallState, CallStats, QueryAccess};
use engine::SandboxEngine;
use limits::Limits;
use loader::LoadError;

/// The engine and the settings shared by every plugin.
pub struct PluginHost {
    engine: SandboxEngine,
    cache: Option<cache::CompileCache>,
    limits: Arc<Limits>,
    query_settings: Arc<QuerySettings>,
    plugin_settings: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

/// A loaded detector.
pub struct Plugin {
    /// File it was loaded from.
    pub path: PathBuf,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Manifest returned by `describe()`.
    pub manifest: Manifest,
    /// Version of the contract package it was built against.
    pub contract_version: String,
    /// Origin of the compiled code: `hit` (from the cache), `miss`
    /// (compiled and cached), `rebuilt` (a bad cache entry was replaced) or
    /// `off` (compiled, no cache).
    pub cache: &'static str,
    /// Effective settings passed to every `detect` call.
    pub settings: Vec<Setting>,
    guard: Arc<QueryGuard>,
    pre: BasinDetectorPre<CallState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plugin's name from its manifest.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The file name, without the folder.
    pub fn file_name(&self) -> String {
        file_name(&self.path)
    }
}

/// The file name of a path, without the folder.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The outcome of loading one file.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// The file.
    pub path: PathBuf,
    /// The plugin, or why it could not be loaded.
    pub result: Result<Arc<Plugin>, LoadError>,
}

/// The outcome of one `detect` call.
#[derive(Debug, Clone)]
pub struct DetectRun {
    /// Findings, or why the call failed.
    pub result: Result<Vec<Finding>, CallFailure>,
    /// Wall time of the call, instantiation included.
    pub elapsed: Duration,
    /// Counters of the call.
    pub stats: CallStats,
}

impl PluginHost {
    /// Creates the engine, sized for `concurrency` detector calls at once,
    /// and keeps the shared settings. A cache folder that cannot be used is
    /// reported with a warning, and plugins are then compiled at every start.
    pub fn new(
        limits: Limits,
        query_settings: QuerySettings,
        plugin_settings: BTreeMap<String, BTreeMap<String, toml::Value>>,
        cache_dir: Option<&Path>,
        concurrency: usize,
    ) -> anyhow::Result<PluginHost> {
        let engine = SandboxEngine::new(&limits, concurrency)?;
        let cache =
            cache_dir.and_then(
                |dir| match cache::CompileCache::open(dir, engine.engine()) {
                    Ok(cache) => Some(cache),
                    Err(reason) => {
                        tracing::warn!(
                            dir = %dir.display(),
                            reason = %reason,
                            "compiled-plugin cache disabled; plugins are compiled at every start"
                        );
                        None
                    }
                },
            );
        Ok(PluginHost {
            engine,
            cache,
            limits: Arc::new(limits),
            query_settings: Arc::new(query_settings),
            plugin_settings,
        })
    }

    /// The sandbox limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The operator settings of the query capability.
    pub fn query_settings(&self) -> &QuerySettings {
        &self.query_settings
    }

    /// Configured settings of a plugin, by name.
    pub fn configured_settings(&self, name: &str) -> Option<&BTreeMap<String, toml::Value>> {
        self.plugin_settings.get(name)
    }

    /// Loads one plugin file: reads, compiles, checks and describes it.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let span = tracing::info_span!("load", file = %file_name(path));
        tracing::Instrument::instrument(self.load_file_in_span(path), span).await
    }

    async fn load_file_in_span(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        self.load_in_span(loader::read(path)?).await
    }

    /// Loads a plugin from bytes already read: compiles (or takes from the
    /// cache), checks and describes it.
    pub async fn load(&self, file: loader::PluginFile) -> Result<Arc<Plugin>, LoadError> {
        let span = tracing::info_span!("load", file = %file_name(&file.path));
        tracing::Instrument::instrument(self.load_in_span(file), span).await
    }

    async fn load_in_span(&self, file: loader::PluginFile) -> Result<Arc<Plugin>, LoadError> {
        loader::recognise(&file.bytes)?;
        let engine = self.engine.engine().clone();
        let cache = self.cache.clone();
        let sha256 = file.sha256.clone();
        let bytes = file.bytes;
        // Compiling takes tens of milliseconds per plugin; it runs on a
        // blocking thread so the executor keeps serving cycles and signals.
        let (component, cache_state) = tokio::task::spawn_blocking(move || {
            compile_cached(&engine, cache.as_ref(), &sha256, &bytes)
        })
        .await
        .map_err(|error| LoadError::new("compile", format!("compilation failed: {error}")))??;
        let mut plugin = self.prepare(file.path, file.sha256, &component).await?;
        plugin.cache = cache_state;
        Ok(Arc::new(plugin))
    }

    /// Checks a compiled component, describes it and resolves its settings.
    pub async fn prepare(
        &self,
        path: PathBuf,
        sha256: String,
        component: &wasmtime::component::Component,
    ) -> Result<Plugin, LoadError> {
        let contract_version = loader::check_world(self.engine.engine(), component)?;
        let instance_pre = self
            .engine
            .linker()
            .instantiate_pre(component)
            .map_err(|error| {
                LoadError::new(
                    "link",
                    format!("cannot link the component: {}", first_line(&error)),
                )
            })?;
        let pre = BasinDetectorPre::new(instance_pre).map_err(|error| {
            LoadError::new(
                "wrong-world",
                format!("not a detector component: {}", first_line(&error)),
            )
        })?;

        let manifest = self.describe(&pre).await?;
        detector::validate_manifest(&manifest, &self.limits)
            .map_err(|reason| LoadError::new("invalid-manifest", reason))?;
        for table in &manifest.tables {
            let table = table.to_ascii_lowercase();
            if !self.query_settings.allowed_tables.contains(&table) {
                return Err(LoadError::new(
                    "table-not-allowed",
                    format!(
                        "the plugin declares table `{table}`, which the operator has not allowed; \
                         add it to query.allowed_tables in the configuration file to allow it"
                    ),
                ));
            }
        }
        let settings =
            detector::resolve_settings(&manifest, self.plugin_settings.get(&manifest.name))
                .map_err(|reason| LoadError::new("invalid-settings", reason))?;
        let guard = Arc::new(QueryGuard::new(&manifest.tables, &self.query_settings));

        Ok(Plugin {
            path,
            sha256,
            manifest,
            contract_version,
            cache: "off",
            settings,
            guard,
            pre,
        })
    }

    async fn describe(&self, pre: &BasinDetectorPre<CallState>) -> Result<Manifest, LoadError> {
        let (state, stderr) = CallState::new(self.limits.clone(), None);
        let deadline = self.limits.deadline;
        let mut store = call::new_store(self.engine.engine(), state, deadline);
        let outcome = tokio::time::timeout(call::wall_limit(deadline), async {
            let detector = pre.instantiate_async(&mut store).await?;
            detector
                .tpm_autonomic_detector()
                .call_describe(&mut store)
                .await
        })
        .await;
        call::classify(outcome, &store, &stderr, deadline).map_err(|failure| {
            LoadError::new("describe-failed", format!("describe() failed: {failure}"))
        })
    }

    /// Instantiates a loaded plugin in a fresh store and calls `describe()`,
    /// as loading does; the benchmarks use it to time the sandbox alone.
    pub async fn describe_loaded(&self, plugin: &Plugin) -> Result<Manifest, LoadError> {
        self.describe(&plugin.pre).await
    }

    /// Runs one detection of a plugin with its settings, in a fresh store.
    pub async fn detect(&self, plugin: &Plugin, database: &Database) -> DetectRun {
        let started = Instant::now();
        let access = QueryAccess {
            database: database.clone(),
            settings: self.query_settings.clone(),
            guard: plugin.guard.clone(),
        };
        let (state, stderr) = CallState::new(self.limits.clone(), Some(access));
        let deadline = self.limits.deadline;
        let mut store = call::new_store(self.engine.engine(), state, deadline);
        let outcome = tokio::time::timeout(call::wall_limit(deadline), async {
            let detector = plugin.pre.instantiate_async(&mut store).await?;
            detector
                .tpm_autonomic_detector()
                .call_detect(&mut store, &plugin.settings)
                .await
        })
        .await;

        let result = match call::classify(outcome, &store, &stderr, deadline) {
            Ok(Ok(findings)) => detector::validate_findings(&findings, &self.limits)
                .map(|()| findings)
                .map_err(CallFailure::Malformed),
            Ok(Err(message)) => Err(CallFailure::Detector(call::truncate_chars(
                &call::one_line(&message),
                self.limits.summary_bytes as usize,
            ))),
            Err(failure) => Err(failure),
        };
        let stats = store.data().stats();
        DetectRun {
            result,
            elapsed: started.elapsed(),
            stats,
        }
    }
}

/// Takes a plugin's compiled code from the cache, or compiles it and
/// stores it there. Returns the component and how it was obtained.
fn compile_cached(
    engine: &wasmtime::Engine,
    cache: Option<&cache::CompileCache>,
    sha256: &str,
    bytes: &[u8],
) -> Result<(wasmtime::component::Component, &'static str), LoadError> {
    let Some(cache) = cache else {
        return Ok((loader::compile(engine, bytes)?, "off"));
    };
    let state = match cache.get(engine, sha256) {
        cache::Lookup::Hit(component) => return Ok((component, "hit")),
        cache::Lookup::Miss => "miss",
        cache::Lookup::Discarded(reason) => {
            tracing::warn!(
                sha256 = %registry::short_hash(sha256),
                reason = %reason,
                "compiled-plugin cache entry discarded; compiling again"
            );
            "rebuilt"
        }
    };
    let component = loader::compile(engine, bytes)?;
    if let Err(reason) = cache.put(sha256, &component) {
        tracing::warn!(reason = %reason, "cannot store the compiled plugin in the cache");
    }
    Ok((component, state))
}

fn first_line(error: &impl std::fmt::Display) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or(&text).to_string()
}
