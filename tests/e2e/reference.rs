//! `docs/tools-reference.md` is generated from what the GitHub and Jira
//! plugins answer to `list-tools` (through `toolhost plugin check --json`),
//! and this test keeps it true: it fails when the file differs from a fresh
//! rendering. `TOOLHOST_BLESS=1` rewrites the file instead.

use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use crate::harness::{artefact_dir, toolhost_bin, workspace_root};

fn render(plugin: &str, title: &str, out: &mut String) -> anyhow::Result<()> {
    let wasm =
        artefact_dir("TOOLHOST_INTEGRATIONS", "target/integrations").join(format!("{plugin}.wasm"));
    let output = Command::new(toolhost_bin())
        .args(["plugin", "check", "--json"])
        .arg(&wasm)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let tools = report["tools"].as_array().context("tools")?;
    out.push_str(&format!(
        "## {title} (`{plugin}`, {} tools)\n\n",
        tools.len()
    ));
    for tool in tools {
        let hints = &tool["annotations"];
        let mut flags = vec![if hints["readOnlyHint"] == true {
            "read"
        } else {
            "write"
        }];
        for (hint, label) in [
            ("destructiveHint", "destructive"),
            ("idempotentHint", "idempotent"),
            ("openWorldHint", "open world"),
        ] {
            if hints[hint] == true && !(label == "destructive" && hints["readOnlyHint"] == true) {
                flags.push(label);
            }
        }
        out.push_str(&format!(
            "### `{}`{}\n\n*{}*\n\n{}\n\n",
            tool["name"].as_str().unwrap_or("?"),
            tool["title"]
                .as_str()
                .map(|t| format!(": {t}"))
                .unwrap_or_default(),
            flags.join(", "),
            tool["description"].as_str().unwrap_or_default().trim()
        ));
        let schema = &tool["inputSchema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object().filter(|p| !p.is_empty()) {
            out.push_str("| argument | type | |\n|---|---|---|\n");
            for (name, property) in properties {
                let kind = match &property["type"] {
                    Value::String(t) => t.clone(),
                    Value::Array(types) => types
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    _ if property.get("enum").is_some() => "enum".into(),
                    _ => "any".into(),
                };
                let mut text = property["description"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('\n', " ")
                    .replace('|', "\\|");
                if let Some(values) = property["enum"].as_array() {
                    let values: Vec<String> = values
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map_or_else(|| format!("`{v}`"), |s| format!("`{s}`"))
                        })
                        .collect();
                    text.push_str(&format!(" One of {}.", values.join(", ")));
                }
                let name = if required.contains(&name.as_str()) {
                    format!("**`{name}`**")
                } else {
                    format!("`{name}`")
                };
                out.push_str(&format!("| {name} | {kind} | {} |\n", text.trim()));
            }
            out.push('\n');
        }
    }
    Ok(())
}

#[test]
fn the_tools_reference_matches_the_plugins() -> anyhow::Result<()> {
    let mut fresh = String::from(
        "# Tools reference: GitHub and Jira\n\n\
         Generated from the plugins' `list-tools` by `tests/e2e/reference.rs` \
         (`TOOLHOST_BLESS=1 cargo xtask test reference` rewrites it). Required \
         arguments are in bold.\n\n",
    );
    render("github", "GitHub", &mut fresh)?;
    render("jira", "Jira", &mut fresh)?;
    let path = workspace_root().join("docs/tools-reference.md");
    if std::env::var_os("TOOLHOST_BLESS").is_some() {
        std::fs::create_dir_all(workspace_root().join("docs"))?;
        std::fs::write(&path, &fresh)?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/tools-reference.md is out of date with the plugins; rerun with TOOLHOST_BLESS=1"
    );
    Ok(())
}

/// The README describes what exists; status and plans live in CHANGELOG.md
/// and the issues. A "not built yet" sentence goes stale the day the thing
/// lands (it once told newcomers that mutual TLS and the GitHub plugin were
/// missing after both had shipped), so none may appear.
#[test]
fn the_readme_claims_nothing_is_missing() -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))?;
    let stale = readme_status_claims(&readme);
    assert!(
        stale.is_empty(),
        "README.md states a status; move it to CHANGELOG.md or an issue: {stale:?}"
    );
    Ok(())
}

fn readme_status_claims(text: &str) -> Vec<&str> {
    const PHRASES: [&str; 5] = [
        "not built yet",
        "not yet built",
        "not yet implemented",
        "tracked as open issues",
        "coming soon",
    ];
    text.lines()
        .filter(|line| {
            let line = line.to_ascii_lowercase();
            PHRASES.iter().any(|phrase| line.contains(phrase))
        })
        .collect()
}

#[test]
fn a_status_claim_is_found() {
    let old_opening = "Status: the core is here.\n\
        Mutual TLS and the GitHub/Jira plugins are tracked as open issues and not built yet.";
    assert_eq!(readme_status_claims(old_opening).len(), 1);
    assert!(readme_status_claims("Mutual TLS is on with `tls.client_ca`.").is_empty());
}
