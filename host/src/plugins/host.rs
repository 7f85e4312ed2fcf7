//! The `toolhost:plugin/host` interface as the guest sees it: log, config,
//! progress. Every value from the guest is bounded before the host keeps it.

use super::bindings::{
    InputError, InputRequest, LogLevel as WitLogLevel, toolhost::plugin::host::Host,
};
use super::guest_log::escape;
use super::store::{CallState, LogLevel, PluginEvent, truncate_message};

impl Host for CallState {
    fn log(&mut self, level: WitLogLevel, message: String) {
        let message = truncate_message(message);
        // Escaped, a guest line stays one line that cannot pass for the host's.
        let shown = escape(&message);
        // Over the budget the line goes nowhere, client included: the
        // budget's summary line says how many were dropped.
        if !self.log.admit(shown.len()) {
            return;
        }
        let plugin = &*self.plugin;
        let request_id = &*self.request_id;
        let level = match level {
            WitLogLevel::Trace | WitLogLevel::Debug => {
                tracing::debug!(plugin, request_id, "{shown}");
                LogLevel::Debug
            }
            WitLogLevel::Info => {
                tracing::info!(plugin, request_id, "{shown}");
                LogLevel::Info
            }
            WitLogLevel::Warn => {
                tracing::warn!(plugin, request_id, "{shown}");
                LogLevel::Warning
            }
            WitLogLevel::Error => {
                tracing::error!(plugin, request_id, "{shown}");
                LogLevel::Error
            }
        };
        drop(shown);
        if let Some(events) = &self.events {
            // A full queue drops the line: the client is slow, the host must not wait.
            let _ = events.try_send(PluginEvent::Log { level, message });
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn progress(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(events) = &self.events {
            let _ = events.try_send(PluginEvent::Progress {
                progress,
                total,
                message: message.map(truncate_message),
            });
        }
    }

    async fn request_input(
        &mut self,
        requests: Vec<InputRequest>,
    ) -> wasmtime::Result<Result<Vec<String>, InputError>> {
        super::input::request(self, requests).await
    }
}
