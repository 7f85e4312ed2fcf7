//! On-disk cache of compiled components, so a restart or a reload of an
//! unchanged file skips Cranelift (seconds for large components) and only maps
//! the artefact (milliseconds).
//!
//! Entries are keyed by the SHA-256 of the `.wasm` bytes and the engine's
//! compatibility hash, so a wasmtime upgrade or a config change never loads a
//! stale artefact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache or was compiled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Cache,
    Compiled,
}

/// Returns the compiled form of `wasm`, from `cache_dir` when present.
/// Blocking and CPU-heavy: call it off the async runtime.
pub(crate) fn component(
    engine: &Engine,
    cache_dir: &Path,
    wasm: &[u8],
    wasm_sha256: &str,
) -> wasmtime::Result<(Component, Origin)> {
    let path = entry_path(engine, cache_dir, wasm_sha256);
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same
        // engine configuration (the name carries the engine's compatibility
        // hash) into a directory only this server writes; wasmtime still checks
        // the header and version and fails cleanly on a mismatch.
        #[allow(unsafe_code)]
        let cached = unsafe { Component::deserialize_file(engine, &path) };
        match cached {
            Ok(component) => return Ok((component, Origin::Cache)),
            Err(err) => {
                tracing::warn!(path = %path.display(), "discarding unusable compiled-code cache entry: {err}");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = Component::from_binary(engine, wasm)?;
    if let Err(err) = write_entry(&component, cache_dir, &path) {
        // The cache is an optimisation: a read-only data dir still serves.
        tracing::warn!(path = %path.display(), "cannot write compiled-code cache: {err}");
    }
    Ok((component, Origin::Compiled))
}

fn entry_path(engine: &Engine, cache_dir: &Path, wasm_sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = hasher.finish();
    cache_dir.join(format!("{wasm_sha256}-{engine_hash:016x}.cwasm"))
}

fn write_entry(component: &Component, cache_dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Write then rename, so a crash never leaves a torn entry under the real name.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
