//! A small HTTP client over `wasi:http`, for plugins that call an API.
//!
//! Requests go through the host like any other: its allowlist, address
//! checks, timeouts and size caps apply, and the credentials the operator
//! configured are added by the host after the plugin lets go of the
//! request, so a plugin never holds them. Bodies are JSON in and out.
//!
//! ```ignore
//! let api = Client::new("https://api.github.com").header("accept", "application/vnd.github+json");
//! let response = api.get("/repos/octo/hello/issues").query("state", "open").send()?;
//! let issues: Vec<Issue> = response.json()?;
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use crate::ToolError;

/// Read and write in chunks this size (`blocking-write-and-flush` takes at most 4096).
const CHUNK: u64 = 4096;
/// Responses larger than this are refused by the client (the host caps them too).
const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// A base URL and the headers every request carries.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    headers: Vec<(String, String)>,
}

impl Client {
    /// `base` is an absolute `https://` (or `http://`) URL, with or without a path.
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            headers: vec![("user-agent".into(), "toolhost-plugin".into())],
        }
    }

    /// A header for every request (replacing one of the same name).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Client {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }

    pub fn put(&self, path: &str) -> Request {
        self.request("PUT", path)
    }

    pub fn patch(&self, path: &str) -> Request {
        self.request("PATCH", path)
    }

    pub fn delete(&self, path: &str) -> Request {
        self.request("DELETE", path)
    }

    /// A request to `path` (joined to the base URL) or to an absolute URL
    /// (such as a `Link: rel="next"` from the API).
    pub fn request(&self, method: &str, path: &str) -> Request {
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        };
        Request {
            method: method.to_string(),
            url,
            query: Vec::new(),
            headers: self.headers.clone(),
            body: None,
        }
    }
}

/// One request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    /// Adds `key=value` to the query string (percent-encoded).
    pub fn query(mut self, key: &str, value: impl ToString) -> Request {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds `key=value` when there is a value.
    pub fn query_opt<V: ToString>(self, key: &str, value: Option<V>) -> Request {
        match value {
            Some(value) => self.query(key, value),
            None => self,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// A JSON body.
    pub fn json<T: Serialize>(self, body: &T) -> Result<Request, ToolError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ToolError::Internal(format!("cannot encode the request body: {e}")))?;
        Ok(Request {
            body: Some(bytes),
            ..self.header("content-type", "application/json")
        })
    }

    /// The full URL, query included.
    pub fn url(&self) -> String {
        let mut url = self.url.clone();
        for (i, (key, value)) in self.query.iter().enumerate() {
            let joiner = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(joiner);
            url.push_str(&encode(key));
            url.push('=');
            url.push_str(&encode(value));
        }
        url
    }

    /// Sends the request and reads the whole response. Only a failure to
    /// get any response is an error here; statuses are the caller's to judge.
    pub fn send(self) -> Result<Response, ToolError> {
        let url = self.url();
        let parts = UrlParts::parse(&url)
            .ok_or_else(|| ToolError::Internal(format!("not an absolute http(s) URL: {url}")))?;
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields
                .append(name, value.as_bytes())
                .map_err(|e| ToolError::Internal(format!("header {name} was refused: {e:?}")))?;
        }
        let request = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_string()),
        };
        let scheme = if parts.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_method(&method)
            .and_then(|()| request.set_scheme(Some(&scheme)))
            .and_then(|()| request.set_authority(Some(&parts.authority)))
            .and_then(|()| request.set_path_with_query(Some(&parts.path_and_query)))
            .map_err(|()| ToolError::Internal(format!("cannot address {url}")))?;
        let body = request
            .body()
            .map_err(|()| ToolError::Internal("the request body was taken".into()))?;
        let future = outgoing_handler::handle(request, None).map_err(|e| refused(&url, &e))?;
        let written = write_body(body, self.body.as_deref());
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(refused(&url, &code)),
                Some(Err(())) => return Err(ToolError::Internal("the response was taken".into())),
                None => future.subscribe().block(),
            }
        };
        written?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| ToolError::Internal("the response body was taken".into()))?;
        let body = read_body(&incoming, &url);
        IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body: body?,
            url,
        })
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names, in order; repeated names appear repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The URL requested, for messages.
    pub url: String,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ToolError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ToolError::Upstream(format!(
                "{} answered {} with a body that is not the expected JSON ({e}): {}",
                self.url,
                self.status,
                snippet(&self.text())
            ))
        })
    }

    /// The `rel="next"` URL of an RFC 8288 `Link` header, as paginated APIs send.
    pub fn next_link(&self) -> Option<String> {
        link_rel(self.header("link")?, "next")
    }

    /// The URL of relation `rel` in the `Link` header.
    pub fn link(&self, rel: &str) -> Option<String> {
        link_rel(self.header("link")?, rel)
    }
}

/// The first 300 characters of `text`, for error messages.
pub fn snippet(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `<url>; rel="next", <url>; rel="last"` → the URL for `rel`.
pub fn link_rel(header: &str, rel: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let matches = params.split(';').any(|param| {
            param
                .trim()
                .strip_prefix("rel=")
                .map(|v| v.trim_matches('"'))
                .is_some_and(|v| v.split_whitespace().any(|r| r == rel))
        });
        matches.then(|| target.to_string())
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

struct UrlParts {
    https: bool,
    authority: String,
    path_and_query: String,
}

impl UrlParts {
    fn parse(url: &str) -> Option<UrlParts> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            (false, url.strip_prefix("http://")?)
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return None;
        }
        let path_and_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Some(UrlParts {
            https,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

fn refused(url: &str, code: &impl std::fmt::Debug) -> ToolError {
    ToolError::Upstream(format!("the request to {url} failed: {code:?}"))
}

fn write_body(body: OutgoingBody, bytes: Option<&[u8]>) -> Result<(), ToolError> {
    if let Some(bytes) = bytes {
        let stream = body
            .write()
            .map_err(|()| ToolError::Internal("the body stream was taken".into()))?;
        for chunk in bytes.chunks(CHUNK as usize) {
            stream.blocking_write_and_flush(chunk).map_err(|e| {
                ToolError::Upstream(format!("sending the body failed: {}", stream_error(&e)))
            })?;
        }
        drop(stream);
    }
    OutgoingBody::finish(body, None)
        .map_err(|e| ToolError::Upstream(format!("finishing the body failed: {e:?}")))
}

fn read_body(incoming: &IncomingBody, url: &str) -> Result<Vec<u8>, ToolError> {
    let stream = incoming
        .stream()
        .map_err(|()| ToolError::Internal("the body stream was taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(CHUNK * 16) {
            Ok(chunk) => {
                bytes.extend(chunk);
                if bytes.len() > MAX_RESPONSE_BYTES {
                    return Err(ToolError::Upstream(format!(
                        "the response from {url} is over {MAX_RESPONSE_BYTES} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => break,
            Err(e) => {
                return Err(ToolError::Upstream(format!(
                    "reading the response from {url} failed: {}",
                    stream_error(&e)
                )));
            }
        }
    }
    drop(stream);
    Ok(bytes)
}

fn stream_error(err: &StreamError) -> String {
    match err {
        StreamError::Closed => "the stream closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_encode() {
        let api = Client::new("https://api.example.com/v3/");
        let request = api
            .get("/search/issues")
            .query("q", "repo:o/r is:open label:\"good first\"")
            .query_opt("page", Some(2))
            .query_opt::<u32>("per_page", None);
        assert_eq!(
            request.url(),
            "https://api.example.com/v3/search/issues?q=repo%3Ao%2Fr%20is%3Aopen%20label%3A%22good%20first%22&page=2"
        );
        assert_eq!(
            api.get("https://uploads.example.com/x?a=1")
                .query("b", 2)
                .url(),
            "https://uploads.example.com/x?a=1&b=2"
        );
        let parts = UrlParts::parse("https://h.example:8443?x=1").expect("parts");
        assert_eq!(
            (parts.authority.as_str(), parts.path_and_query.as_str()),
            ("h.example:8443", "/?x=1")
        );
        assert!(UrlParts::parse("ftp://h/x").is_none());
    }

    #[test]
    fn link_headers_give_pages() {
        let header = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            link_rel(header, "next").as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(
            link_rel(header, "last").as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=5")
        );
        assert_eq!(link_rel(header, "prev"), None);
    }
}
