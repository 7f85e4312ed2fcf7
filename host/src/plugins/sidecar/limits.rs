//! The sidecar's `[limits]` table: memory, deadline, fuel, output size and
//! concurrency for one plugin's calls, over the configured defaults and
//! under the operator's policy caps.
//!
//! Knows nothing of the network grant or credentials.

use std::time::Duration;

use serde::Deserialize;

use super::Sidecar;
use crate::config::{PluginLimits, PluginPolicy};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SidecarLimits {
    memory_mib: Option<u32>,
    deadline_ms: Option<u64>,
    max_output_bytes: Option<usize>,
    max_concurrent: Option<u32>,
    fuel: Option<u64>,
}

/// Limits one plugin's calls run under, after sidecar and policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EffectiveLimits {
    pub(crate) memory_bytes: usize,
    pub(crate) deadline: Duration,
    pub(crate) max_output_bytes: usize,
    /// Calls of this plugin running at once; more wait their turn.
    pub(crate) max_concurrent: u32,
    /// Fuel one call may burn; `None` when unbudgeted (or not metered).
    pub(crate) fuel: Option<u64>,
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
        if self.limits.fuel.is_some() && !policy.fuel_metering {
            return Err("limits.fuel needs plugins.policy.fuel_metering = true".into());
        }
        let fuel = self.limits.fuel.unwrap_or(defaults.fuel);
        Ok(EffectiveLimits {
            memory_bytes: (memory_mib as usize) << 20,
            deadline,
            max_output_bytes,
            max_concurrent,
            fuel: (fuel > 0).then_some(fuel),
        })
    }
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
        check("[limits]\nfuel = 1000", Err("fuel_metering"));
        check(
            "[limits]\nmax_output_bytes = 999999999999",
            Err("plugins.policy.max_output_bytes"),
        );
        check("[limit]\nmemory_mib = 1", Err("unknown field `limit`"));
        check("[config]\nkey = 5", Err("invalid type"));
    }
}
