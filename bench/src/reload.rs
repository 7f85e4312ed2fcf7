//! Hot-reload delay: how long after a plugin file is renamed into the
//! plugins directory calls reach it, and how long after it is deleted its
//! tools are gone. The issue bounds the first at 300 ms.
//!
//! A fresh server serves devtools; `conformance.wasm` is written under a
//! hidden name (which the watcher ignores) and renamed to `swap.wasm`, the
//! atomic deployment the README describes. A client polls
//! `test_simple_text`, a conformance tool, every few milliseconds.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::mcp::{Caller, Tool};
use crate::server::{Setup, Toolhost};

/// Additions and removals timed after the first (which compiles).
const ROUNDS: usize = 10;
/// Between polls of the new tool.
const POLL: Duration = Duration::from_millis(2);
/// A swap that has not shown after this is a failure, not a figure.
const GIVE_UP: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReloadResult {
    /// The first addition: includes compiling the component.
    pub(crate) first_add_ms: f64,
    /// Rename → first successful call, per later addition (compiled code cached).
    pub(crate) add_ms: Vec<f64>,
    /// Delete → first call refused, per removal.
    pub(crate) remove_ms: Vec<f64>,
}

impl ReloadResult {
    pub(crate) fn worst_add_ms(&self) -> f64 {
        self.add_ms.iter().copied().fold(0.0, f64::max)
    }

    pub(crate) fn median(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    }
}

pub(crate) async fn measure(
    setup: &Setup,
    conformance: &Path,
    work: &Path,
) -> anyhow::Result<ReloadResult> {
    let plugins = work.join("plugins-reload");
    if plugins.exists() {
        std::fs::remove_dir_all(&plugins)?;
    }
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(
        setup.plugins.join("devtools.wasm"),
        plugins.join("devtools.wasm"),
    )
    .context("copying devtools.wasm")?;
    let setup = Setup {
        plugins: plugins.clone(),
        tool: Tool::SimpleText,
        ..setup.clone()
    };
    let server = Toolhost::spawn(&setup, &work.join("data-reload"), "reload").await?;
    let mut caller = Caller::open(&server.target).await?;
    let staged = plugins.join(".swap.wasm.tmp");
    let live = plugins.join("swap.wasm");
    let mut add = Vec::with_capacity(ROUNDS + 1);
    let mut remove = Vec::with_capacity(ROUNDS + 1);
    for _ in 0..=ROUNDS {
        std::fs::copy(conformance, &staged)?;
        let renamed = Instant::now();
        std::fs::rename(&staged, &live)?;
        add.push(until(&mut caller, true, renamed).await?);
        // Let the new version serve a moment, as it would in production.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deleted = Instant::now();
        std::fs::remove_file(&live)?;
        remove.push(until(&mut caller, false, deleted).await?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    caller.close().await;
    drop(server);
    Ok(ReloadResult {
        first_add_ms: add[0],
        add_ms: add[1..].to_vec(),
        remove_ms: remove[1..].to_vec(),
    })
}

/// Milliseconds from `since` until a call succeeds (`serving`) or fails.
async fn until(caller: &mut Caller, serving: bool, since: Instant) -> anyhow::Result<f64> {
    loop {
        if caller.call().await.is_ok() == serving {
            return Ok(since.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::ensure!(
            since.elapsed() < GIVE_UP,
            "the plugin was not {} within {GIVE_UP:?}",
            if serving { "served" } else { "removed" }
        );
        tokio::time::sleep(POLL).await;
    }
}
