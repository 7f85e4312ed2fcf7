//! `toolhost plugin check FILE.wasm`: validates a component offline exactly
//! as the server would load it (world, tool names, schemas, its sidecar),
//! then prints its tools and what it imports. `toolhost plugin new` starts
//! one from a template (`super::scaffold`).

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use crate::config::{Config, Overrides, PluginsConfig};
use crate::plugins::{self, Runtime};

#[derive(clap::Subcommand)]
pub(super) enum PluginCommand {
    /// Validate a plugin component offline and print its tools.
    Check(CheckArgs),
    /// Start a new plugin from a template, with the WIT contract beside it.
    New(NewArgs),
    /// Compile the component on standard input into a compiled-code cache
    /// entry (the server runs this in a child process).
    #[command(hide = true)]
    CompileEntry {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        shape: plugins::EngineShape,
    },
}

#[derive(clap::Args)]
pub(super) struct NewArgs {
    /// The plugin's name (its file stem): lowercase letters, digits, - and _.
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: super::scaffold::Lang,
    /// Where to create it (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(super) struct CheckArgs {
    /// The component (`NAME.wasm`); a sidecar `NAME.toml` beside it is checked too.
    file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// The server's TOML configuration, so the sidecar is judged by the same
    /// `[plugins]` limits and policy the server applies (default: built-in).
    #[arg(long, env = "TOOLHOST_CONFIG")]
    config: Option<PathBuf>,
}

pub(super) fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Check(args) => check(args),
        PluginCommand::CompileEntry { out, shape } => plugins::compile_entry(&shape, &out),
        PluginCommand::New(args) => {
            let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
            let written = super::scaffold::create(args.lang, &args.name, &dir)?;
            for path in &written {
                println!("created {}", path.display());
            }
            println!("next: see {}", dir.join("README.md").display());
            Ok(())
        }
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.file.is_file(), "{} is not a file", args.file.display());
    let plugins_config = match &args.config {
        Some(path) => Config::load(Some(path), std::env::vars(), &Overrides::default())?.plugins,
        None => PluginsConfig::default(),
    };
    // A private compile cache: checking must not write into a server's.
    let cache = std::env::temp_dir().join(format!("toolhost-check-{}", std::process::id()));
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            let runtime = Runtime::new(&plugins_config, cache.clone())?;
            anyhow::Ok(plugins::check(&runtime, &args.file).await)
        });
    let _ = std::fs::remove_dir_all(&cache);
    let plugin = result?.with_context(|| format!("{} would be refused", args.file.display()))?;
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let network = plugin
        .imports()
        .iter()
        .any(|name| name.starts_with("wasi:http/outgoing-handler"));
    if args.json {
        let tools: Vec<_> = plugin
            .tools()
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "title": tool.title,
                    "description": tool.description,
                    "inputSchema": tool.input_schema,
                    "outputSchema": tool.output_schema,
                    "annotations": {
                        "readOnlyHint": tool.annotations.read_only,
                        "destructiveHint": tool.annotations.destructive,
                        "idempotentHint": tool.annotations.idempotent,
                        "openWorldHint": tool.annotations.open_world,
                    },
                })
            })
            .collect();
        let report = json!({
            "file": args.file,
            "sha256": plugin.sha256(),
            "bytes": size,
            "imports": plugin.imports(),
            "tools": tools,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: ok, {} tools ({} KiB, sha256 {})",
        args.file.display(),
        plugin.tools().len(),
        size / 1024,
        plugin.sha256()
    );
    println!("imports:");
    for name in plugin.imports() {
        println!("  {name}");
    }
    if network {
        println!("  (outbound HTTP: it reaches only what its sidecar's [network] allow lists)");
    }
    let width = plugin
        .tools()
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4);
    println!("{:<width$}  {:<5}  DESCRIPTION", "TOOL", "MODE");
    for tool in plugin.tools() {
        let mode = if tool.annotations.read_only {
            "read"
        } else {
            "write"
        };
        let first = tool.description.lines().next().unwrap_or_default();
        println!("{:<width$}  {mode:<5}  {first}", tool.name);
    }
    Ok(())
}
