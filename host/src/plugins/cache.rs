//! On-disk cache of compiled components, so a restart or a reload of an
//! unchanged file skips Cranelift (seconds for large components) and only maps
//! the artefact (milliseconds).
//!
//! Entries are keyed by the SHA-256 of the `.wasm` bytes and the engine's
//! compatibility hash, so a wasmtime upgrade or a config change never loads a
//! stale artefact.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    compiler: Option<&super::compiler::Compiler>,
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
            Ok(component) => {
                // Mark it used, so cleaning keeps recently used entries.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok((component, Origin::Cache));
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), "discarding unusable compiled-code cache entry: {err}");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if let Some(compiler) = compiler {
        let built = crate::secret_file::create_dir(cache_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| compiler.compile(wasm, &path));
        match built {
            // SAFETY: as above; written a moment ago by a child building
            // this same engine (a different one fails the header check).
            #[allow(unsafe_code)]
            Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Origin::Compiled)),
                Err(err) => tracing::warn!(
                    "the compiler child's output is unusable ({err}); compiling here"
                ),
            },
            Err(err) => {
                tracing::debug!("compiling in a child process failed ({err}); compiling here")
            }
        }
    }
    let compiled = Component::from_binary(engine, wasm);
    // Compiling here freed far more than the component keeps.
    crate::heap::release_free_memory();
    let component = compiled?;
    if let Err(err) = write_entry(&component, cache_dir, &path) {
        // The cache is an optimisation: a read-only data dir still serves.
        tracing::warn!(path = %path.display(), "cannot write compiled-code cache: {err}");
    }
    Ok((component, Origin::Compiled))
}

/// Entries unused by any plugin file are kept this long after their last
/// use, so swapping back to a recent version (a rollback) stays instant.
const KEEP_UNUSED: Duration = Duration::from_secs(3600);

/// The cache never holds more than this; beyond it, unused entries go
/// oldest first, because a disk filled by stale artefacts would stop the
/// server from caching what it serves.
const MAX_CACHE_BYTES: u64 = 1 << 30;

/// Removes cache entries no current plugin file uses: those older than
/// [`KEEP_UNUSED`], and the oldest others while the cache exceeds
/// [`MAX_CACHE_BYTES`]. Entries for files in use are never removed.
/// Called after each reload, off the request path.
pub(crate) fn clean(cache_dir: &Path, in_use: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut unused = Vec::new();
    let mut total = 0u64;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        total += meta.len();
        let sha = name.split('-').next().unwrap_or_default();
        if in_use.contains(sha) {
            continue;
        }
        let used = meta.modified().unwrap_or(now);
        unused.push((used, meta.len(), path));
    }
    unused.sort_by_key(|(used, _, _)| *used);
    for (used, len, path) in unused {
        let stale = now.duration_since(used).unwrap_or_default() > KEEP_UNUSED;
        if (stale || total > MAX_CACHE_BYTES) && std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
            tracing::debug!(path = %path.display(), "removed unused compiled-code cache entry");
        }
    }
}

fn entry_path(engine: &Engine, cache_dir: &Path, wasm_sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = hasher.finish();
    cache_dir.join(format!("{wasm_sha256}-{engine_hash:016x}.cwasm"))
}

pub(crate) fn write_entry(
    component: &Component,
    cache_dir: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    crate::secret_file::create_dir(cache_dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Write then rename, so a crash never leaves a torn entry under the real name.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_keeps_what_is_used_or_recent() {
        let dir = std::env::temp_dir().join(format!("toolhost-cache-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let old = SystemTime::now() - Duration::from_secs(7200);
        for (name, modified) in [
            ("aaa-1.cwasm", old),
            ("bbb-1.cwasm", old),
            ("ccc-1.cwasm", SystemTime::now()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, b"x").expect("write");
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(modified))
                .expect("touch");
        }
        clean(&dir, &HashSet::from(["aaa".to_string()]));
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["aaa-1.cwasm", "ccc-1.cwasm"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
