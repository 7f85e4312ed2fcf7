//! The optional sidecar `NAME.toml` next to `NAME.wasm`: what the operator
//! grants one plugin (configuration values, limits, network destinations,
//! credentials), checked against the server-wide policy caps before the
//! plugin is loaded.
//!
//! - `limits.rs`: the `[limits]` table and the limits calls run under.
//! - `network.rs`: the `[network]` table and the grant built from it.
//! - `credentials.rs`: `[credentials]` entries, resolved into headers.
//!
//! With no sidecar a plugin gets no configuration, no network and the
//! default limits. Credentials are resolved here, at load time, from the
//! host's environment and files; their values are never logged.
//!
//! `Sidecar` stays here, with private fields, because it composes the
//! tables: each child reads its own table through it without the fields
//! being visible beyond this module.

mod credentials;
mod limits;
mod network;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use credentials::SidecarCredential;
use limits::SidecarLimits;
use network::SidecarNetwork;

pub(crate) use limits::EffectiveLimits;

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

/// Parses sidecar text and builds its limits and network grant as loading
/// does, under the default policy, with every environment variable set to a
/// placeholder and no file readable (so nothing of the host leaks in).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_text(text: &str) -> Result<(), String> {
    let sidecar: Sidecar = toml::from_str(text).map_err(|e| e.to_string())?;
    let policy = crate::config::PluginPolicy::default();
    sidecar.limits(&crate::config::PluginLimits::default(), &policy)?;
    sidecar.network_with(&policy, &|_| Some("placeholder".to_string()), &|_| {
        Err("no files while fuzzing".to_string())
    })?;
    Ok(())
}
