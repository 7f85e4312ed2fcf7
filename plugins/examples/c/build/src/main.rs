//! Build helper for C plugins: the two steps of a C toolchain for components
//! that are otherwise command-line tools (`wit-bindgen c`, `wasm-tools
//! component new`), as libraries, so nothing needs `cargo install`.
//!
//! - `toolhost-c-build bindings WIT_DIR WORLD OUT_DIR`: writes `WORLD.h`,
//!   `WORLD.c` and `WORLD_component_type.o` (the world's type as a custom
//!   section; link it into the module with the rest).
//! - `toolhost-c-build componentize MODULE.wasm OUT.wasm`: wraps a wasm32-wasi
//!   (preview1) reactor module with the preview1 reactor adapter into a
//!   validated component.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use wit_bindgen_core::Files;
use wit_component::ComponentEncoder;
use wit_parser::{Resolve, WorldId};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bindings", wit, world, out] => bindings(Path::new(wit), world, Path::new(out)),
        ["componentize", module, out] => componentize(Path::new(module), Path::new(out)),
        _ => bail!(
            "usage: toolhost-c-build bindings WIT_DIR WORLD OUT_DIR\n       \
             toolhost-c-build componentize MODULE.wasm OUT.wasm"
        ),
    }
}

fn load(wit: &Path, world: &str) -> anyhow::Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("parsing {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    Ok((resolve, world))
}

fn bindings(wit: &Path, world: &str, out: &Path) -> anyhow::Result<()> {
    let (mut resolve, world) = load(wit, world)?;
    let opts = wit_bindgen_c::Opts::default();
    let mut files = Files::default();
    opts.build().generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path: PathBuf = out.join(name);
        // Rewrite only what changed, so make-style rebuilds stay quiet.
        if std::fs::read(&path).ok().as_deref() != Some(contents) {
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

fn componentize(module: &Path, out: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&bytes)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("encoding the component")?;
    // Write beside, then rename: a watching server never reads half a file.
    let staging = out.with_extension("wasm.tmp");
    std::fs::write(&staging, &component)
        .with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, out)?;
    Ok(())
}
