//! The call's context: who is calling (as the host verified it) and the
//! host's services: configuration, progress, logging.
//!
//! Tests build one with [`Context::for_test`], whose configuration comes
//! from a map instead of the host.

use std::collections::BTreeMap;

use crate::bindings::exports::toolhost::plugin::tools::Caller;
use crate::bindings::toolhost::plugin::host;

pub use crate::bindings::toolhost::plugin::host::LogLevel;

/// One call's view of its caller and host.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The authenticated subject, if any.
    pub subject: Option<String>,
    /// The OAuth client the call came through, if any.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// The host's id for this request, for correlating logs.
    pub request_id: String,
    /// Configuration for tests; `None` asks the host.
    config: Option<BTreeMap<String, String>>,
}

impl Context {
    pub fn from_caller(caller: Caller) -> Context {
        Context {
            subject: caller.subject,
            client_id: caller.client_id,
            scopes: caller.scopes,
            request_id: caller.request_id,
            config: None,
        }
    }

    /// A context whose `config` reads from `config`, and which never calls
    /// the host (so tools run in native unit tests).
    pub fn for_test(config: &[(&str, &str)]) -> Context {
        Context {
            subject: Some("test".into()),
            request_id: "test".into(),
            config: Some(
                config
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Context::default()
        }
    }

    /// A value from the plugin's sidecar `[config]` (never a secret).
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.config {
            Some(map) => map.get(key).cloned(),
            None => host::config(key),
        }
    }

    /// Reports progress to the client, if it asked for it.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        if self.config.is_none() {
            host::progress(progress, total, message);
        }
    }

    /// A line in the host's log, tagged with the plugin and request.
    pub fn log(&self, level: LogLevel, message: &str) {
        if self.config.is_none() {
            host::log(level, message);
        }
    }
}
