//! The developer commands that talk to a running server: `login`, `logout`,
//! `tools`, `call`. The rules they follow live in `crate::client`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use serde_json::{Map, Value, json};

use super::snippets::normalize;
use crate::client::credentials::Store;
use crate::client::settings::CliSettings;
use crate::client::{Remote, Repeat, http_client, oauth};

/// How to reach a server: flags with environment equivalents, both over
/// the CLI's config file (`crate::client::settings`).
#[derive(clap::Args)]
pub(super) struct ServerArgs {
    /// The server's MCP URL (default: the config file's, else the only
    /// server signed in to).
    #[arg(long, env = "TOOLHOST_URL")]
    url: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's, e.g. a
    /// development server's generated `.toolhost/tls/cert.pem`.
    #[arg(long, env = "TOOLHOST_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Seconds one request may take before it counts as failed (default 120).
    #[arg(long, env = "TOOLHOST_TIMEOUT")]
    timeout: Option<u64>,
    /// Show each HTTP exchange (tokens redacted).
    #[arg(long, short, env = "TOOLHOST_VERBOSE", value_parser = BoolishValueParser::new())]
    verbose: bool,
}

/// A flag's value: on the command line or in the environment, else in the
/// config file, else off.
fn flag(given: bool, setting: Option<bool>) -> bool {
    given || setting.unwrap_or(false)
}

impl ServerArgs {
    fn url(&self, store: &Store, settings: &CliSettings) -> anyhow::Result<String> {
        match self.url.as_ref().or(settings.url.as_ref()) {
            Some(url) => Ok(normalize(url)),
            None => store.only_server()?.context(
                "which server? pass --url (or set TOOLHOST_URL); several or none are signed in",
            ),
        }
    }

    fn http(&self, settings: &CliSettings) -> anyhow::Result<reqwest::Client> {
        let ca = self.ca_cert.as_ref().or(settings.ca_cert.as_ref());
        http_client(ca.map(PathBuf::as_path), settings.timeout(self.timeout))
    }

    fn remote(&self) -> anyhow::Result<Remote> {
        let settings = CliSettings::load()?;
        let store = Store::open()?;
        let url = self.url(&store, &settings)?;
        let verbose = flag(self.verbose, settings.verbose);
        Remote::connect(&url, self.http(&settings)?, store, verbose)
    }
}

#[derive(clap::Args)]
pub(super) struct LoginArgs {
    /// The server's URL, such as https://tools.example.com/mcp (or --url,
    /// TOOLHOST_URL, the config file's `url`).
    #[arg(value_name = "URL")]
    target: Option<String>,
    /// Sign in as a service with the client-credentials grant, using
    /// TOOLHOST_CLIENT_ID and TOOLHOST_CLIENT_SECRET.
    #[arg(long, env = "TOOLHOST_CLIENT_CREDENTIALS", value_parser = BoolishValueParser::new())]
    client_credentials: bool,
    /// Scopes to ask for (default: all the server offers, "read write").
    #[arg(long, env = "TOOLHOST_SCOPE")]
    scope: Option<String>,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long, env = "TOOLHOST_NO_BROWSER", value_parser = BoolishValueParser::new())]
    no_browser: bool,
    /// Sign in from a machine without a browser (over SSH): open the
    /// printed link anywhere and enter the code (RFC 8628).
    #[arg(long, env = "TOOLHOST_DEVICE", value_parser = BoolishValueParser::new())]
    device: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub(super) async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let settings = CliSettings::load()?;
    let url = match args
        .target
        .as_ref()
        .or(args.server.url.as_ref())
        .or(settings.url.as_ref())
    {
        Some(url) => normalize(url),
        None => bail!("which server? name its URL: `toolhost login https://HOST/mcp`"),
    };
    let http = args.server.http(&settings)?;
    let scope = args
        .scope
        .clone()
        .or(settings.scope.clone())
        .unwrap_or_else(|| crate::auth::SCOPES.to_string());
    let client_credentials = flag(args.client_credentials, settings.client_credentials);
    let device = flag(args.device, settings.device);
    if client_credentials && device {
        bail!("choose one of --client-credentials and --device");
    }
    let endpoints = oauth::discover(&http, &url).await?;
    let credential = if client_credentials {
        let id = std::env::var("TOOLHOST_CLIENT_ID").context("set TOOLHOST_CLIENT_ID")?;
        let secret =
            std::env::var("TOOLHOST_CLIENT_SECRET").context("set TOOLHOST_CLIENT_SECRET")?;
        oauth::client_credentials(&http, &endpoints, &url, &id, &secret, Some(&scope)).await?
    } else if device {
        oauth::device_flow(&http, &endpoints, &url, &scope, |link, code| {
            eprintln!("On any device, open\n{link}\nand check that it shows the code {code}");
        })
        .await?
    } else {
        let open = !flag(args.no_browser, settings.no_browser);
        oauth::code_flow(&http, &endpoints, &url, &scope, |link| {
            eprintln!("Sign in at:\n{link}");
            if open {
                open_browser(link);
            }
        })
        .await?
    };
    let claims = oauth::peek_claims(&credential.access_token);
    let store = Store::open()?;
    store.put(&url, credential.clone())?;
    println!(
        "signed in to {url} as {} ({})",
        claims["sub"].as_str().unwrap_or("?"),
        credential.scope
    );
    Ok(())
}

fn open_browser(link: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let opened = std::process::Command::new(opener)
        .arg(link)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if opened.is_err() {
        eprintln!("(could not start {opener}; open the link yourself)");
    }
}

#[derive(clap::Args)]
pub(super) struct LogoutArgs {
    #[command(flatten)]
    server: ServerArgs,
}

pub(super) async fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let settings = CliSettings::load()?;
    let store = Store::open()?;
    let url = args.server.url(&store, &settings)?;
    let Some(credential) = store.remove(&url)? else {
        bail!("not signed in to {url}");
    };
    let http = args.server.http(&settings)?;
    if let Err(err) = oauth::revoke(&http, &credential).await {
        eprintln!("toolhost: the server did not confirm revocation: {err:#}");
    }
    println!("signed out of {url}");
    Ok(())
}

#[derive(clap::Args)]
pub(super) struct ToolsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the tools as JSON.
    #[arg(long, env = "TOOLHOST_JSON", value_parser = BoolishValueParser::new())]
    json: bool,
}

async fn all_tools(remote: &mut Remote) -> anyhow::Result<Vec<Value>> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = remote.request("tools/list", params, Repeat::Safe).await?;
        tools.extend(page["tools"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(tools),
        }
    }
}

pub(super) async fn tools(args: ToolsArgs) -> anyhow::Result<()> {
    let mut remote = args.server.remote()?;
    let tools = all_tools(&mut remote).await?;
    if flag(args.json, CliSettings::load()?.json) {
        println!("{}", serde_json::to_string_pretty(&tools)?);
        return Ok(());
    }
    let width = tools
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::len))
        .max()
        .unwrap_or(4);
    println!("{:<width$}  {:<5}  DESCRIPTION", "NAME", "MODE");
    for tool in &tools {
        let mode = if tool["annotations"]["readOnlyHint"] == true {
            "read"
        } else {
            "write"
        };
        let description = tool["description"].as_str().unwrap_or_default();
        let first = description.lines().next().unwrap_or_default();
        let short: String = first.chars().take(100).collect();
        println!(
            "{:<width$}  {mode:<5}  {short}",
            tool["name"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub(super) struct CallArgs {
    /// The tool's name, as `toolhost tools` lists it.
    tool: String,
    /// An argument as key=value; the value is read as JSON when it parses
    /// (numbers, true, [..]) and as a string otherwise. Repeatable.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    args: Vec<String>,
    /// All arguments as a JSON object, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    json: Option<String>,
    /// Print the raw result JSON.
    #[arg(long, env = "TOOLHOST_RAW", value_parser = BoolishValueParser::new())]
    raw: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The call's arguments from `--json` and `--arg`s (which win).
fn arguments(args: &CallArgs) -> anyhow::Result<Map<String, Value>> {
    let mut map = match &args.json {
        None => Map::new(),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
                }
                None => text.clone(),
            };
            match serde_json::from_str(&text).context("--json is not valid JSON")? {
                Value::Object(map) => map,
                _ => bail!("--json must be a JSON object"),
            }
        }
    };
    for pair in &args.args {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--arg {pair:?} is not KEY=VALUE"))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

/// Returns whether the tool reported an error (the exit status says so).
pub(super) async fn call(args: CallArgs) -> anyhow::Result<bool> {
    let arguments = arguments(&args)?;
    let mut remote = args.server.remote()?;
    // Whether a retry is safe depends on the tool: read-only and idempotent
    // tools may run twice, others never after they may have started.
    let tools = all_tools(&mut remote).await?;
    let tool = tools
        .iter()
        .find(|t| t["name"] == args.tool.as_str())
        .with_context(|| format!("no tool {:?} here (see `toolhost tools`)", args.tool))?;
    let hints = &tool["annotations"];
    let repeat = if hints["readOnlyHint"] == true || hints["idempotentHint"] == true {
        Repeat::Safe
    } else {
        Repeat::Once
    };
    let result = remote
        .request(
            "tools/call",
            json!({ "name": args.tool, "arguments": arguments }),
            repeat,
        )
        .await?;
    let is_error = result["isError"] == true;
    if flag(args.raw, CliSettings::load()?.raw) {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(is_error);
    }
    for item in result["content"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("text") => println!("{}", item["text"].as_str().unwrap_or_default()),
            Some(kind) => println!("[{kind} content: use --raw to see it]"),
            None => {}
        }
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null())
        && result["content"].as_array().is_none_or(Vec::is_empty)
    {
        println!("{}", serde_json::to_string_pretty(structured)?);
    }
    Ok(is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_merge_json_and_pairs() {
        let args = CallArgs {
            tool: "t".into(),
            args: vec!["n=3".into(), "text=hello world".into(), "flag=true".into()],
            json: Some("{\"n\": 1, \"other\": \"x\"}".into()),
            raw: false,
            server: ServerArgs {
                url: None,
                ca_cert: None,
                timeout: None,
                verbose: false,
            },
        };
        let map = arguments(&args).expect("arguments");
        assert_eq!(
            Value::Object(map),
            json!({"n": 3, "text": "hello world", "flag": true, "other": "x"})
        );
    }
}
