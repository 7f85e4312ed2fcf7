//! What one audit line holds, and its JSON form. Field names follow OCSF
//! API Activity (class 6003) where one exists; toolhost-specific fields sit
//! under `unmapped`. The mapping is documented in the README.

use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// How an API call ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The tool ran and reported failure (`isError`), or could not run.
    ToolError,
    /// Refused by policy (origin, host, auth, allowlist).
    Denied,
    /// Refused by a rate or concurrency limit.
    Limited,
    /// Malformed request or server-side failure.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Denied => "denied",
            Outcome::Limited => "limited",
            Outcome::Failed => "failed",
        }
    }
}

/// Security events recorded besides API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    ServerStarted,
    PluginLoaded,
    PluginRemoved,
    PluginRefused,
    AuditRecovered,
    KeyRotated,
    ClientRegistered,
    TokenIssued,
    TokenRevoked,
    RefreshTokenReuse,
    SignInFailed,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::ServerStarted => "server_started",
            Event::PluginLoaded => "plugin_loaded",
            Event::PluginRemoved => "plugin_removed",
            Event::PluginRefused => "plugin_refused",
            Event::AuditRecovered => "audit_recovered",
            Event::KeyRotated => "key_rotated",
            Event::ClientRegistered => "client_registered",
            Event::TokenIssued => "token_issued",
            Event::TokenRevoked => "token_revoked",
            Event::RefreshTokenReuse => "refresh_token_reuse",
            Event::SignInFailed => "sign_in_failed",
        }
    }
}

/// One audit record before it is chained and written.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub time: Option<SystemTime>,
    pub request_id: Option<String>,
    pub remote_ip: Option<IpAddr>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub http_method: Option<String>,
    pub path: Option<String>,
    /// The JSON-RPC method (`tools/call`, …).
    pub operation: Option<String>,
    pub tool: Option<String>,
    pub plugin: Option<String>,
    pub plugin_sha256: Option<String>,
    pub outcome: Option<Outcome>,
    pub status: Option<u16>,
    pub latency_us: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// Keyed digest of the tool arguments.
    pub arguments_hmac: Option<String>,
    pub event: Option<Event>,
    pub detail: Option<String>,
}

impl Record {
    pub fn event(event: Event, detail: String) -> Record {
        Record {
            event: Some(event),
            detail: Some(detail),
            ..Record::default()
        }
    }

    /// The line's JSON, without the chain fields (`seq`, `prev`), which the
    /// writer adds.
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let time =
            humantime::format_rfc3339_millis(self.time.unwrap_or_else(SystemTime::now)).to_string();
        let mut line = Map::new();
        line.insert("time".into(), Value::String(time));
        match self.event {
            Some(event) => {
                line.insert("class_uid".into(), json!(6003));
                line.insert("activity".into(), json!("security_event"));
                line.insert("type".into(), json!(event.as_str()));
            }
            None => {
                line.insert("class_uid".into(), json!(6003));
                line.insert("activity".into(), json!("api_call"));
            }
        }
        let mut api = Map::new();
        if let Some(op) = &self.operation {
            api.insert("operation".into(), json!(op));
        }
        if let Some(id) = &self.request_id {
            api.insert("request".into(), json!({ "uid": id }));
        }
        if !api.is_empty() {
            line.insert("api".into(), Value::Object(api));
        }
        if let Some(ip) = self.remote_ip {
            line.insert("src_endpoint".into(), json!({ "ip": ip.to_string() }));
        }
        if self.subject.is_some() || self.client_id.is_some() {
            line.insert(
                "actor".into(),
                json!({ "user": { "uid": self.subject }, "app_uid": self.client_id }),
            );
        }
        if let Some(method) = &self.http_method {
            line.insert(
                "http_request".into(),
                json!({ "http_method": method, "url": { "path": self.path } }),
            );
        }
        if let Some(tool) = &self.tool {
            line.insert(
                "resources".into(),
                json!([{ "type": "tool", "name": tool, "owner": self.plugin, "uid": self.plugin_sha256 }]),
            );
        }
        if let Some(outcome) = self.outcome {
            line.insert("status".into(), json!(outcome.as_str()));
        }
        if let Some(status) = self.status {
            line.insert("status_code".into(), json!(status));
        }
        if let Some(us) = self.latency_us {
            line.insert("duration_us".into(), json!(us));
        }
        let mut unmapped = Map::new();
        if let Some(n) = self.bytes_in {
            unmapped.insert("bytes_in".into(), json!(n));
        }
        if let Some(n) = self.bytes_out {
            unmapped.insert("bytes_out".into(), json!(n));
        }
        if let Some(digest) = &self.arguments_hmac {
            unmapped.insert("arguments_hmac".into(), json!(digest));
        }
        if !unmapped.is_empty() {
            line.insert("unmapped".into(), Value::Object(unmapped));
        }
        if let Some(detail) = &self.detail {
            line.insert("message".into(), json!(detail));
        }
        line
    }
}
