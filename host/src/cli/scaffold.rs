//! `toolhost plugin new --lang LANG NAME`: a new plugin from the templates
//! in `plugins/templates/`, built into the binary so it works anywhere, with
//! the WIT contract (`wit/world.wit`) copied beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

/// The languages with a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Lang {
    Rust,
    Python,
    Js,
    C,
}

/// One file of a template: where it goes and its text, with `{{name}}`
/// (the plugin's name) and `{{crate}}` (the name with `_` for `-`) filled in.
struct File {
    path: &'static str,
    text: &'static str,
}

const WORLD: &str = include_str!("../../../wit/world.wit");

const RUST: &[File] = &[
    File {
        path: "Cargo.toml",
        text: include_str!("../../../plugins/templates/rust/Cargo.toml.tmpl"),
    },
    File {
        path: "src/lib.rs",
        text: include_str!("../../../plugins/templates/rust/src/lib.rs.tmpl"),
    },
    File {
        path: "README.md",
        text: include_str!("../../../plugins/templates/rust/README.md.tmpl"),
    },
];

const PYTHON: &[File] = &[
    File {
        path: "app.py",
        text: include_str!("../../../plugins/templates/python/app.py"),
    },
    File {
        path: "requirements.txt",
        text: include_str!("../../../plugins/templates/python/requirements.txt"),
    },
    File {
        path: "README.md",
        text: include_str!("../../../plugins/templates/python/README.md"),
    },
];

const JS: &[File] = &[
    File {
        path: "plugin.js",
        text: include_str!("../../../plugins/templates/js/plugin.js"),
    },
    File {
        path: "package.json",
        text: include_str!("../../../plugins/templates/js/package.json"),
    },
    File {
        path: "README.md",
        text: include_str!("../../../plugins/templates/js/README.md"),
    },
];

const C: &[File] = &[
    File {
        path: "plugin.c",
        text: include_str!("../../../plugins/templates/c/plugin.c"),
    },
    File {
        path: "README.md",
        text: include_str!("../../../plugins/templates/c/README.md"),
    },
];

fn files(lang: Lang) -> &'static [File] {
    match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
        Lang::C => C,
    }
}

/// A plugin name is also its file stem and (Rust) crate name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Writes the template for `lang` into `dir` (which must not exist yet).
pub(super) fn create(lang: Lang, name: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !valid_name(name) {
        bail!(
            "{name:?} is not a plugin name: lowercase letters, digits, - and _, starting with a letter"
        );
    }
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or --dir",
            dir.display()
        );
    }
    let crate_name = name.replace('-', "_");
    let mut written = Vec::new();
    let world = File {
        path: "wit/world.wit",
        text: WORLD,
    };
    for file in files(lang).iter().chain(std::iter::once(&world)) {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = file
            .text
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_templates_filled_in() {
        assert!(valid_name("jira-tools") && valid_name("a1_b"));
        assert!(!valid_name("Jira") && !valid_name("1x") && !valid_name("a/b") && !valid_name(""));
        let dir = std::env::temp_dir().join(format!("toolhost-new-{}", std::process::id()));
        let written = create(Lang::Rust, "my-tools", &dir).expect("scaffold");
        assert_eq!(written.len(), 4);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("name = \"my-tools\""), "{cargo}");
        let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
        assert!(readme.contains("release/my_tools.wasm"), "{readme}");
        assert!(dir.join("wit/world.wit").is_file());
        assert!(
            create(Lang::Rust, "my-tools", &dir).is_err(),
            "never overwrites"
        );
        let _ = std::fs::remove_dir_all(&dir);
        for lang in [Lang::Python, Lang::Js, Lang::C] {
            let written = create(lang, "hello", &dir).expect("scaffold");
            assert!(written.iter().any(|p| p.ends_with("wit/world.wit")));
            assert!(written.iter().any(|p| p.ends_with("README.md")));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
