//! Loading one plugin file: reading and recognising it, compiling it,
//! checking that it is a detector of the contract version this host
//! implements, and asking it to describe itself.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::contract::{self, PACKAGE, VERSION};

/// Largest plugin file accepted, in bytes.
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;

/// Why a plugin file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Short kind for log fields and the JSON report.
    pub kind: &'static str,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl LoadError {
    /// Creates a load error.
    pub fn new(kind: &'static str, reason: impl Into<String>) -> LoadError {
        LoadError {
            kind,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A plugin file read into memory.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// Path of the file.
    pub path: PathBuf,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

/// The entries of a plugins folder: the plugin files (`*.wasm`, not
/// starting with a dot, sorted by name) and the entries that were skipped,
/// each with the reason.
#[derive(Debug, Default)]
pub struct Scan {
    /// Plugin files.
    pub files: Vec<PathBuf>,
    /// Skipped entries and why.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Lists the plugin files in a folder.
pub fn scan(dir: &Path) -> std::io::Result<Scan> {
    let mut scan = Scan::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let reason = if name.to_string_lossy().starts_with('.') {
            Some("hidden file")
        } else if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            Some("folder")
        } else if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            Some("no .wasm extension")
        } else {
            None
        };
        match reason {
            Some(reason) => scan.skipped.push((path, reason)),
            None => scan.files.push(path),
        }
    }
    scan.files.sort();
    scan.skipped.sort();
    Ok(scan)
}

/// Reads a plugin file and computes its hash.
pub fn read(path: &Path) -> Result<PluginFile, LoadError> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| LoadError::new("unreadable", format!("cannot read the file: {error}")))?;
    if metadata.len() > MAX_PLUGIN_BYTES {
        return Err(LoadError::new(
            "too-large",
            format!(
                "the file is {} bytes; plugins may be at most {MAX_PLUGIN_BYTES} bytes",
                metadata.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|error| LoadError::new("unreadable", format!("cannot read the file: {error}")))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(PluginFile {
        path: path.to_path_buf(),
        bytes,
        sha256,
    })
}

/// Checks what kind of file the bytes are before compiling them.
pub fn recognise(bytes: &[u8]) -> Result<(), LoadError> {
    if Engine::detect_precompiled(bytes).is_some() {
        return Err(LoadError::new(
            "precompiled",
            "the file is a precompiled wasmtime artifact; only WebAssembly components are \
             loaded from the plugins folder (the daemon keeps its own compiled cache)",
        ));
    }
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(LoadError::new(
            "not-wasm",
            "the file is not WebAssembly (it does not start with \\0asm); it may be \
             truncated or still being copied",
        ));
    }
    match (bytes[4], bytes[5], bytes[6], bytes[7]) {
        (0x0d, 0x00, 0x01, 0x00) => Ok(()),
        (0x01, 0x00, 0x00, 0x00) => Err(LoadError::new(
            "core-module",
            "the file is a core WebAssembly module, not a component; build the detector for \
             the wasm32-wasip2 target (cargo build --target wasm32-wasip2)",
        )),
        _ => Err(LoadError::new(
            "unknown-wasm",
            "the file is WebAssembly of an unknown version or layer; build the detector as a \
             component for wasm32-wasip2",
        )),
    }
}

/// Compiles a component; the error is a load error of kind `compile`.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|error| {
        LoadError::new(
            "compile",
            format!("invalid component: {}", first_line(&format!("{error:#}"))),
        )
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Checks that a component exports this host's `detector` interface and
/// imports nothing the host does not provide. Returns the contract version.
pub fn check_world(engine: &Engine, component: &Component) -> Result<String, LoadError> {
    let ty = component.component_type();
    let expected = contract::detector_export_name();

    let mut exported_versions = Vec::new();
    for (name, _) in ty.exports(engine) {
        if name == expected {
            exported_versions.clear();
            exported_versions.push(VERSION.to_string());
            break;
        }
        if let Some(version) = name.strip_prefix(&format!("{PACKAGE}/detector@")) {
            exported_versions.push(version.to_string());
        }
    }
    match exported_versions.as_slice() {
        [version] if version == VERSION => {}
        [] => {
            return Err(LoadError::new(
                "wrong-world",
                format!(
                    "the component does not export `{expected}`; it is not a detector (build it \
                     against the `basin-detector` world in wit/ of this host)"
                ),
            ))
        }
        versions => {
            return Err(LoadError::new(
                "contract-version",
                format!(
                    "the component was built against {PACKAGE}@{} but this host implements \
                     {PACKAGE}@{VERSION}; rebuild it against wit/ of this host",
                    versions.join(", ")
                ),
            ))
        }
    }

    for (name, item) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) {
            match rest.split_once('@') {
                Some((interface, version)) if version != VERSION => {
                    return Err(LoadError::new(
                        "contract-version",
                        format!(
                            "the component imports `{name}`, built against {PACKAGE}@{version}, \
                             but this host implements {PACKAGE}@{VERSION}; rebuild it against \
                             wit/ of this host (interface {interface})"
                        ),
                    ))
                }
                Some((interface, _)) if matches!(interface, "query" | "log" | "types") => continue,
                _ => {}
            }
        } else if name.starts_with("wasi:")
            && matches!(item.ty, ComponentItem::ComponentInstance(_))
        {
            // WASI is linked with no capabilities; whether the version is
            // provided is checked when the component is instantiated.
            continue;
        }
        return Err(LoadError::new(
            "unknown-import",
            format!(
                "the component imports `{name}`, which this host does not provide; a detector may \
                 import only {PACKAGE}/query, {PACKAGE}/log and WASI 0.2"
            ),
        ));
    }
    Ok(VERSION.to_string())
}
