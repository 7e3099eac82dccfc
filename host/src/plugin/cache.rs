//! The compiled-plugin cache: native code that wasmtime compiled from a
//! plugin, kept on disk so that a restart does not compile again.
//!
//! An entry is keyed by the SHA-256 of the plugin's bytes and by the
//! engine's compatibility hash (wasmtime version and every compilation
//! setting), so it is never used for other bytes or another engine. Each
//! entry carries the SHA-256 of its own content and is checked before use:
//! a corrupt or truncated entry is deleted and the plugin compiled again.
//! Entries are written to a temporary file and renamed, so a crash never
//! leaves half an entry under a valid name.
//!
//! Loading cached native code is trusting it, so the cache folder must be
//! owned by the daemon's user and writable by nobody else; otherwise the
//! cache is switched off with a warning.

use std::hash::Hasher;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// First bytes of every entry, with the format version.
const MAGIC: &[u8; 8] = b"TPMCWSM1";

/// Length of the header: magic and the SHA-256 of the artifact.
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A cache folder bound to one engine.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// What a cache lookup found.
pub enum Lookup {
    /// A valid entry, deserialized.
    Hit(Component),
    /// No entry.
    Miss,
    /// An entry that failed its check and was deleted.
    Discarded(String),
}

/// A [`Hasher`] that feeds everything into SHA-256, to turn wasmtime's
/// compatibility hash into a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("a digest has 32 bytes"))
    }
}

/// A key for an engine's compiled code: the same for engines whose
/// artifacts are interchangeable, different otherwise.
pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex::encode(&hasher.0.finalize()[..12])
}

impl CompileCache {
    /// Opens (and creates) a cache folder. The error says why the cache
    /// cannot be used; the daemon then runs without one.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let metadata = std::fs::metadata(dir)
            .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        let uid = unsafe { libc::geteuid() };
        if metadata.uid() != uid {
            return Err(format!(
                "{} is owned by uid {}, not by the daemon's user (uid {uid})",
                dir.display(),
                metadata.uid()
            ));
        }
        if metadata.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by group or others (mode {:o}); run `chmod go-w` on it",
                dir.display(),
                metadata.mode() & 0o7777
            ));
        }
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, plugin_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{plugin_sha256}-{}.cwasm", self.engine_key))
    }

    /// Looks up the compiled code of the plugin with this hash.
    pub fn get(&self, engine: &Engine, plugin_sha256: &str) -> Lookup {
        let path = self.entry_path(plugin_sha256);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Lookup::Miss,
            Err(error) => return self.discard(&path, format!("cannot read the entry: {error}")),
        };
        if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return self.discard(&path, "the entry has no valid header".into());
        }
        let (header, artifact) = bytes.split_at(HEADER_LEN);
        if Sha256::digest(artifact).as_slice() != &header[MAGIC.len()..] {
            return self.discard(
                &path,
                "the entry's checksum does not match its content".into(),
            );
        }
        // SAFETY: the artifact was written by `put` from a component this
        // engine compiled, in a folder only the daemon's user can write, and
        // its SHA-256 matches, so it is wasmtime's own output, unmodified.
        // wasmtime still checks that it suits this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, artifact) };
        match component {
            Ok(component) => Lookup::Hit(component),
            Err(error) => self.discard(&path, format!("wasmtime rejected the entry: {error}")),
        }
    }

    fn discard(&self, path: &Path, reason: String) -> Lookup {
        let _ = std::fs::remove_file(path);
        Lookup::Discarded(reason)
    }

    /// Stores the compiled code of a plugin. Failures are returned for the
    /// log; the plugin works without its entry.
    pub fn put(&self, plugin_sha256: &str, component: &Component) -> Result<(), String> {
        let artifact = component
            .serialize()
            .map_err(|error| format!("cannot serialize the compiled plugin: {error}"))?;
        let path = self.entry_path(plugin_sha256);
        let temporary = self
            .dir
            .join(format!(".{plugin_sha256}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(&artifact))?;
            file.write_all(&artifact)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            format!("cannot write {}: {error}", path.display())
        })
    }
}
