//! The set of plugins being served, as one immutable generation, and the handle
//! through which requests read it and reload replaces it.
//!
//! **Invariant:** a request resolves its tool against exactly one `PluginSet`;
//! a replacement never mutates a set that a request may be reading.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Runtime;
use super::load::{self, LoadError, LoadedPlugin, ToolSpec};

/// One generation of loaded plugins with a name index over their tools.
pub struct PluginSet {
    generation: u64,
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Tool name → (plugin index, tool index), for calls.
    by_name: HashMap<String, (usize, usize)>,
    /// Every tool in name order, for stable `tools/list` pages.
    ordered: Vec<(usize, usize)>,
}

/// Why a loaded plugin was left out of a set.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "plugin {plugin:?} ({path}) declares tool {tool:?}, which plugin {owner:?} ({owner_path}) \
         already provides; refused. Set plugins.prefixes.{plugin} to serve both"
    )]
    Collision {
        plugin: String,
        path: String,
        tool: String,
        owner: String,
        owner_path: String,
    },
}

impl PluginSet {
    /// Builds a set from loaded plugins, refusing any plugin whose tool names
    /// collide with one accepted before it (plugins are taken in name order).
    pub fn build(
        mut plugins: Vec<LoadedPlugin>,
        generation: u64,
    ) -> (PluginSet, Vec<RegistryError>) {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let mut set = PluginSet {
            generation,
            plugins: Vec::with_capacity(plugins.len()),
            by_name: HashMap::new(),
            ordered: Vec::new(),
        };
        let mut errors = Vec::new();
        for plugin in plugins {
            let collision = plugin.tools.iter().find_map(|tool| {
                set.by_name
                    .get(&tool.name)
                    .map(|&(owner_idx, _)| (tool, &set.plugins[owner_idx]))
            });
            if let Some((tool, owner)) = collision {
                errors.push(RegistryError::Collision {
                    plugin: plugin.name.to_string(),
                    path: plugin.path.display().to_string(),
                    tool: tool.name.clone(),
                    owner: owner.name.to_string(),
                    owner_path: owner.path.display().to_string(),
                });
                continue;
            }
            let plugin_idx = set.plugins.len();
            for (tool_idx, tool) in plugin.tools.iter().enumerate() {
                set.by_name
                    .insert(tool.name.clone(), (plugin_idx, tool_idx));
                set.ordered.push((plugin_idx, tool_idx));
            }
            set.plugins.push(Arc::new(plugin));
        }
        let mut ordered = std::mem::take(&mut set.ordered);
        ordered.sort_by(|a, b| set.tool_at(*a).1.name.cmp(&set.tool_at(*b).1.name));
        set.ordered = ordered;
        (set, errors)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// Finds a tool by the name clients use.
    pub fn find(&self, name: &str) -> Option<(&Arc<LoadedPlugin>, &ToolSpec)> {
        self.by_name.get(name).map(|&idx| self.tool_at(idx))
    }

    /// Every tool, in name order.
    pub fn tools(&self) -> impl ExactSizeIterator<Item = (&Arc<LoadedPlugin>, &ToolSpec)> {
        self.ordered.iter().map(|&idx| self.tool_at(idx))
    }

    fn tool_at(&self, (plugin_idx, tool_idx): (usize, usize)) -> (&Arc<LoadedPlugin>, &ToolSpec) {
        let plugin = &self.plugins[plugin_idx];
        (plugin, &plugin.tools[tool_idx])
    }
}

/// The served generation. Cheap to clone; requests call [`Registry::current`]
/// once and keep that snapshot for their whole life.
#[derive(Clone)]
pub struct Registry {
    current: Arc<ArcSwap<PluginSet>>,
    changed: watch::Sender<u64>,
}

impl Registry {
    pub fn new(set: PluginSet) -> Registry {
        let (changed, _) = watch::channel(set.generation);
        Registry {
            current: Arc::new(ArcSwap::from_pointee(set)),
            changed,
        }
    }

    /// The generation to serve this request from.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// Swaps in a new generation; calls in flight finish on the old one.
    pub fn replace(&self, set: PluginSet) {
        let generation = set.generation;
        self.current.store(Arc::new(set));
        self.changed.send_replace(generation);
    }

    /// Fires whenever the tool list may have changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Loads every `*.wasm` in `dir`, in name order. Files that fail are reported,
/// not fatal: one broken plugin must not keep the others from serving.
pub async fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    prefixes: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<(Vec<LoadedPlugin>, Vec<RegistryError>)> {
    let mut paths = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let prefix = prefixes.get(&name).map_or("", String::as_str);
        match load::load(runtime, &name, &path, prefix).await {
            Ok(plugin) => loaded.push(plugin),
            Err(err) => errors.push(RegistryError::Load(err)),
        }
    }
    Ok((loaded, errors))
}
