//! `toolhost config CLIENT URL`: the exact configuration each MCP client
//! needs to reach a toolhost server, ready to paste.

use clap::ValueEnum;
use serde_json::{Value, json};

/// The clients toolhost prints configuration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ClientKind {
    /// Claude Code: a `claude mcp add` command.
    Claude,
    /// VS Code: `.vscode/mcp.json` (or the user `mcp.json`).
    Vscode,
    /// Cursor: `~/.cursor/mcp.json` or `.cursor/mcp.json`.
    Cursor,
    /// The generic `mcpServers` JSON many clients read (Claude Desktop, …).
    Json,
}

#[derive(clap::Args)]
pub(super) struct ConfigArgs {
    /// Which client to configure.
    #[arg(value_enum)]
    client: ClientKind,
    /// The server's MCP URL, such as https://tools.example.com/mcp
    /// (default: TOOLHOST_URL, else the CLI config file's `url`).
    #[arg(env = "TOOLHOST_URL")]
    url: Option<String>,
    /// The name the server gets in the client (default "toolhost").
    #[arg(long, env = "TOOLHOST_SERVER_NAME")]
    name: Option<String>,
}

/// What `toolhost config` prints: where it goes, then the snippet.
pub(super) fn render(client: ClientKind, name: &str, url: &str) -> (String, String) {
    let url = normalize(url);
    match client {
        ClientKind::Claude => (
            "Run in a shell (add `--scope user` for every project); then `/mcp` in Claude Code signs in:".into(),
            format!("claude mcp add --transport http {} {url}", shell_word(name)),
        ),
        ClientKind::Vscode => (
            "Put in .vscode/mcp.json (VS Code asks you to sign in on first use):".into(),
            pretty(&json!({ "servers": { name: { "type": "http", "url": url } } })),
        ),
        ClientKind::Cursor => (
            "Put in ~/.cursor/mcp.json (or .cursor/mcp.json in a project):".into(),
            pretty(&json!({ "mcpServers": { name: { "url": url } } })),
        ),
        ClientKind::Json => (
            "The mcpServers configuration:".into(),
            pretty(&json!({ "mcpServers": { name: { "type": "http", "url": url } } })),
        ),
    }
}

pub(super) fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let settings = crate::client::settings::CliSettings::load()?;
    let Some(url) = args.url.or(settings.url) else {
        anyhow::bail!("which server? pass its https://…/mcp URL");
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        anyhow::bail!("{url:?} is not a URL; pass the server's https://…/mcp URL");
    }
    let name = args.name.or(settings.name);
    let (where_to, snippet) = render(args.client, name.as_deref().unwrap_or("toolhost"), &url);
    eprintln!("{where_to}");
    println!("{snippet}");
    Ok(())
}

/// Accepts the base URL too: clients need the `/mcp` endpoint.
pub(super) fn normalize(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/mcp") {
        url.to_string()
    } else {
        format!("{url}/mcp")
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Quotes a name for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_own_shape() {
        let url = "https://tools.example.com";
        let (_, claude) = render(ClientKind::Claude, "toolhost", url);
        assert_eq!(
            claude,
            "claude mcp add --transport http toolhost https://tools.example.com/mcp"
        );
        let (_, vscode) = render(ClientKind::Vscode, "team tools", url);
        let vscode: Value = serde_json::from_str(&vscode).expect("json");
        assert_eq!(vscode["servers"]["team tools"]["type"], "http");
        let (_, cursor) = render(ClientKind::Cursor, "t", "https://h/mcp/");
        let cursor: Value = serde_json::from_str(&cursor).expect("json");
        assert_eq!(cursor["mcpServers"]["t"]["url"], "https://h/mcp");
        let (_, seed) = render(ClientKind::Json, "t", "https://h/mcp");
        let seed: Value = serde_json::from_str(&seed).expect("json");
        assert_eq!(
            seed["mcpServers"]["t"],
            json!({"type": "http", "url": "https://h/mcp"})
        );
        let (_, quoted) = render(ClientKind::Claude, "it's", url);
        assert!(quoted.contains(r"'it'\''s'"), "{quoted}");
    }
}
