//! The GitHub REST client: base URL from the sidecar, the headers GitHub
//! asks for, status checking and page numbers from `Link` headers.
//!
//! No `Authorization` header is ever set here: the host adds the operator's
//! credential after its allow-list check, so the token never enters the
//! plugin.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toolhost_sdk::http::{self, Client, Request, Response};
use toolhost_sdk::{Context, Result, ToolError};

use crate::errors;

/// github.com's API root; GitHub Enterprise Server is `https://HOST/api/v3`.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";
/// GitHub's own media type first; `application/json` (the same
/// representation on GitHub) as an alternative, because OpenAPI-driven
/// mocks such as Prism only know the media types the description lists and
/// answer 406 to `application/vnd.github+json` alone.
const ACCEPT: &str = "application/vnd.github+json, application/json";
/// The REST API version the response shapes here were written against.
const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("toolhost-plugin-github/", env!("CARGO_PKG_VERSION"));

/// Results per page when the caller does not say.
pub const DEFAULT_PER_PAGE: u32 = 30;
/// GitHub's own maximum for `per_page`.
pub const MAX_PER_PAGE: u32 = 100;

pub fn default_per_page() -> u32 {
    DEFAULT_PER_PAGE
}

pub fn first_page() -> u32 {
    1
}

/// `per_page` and `page` as GitHub accepts them (the schema already says
/// so; this keeps a direct caller within bounds too).
pub fn paging(page: u32, per_page: u32) -> (u32, u32) {
    (page.max(1), per_page.clamp(1, MAX_PER_PAGE))
}

/// A decoded response and the page after it, if the `Link` header has one.
#[derive(Debug)]
pub struct Fetched<T> {
    pub data: T,
    pub next_page: Option<u32>,
}

/// The configured GitHub API.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// The API at the sidecar's `base_url`, or github.com.
    pub fn from_context(cx: &Context) -> Result<Api> {
        let base = cx
            .config("base_url")
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Api::new(&base)
    }

    pub fn new(base: &str) -> Result<Api> {
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ToolError::Internal(format!(
                "the sidecar's base_url {base:?} is not an http(s) URL; the operator should set it \
                 to https://api.github.com or https://HOST/api/v3"
            )));
        }
        let client = Client::new(base)
            .header("accept", ACCEPT)
            .header("x-github-api-version", API_VERSION)
            .header("user-agent", USER_AGENT);
        Ok(Api { client })
    }

    #[cfg(test)]
    pub fn base(&self) -> &str {
        self.client.base()
    }

    pub fn get(&self, path: &str) -> Request {
        self.client.get(path)
    }

    pub fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Request> {
        self.client.post(path).json(body)
    }

    pub fn patch<B: Serialize>(&self, path: &str, body: &B) -> Result<Request> {
        self.client.patch(path).json(body)
    }
}

/// Sends `request` and decodes a successful answer as `T`.
pub fn send<T: DeserializeOwned>(request: Request) -> Result<Fetched<T>> {
    let url = request.url();
    let response = request.send().map_err(|err| explain_refusal(err, &url))?;
    read(&response, unix_now())
}

/// Judges a response: a 2xx body as `T` with its next page, anything else
/// as the error that tells the model what to do.
pub fn read<T: DeserializeOwned>(response: &Response, now: u64) -> Result<Fetched<T>> {
    if !response.is_success() {
        return Err(errors::from_response(
            response.status,
            &response.headers,
            &response.body,
            &response.url,
            now,
        ));
    }
    let data = response.json()?;
    Ok(Fetched {
        data,
        next_page: next_page(response),
    })
}

/// The page number of the `rel="next"` link. A next link without a usable
/// `page` parameter (cursor-style, or one not past the page just read)
/// still means more results, so it counts as the page after the one
/// requested.
pub fn next_page(response: &Response) -> Option<u32> {
    let next = response.next_link()?;
    let requested = query_param(&response.url, "page")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1);
    let after = requested.saturating_add(1);
    Some(
        query_param(&next, "page")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|page| *page >= after)
            .unwrap_or(after),
    )
}

fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// The host's refusals arrive as `wasi:http` error codes; the common ones
/// are the operator's to fix, so say so.
fn explain_refusal(err: ToolError, url: &str) -> ToolError {
    let ToolError::Upstream(message) = &err else {
        return err;
    };
    let hint = if message.contains("HttpRequestDenied") {
        "the host refused the destination: the operator must allow the GitHub API host in \
         [network] allow of the plugin's sidecar (github.toml)"
    } else if message.contains("DestinationIpProhibited") {
        "the host refused the address: a GitHub Enterprise Server on a private network must be \
         listed in [network] allow_private of the plugin's sidecar"
    } else if message.contains("Timeout") {
        "GitHub did not answer in time; retry, or ask for less (a smaller per_page)"
    } else if message.contains("ConnectionLimitReached") {
        "this call made too many requests"
    } else {
        return err;
    };
    ToolError::Upstream(format!("request to {url} failed: {hint} ({message})"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/repos/{owner}/{repo}{rest}` with both names checked and encoded.
pub fn repo_path(owner: &str, repo: &str, rest: &str) -> Result<String> {
    Ok(format!(
        "/repos/{}/{}{rest}",
        segment("owner", owner)?,
        segment("repo", repo)?
    ))
}

/// One path segment from an argument: a name GitHub could hold, encoded.
fn segment(what: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ToolError::InvalidArguments(format!("{what} is empty")));
    }
    if value.contains('/') {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} contains '/': pass the owner and the repository name separately \
             (owner \"octocat\", repo \"hello-world\")"
        )));
    }
    if value == "." || value == ".." {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} is not a name"
        )));
    }
    Ok(http::encode(value))
}

/// A free-form value (a file path, a ref with slashes) as one encoded path
/// segment: `/` becomes `%2F`, which GitHub decodes, so `src/lib.rs` and
/// `feature/x` need no special routing.
pub fn encoded(value: &str) -> String {
    http::encode(value)
}

/// A timestamp for GitHub's `since`/`until`: ISO 8601, where a bare date
/// means its start in UTC (GitHub rejects a bare date).
pub fn timestamp(what: &str, value: &str) -> Result<String> {
    let value = value.trim();
    let bytes = value.as_bytes();
    let is_date = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if is_date {
        return Ok(format!("{value}T00:00:00Z"));
    }
    let looks_iso = bytes.len() >= 19
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        && bytes[10] == b'T';
    if looks_iso {
        Ok(value.to_string())
    } else {
        Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} is not an ISO 8601 time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            url: url.to_string(),
        }
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let link = r#"<https://api.github.com/repositories/1300192/issues?page=3&per_page=10>; rel="next", <https://api.github.com/repositories/1300192/issues?page=9&per_page=10>; rel="last", <https://api.github.com/repositories/1300192/issues?page=1&per_page=10>; rel="prev""#;
        let r = response(
            200,
            "https://api.github.com/repos/o/r/issues?page=2&per_page=10",
            &[("link", link)],
            "[]",
        );
        let fetched: Fetched<Vec<u32>> = read(&r, 0).expect("reads");
        assert_eq!(fetched.next_page, Some(3));

        // The last page has no next link.
        let last = r#"<https://api.github.com/repositories/1300192/issues?page=8>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=1>; rel="first""#;
        let r = response(
            200,
            "https://api.github.com/x?page=9",
            &[("Link", last)],
            "[]",
        );
        assert_eq!(next_page(&r), None);
        let r = response(200, "https://api.github.com/x", &[], "[]");
        assert_eq!(next_page(&r), None);
        // A cursor-style next link still means more.
        let cursor = r#"<https://api.github.com/x?after=abc>; rel="next""#;
        let r = response(
            200,
            "https://api.github.com/x?page=4",
            &[("link", cursor)],
            "[]",
        );
        assert_eq!(next_page(&r), Some(5));
    }

    #[test]
    fn failures_become_tool_errors() {
        let r = response(
            404,
            "https://api.github.com/repos/o/r",
            &[],
            r#"{"message":"Not Found"}"#,
        );
        assert!(matches!(
            read::<serde_json::Value>(&r, 0),
            Err(ToolError::InvalidArguments(m)) if m.starts_with("not found")
        ));
        let r = response(200, "https://api.github.com/user", &[], "not json");
        assert!(matches!(
            read::<serde_json::Value>(&r, 0),
            Err(ToolError::Upstream(_))
        ));
    }

    #[test]
    fn the_base_url_comes_from_config() {
        let api = Api::from_context(&Context::for_test(&[])).expect("default");
        assert_eq!(api.base(), "https://api.github.com");
        let cx = Context::for_test(&[("base_url", "https://ghe.example.com/api/v3/")]);
        let api = Api::from_context(&cx).expect("enterprise");
        let request = api.get("/repos/o/r/issues").query("page", 2);
        assert_eq!(
            request.url(),
            "https://ghe.example.com/api/v3/repos/o/r/issues?page=2"
        );
        let cx = Context::for_test(&[("base_url", "ghe.example.com")]);
        assert!(matches!(
            Api::from_context(&cx),
            Err(ToolError::Internal(_))
        ));
    }

    #[test]
    fn requests_carry_githubs_headers_and_no_credentials() {
        let api = Api::new(DEFAULT_BASE_URL).expect("api");
        let text = format!("{:?}", api.get("/user"));
        assert!(text.contains("application/vnd.github+json"), "{text}");
        assert!(text.contains("2022-11-28"), "{text}");
        assert!(text.contains("toolhost-plugin-github/"), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "{text}"
        );
    }

    #[test]
    fn paths_are_checked_and_encoded() {
        assert_eq!(
            repo_path("octo", "hello.rs", "/issues").expect("path"),
            "/repos/octo/hello.rs/issues"
        );
        assert!(matches!(
            repo_path("octo/hello", "x", ""),
            Err(ToolError::InvalidArguments(m)) if m.contains("separately")
        ));
        assert!(repo_path("octo", "..", "").is_err());
        assert!(repo_path("", "x", "").is_err());
        assert_eq!(encoded("src/a b.rs"), "src%2Fa%20b.rs");
        assert_eq!(paging(0, 500), (1, 100));
        assert_eq!(paging(3, 0), (3, 1));
    }

    #[test]
    fn timestamps_accept_dates() {
        assert_eq!(
            timestamp("since", "2024-03-01").expect("date"),
            "2024-03-01T00:00:00Z"
        );
        assert_eq!(
            timestamp("since", "2024-03-01T10:00:00Z").expect("time"),
            "2024-03-01T10:00:00Z"
        );
        assert!(timestamp("since", "last week").is_err());
    }
}
