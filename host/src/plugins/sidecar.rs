//! The optional sidecar `NAME.toml` next to `NAME.wasm`: what the operator
//! grants one plugin (configuration values, limits, network destinations,
//! credentials), checked against the server-wide policy caps before the
//! plugin is loaded.
//!
//! With no sidecar a plugin gets no configuration, no network and the
//! default limits. Credentials are resolved here, at load time, from the
//! host's environment and files; their values are never logged.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::network::{
    self, AllowRule, Cidr, Credential, NetworkGrant, NetworkLimits, TemplatePart,
};
use crate::config::{PluginLimits, PluginPolicy};

/// Largest `${file:PATH}` secret read: a path pointing at a big file or a
/// device by mistake must not stall loading or fill memory.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A parsed sidecar. Unknown keys are errors: a typo in a grant must not
/// silently grant nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sidecar {
    /// Non-secret values the plugin reads with `host.config`.
    #[serde(default)]
    pub(crate) config: BTreeMap<String, String>,
    #[serde(default)]
    limits: SidecarLimits,
    /// Absent: no network at all.
    network: Option<SidecarNetwork>,
    /// Upstream destination (an allow-entry without wildcard) → credential.
    #[serde(default)]
    credentials: BTreeMap<String, SidecarCredential>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarNetwork {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_private: Vec<String>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<u64>,
    max_requests_per_call: Option<u32>,
}

/// Either `header` with `value`, or `basic` with a username and password.
/// The strings are templates of `${env:…}`/`${file:…}` references.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarCredential {
    header: Option<String>,
    value: Option<String>,
    basic: Option<BasicCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicCredential {
    username: String,
    password: String,
}

impl std::fmt::Debug for SidecarCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A refused literal secret must not reach a log through `Debug`.
        f.debug_struct("SidecarCredential")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarLimits {
    memory_mib: Option<u32>,
    deadline_ms: Option<u64>,
    max_output_bytes: Option<usize>,
    max_concurrent: Option<u32>,
}

/// Limits one plugin's calls run under, after sidecar and policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveLimits {
    pub memory_bytes: usize,
    pub deadline: Duration,
    pub max_output_bytes: usize,
    /// Calls of this plugin running at once; more wait their turn.
    pub max_concurrent: u32,
}

/// Reads the sidecar for `wasm_path`, if there is one. Returns the parsed
/// sidecar and its raw bytes (so reload can tell when it changed).
pub(crate) fn read(wasm_path: &Path) -> Result<(Sidecar, Option<Vec<u8>>), String> {
    let path = wasm_path.with_extension("toml");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Sidecar::default(), None));
        }
        Err(err) => return Err(format!("cannot read sidecar {}: {err}", path.display())),
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("sidecar {} is not UTF-8", path.display()))?;
    let sidecar: Sidecar =
        toml::from_str(text).map_err(|e| format!("invalid sidecar {}: {e}", path.display()))?;
    Ok((sidecar, Some(bytes)))
}

impl Sidecar {
    /// The plugin's limits: sidecar values over the defaults, refused when
    /// above the operator's policy caps.
    pub(crate) fn limits(
        &self,
        defaults: &PluginLimits,
        policy: &PluginPolicy,
    ) -> Result<EffectiveLimits, String> {
        let memory_mib = self.limits.memory_mib.unwrap_or(defaults.memory_mib);
        let deadline = self
            .limits
            .deadline_ms
            .map_or(defaults.deadline_ms, Duration::from_millis);
        let max_output_bytes = self
            .limits
            .max_output_bytes
            .unwrap_or(defaults.max_output_bytes);
        let max_concurrent = self.limits.max_concurrent.unwrap_or(defaults.max_instances);
        if memory_mib == 0 || memory_mib > policy.max_memory_mib {
            return Err(format!(
                "limits.memory_mib = {memory_mib} is outside 1..={} (plugins.policy.max_memory_mib)",
                policy.max_memory_mib
            ));
        }
        if deadline.is_zero() || deadline > policy.max_deadline_ms {
            return Err(format!(
                "limits.deadline_ms = {} is outside 1..={} (plugins.policy.max_deadline_ms)",
                deadline.as_millis(),
                policy.max_deadline_ms.as_millis()
            ));
        }
        if max_output_bytes > policy.max_output_bytes {
            return Err(format!(
                "limits.max_output_bytes = {max_output_bytes} exceeds {} (plugins.policy.max_output_bytes)",
                policy.max_output_bytes
            ));
        }
        if max_concurrent == 0 {
            return Err("limits.max_concurrent must be at least 1".into());
        }
        Ok(EffectiveLimits {
            memory_bytes: (memory_mib as usize) << 20,
            deadline,
            max_output_bytes,
            max_concurrent,
        })
    }
}

impl Sidecar {
    /// The plugin's network grant with its credentials resolved from the
    /// host's environment and files. Called at load time only.
    pub(crate) fn network(&self, policy: &PluginPolicy) -> Result<NetworkGrant, String> {
        let env = |name: &str| std::env::var(name).ok();
        self.network_with(policy, &env, &read_secret_file)
    }

    fn network_with(
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

/// Headers the host owns on the wire: a credential may not replace them.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Checks one `[credentials]` entry against the grant and resolves its value.
/// Messages name the entry and the reference, never a resolved value.
fn resolve_credential(
    key: &str,
    credential: &SidecarCredential,
    grant: &NetworkGrant,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Credential, String> {
    let err = |message: String| format!("credentials.{key:?}: {message}");
    let rule: AllowRule = key.parse().map_err(|e| err(format!("{e}")))?;
    let target = rule
        .exact_target()
        .ok_or_else(|| err("a credential names one host, not a wildcard".into()))?;
    if !grant.allow.iter().any(|allowed| allowed.matches(&target)) {
        return Err(err(format!("{target} is not in [network] allow")));
    }
    if target.scheme == network::Scheme::Http && !target.is_loopback() {
        return Err(err(
            "credentials travel over https only (plain http only to localhost or a loopback address)"
                .into(),
        ));
    }
    let resolve = |field: &str, text: &str| -> Result<String, String> {
        let parts =
            network::parse_credential_template(text).map_err(|e| err(format!("{field}: {e}")))?;
        let mut value = String::new();
        for part in parts {
            match part {
                TemplatePart::Literal(text) => value.push_str(&text),
                TemplatePart::Env(name) => match env(&name) {
                    Some(v) if !v.is_empty() => value.push_str(&v),
                    Some(_) => {
                        return Err(err(format!(
                            "{field}: environment variable {name} is empty"
                        )));
                    }
                    None => {
                        return Err(err(format!(
                            "{field}: environment variable {name} is not set"
                        )));
                    }
                },
                TemplatePart::File(path) => {
                    let secret = read_file(&path).map_err(|e| err(format!("{field}: {e}")))?;
                    value.push_str(&secret);
                }
            }
        }
        Ok(value)
    };
    let (header, value) = match credential {
        SidecarCredential {
            header: Some(header),
            value: Some(value),
            basic: None,
        } => {
            let header = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| err(format!("{header:?} is not a valid header name")))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(err(format!("the host sets {header} itself")));
            }
            (header, resolve("value", value)?)
        }
        SidecarCredential {
            header: None,
            value: None,
            basic: Some(basic),
        } => {
            let username = resolve("basic.username", &basic.username)?;
            let password = resolve("basic.password", &basic.password)?;
            if username.contains(':') {
                return Err(err("basic.username may not contain ':'".into()));
            }
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            (http::header::AUTHORIZATION, format!("Basic {pair}"))
        }
        _ => {
            return Err(err(
                "set either header and value, or basic = { username, password }".into(),
            ));
        }
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        err(
            "the resolved value is not a valid header value (a line break or control character?)"
                .into(),
        )
    })?;
    value.set_sensitive(true);
    Ok(Credential {
        target: rule,
        header,
        value,
    })
}

/// Reads a `${file:PATH}` secret, without its trailing line break.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_SECRET_FILE_BYTES} bytes",
            path.display()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, expect: Result<(usize, u64, u32), &str>) {
        let defaults = PluginLimits::default();
        let policy = PluginPolicy::default();
        let res = toml::from_str::<Sidecar>(toml_text)
            .map_err(|e| e.to_string())
            .and_then(|sidecar| sidecar.limits(&defaults, &policy));
        match (res, expect) {
            (Ok(limits), Ok((mib, ms, concurrent))) => {
                assert_eq!(limits.memory_bytes, mib << 20);
                assert_eq!(limits.deadline.as_millis() as u64, ms);
                assert_eq!(limits.max_concurrent, concurrent);
            }
            (Err(err), Err(part)) => assert!(err.contains(part), "{err:?} lacks {part:?}"),
            (res, expect) => panic!("{toml_text}: got {res:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn sidecar_limits() {
        check("", Ok((64, 30_000, 256)));
        check(
            "[limits]\nmemory_mib = 128\ndeadline_ms = 500\nmax_concurrent = 4",
            Ok((128, 500, 4)),
        );
        check("[config]\nbase_url = \"https://x\"", Ok((64, 30_000, 256)));
        check(
            "[limits]\nmemory_mib = 99999",
            Err("plugins.policy.max_memory_mib"),
        );
        check("[limits]\ndeadline_ms = 0", Err("deadline_ms = 0"));
        check("[limits]\nmax_concurrent = 0", Err("at least 1"));
        check(
            "[limits]\nmax_output_bytes = 999999999999",
            Err("plugins.policy.max_output_bytes"),
        );
        check("[limit]\nmemory_mib = 1", Err("unknown field `limit`"));
        check("[config]\nkey = 5", Err("invalid type"));
    }

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
