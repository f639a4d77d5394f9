//! Compiled components, cached in memory and on disk.
//!
//! Compiling a component with Cranelift takes tens of milliseconds; loading a
//! compiled artifact takes a fraction of one. Artifacts are keyed by the SHA-256 of
//! the component's bytes and by the engine's compatibility hash (wasmtime version
//! and every setting that affects code generation), so a new host version or a
//! changed setting never loads a stale artifact.
//!
//! # Trust
//! Loading an artifact runs machine code from it. The cache directory and each
//! artifact are checked before anything is deserialised (`cache_trust.rs`: owned
//! by this user, not writable by group or others, no symlinks); an untrusted
//! directory disables the disk cache with a warning. Artifacts are written to a
//! private temporary file (mode 0600), fsynced and renamed into place, so a crash
//! never leaves a torn artifact behind.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::cache_trust;

/// Where a component came from on a given load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Already compiled in this process.
    Memory,
    /// Loaded from an artifact on disk.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The SHA-256 of a component's bytes.
pub type ContentHash = [u8; 32];

/// Hashes a component's bytes.
pub fn content_hash(bytes: &[u8]) -> ContentHash {
    Sha256::digest(bytes).into()
}

/// Feeds `Hash` output into SHA-256, so the key is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("digest is 32 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The compile cache of one engine.
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
    compiled: Mutex<HashMap<ContentHash, Component>>,
}

impl CompileCache {
    /// A cache for `engine`, on disk in `dir` if it is (or can be created) trusted.
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = dir.filter(|dir| match cache_trust::prepare_dir(dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "compile cache on disk disabled; compiled plugins are cached in memory only");
                false
            }
        });
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The directory artifacts are cached in, if the disk cache is in use.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn artifact_path(&self, dir: &Path, hash: &ContentHash) -> PathBuf {
        dir.join(format!("{}-{}.cwasm", hex::encode(hash), self.engine_key))
    }

    /// Returns the compiled component for `bytes`, compiling it only if no cache
    /// has it. Blocking: call it off the async runtime.
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        hash: &ContentHash,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        if let Some(c) = self.lock().get(hash) {
            return Ok((c.clone(), CacheOutcome::Memory));
        }
        let (component, outcome) = match &self.dir {
            Some(dir) => self.load_or_compile(engine, dir, hash, bytes)?,
            None => (Component::new(engine, bytes)?, CacheOutcome::Compiled),
        };
        self.lock().insert(*hash, component.clone());
        Ok((component, outcome))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContentHash, Component>> {
        self.compiled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_or_compile(
        &self,
        engine: &Engine,
        dir: &Path,
        hash: &ContentHash,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        // The directory could have changed since the start: checked on every load.
        if let Err(e) = cache_trust::check_dir(dir) {
            tracing::warn!(error = %e, "compile cache on disk not used for this load");
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        }
        let path = self.artifact_path(dir, hash);
        // Read into memory rather than `deserialize_file`: that would map the file,
        // and anyone truncating it while mapped would crash the host (SIGBUS).
        match cache_trust::read_artifact(&path) {
            Ok(Some(artifact)) => {
                // SAFETY: the artifact was produced by `Component::serialize` of this
                // same engine configuration (its name carries the compatibility hash)
                // and written atomically by this user into a directory only this user
                // can write; `read_artifact` checked the directory, and the opened
                // file's owner, mode and type. wasmtime still checks its header and
                // version.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(c) => return Ok((c, CacheOutcome::Disk)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached artifact")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "ignoring cached artifact; recompiling and replacing it")
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = write_atomically(dir, &path, &component.serialize()?) {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled plugin");
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Writes `bytes` to `path` via a private temporary file in `dir`: write, fsync, rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    cache_trust::write_private(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    fs::File::open(dir)?.sync_all()
}
