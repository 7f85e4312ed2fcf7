//! The CLI's own configuration file, for what is tedious to pass on every
//! command: `$TOOLHOST_CLI_CONFIG`, else `<config dir>/toolhost/cli.toml`.
//! Flags win over environment variables, which win over this file. Every
//! setting flag has a key here named after it (`--no-browser` is
//! `no_browser`; `--timeout` is `timeout_secs`); only a command's data (the
//! tool, its `--arg`s) has none.
//!
//! ```toml
//! url = "https://tools.example.com/mcp"
//! ca_cert = "/etc/ssl/team-ca.pem"
//! timeout_secs = 60
//! verbose = false
//! scope = "read"
//! device = true
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

pub const CLI_CONFIG_ENV: &str = "TOOLHOST_CLI_CONFIG";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CliSettings {
    /// The server used when no `--url` or `TOOLHOST_URL` names one.
    pub url: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// How long one request may take before it counts as failed.
    pub timeout_secs: Option<u64>,
    /// Show each HTTP exchange (tokens redacted).
    pub verbose: Option<bool>,
    /// `login`: scopes to ask for.
    pub scope: Option<String>,
    /// `login`: sign in with the client-credentials grant.
    pub client_credentials: Option<bool>,
    /// `login`: sign in with the device authorization grant.
    pub device: Option<bool>,
    /// `login`: print the sign-in link instead of opening a browser.
    pub no_browser: Option<bool>,
    /// `tools`: print JSON.
    pub json: Option<bool>,
    /// `call`: print the raw result JSON.
    pub raw: Option<bool>,
    /// `config`: the name the server gets in the client.
    pub name: Option<String>,
}

impl CliSettings {
    pub fn load() -> anyhow::Result<CliSettings> {
        let path = match std::env::var_os(CLI_CONFIG_ENV) {
            Some(path) => PathBuf::from(path),
            None => match dirs::config_dir() {
                Some(dir) => dir.join("toolhost/cli.toml"),
                None => return Ok(CliSettings::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(CliSettings::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// At least a second: `0` would fail every request before it started.
    pub fn timeout(&self, flag: Option<u64>) -> Duration {
        flag.or(self.timeout_secs)
            .map_or(DEFAULT_TIMEOUT, |secs| Duration::from_secs(secs.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_flags_win() {
        let settings: CliSettings =
            toml::from_str("url = \"https://h/mcp\"\ntimeout_secs = 7\n").expect("settings");
        assert_eq!(settings.url.as_deref(), Some("https://h/mcp"));
        assert_eq!(settings.timeout(None), Duration::from_secs(7));
        assert_eq!(settings.timeout(Some(2)), Duration::from_secs(2));
        assert_eq!(CliSettings::default().timeout(None), DEFAULT_TIMEOUT);
        assert_eq!(settings.timeout(Some(0)), Duration::from_secs(1));
        assert!(toml::from_str::<CliSettings>("bogus = 1").is_err());
    }
}
