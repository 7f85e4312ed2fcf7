//! Fetch fixture plugin: one tool, `fetch`, that sends an HTTP request through
//! `wasi:http/outgoing-handler` and reports what came back, so the host's
//! end-to-end tests can see which requests the host lets out, what it adds
//! to them, and that the plugin itself never sees a credential.
//! The contract is in README.md beside this crate.

use serde_json::{Map, Value, json};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

const INPUT_SCHEMA: &str = r#"{
    "type": "object",
    "properties": {
        "url": {"type": "string"},
        "method": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "body": {"type": "string"},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 1000}
    },
    "required": ["url"],
    "additionalProperties": false
}"#;

/// Largest body kept from one read; the host's own cap applies first.
const READ_CHUNK: u64 = 64 * 1024;

/// What `blocking-write-and-flush` accepts at once.
const WRITE_CHUNK: usize = 4096;

struct Fetch;

/// One request as the arguments describe it.
struct Request {
    method: Method,
    scheme: Scheme,
    authority: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Guest for Fetch {
    fn list_tools() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "fetch".into(),
            title: Some("Fetch a URL".into()),
            description: "Sends an HTTP request through wasi:http and returns the status, \
                          response headers, body text and the request headers as the plugin \
                          sees them; on failure the error text. `repeat` sends it up to that \
                          many times and stops at the first error."
                .into(),
            input_schema: INPUT_SCHEMA.into(),
            output_schema: None,
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: true,
            },
        }]
    }

    fn call_tool(
        _caller: Caller,
        name: String,
        arguments: String,
    ) -> Result<ToolOutput, ToolError> {
        if name != "fetch" {
            return Err(ToolError::UnknownTool(name));
        }
        let args: Value = serde_json::from_str(&arguments)
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        let request = Request::from_args(&args).map_err(ToolError::InvalidArguments)?;
        let repeat = args.get("repeat").and_then(Value::as_u64).unwrap_or(1);
        let mut report = Value::Null;
        for attempt in 1..=repeat {
            report = request.send();
            report["attempt"] = json!(attempt);
            if report.get("error").is_some() {
                break;
            }
        }
        Ok(ToolOutput {
            is_error: report.get("error").is_some(),
            content: vec![Content::Text(report.to_string())],
            structured_content: None,
        })
    }
}

impl Request {
    fn from_args(args: &Value) -> Result<Request, String> {
        let url = args
            .get("url")
            .and_then(Value::as_str)
            .ok_or("`url` must be a string")?;
        let (scheme, rest) = url.split_once("://").ok_or("`url` needs a scheme")?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_string()),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(idx) => (&rest[..idx], &rest[idx..]),
            None => (rest, "/"),
        };
        let path = match path.strip_prefix('?') {
            Some(query) => format!("/?{query}"),
            None => path.to_string(),
        };
        let method = match args.get("method").and_then(Value::as_str).unwrap_or("GET") {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            other => Method::Other(other.to_string()),
        };
        let headers = args
            .get("headers")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Request {
            method,
            scheme,
            authority: authority.to_string(),
            path,
            headers,
            body: args.get("body").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// Sends the request once. The report always carries the request headers
    /// as the plugin can read them back from its own request.
    fn send(&self) -> Value {
        let fields = Fields::new();
        for (name, value) in &self.headers {
            if let Err(e) = fields.append(name, value.as_bytes()) {
                return json!({"error": format!("header {name}: {e:?}")});
            }
        }
        let request = OutgoingRequest::new(fields);
        let set = request
            .set_method(&self.method)
            .and_then(|()| request.set_scheme(Some(&self.scheme)))
            .and_then(|()| request.set_authority(Some(&self.authority)))
            .and_then(|()| request.set_path_with_query(Some(&self.path)));
        if set.is_err() {
            return json!({"error": "the method, scheme, authority or path was refused"});
        }
        let request_headers = header_map(&request.headers());
        let mut report = match self.exchange(request) {
            Ok(report) => report,
            Err(error) => json!({"error": error}),
        };
        report["request_headers"] = request_headers;
        report
    }

    fn exchange(&self, request: OutgoingRequest) -> Result<Value, String> {
        let body = request.body().map_err(|()| "the request body was taken")?;
        let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        // A refused request may close the body before it is written; the
        // response's error code says why, so it wins over the write error.
        let written = write_body(body, self.body.as_deref());
        let response = wait(&future).map_err(|e| match &written {
            Ok(()) => e,
            Err(write) => format!("{e} (writing the body: {write})"),
        })?;
        written?;
        let status = response.status();
        let headers = header_map(&response.headers());
        let incoming = response
            .consume()
            .map_err(|()| "the response body was taken")?;
        let text = read_body(&incoming);
        IncomingBody::finish(incoming);
        Ok(json!({"status": status, "headers": headers, "body": text?}))
    }
}

fn write_body(body: OutgoingBody, text: Option<&str>) -> Result<(), String> {
    if let Some(text) = text {
        let stream = body.write().map_err(|()| "the body stream was taken")?;
        for chunk in text.as_bytes().chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(&e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
}

fn wait(future: &FutureIncomingResponse) -> Result<wasip2::http::types::IncomingResponse, String> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(format!("{code:?}")),
            Some(Err(())) => return Err("the response was taken twice".into()),
            None => future.subscribe().block(),
        }
    }
}

fn read_body(incoming: &IncomingBody) -> Result<String, String> {
    let stream = incoming
        .stream()
        .map_err(|()| "the body stream was taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body failed: {}", stream_error(&e))),
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn stream_error(err: &StreamError) -> String {
    match err {
        StreamError::Closed => "the stream closed".into(),
        StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(e) {
            Some(code) => format!("{code:?}: {}", e.to_debug_string()),
            None => e.to_debug_string(),
        },
    }
}

/// Header names to values, repeated names joined with `, `.
fn header_map(fields: &Fields) -> Value {
    let mut map = Map::new();
    for (name, value) in fields.entries() {
        let value = String::from_utf8_lossy(&value).into_owned();
        match map.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                map.insert(name, Value::String(value));
            }
        }
    }
    Value::Object(map)
}

export!(Fetch);
