//! The set of plugins being served, as one immutable generation, and the handle
//! through which requests read it and reload replaces it.
//!
//! **Invariant:** a request resolves its tool against exactly one `PluginSet`;
//! a replacement never mutates a set that a request may be reading.

use std::collections::{HashMap, HashSet};
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
    /// A set with no plugins, the "previous generation" of the first load.
    pub fn empty() -> PluginSet {
        PluginSet {
            generation: 0,
            plugins: Vec::new(),
            by_name: HashMap::new(),
            ordered: Vec::new(),
        }
    }

    /// Builds a set from loaded plugins, refusing any plugin whose tool names
    /// collide with one accepted before it. Plugins in `incumbents` (already
    /// serving) are taken first, so a newcomer never evicts a serving plugin;
    /// then plugins are taken in name order.
    pub fn build(
        mut plugins: Vec<Arc<LoadedPlugin>>,
        generation: u64,
        incumbents: &HashSet<String>,
    ) -> (PluginSet, Vec<RegistryError>) {
        plugins.sort_by(|a, b| {
            let rank = |p: &LoadedPlugin| !incumbents.contains(&*p.name);
            (rank(a), &a.name).cmp(&(rank(b), &b.name))
        });
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
            set.plugins.push(plugin);
        }
        let mut ordered = std::mem::take(&mut set.ordered);
        ordered.sort_by(|a, b| set.tool_at(*a).1.name.cmp(&set.tool_at(*b).1.name));
        set.ordered = ordered;
        (set, errors)
    }

    /// The serving plugin loaded from the file stem `name`, if any.
    pub fn plugin_named(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| &*p.name == name)
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

/// What one pass over the plugins directory did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Plugins (re)compiled in this pass.
    pub loaded: Vec<String>,
    /// Plugins whose files were gone.
    pub removed: Vec<String>,
    /// Files refused; where an earlier version was serving, it still is.
    pub failed: Vec<(String, RegistryError, bool)>,
}

impl ReloadReport {
    /// Whether the pass changed what is served.
    pub fn changed(&self) -> bool {
        !self.loaded.is_empty() || !self.removed.is_empty()
    }
}

/// Builds the next generation from the files in `dir`: unchanged plugins are
/// carried over from `previous` without recompiling, changed and new ones are
/// loaded, and a file that fails keeps its previous version serving.
/// Called at start-up (with an empty `previous`) and by hot reload; never on
/// the request path.
pub async fn reload_dir(
    runtime: &Runtime,
    dir: &Path,
    previous: &PluginSet,
) -> std::io::Result<(PluginSet, ReloadReport)> {
    let prefixes = &runtime.config.prefixes;
    let mut paths = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        let visible = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'));
        if visible && path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut report = ReloadReport::default();
    let mut plugins = Vec::with_capacity(paths.len());
    let mut seen = HashSet::new();
    for path in paths {
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        seen.insert(name.clone());
        let prefix = prefixes.get(&name).map_or("", String::as_str);
        let serving = previous.plugin_named(&name);
        if let Some(serving) = serving
            && load::fingerprint(&path, prefix).await.ok().as_ref() == Some(&serving.fingerprint)
        {
            plugins.push(serving.clone());
            continue;
        }
        match load::load(runtime, &name, &path, prefix).await {
            Ok(plugin) => {
                report.loaded.push(name);
                plugins.push(Arc::new(plugin));
            }
            Err(err) => {
                if let Some(serving) = serving {
                    plugins.push(serving.clone());
                }
                report
                    .failed
                    .push((name, RegistryError::Load(err), serving.is_some()));
            }
        }
    }
    for plugin in previous.plugins() {
        if !seen.contains(&*plugin.name) {
            report.removed.push(plugin.name.to_string());
        }
    }
    let in_use: HashSet<String> = plugins.iter().map(|p| p.sha256.clone()).collect();
    let cache_dir = runtime.cache_dir.clone();
    // Cleaning reads the directory: keep it off the async workers.
    let _ = tokio::task::spawn_blocking(move || super::cache::clean(&cache_dir, &in_use)).await;
    let incumbents: HashSet<String> = previous
        .plugins()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let (set, collisions) = PluginSet::build(plugins, previous.generation + 1, &incumbents);
    for err in collisions {
        let name = match &err {
            RegistryError::Collision { plugin, .. } => plugin.clone(),
            RegistryError::Load(_) => String::new(),
        };
        report.loaded.retain(|loaded| *loaded != name);
        report.failed.push((name, err, false));
    }
    Ok((set, report))
}
