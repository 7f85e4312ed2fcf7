//! Loading one plugin file: compile (or fetch from cache), link against the
//! host's imports, ask it for its tools and validate every definition.
//!
//! A plugin that fails any step is refused with an error that names the file
//! and the reason; nothing half-loaded is ever served.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::Runtime;
use super::bindings::{Annotations, PluginPre, ToolDefinition};
use super::cache::{self, Origin};
use super::call;
use super::guest_log::{PluginLog, escape};
use super::network::NetworkGrant;
use super::sidecar::{self, EffectiveLimits};

/// Most tools one plugin may declare; a plugin declaring thousands is more
/// likely hostile than useful and would bloat every `tools/list`.
pub(crate) const MAX_TOOLS_PER_PLUGIN: usize = 1000;

/// Longest JSON Schema text accepted for one tool.
const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// A compiled, validated plugin, immutable once built. Shared by every call
/// of the generation that holds it; in-flight calls keep it alive.
pub struct LoadedPlugin {
    pub(crate) name: Arc<str>,
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
    pub(crate) pre: PluginPre<super::store::CallState>,
    pub(crate) tools: Vec<ToolSpec>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) limits: EffectiveLimits,
    /// Destinations, limits and credentials for the plugin's outbound HTTP.
    pub(crate) network: Arc<NetworkGrant>,
    /// The `host.log` rate its calls share.
    pub(crate) log: Arc<PluginLog>,
    /// Calls of this plugin running now; bounded by `limits.max_concurrent`.
    pub(crate) concurrency: Semaphore,
    /// Calls waiting for `concurrency` (plus those running, briefly).
    pub(crate) queued: std::sync::atomic::AtomicUsize,
    /// What the plugin was built from; equal fingerprints need no reload.
    pub(crate) fingerprint: Fingerprint,
    /// The interfaces the component imports, for `toolhost plugin check`.
    pub(crate) imports: Vec<String>,
}

/// Identifies the inputs of a load: the component, its sidecar and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) wasm_sha256: String,
    pub(crate) sidecar_sha256: Option<String>,
    pub(crate) prefix: String,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the `.wasm` file this was built from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    /// The interfaces the component imports (`wasi:http/outgoing-handler@…`).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }
}

/// One tool as declared by its plugin, with compiled validators.
pub struct ToolSpec {
    /// The name clients see: the operator's prefix plus the declared name.
    pub name: String,
    /// The name the plugin declared, passed back to `call-tool`.
    pub(crate) declared_name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub annotations: Annotations,
    pub(crate) input_validator: jsonschema::Validator,
    pub(crate) output_validator: Option<jsonschema::Validator>,
}

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid component: {message}")]
    Compile { path: PathBuf, message: String },
    /// More core instances, memories or tables than one pool slot holds.
    #[error(
        "{path} needs more than one plugin instance may hold (at most {} core instances, {} memories and {} tables): {message}",
        super::engine::CORE_INSTANCES_PER_COMPONENT,
        super::engine::MEMORIES_PER_COMPONENT,
        super::engine::TABLES_PER_COMPONENT
    )]
    TooLarge { path: PathBuf, message: String },
    #[error("{path} does not fit the toolhost:plugin world: {message}")]
    Link { path: PathBuf, message: String },
    #[error("{path}: list-tools failed: {message}")]
    ListTools { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    InvalidTool { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Sidecar { path: PathBuf, message: String },
}

/// Loads the plugin at `path` under the name `name`, applying `prefix` to its
/// tool names. Called at start-up and by hot reload, never on the request path.
pub(crate) async fn load(
    runtime: &Runtime,
    name: &str,
    path: &Path,
    prefix: &str,
) -> Result<LoadedPlugin, LoadError> {
    let started = Instant::now();
    let wasm = tokio::fs::read(path)
        .await
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let sidecar_err = |message| LoadError::Sidecar {
        path: path.to_path_buf(),
        message,
    };
    let (sidecar, sidecar_bytes) = sidecar::read(path).map_err(sidecar_err)?;
    let limits = sidecar
        .limits(&runtime.config.limits, &runtime.config.policy)
        .map_err(sidecar_err)?;
    let network = Arc::new(
        sidecar
            .network(&runtime.config.policy)
            .map_err(sidecar_err)?,
    );
    let fingerprint = Fingerprint {
        wasm_sha256: sha256.clone(),
        sidecar_sha256: sidecar_bytes.map(|bytes| hex::encode(Sha256::digest(bytes))),
        prefix: prefix.to_string(),
    };
    let engine = runtime.engine.clone();
    let cache_dir = runtime.cache_dir.clone();
    let compiler = runtime.compiler.clone();
    let hash = sha256.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        cache::component(&engine, compiler.as_ref(), &cache_dir, &wasm, &hash)
            .map_err(|e| format!("{e:#}"))
    })
    .await
    .map_err(|e| format!("compiler task failed: {e}"))
    .and_then(|res| res);
    let (component, origin): (Component, Origin) = compiled.map_err(|message| {
        // Wasmtime checks a component against the pool's per-component
        // limits as it compiles (or deserializes) it.
        if message.contains("pooling allocator") {
            LoadError::TooLarge {
                path: path.to_path_buf(),
                message,
            }
        } else {
            LoadError::Compile {
                path: path.to_path_buf(),
                message,
            }
        }
    })?;
    let imports = component
        .component_type()
        .imports(&runtime.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let link_err = |e: wasmtime::Error| LoadError::Link {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let instance_pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(link_err)?;
    let pre = PluginPre::new(instance_pre).map_err(link_err)?;
    let name: Arc<str> = Arc::from(name);
    let config = Arc::new(sidecar.config);
    let dropped = runtime
        .log_dropped
        .get_or_create(&super::PluginLabel {
            plugin: name.to_string(),
        })
        .clone();
    let log = Arc::new(PluginLog::new(
        name.clone(),
        &runtime.config.limits,
        dropped,
    ));
    // The plugin wrote parts of these messages, and they reach the log.
    let definitions = call::list_tools(runtime, &pre, &name, &config, &limits, &log)
        .await
        .map_err(|err| LoadError::ListTools {
            path: path.to_path_buf(),
            message: escape(&err.to_string()).into_owned(),
        })?;
    let tools = validate_tools(definitions, prefix).map_err(|message| LoadError::InvalidTool {
        path: path.to_path_buf(),
        message: escape(&message).into_owned(),
    })?;
    tracing::info!(
        plugin = &*name,
        path = %path.display(),
        tools = tools.len(),
        from_cache = origin == Origin::Cache,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "plugin loaded"
    );
    Ok(LoadedPlugin {
        name,
        path: path.to_path_buf(),
        sha256,
        pre,
        tools,
        config,
        concurrency: Semaphore::new(limits.max_concurrent as usize),
        queued: std::sync::atomic::AtomicUsize::new(0),
        limits,
        network,
        log,
        fingerprint,
        imports,
    })
}

/// Loads `path` as a server would (its sidecar included), for
/// `toolhost plugin check`: the same validation, nothing served.
pub async fn check(runtime: &Runtime, path: &Path) -> Result<LoadedPlugin, LoadError> {
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("plugin");
    load(runtime, name, path, "").await
}

/// The fingerprint the files at `path` would load with, read without
/// compiling anything, so reload can skip unchanged plugins.
pub(crate) async fn fingerprint(path: &Path, prefix: &str) -> std::io::Result<Fingerprint> {
    let wasm = tokio::fs::read(path).await?;
    let sidecar_sha256 = match tokio::fs::read(path.with_extension("toml")).await {
        Ok(bytes) => Some(hex::encode(Sha256::digest(bytes))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    Ok(Fingerprint {
        wasm_sha256: hex::encode(Sha256::digest(&wasm)),
        sidecar_sha256,
        prefix: prefix.to_string(),
    })
}

/// Checks every definition and compiles its schemas; the first problem wins.
fn validate_tools(definitions: Vec<ToolDefinition>, prefix: &str) -> Result<Vec<ToolSpec>, String> {
    if definitions.is_empty() {
        return Err("declares no tools".into());
    }
    if definitions.len() > MAX_TOOLS_PER_PLUGIN {
        return Err(format!(
            "declares {} tools; at most {MAX_TOOLS_PER_PLUGIN} are allowed",
            definitions.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut tools = Vec::with_capacity(definitions.len());
    for def in definitions {
        let exposed = format!("{prefix}{}", def.name);
        if !is_valid_tool_name(&exposed) {
            return Err(format!(
                "tool name {exposed:?} is invalid: names must match ^[a-zA-Z0-9_-]{{1,64}}$"
            ));
        }
        if !seen.insert(def.name.clone()) {
            return Err(format!("tool {:?} is declared twice", def.name));
        }
        let input_schema = parse_schema(&def.name, "input", &def.input_schema)?;
        if input_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            return Err(format!(
                "tool {:?}: input schema must have \"type\": \"object\"",
                def.name
            ));
        }
        let input_validator = compile_schema(&def.name, "input", &input_schema)?;
        let (output_schema, output_validator) = match &def.output_schema {
            Some(text) => {
                let schema = parse_schema(&def.name, "output", text)?;
                let validator = compile_schema(&def.name, "output", &schema)?;
                (Some(schema), Some(validator))
            }
            None => (None, None),
        };
        tools.push(ToolSpec {
            name: exposed,
            declared_name: def.name,
            title: def.title,
            description: def.description,
            input_schema,
            output_schema,
            annotations: def.annotations,
            input_validator,
            output_validator,
        });
    }
    Ok(tools)
}

fn parse_schema(tool: &str, which: &str, text: &str) -> Result<serde_json::Value, String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "tool {tool:?}: {which} schema is {} bytes; at most {MAX_SCHEMA_BYTES} allowed",
            text.len()
        ));
    }
    serde_json::from_str(text)
        .map_err(|e| format!("tool {tool:?}: {which} schema is not valid JSON: {e}"))
}

fn compile_schema(
    tool: &str,
    which: &str,
    schema: &serde_json::Value,
) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema)
        .map_err(|e| format!("tool {tool:?}: {which} schema is not a valid JSON Schema: {e}"))
}

/// The tool-name rule MCP clients accept: `^[a-zA-Z0-9_-]{1,64}$`.
pub(crate) fn is_valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, schema: &str) -> ToolDefinition {
        ToolDefinition {
            name: name.into(),
            title: None,
            description: "d".into(),
            input_schema: schema.into(),
            output_schema: None,
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        }
    }

    const OBJECT: &str = r#"{"type":"object"}"#;

    #[test]
    fn tool_names() {
        let check =
            |name: &str, expect: bool| assert_eq!(is_valid_tool_name(name), expect, "{name}");
        check("a", true);
        check("get_me-2", true);
        check(&"x".repeat(64), true);
        check(&"x".repeat(65), false);
        check("", false);
        check("bad name", false);
        check("dot.name", false);
        check("ünï", false);
    }

    #[test]
    fn definitions() {
        let check = |defs: Vec<ToolDefinition>, prefix: &str, expect: Result<Vec<&str>, &str>| {
            let res = validate_tools(defs, prefix);
            match (res, expect) {
                (Ok(tools), Ok(names)) => {
                    let got: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
                    assert_eq!(got, names);
                }
                (Err(err), Err(part)) => assert!(err.contains(part), "{err:?} lacks {part:?}"),
                (res, expect) => panic!("got {:?}, expected {expect:?}", res.map(|t| t.len())),
            }
        };
        check(vec![def("a", OBJECT)], "", Ok(vec!["a"]));
        check(vec![def("a", OBJECT)], "gh_", Ok(vec!["gh_a"]));
        check(vec![], "", Err("declares no tools"));
        check(
            vec![def("a", OBJECT), def("a", OBJECT)],
            "",
            Err("declared twice"),
        );
        check(vec![def("bad name!", OBJECT)], "", Err("is invalid"));
        check(
            vec![def(&"x".repeat(60), OBJECT)],
            "prefix_",
            Err("is invalid"),
        );
        check(vec![def("a", r#"{"type":"#)], "", Err("not valid JSON"));
        check(
            vec![def("a", r#"{"type":"string"}"#)],
            "",
            Err("must have \"type\": \"object\""),
        );
        check(
            vec![def(
                "a",
                r#"{"type":"object","properties":{"x":{"type":"nonsense"}}}"#,
            )],
            "",
            Err("not a valid JSON Schema"),
        );
        let many = (0..=MAX_TOOLS_PER_PLUGIN)
            .map(|i| def(&format!("t{i}"), OBJECT))
            .collect();
        check(many, "", Err("at most 1000"));
    }

    /// A component of `instances` instances of one core module that defines
    /// `memories` memories and `tables` tables.
    fn component(instances: u32, memories: u32, tables: u32) -> Vec<u8> {
        use wasm_encoder::{
            InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection, RefType,
            TableSection, TableType,
        };
        let mut module = Module::new();
        let mut table_section = TableSection::new();
        for _ in 0..tables {
            table_section.table(TableType {
                element_type: RefType::FUNCREF,
                table64: false,
                minimum: 1,
                maximum: None,
                shared: false,
            });
        }
        module.section(&table_section);
        let mut memory_section = MemorySection::new();
        for _ in 0..memories {
            memory_section.memory(MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        module.section(&memory_section);
        let mut component = wasm_encoder::Component::new();
        component.section(&ModuleSection(&module));
        let mut instance_section = InstanceSection::new();
        for _ in 0..instances {
            instance_section.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        }
        component.section(&instance_section);
        component.finish()
    }

    /// The pool holds 16 core instances, 2 memories and 8 tables per slot: a
    /// component needing more would take other calls' share, so it is
    /// refused at load with the reason, not at some later call.
    #[tokio::test]
    async fn a_component_beyond_a_pool_slot_is_refused_at_load() {
        let dir = std::env::temp_dir().join(format!("toolhost-load-pool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut config = crate::config::PluginsConfig::default();
        config.limits.max_instances = 2;
        let runtime = Runtime::new(&config, dir.join("cache")).expect("runtime");
        let load_component = |name: &'static str, bytes: Vec<u8>| {
            let path = dir.join(format!("{name}.wasm"));
            std::fs::write(&path, bytes).expect("write component");
            let runtime = &runtime;
            async move { load(runtime, name, &path, "").await.err() }
        };
        let refused = |err: Option<LoadError>, what: &str| match err {
            Some(err @ LoadError::TooLarge { .. }) => {
                let message = err.to_string();
                assert!(message.contains(what), "{message:?} lacks {what:?}");
            }
            other => panic!("expected a refusal naming {what:?}, got {other:?}"),
        };
        refused(
            load_component("memories", component(3, 1, 0)).await,
            "3 Wasm linear memories",
        );
        refused(
            load_component("tables", component(1, 0, 9)).await,
            "tables count of 9",
        );
        refused(
            load_component("instances", component(17, 0, 0)).await,
            "17 core module instances",
        );
        // Within a slot the component compiles; this one then fails to link
        // (it exports no tools), which shows it got past the pool check.
        match load_component("fits", component(16, 0, 0)).await {
            Some(LoadError::Link { .. }) => {}
            other => panic!("expected a link error, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
