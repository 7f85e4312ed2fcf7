//! What one audit line holds, and its JSON form. Field names follow OCSF
//! API Activity (class 6003) where one exists; toolhost-specific fields sit
//! under `unmapped`. The mapping is documented in the README.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

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
    /// An account backs off after failed sign-ins in a row.
    SignInThrottled,
    ConfigReloaded,
    ConfigRejected,
    /// Records were dropped because the queue was full; carries how many
    /// and when, so the gap is in the chain rather than silent.
    RecordsDropped,
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
            Event::SignInThrottled => "sign_in_throttled",
            Event::ConfigReloaded => "config_reloaded",
            Event::ConfigRejected => "config_rejected",
            Event::RecordsDropped => "records_dropped",
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
    /// The message's position in a JSON-RPC batch, whose records share the
    /// request id.
    pub batch_index: Option<usize>,
    /// For an aggregate (`records_dropped`): how many, and the first and
    /// last time (OCSF `count`, `start_time`, `end_time`).
    pub count: Option<u64>,
    pub start_time: Option<SystemTime>,
    pub end_time: Option<SystemTime>,
}

impl Record {
    pub fn event(event: Event, detail: String) -> Record {
        Record {
            event: Some(event),
            detail: Some(detail),
            ..Record::default()
        }
    }

    /// Appends the record's JSON line (without the newline) to `out`, with
    /// the chain fields `seq` and `prev` last. Serialized straight from
    /// borrowed fields: the writer does this for every call, and building a
    /// `serde_json::Value` tree first cost more than the rest of auditing.
    pub(crate) fn write_json(&self, seq: u64, prev: &str, out: &mut Vec<u8>) {
        let time =
            humantime::format_rfc3339_millis(self.time.unwrap_or_else(SystemTime::now)).to_string();
        let start_time = self
            .start_time
            .map(|t| humantime::format_rfc3339_millis(t).to_string());
        let end_time = self
            .end_time
            .map(|t| humantime::format_rfc3339_millis(t).to_string());
        let ip = self.remote_ip.map(|ip| ip.to_string());
        let api = (self.operation.is_some() || self.request_id.is_some()).then(|| Api {
            operation: self.operation.as_deref(),
            request: self.request_id.as_deref().map(|uid| Uid { uid }),
        });
        let actor = (self.subject.is_some() || self.client_id.is_some()).then_some(Actor {
            user: UserUid {
                uid: self.subject.as_deref(),
            },
            app_uid: self.client_id.as_deref(),
        });
        let http_request = self.http_method.as_deref().map(|http_method| HttpRequest {
            http_method,
            url: UrlPath {
                path: self.path.as_deref(),
            },
        });
        let resources = self.tool.as_deref().map(|name| {
            [Resource {
                kind: "tool",
                name,
                owner: self.plugin.as_deref(),
                uid: self.plugin_sha256.as_deref(),
            }]
        });
        let unmapped = (self.bytes_in.is_some()
            || self.bytes_out.is_some()
            || self.arguments_hmac.is_some()
            || self.batch_index.is_some())
        .then_some(Unmapped {
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            arguments_hmac: self.arguments_hmac.as_deref(),
            batch_index: self.batch_index,
        });
        let line = Line {
            time: &time,
            class_uid: 6003,
            activity: if self.event.is_some() {
                "security_event"
            } else {
                "api_call"
            },
            kind: self.event.map(Event::as_str),
            api,
            src_endpoint: ip.as_deref().map(|ip| Ip { ip }),
            actor,
            http_request,
            resources,
            status: self.outcome.map(Outcome::as_str),
            status_code: self.status,
            duration_us: self.latency_us,
            count: self.count,
            start_time: start_time.as_deref(),
            end_time: end_time.as_deref(),
            unmapped,
            message: self.detail.as_deref(),
            seq,
            prev,
        };
        // Serializing plain structs of strings and numbers cannot fail.
        let _ = serde_json::to_writer(out, &line);
    }
}

// The line's shape, OCSF API Activity names. Absent values are left out.

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    class_uid: u32,
    activity: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<Api<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Ip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<[Resource<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmapped: Option<Unmapped<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    seq: u64,
    prev: &'a str,
}

#[derive(Serialize)]
struct Api<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Uid<'a>>,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Ip<'a> {
    ip: &'a str,
}

#[derive(Serialize)]
struct Actor<'a> {
    user: UserUid<'a>,
    app_uid: Option<&'a str>,
}

#[derive(Serialize)]
struct UserUid<'a> {
    uid: Option<&'a str>,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    http_method: &'a str,
    url: UrlPath<'a>,
}

#[derive(Serialize)]
struct UrlPath<'a> {
    path: Option<&'a str>,
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    owner: Option<&'a str>,
    uid: Option<&'a str>,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments_hmac: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_index: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_record_has_the_ocsf_shape() {
        let record = Record {
            time: Some(SystemTime::UNIX_EPOCH),
            request_id: Some("r1".into()),
            remote_ip: Some(IpAddr::from([10, 0, 0, 1])),
            subject: Some("alice".into()),
            client_id: None,
            operation: Some("tools/call".into()),
            tool: Some("hash".into()),
            plugin: Some("devtools".into()),
            outcome: Some(Outcome::Ok),
            status: Some(200),
            arguments_hmac: Some("ab".into()),
            ..Record::default()
        };
        let mut out = Vec::new();
        record.write_json(4, "00ff", &mut out);
        let line: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            line,
            serde_json::json!({
                "time": "1970-01-01T00:00:00.000Z", "class_uid": 6003, "activity": "api_call",
                "api": {"operation": "tools/call", "request": {"uid": "r1"}},
                "src_endpoint": {"ip": "10.0.0.1"},
                "actor": {"user": {"uid": "alice"}, "app_uid": null},
                "resources": [{"type": "tool", "name": "hash", "owner": "devtools", "uid": null}],
                "status": "ok", "status_code": 200,
                "unmapped": {"arguments_hmac": "ab"},
                "seq": 4, "prev": "00ff"
            })
        );
        let mut event = Vec::new();
        Record::event(Event::KeyRotated, "kid k2".into()).write_json(0, "", &mut event);
        let event: serde_json::Value = serde_json::from_slice(&event).expect("JSON");
        assert_eq!(event["type"], "key_rotated");
        assert_eq!(event["activity"], "security_event");
        assert_eq!(event["message"], "kid k2");
        let mut dropped = Vec::new();
        Record {
            count: Some(3),
            start_time: Some(SystemTime::UNIX_EPOCH),
            end_time: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1)),
            ..Record::event(Event::RecordsDropped, "3 records dropped".into())
        }
        .write_json(5, "", &mut dropped);
        let dropped: serde_json::Value = serde_json::from_slice(&dropped).expect("JSON");
        assert_eq!(dropped["type"], "records_dropped");
        assert_eq!(dropped["count"], 3);
        assert_eq!(dropped["start_time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(dropped["end_time"], "1970-01-01T00:00:01.000Z");
    }
}
