//! The Jira REST v3 client: the site from the sidecar, the headers every
//! request carries, status checking, and the small argument checks every
//! path needs.
//!
//! No `Authorization` header is ever set here: the host adds the operator's
//! credential (Basic email + API token, or a Bearer PAT) after its
//! allow-list check, so the secret never enters the plugin.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toolhost_sdk::http::{self, Client, Request, Response};
use toolhost_sdk::{Context, Result, ToolError};

use crate::errors;

/// Where the REST API v3 lives under the site.
const REST_ROOT: &str = "/rest/api/3";
const USER_AGENT: &str = concat!("toolhost-plugin-jira/", env!("CARGO_PKG_VERSION"));

/// The configured Jira site.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    site: String,
}

impl Api {
    /// The site from the sidecar's `[config] site_url`, which has no
    /// sensible default: every Jira Cloud customer has their own.
    pub fn from_context(cx: &Context) -> Result<Api> {
        let site = cx
            .config("site_url")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ToolError::InvalidArguments(
                    "no Jira site is configured: the operator must set [config] site_url in \
                     jira.toml (the plugin's sidecar) to the site's address, e.g. \
                     \"https://acme.atlassian.net\"; no argument can change this"
                        .into(),
                )
            })?;
        Api::new(&site)
    }

    pub fn new(site: &str) -> Result<Api> {
        let site = site.trim().trim_end_matches('/').to_string();
        let host = site
            .strip_prefix("https://")
            .or_else(|| site.strip_prefix("http://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(ToolError::InvalidArguments(format!(
                "the configured site_url {site:?} is not an http(s) URL: the operator must set \
                 [config] site_url in jira.toml to the site's address, e.g. \
                 \"https://acme.atlassian.net\""
            )));
        }
        let client = Client::new(format!("{site}{REST_ROOT}"))
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT);
        Ok(Api { client, site })
    }

    /// The site's address, without a trailing slash.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The page a person opens for an issue.
    pub fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{}", self.site, http::encode(key))
    }

    /// `path` is relative to `/rest/api/3`.
    pub fn get(&self, path: &str) -> Request {
        self.client.get(path)
    }

    pub fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Request> {
        self.client.post(path).json(body)
    }

    pub fn put<B: Serialize>(&self, path: &str, body: &B) -> Result<Request> {
        self.client.put(path).json(body)
    }
}

/// Sends `request` and decodes a successful answer as `T`.
pub fn send<T: DeserializeOwned>(request: Request) -> Result<T> {
    let url = request.url();
    let response = request.send().map_err(|err| explain_refusal(err, &url))?;
    read(&response)
}

/// Sends `request` whose success has no body worth reading (`204`).
pub fn send_no_content(request: Request) -> Result<()> {
    let url = request.url();
    let response = request.send().map_err(|err| explain_refusal(err, &url))?;
    check(&response)
}

/// Judges a response: a 2xx body as `T`, anything else as the error that
/// tells the model what to do.
pub fn read<T: DeserializeOwned>(response: &Response) -> Result<T> {
    check(response)?;
    response.json()
}

pub fn check(response: &Response) -> Result<()> {
    if response.is_success() {
        return Ok(());
    }
    Err(errors::from_response(
        response.status,
        &response.headers,
        &response.body,
        &response.url,
    ))
}

/// The host's refusals arrive as `wasi:http` error codes; the common ones
/// are the operator's to fix, so say so.
fn explain_refusal(err: ToolError, url: &str) -> ToolError {
    let ToolError::Upstream(message) = &err else {
        return err;
    };
    let hint = if message.contains("HttpRequestDenied") {
        "the host refused the destination: the operator must list the Jira site's host in \
         [network] allow of the plugin's sidecar (jira.toml)"
    } else if message.contains("DestinationIpProhibited") {
        "the host refused the address: a Jira Data Center on a private network must be listed \
         in [network] allow_private of the plugin's sidecar (jira.toml)"
    } else if message.contains("Timeout") {
        "Jira did not answer in time; retry, or ask for less (a smaller max_results)"
    } else if message.contains("ConnectionLimitReached") {
        "this call made too many requests"
    } else if message.contains("DNS") {
        "the site's name does not resolve: check [config] site_url in jira.toml"
    } else {
        return err;
    };
    ToolError::Upstream(format!("request to {url} failed: {hint} ({message})"))
}

/// An issue key or id from an argument, checked and encoded as one path
/// segment.
pub fn issue_segment(key: &str) -> Result<String> {
    segment(
        "issue_key",
        key,
        "an issue key like PROJ-123 or a numeric issue id",
    )
}

/// A project key or id, checked and encoded as one path segment.
pub fn project_segment(key: &str) -> Result<String> {
    segment(
        "project_key",
        key,
        "a project key like PROJ or a numeric project id",
    )
}

fn segment(what: &str, value: &str, expected: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.contains(['/', '?', '#']) || value.chars().any(char::is_whitespace)
    {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} is not {expected}"
        )));
    }
    Ok(http::encode(value))
}

/// Jira accepts `{"id": …}` or `{"name": …}` (`{"key": …}` for issues and
/// projects) for a referenced object; an all-digit value is an id.
pub fn is_id(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// A trimmed, non-empty optional string argument.
pub fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            url: "https://acme.atlassian.net/rest/api/3/issue/X-1".into(),
        }
    }

    #[test]
    fn the_site_is_required_and_checked() {
        let Err(ToolError::InvalidArguments(m)) = Api::from_context(&Context::for_test(&[])) else {
            panic!("a missing site is the operator's to fix");
        };
        assert!(
            m.contains("[config] site_url") && m.contains("jira.toml"),
            "{m}"
        );
        let cx = Context::for_test(&[("site_url", "acme.atlassian.net")]);
        assert!(matches!(
            Api::from_context(&cx),
            Err(ToolError::InvalidArguments(_))
        ));
        let cx = Context::for_test(&[("site_url", " https://acme.atlassian.net/ ")]);
        let api = Api::from_context(&cx).expect("api");
        assert_eq!(api.site(), "https://acme.atlassian.net");
        assert_eq!(
            api.get("/myself").url(),
            "https://acme.atlassian.net/rest/api/3/myself"
        );
        assert_eq!(
            api.browse_url("EX-1"),
            "https://acme.atlassian.net/browse/EX-1"
        );
        // Data Center under a context path, or a local stand-in over http.
        let api = Api::new("http://127.0.0.1:4010/jira").expect("api");
        assert_eq!(
            api.get("/project/search").query("query", "a b").url(),
            "http://127.0.0.1:4010/jira/rest/api/3/project/search?query=a%20b"
        );
    }

    #[test]
    fn requests_ask_for_json_and_carry_no_credentials() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let text = format!("{:?}", api.get("/myself"));
        assert!(text.contains("\"accept\", \"application/json\""), "{text}");
        assert!(text.contains("toolhost-plugin-jira/"), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "{text}"
        );
    }

    #[test]
    fn responses_are_judged() {
        let ok: serde_json::Value = read(&response(200, r#"{"key":"X-1"}"#)).expect("ok");
        assert_eq!(ok["key"], "X-1");
        assert!(check(&response(204, "")).is_ok());
        assert!(matches!(
            read::<serde_json::Value>(&response(404, "")),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            read::<serde_json::Value>(&response(200, "<html>")),
            Err(ToolError::Upstream(_))
        ));
    }

    #[test]
    fn keys_are_checked_and_encoded() {
        assert_eq!(issue_segment(" EX-1 ").expect("key"), "EX-1");
        assert_eq!(issue_segment("10002").expect("id"), "10002");
        assert!(issue_segment("").is_err());
        assert!(issue_segment("EX-1/comment").is_err());
        assert!(issue_segment("EX 1").is_err());
        assert_eq!(project_segment("ABC").expect("key"), "ABC");
        assert!(is_id("10000") && !is_id("Bug") && !is_id(""));
        assert_eq!(non_empty(&Some("  ".into())), None);
        assert_eq!(non_empty(&Some(" a ".into())), Some("a"));
    }

    #[test]
    fn refusals_name_the_sidecar() {
        let err = explain_refusal(
            ToolError::Upstream("the request to x failed: HttpRequestDenied".into()),
            "https://acme.atlassian.net/rest/api/3/myself",
        );
        assert!(matches!(err, ToolError::Upstream(m) if m.contains("[network] allow")));
    }
}
