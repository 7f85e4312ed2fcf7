//! DNS-rebinding and cross-origin defence: the `Host` (or HTTP/2 authority)
//! and `Origin` of every `/mcp` request are checked against allow-lists
//! before anything else reads the request.

use axum::http::{HeaderMap, Method, StatusCode, Uri};

use super::jsonrpc::code;
use super::transport::{HttpError, header_str};

/// Host and origin rules, fixed at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_body_bytes: usize,
    pub(crate) page_size: usize,
    /// Lower-case host names (no port) a request may address.
    pub(crate) allowed_hosts: Vec<String>,
    /// Lower-case `scheme://host[:port]` origins allowed besides those whose
    /// host is in `allowed_hosts`.
    pub(crate) allowed_origins: Vec<String>,
    /// False only when listening on a wildcard or public address with no
    /// configured names: the server cannot know the names clients use.
    pub(crate) enforce_host: bool,
}

/// The loopback names a local server always answers to.
pub(crate) const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

pub(crate) fn check(
    settings: &Settings,
    _method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), HttpError> {
    let authority = header_str(headers, "host").or_else(|| uri.authority().map(|a| a.as_str()));
    if settings.enforce_host {
        let allowed = authority.is_some_and(|a| host_allowed(settings, strip_port(a)));
        if !allowed {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                code::INVALID_REQUEST,
                format!(
                    "Host {:?} is not allowed; add it to mcp.allowed_hosts",
                    authority.unwrap_or("")
                ),
            ));
        }
    }
    if let Some(origin) = header_str(headers, "origin")
        && !origin_allowed(settings, origin)
    {
        {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                code::INVALID_REQUEST,
                format!("Origin {origin:?} is not allowed; add it to mcp.allowed_origins"),
            ));
        }
    }
    Ok(())
}

/// An origin is allowed if listed, or if its host is one this server answers to.
pub(crate) fn origin_allowed(settings: &Settings, origin: &str) -> bool {
    let origin_lower = origin.to_ascii_lowercase();
    let by_list = settings.allowed_origins.contains(&origin_lower);
    let by_host = origin_lower
        .split_once("://")
        .is_some_and(|(_, rest)| host_allowed(settings, strip_port(rest)));
    by_list || by_host
}

fn host_allowed(settings: &Settings, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    LOOPBACK_HOSTS.contains(&host.as_str()) || settings.allowed_hosts.contains(&host)
}

/// `example.com:8443` → `example.com`; `[::1]:8443` → `[::1]`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_body_bytes: 1 << 20,
            page_size: 10,
            allowed_hosts: vec!["tools.example.com".into()],
            allowed_origins: vec!["https://app.example.org".into()],
            enforce_host: true,
        }
    }

    fn check_headers(host: Option<&str>, origin: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert("host", host.parse().expect("header"));
        }
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().expect("header"));
        }
        check(
            &settings(),
            &Method::POST,
            &Uri::from_static("/mcp"),
            &headers,
        )
        .is_ok()
    }

    #[test]
    fn hosts_and_origins() {
        let check = |host, origin, expect| {
            assert_eq!(check_headers(host, origin), expect, "{host:?} {origin:?}")
        };
        check(Some("127.0.0.1:8443"), None, true);
        check(Some("localhost"), None, true);
        check(Some("[::1]:8443"), None, true);
        check(Some("TOOLS.example.com"), None, true);
        check(Some("evil.example.com:8443"), None, false);
        check(None, None, false);
        check(Some("localhost:8443"), Some("https://localhost:8443"), true);
        check(Some("localhost:8443"), Some("http://127.0.0.1:6274"), true);
        check(
            Some("localhost:8443"),
            Some("https://app.example.org"),
            true,
        );
        check(
            Some("localhost:8443"),
            Some("https://evil.example.com"),
            false,
        );
        check(Some("localhost:8443"), Some("null"), false);
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.b:1"), "a.b");
        assert_eq!(strip_port("a.b"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
