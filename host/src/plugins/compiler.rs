//! Compiling plugins in a short-lived child process (`toolhost plugin
//! compile-entry`, the server's own binary), which writes the compiled
//! form into the cache; the server then maps it from there, as after a
//! warm start.
//!
//! Why: Cranelift's working memory (allocator arenas on its threads) and
//! the compiler's own code pages, once touched, stay with a process for
//! its life. Compiled in the server, the bundled plugins left it at about
//! 100 MiB after a first start, against 30 MiB after a start from the
//! cache; compiled in a child, a first start ends like a warm one. A child
//! that fails for any reason (or a binary that cannot be re-run) falls back
//! to compiling in the server, which also reports a bad component's error
//! exactly as before.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::engine::Shape;

/// How to run the compiler child: this binary and the engine it must build.
#[derive(Debug, Clone)]
pub(crate) struct Compiler {
    pub(crate) exe: PathBuf,
    pub(crate) shape: Shape,
}

impl Compiler {
    /// Compiles `wasm` into the cache entry at `entry`; the error says why
    /// the child failed.
    pub(crate) fn compile(&self, wasm: &[u8], entry: &Path) -> Result<(), String> {
        let mut child = Command::new(&self.exe)
            .args(["plugin", "compile-entry", "--out"])
            .arg(entry)
            .args(self.shape.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("TOOLHOST_CONFIG")
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.exe.display()))?;
        // The child reads all of stdin before it writes anything, so
        // writing it whole first cannot deadlock on stderr.
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(wasm))
            .unwrap_or(Ok(()));
        let output = child
            .wait_with_output()
            .map_err(|e| format!("waiting for the compiler: {e}"))?;
        written.map_err(|e| format!("sending the component: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

/// The child's side: compiles the component on stdin with an engine of
/// `shape` and writes the cache entry `out` (atomically).
pub fn compile_entry(shape: &Shape, out: &Path) -> anyhow::Result<()> {
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut wasm)?;
    let engine =
        super::engine::build(shape).map_err(|e| anyhow::anyhow!("wasmtime engine: {e:#}"))?;
    let component = wasmtime::component::Component::from_binary(&engine, &wasm)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let dir = out
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", out.display()))?;
    super::cache::write_entry(&component, dir, out)
}
