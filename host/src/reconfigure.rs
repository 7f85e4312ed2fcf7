//! Applies a changed configuration file to the running server, for the
//! settings that are safe to change live: the IP allowlist and trusted
//! proxies, the tool-call budgets (`[limits]`), and the access rules
//! (`[[auth.rules]]`). Everything else (listen address, TLS paths, auth
//! mode, plugin directory, audit files) is read at start-up; a change to it
//! is logged and audited as waiting for a restart.
//!
//! A file that does not load (bad TOML, a failed check) changes nothing:
//! the previous settings keep serving and the refusal is audited.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::audit::{AuditSink, Event};
use crate::auth::Auth;
use crate::config::{Config, Overrides};
use crate::limits::Allowlist;
use crate::mcp::McpState;

/// Quiet period after the last write: editors save in several steps.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The live parts a reload may replace.
pub struct Live {
    pub allowlist: Arc<ArcSwap<Allowlist>>,
    pub mcp: Arc<McpState>,
    pub auth: Arc<Auth>,
    pub audit: AuditSink,
}

/// What a reload did, for the log and the audit record.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Sections now in effect.
    pub applied: Vec<&'static str>,
    /// Top-level sections that changed but need a restart.
    pub need_restart: Vec<String>,
}

/// Applies the live-safe differences between `old` and `new`.
pub fn apply(live: &Live, old: &Config, new: &Config) -> Applied {
    let mut applied = Vec::new();
    let allowlist = Allowlist::from_config(&new.limits);
    if Allowlist::from_config(&old.limits) != allowlist {
        live.allowlist.store(Arc::new(allowlist));
        applied.push("limits.allow_ips/trusted_proxies/forwarded_header/ipv6_prefix");
    }
    let budgets = |c: &Config| {
        (
            c.limits.tool_calls_per_hour,
            c.limits.tool_calls_burst,
            c.limits.tools.clone(),
        )
    };
    if budgets(old) != budgets(new) {
        live.mcp.replace_rates(&new.limits);
        applied.push("limits.tool_calls (budgets start full)");
    }
    if old.auth.rules != new.auth.rules {
        live.auth.replace_rules(new.auth.rules.clone());
        applied.push("auth.rules");
    }
    Applied {
        applied,
        need_restart: Vec::new(),
    }
}

/// Top-level sections (and `auth` keys other than `rules`) that differ
/// between two versions of the file and are only read at start-up.
fn restart_sections(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        match key.as_str() {
            // Only the budgets and lists are live; other [limits] keys
            // (the authorization endpoints' budget) are not.
            "limits" => {
                let strip = |t: Option<&toml::Value>| {
                    t.and_then(toml::Value::as_table).map(|t| {
                        let mut t = t.clone();
                        for live in [
                            "allow_ips",
                            "trusted_proxies",
                            "forwarded_header",
                            "ipv6_prefix",
                            "tool_calls_per_hour",
                            "tool_calls_burst",
                            "tools",
                        ] {
                            t.remove(live);
                        }
                        t
                    })
                };
                if strip(a) != strip(b) {
                    out.push("limits".to_string());
                }
            }
            "auth" => {
                let strip = |t: Option<&toml::Value>| {
                    t.and_then(toml::Value::as_table).map(|t| {
                        let mut t = t.clone();
                        t.remove("rules");
                        t
                    })
                };
                if strip(a) != strip(b) {
                    out.push("auth".to_string());
                }
            }
            _ if a != b => out.push(key.clone()),
            _ => {}
        }
    }
    out
}

/// Owns the file watcher and its task; dropping stops both.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reloads `path` whenever it changes and applies what is live-safe.
pub fn watch(
    path: PathBuf,
    overrides: Overrides,
    initial: Config,
    live: Live,
) -> notify::Result<ConfigWatch> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && crate::fswatch::is_change(&event.kind)
            && event.paths.iter().any(|p| {
                crate::fswatch::is_volume_swap(p) || p.file_name().map(|n| n.to_os_string()) == name
            })
        {
            let _ = tx.send(());
        }
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        let mut current = initial;
        let mut text = read_table(&path);
        while rx.recv().await.is_some() {
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            match Config::load(Some(&path), std::env::vars(), &overrides) {
                Ok(next) => {
                    let new_text = read_table(&path);
                    let mut result = apply(&live, &current, &next);
                    result.need_restart = restart_sections(&text, &new_text);
                    if result.applied.is_empty() && result.need_restart.is_empty() {
                        continue;
                    }
                    let detail = format!(
                        "applied: [{}]; needs a restart: [{}]",
                        result.applied.join(", "),
                        result.need_restart.join(", ")
                    );
                    tracing::info!(path = %path.display(), "configuration reloaded; {detail}");
                    live.audit.event(Event::ConfigReloaded, detail);
                    current = next;
                    text = new_text;
                }
                Err(err) => {
                    tracing::error!(
                        "configuration {} not reloaded; the previous settings stay: {err}",
                        path.display()
                    );
                    live.audit.event(Event::ConfigRejected, err.to_string());
                }
            }
        }
    });
    Ok(ConfigWatch {
        _watcher: watcher,
        task,
    })
}

fn read_table(path: &Path) -> toml::Table {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_up_sections_need_a_restart() {
        let old: toml::Table = "[limits]\ntool_calls_per_hour = 5\nauth_burst = 3\n[server]\nheader_timeout_ms = 1\n[auth]\nmode = \"embedded\""
            .parse()
            .expect("toml");
        let live: toml::Table = "[limits]\ntool_calls_per_hour = 9\nauth_burst = 3\n[server]\nheader_timeout_ms = 1\n[auth]\nmode = \"embedded\"\n[[auth.rules]]\neffect = \"deny\""
            .parse()
            .expect("toml");
        assert!(restart_sections(&old, &live).is_empty());
        let restart: toml::Table = "[limits]\ntool_calls_per_hour = 5\nauth_burst = 4\n[server]\nheader_timeout_ms = 2\n[auth]\nmode = \"off\""
            .parse()
            .expect("toml");
        assert_eq!(
            restart_sections(&old, &restart),
            vec!["auth".to_string(), "limits".into(), "server".into()]
        );
    }
}
