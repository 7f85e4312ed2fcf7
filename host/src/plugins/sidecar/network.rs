//! The sidecar's `[network]` table: allow entries, private ranges and
//! traffic limits under the operator's caps, and the `NetworkGrant` built
//! from them together with the `[credentials]` entries.
//!
//! Entry syntax and matching belong to `plugins::network`, and resolving a
//! credential to `credentials`; this file only ties the tables to the policy.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::Sidecar;
use super::credentials::{read_secret_file, resolve_credential};
use crate::config::PluginPolicy;
use crate::plugins::network::{self, AllowRule, Cidr, NetworkGrant, NetworkLimits};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SidecarNetwork {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_private: Vec<String>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<u64>,
    max_requests_per_call: Option<u32>,
}

impl Sidecar {
    /// The plugin's network grant with its credentials resolved from the
    /// host's environment and files. Called at load time only.
    pub(crate) fn network(&self, policy: &PluginPolicy) -> Result<NetworkGrant, String> {
        let env = |name: &str| std::env::var(name).ok();
        self.network_with(policy, &env, &read_secret_file)
    }

    pub(super) fn network_with(
        &self,
        policy: &PluginPolicy,
        env: &dyn Fn(&str) -> Option<String>,
        read_file: &dyn Fn(&Path) -> Result<String, String>,
    ) -> Result<NetworkGrant, String> {
        let Some(table) = &self.network else {
            if let Some(key) = self.credentials.keys().next() {
                return Err(format!(
                    "credentials.{key:?} needs a [network] table that allows it"
                ));
            }
            return Ok(NetworkGrant::none());
        };
        let allow = table
            .allow
            .iter()
            .map(|entry| entry.parse::<AllowRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("network.allow: {e}"))?;
        let allow_private = table
            .allow_private
            .iter()
            .map(|entry| entry.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("network.allow_private: {e}"))?;
        let limits = table.limits(policy)?;
        let mut grant = NetworkGrant {
            allow,
            allow_private,
            limits,
            credentials: Vec::new(),
        };
        for (key, credential) in &self.credentials {
            let credential = resolve_credential(key, credential, &grant, env, read_file)?;
            if grant
                .credentials
                .iter()
                .any(|c| c.target == credential.target)
            {
                return Err(format!(
                    "credentials.{key:?}: another entry names the same destination"
                ));
            }
            grant.credentials.push(credential);
        }
        Ok(grant)
    }
}

impl SidecarNetwork {
    /// Sidecar values over the defaults; a default above the operator's cap
    /// is lowered to it, an explicit value above it is refused.
    fn limits(&self, policy: &PluginPolicy) -> Result<NetworkLimits, String> {
        let timeout = match self.timeout_ms {
            Some(ms) if ms == 0 || Duration::from_millis(ms) > policy.max_network_timeout_ms => {
                return Err(format!(
                    "network.timeout_ms = {ms} is outside 1..={} (plugins.policy.max_network_timeout_ms)",
                    policy.max_network_timeout_ms.as_millis()
                ));
            }
            Some(ms) => Duration::from_millis(ms),
            None => network::DEFAULT_TIMEOUT.min(policy.max_network_timeout_ms),
        };
        let max_response_bytes = match self.max_response_bytes {
            Some(n) if n == 0 || n > policy.max_response_bytes => {
                return Err(format!(
                    "network.max_response_bytes = {n} is outside 1..={} (plugins.policy.max_response_bytes)",
                    policy.max_response_bytes
                ));
            }
            Some(n) => n,
            None => network::DEFAULT_MAX_RESPONSE_BYTES.min(policy.max_response_bytes),
        };
        let max_requests_per_call = match self.max_requests_per_call {
            Some(n) if n == 0 || n > policy.max_requests_per_call => {
                return Err(format!(
                    "network.max_requests_per_call = {n} is outside 1..={} (plugins.policy.max_requests_per_call)",
                    policy.max_requests_per_call
                ));
            }
            Some(n) => n,
            None => network::DEFAULT_MAX_REQUESTS_PER_CALL.min(policy.max_requests_per_call),
        };
        Ok(NetworkLimits {
            timeout,
            max_response_bytes,
            max_requests_per_call,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_network(toml_text: &str, expect: Result<&str, &str>) {
        let env = |name: &str| match name {
            "TOKEN" => Some("token-a".to_string()),
            "USER" => Some("me@example.com".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let read_file = |path: &Path| match path.to_str() {
            Some("/secrets/pw") => Ok("pw".to_string()),
            _ => Err(format!("cannot read {}: not found", path.display())),
        };
        let res = toml::from_str::<Sidecar>(toml_text)
            .map_err(|e| e.to_string())
            .and_then(|s| s.network_with(&PluginPolicy::default(), &env, &read_file));
        match (res, expect) {
            (Ok(grant), Ok(summary)) => {
                let credentials: Vec<String> = grant
                    .credentials
                    .iter()
                    .map(|c| format!("{}={}", c.header, c.value.to_str().unwrap_or("?")))
                    .collect();
                let got = format!(
                    "{} {} {}ms {}B {}req {}",
                    grant.allow.len(),
                    grant.allow_private.len(),
                    grant.limits.timeout.as_millis(),
                    grant.limits.max_response_bytes,
                    grant.limits.max_requests_per_call,
                    credentials.join(",")
                );
                assert_eq!(got.trim_end(), summary, "{toml_text}");
            }
            (Err(err), Err(part)) => assert!(err.contains(part), "{err:?} lacks {part:?}"),
            (res, expect) => panic!(
                "{toml_text}: got {:?}, expected {expect:?}",
                res.map(|g| g.allow.len())
            ),
        }
    }

    #[test]
    fn sidecar_network() {
        const NET: &str = "[network]\nallow = [\"api.github.com\", \"*.atlassian.net\", \"http://localhost:8080\", \"http://example.com\"]\n";
        check_network("", Ok("0 0 30000ms 16777216B 100req"));
        check_network(
            "[network]\nallow = [\"api.github.com\", \"http://localhost:8080\"]\n\
             allow_private = [\"127.0.0.0/8\"]\ntimeout_ms = 500\n\
             max_response_bytes = 1000\nmax_requests_per_call = 3",
            Ok("2 1 500ms 1000B 3req"),
        );
        let with = |credentials: &str| format!("{NET}[credentials]\n{credentials}");
        check_network(
            &with(
                "\"api.github.com\" = { header = \"Authorization\", value = \"Bearer ${env:TOKEN}\" }",
            ),
            Ok("4 0 30000ms 16777216B 100req authorization=Bearer token-a"),
        );
        check_network(
            &with(
                "\"x.atlassian.net\" = { basic = { username = \"${env:USER}\", password = \"${file:/secrets/pw}\" } }",
            ),
            Ok("4 0 30000ms 16777216B 100req authorization=Basic bWVAZXhhbXBsZS5jb206cHc="),
        );
        check_network(
            &with(
                "\"http://localhost:8080\" = { header = \"X-Api-Key\", value = \"${env:TOKEN}\" }",
            ),
            Ok("4 0 30000ms 16777216B 100req x-api-key=token-a"),
        );
        check_network(
            &with(
                "\"api.github.com\" = { header = \"Authorization\", value = \"Bearer ${env:MISSING}\" }",
            ),
            Err("environment variable MISSING is not set"),
        );
        check_network(
            &with("\"api.github.com\" = { header = \"Authorization\", value = \"${env:EMPTY}\" }"),
            Err("environment variable EMPTY is empty"),
        );
        check_network(
            &with(
                "\"api.github.com\" = { header = \"Authorization\", value = \"Bearer ghp_abc123\" }",
            ),
            Err("literal secrets are refused"),
        );
        check_network(
            &with(
                "\"x.atlassian.net\" = { basic = { username = \"${env:USER}\", password = \"${file:/nope}\" } }",
            ),
            Err("basic.password: cannot read /nope"),
        );
        check_network(
            &with("\"gist.github.com\" = { header = \"Authorization\", value = \"${env:TOKEN}\" }"),
            Err("is not in [network] allow"),
        );
        check_network(
            &with("\"*.atlassian.net\" = { header = \"Authorization\", value = \"${env:TOKEN}\" }"),
            Err("not a wildcard"),
        );
        check_network(
            &with(
                "\"http://example.com\" = { header = \"Authorization\", value = \"${env:TOKEN}\" }",
            ),
            Err("https only"),
        );
        check_network(
            &with("\"api.github.com\" = { header = \"Host\", value = \"${env:TOKEN}\" }"),
            Err("the host sets host itself"),
        );
        check_network(
            &with(
                "\"api.github.com\" = { header = \"A\", value = \"${env:TOKEN}\", basic = { username = \"${env:USER}\", password = \"${env:TOKEN}\" } }",
            ),
            Err("either header and value"),
        );
        check_network(
            "[credentials]\n\"api.github.com\" = { header = \"A\", value = \"${env:TOKEN}\" }",
            Err("needs a [network] table"),
        );
        check_network(
            "[network]\nallow = [\"ftp://x.com\"]",
            Err("network.allow: \"ftp://x.com\""),
        );
        check_network(
            "[network]\nallow_private = [\"10.0.0.1/8\"]",
            Err("network.allow_private"),
        );
        check_network(
            "[network]\ntimeout_ms = 999999999",
            Err("plugins.policy.max_network_timeout_ms"),
        );
        check_network("[network]\nmax_requests_per_call = 0", Err("outside 1..="));
        check_network("[network]\nalow = []", Err("unknown field `alow`"));
        check_network(
            &with(
                "\"api.github.com\" = { header = \"A\", value = \"${env:TOKEN}\" }\n\
                 \"https://API.github.com:443\" = { header = \"B\", value = \"${env:TOKEN}\" }",
            ),
            Err("another entry names the same destination"),
        );
    }
}
