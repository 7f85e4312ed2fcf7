//! Hot reload: watches the plugins directory and swaps in a new generation of
//! plugins when `.wasm` or sidecar `.toml` files change.
//!
//! Strategy: a `notify` watcher (on its own thread) forwards relevant file
//! events into a channel. The reload task waits for a quiet period after the
//! last event (an editor's or a copy's several writes become one reload),
//! then builds the next generation off the request path with
//! [`plugins::reload_dir`]: unchanged plugins are carried over, changed ones
//! are compiled and validated, a file that fails keeps its previous version
//! serving. Only a changed set is swapped in, which notifies every listening
//! client. Calls in flight finish on the generation they started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::audit::{AuditSink, Event};
use crate::fswatch::{is_change, is_volume_swap};
use crate::plugins::{self, Registry, Runtime};

/// Owns the watcher and the reload thread; dropping it stops both (the
/// watcher holds the only sender, so the reload loop ends with it).
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `dir`. Called once at start-up, after the first load.
pub fn spawn(
    runtime: Arc<Runtime>,
    registry: Registry,
    audit: AuditSink,
    dir: PathBuf,
    debounce: Duration,
) -> notify::Result<WatchHandle> {
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event)
                if is_change(&event.kind)
                    && event
                        .paths
                        .iter()
                        .any(|p| is_plugin_file(p) || is_volume_swap(p)) =>
            {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("plugin directory watch error: {err}"),
        })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    // Reloads run on their own thread and runtime: when request handling
    // saturates the server's workers, the OS scheduler still gives a reload
    // its share, so a new version goes live within a bounded delay.
    std::thread::Builder::new()
        .name("toolhost-reload".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(reload_loop(runtime, registry, audit, dir, debounce, rx)),
                Err(err) => tracing::error!("cannot start the reload thread's runtime: {err}"),
            }
        })
        .map_err(notify::Error::io)?;
    Ok(WatchHandle { _watcher: watcher })
}

async fn reload_loop(
    runtime: Arc<Runtime>,
    registry: Registry,
    audit: AuditSink,
    dir: PathBuf,
    debounce: Duration,
    mut rx: mpsc::UnboundedReceiver<()>,
) {
    while rx.recv().await.is_some() {
        // Debounce: wait until no event has arrived for `debounce`.
        while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
        let previous = registry.current();
        match plugins::reload_dir(&runtime, &dir, &previous).await {
            Ok((set, report)) => {
                for (name, err, kept) in &report.failed {
                    if *kept {
                        tracing::error!(plugin = %name, "reload refused; the previous version keeps serving: {err}");
                    } else {
                        tracing::error!(plugin = %name, "plugin refused: {err}");
                    }
                    audit.event(Event::PluginRefused, format!("{name}: {err}"));
                }
                for name in &report.loaded {
                    audit.event(Event::PluginLoaded, name.clone());
                }
                for name in &report.removed {
                    audit.event(Event::PluginRemoved, name.clone());
                }
                if report.changed() {
                    let (generation, tools) = (set.generation(), set.tools().len());
                    registry.replace(set);
                    // Logged once the new set serves, so the line means it.
                    tracing::info!(
                        generation,
                        loaded = ?report.loaded,
                        removed = ?report.removed,
                        tools,
                        "plugins reloaded"
                    );
                }
            }
            Err(err) => {
                tracing::error!(dir = %dir.display(), "cannot read plugins directory: {err}")
            }
        }
    }
}

/// A `.wasm` or `.toml` that is not hidden: temporary files of editors and
/// deploy scripts (`.name.wasm.tmp`, `name.wasm~`) do not trigger reloads.
fn is_plugin_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden
        && path
            .extension()
            .is_some_and(|ext| ext == "wasm" || ext == "toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::EventKind;
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode,
        };
        let check =
            |kind: EventKind, expect: bool| assert_eq!(is_change(&kind), expect, "{kind:?}");
        check(EventKind::Access(AccessKind::Open(AccessMode::Any)), false);
        check(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            false,
        );
        check(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            true,
        );
        check(EventKind::Create(CreateKind::File), true);
        check(EventKind::Modify(ModifyKind::Data(DataChange::Any)), true);
        check(EventKind::Modify(ModifyKind::Name(RenameMode::To)), true);
    }

    #[test]
    fn only_plugin_files_trigger() {
        let check = |path: &str, expect: bool| {
            assert_eq!(is_plugin_file(Path::new(path)), expect, "{path}")
        };
        check("/p/devtools.wasm", true);
        check("/p/devtools.toml", true);
        check("/p/.devtools.wasm", false);
        check("/p/.devtools.wasm.tmp", false);
        check("/p/devtools.wasm~", false);
        check("/p/devtools.wasm.part", false);
        check("/p/notes.txt", false);
    }
}
