//! Jira's failures as errors a model can act on.
//!
//! The model sees only the message, never the status or headers, so each
//! message says what went wrong and whether changing the arguments, waiting
//! or asking the operator is the way out. Jira's own words are always kept:
//! `errorMessages` and the per-field `errors` of its error collection name
//! the missing field, the unknown value or the permission that refused it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toolhost_sdk::ToolError;

/// Jira's `ErrorCollection`, plus the `message` some gateways answer with.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ErrorCollection {
    error_messages: Vec<String>,
    /// Field id → what is wrong with it; values are strings, but a proxy in
    /// front of Jira may send anything.
    errors: BTreeMap<String, Value>,
    message: Option<String>,
}

/// Builds the error for a non-2xx response from Jira.
pub fn from_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    url: &str,
) -> ToolError {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let said = jira_said(body);
    let target = target(url);

    match status {
        400 => ToolError::InvalidArguments(format!(
            "Jira rejected the request to {target} (400).{said} Fix the arguments and retry."
        )),
        401 => ToolError::PermissionDenied(format!(
            "Jira rejected the server's credential (401): it is missing, expired or invalid. The \
             operator must configure one for the site under [credentials] in the plugin's \
             sidecar (jira.toml): an email and API token for Jira Cloud, a personal access \
             token for Data Center. Retrying or changing the arguments will not help.{said}"
        )),
        403 => ToolError::PermissionDenied(format!(
            "Jira refused {target} (403): the configured account lacks the permission this \
             needs (for example Browse, Create, Edit or Transition issues in the project), or \
             the site blocks API access.{said}"
        )),
        404 => ToolError::InvalidArguments(format!(
            "not found: the issue or project is not found or not visible to the configured \
             account ({target}). Check the issue key (like PROJ-123) or project key; Jira \
             answers 404 both for what does not exist and for what the account may not \
             see.{said}"
        )),
        409 => ToolError::Upstream(format!(
            "Jira reported a conflicting update of {target} (409): someone changed the issue at \
             the same time; read it again and retry.{said}"
        )),
        413 => ToolError::InvalidArguments(format!(
            "Jira refused {target} (413): the issue has reached a per-issue limit (comments, \
             worklogs, attachments or links), or the text is too large.{said}"
        )),
        422 => ToolError::Upstream(format!(
            "Jira could not process {target} (422): a configuration problem of the project \
             prevents it; a Jira administrator must fix it.{said}"
        )),
        429 => {
            let wait = match header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
                Some(seconds) => format!("wait {} before retrying", seconds_text(seconds)),
                None => "wait a minute before retrying".to_string(),
            };
            let reset = header("x-ratelimit-reset")
                .map(|r| format!(" (the limit resets at {r})"))
                .unwrap_or_default();
            ToolError::Upstream(format!(
                "Jira is rate limiting these requests (429): {wait}{reset}, and make fewer \
                 requests in quick succession.{said}"
            ))
        }
        300..=399 => ToolError::Upstream(format!(
            "Jira answered {status} (a redirect{}) for {target}: the operator's site_url in \
             jira.toml is probably not the site's address.{said}",
            header("location")
                .map(|l| format!(" to {l}"))
                .unwrap_or_default()
        )),
        500..=599 => ToolError::Upstream(format!(
            "Jira failed with {status} for {target}; this is on Jira's side, retry later.{said}"
        )),
        _ => ToolError::Upstream(format!("Jira answered {status} for {target}.{said}")),
    }
}

/// ` Jira said: "…"; field: message.`, from an error collection, or the
/// start of a body that is not one.
fn jira_said(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let Ok(parsed) = serde_json::from_str::<ErrorCollection>(text) else {
        return format!(" Jira said: \"{}\"", toolhost_sdk::http::snippet(text));
    };
    let mut parts: Vec<String> = parsed
        .error_messages
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(message) = parsed
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        parts.push(message.to_string());
    }
    for (field, problem) in &parsed.errors {
        let problem = match problem {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        parts.push(format!("{field}: {problem}"));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!(" Jira said: {}.", parts.join("; ").trim_end_matches('.'))
}

/// The request's path without the site, for messages.
fn target(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => url,
    };
    path.split('?').next().unwrap_or(path).to_string()
}

fn seconds_text(seconds: u64) -> String {
    match seconds {
        1 => "1 second".to_string(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://acme.atlassian.net/rest/api/3/issue?updateHistory=false";

    fn check(status: u16, headers: &[(&str, &str)], body: &str) -> ToolError {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        from_response(status, &headers, body.as_bytes(), URL)
    }

    #[test]
    fn bad_requests_list_messages_and_fields() {
        let body = r#"{"errorMessages":["Field 'priority' is required"],"errors":{"summary":"You must specify a summary of the issue.","customfield_10011":"Epic Name is required."}}"#;
        let ToolError::InvalidArguments(m) = check(400, &[], body) else {
            panic!("400 is invalid arguments");
        };
        assert!(m.contains("/rest/api/3/issue (400)"), "{m}");
        assert!(m.contains("Field 'priority' is required"), "{m}");
        assert!(
            m.contains("summary: You must specify a summary of the issue"),
            "{m}"
        );
        assert!(
            m.contains("customfield_10011: Epic Name is required"),
            "{m}"
        );
        assert!(m.ends_with("Fix the arguments and retry."), "{m}");
        assert!(!m.contains("updateHistory"), "{m}");

        // The spec's own example: an empty `errors`.
        let ToolError::InvalidArguments(m) = check(
            400,
            &[],
            r#"{"errorMessages":["Parameter 'maxResults' must not exceed the limit '200'"],"errors":{},"httpStatusCode":{"empty":false,"present":true}}"#,
        ) else {
            panic!("400 is invalid arguments");
        };
        assert!(
            m.contains("Jira said: Parameter 'maxResults' must not exceed the limit '200'."),
            "{m}"
        );
    }

    #[test]
    fn unauthorized_points_at_the_operator() {
        let ToolError::PermissionDenied(m) = check(401, &[], "") else {
            panic!("401 is permission denied");
        };
        assert!(m.contains("credential"), "{m}");
        assert!(m.contains("operator"), "{m}");
        assert!(m.contains("jira.toml"), "{m}");
        let ToolError::PermissionDenied(m) = check(
            401,
            &[],
            r#"{"message":"Client must be authenticated to access this resource.","status-code":401}"#,
        ) else {
            panic!("401 is permission denied");
        };
        assert!(m.contains("Client must be authenticated"), "{m}");
    }

    #[test]
    fn forbidden_keeps_jiras_reason() {
        let body = r#"{"errorMessages":["You do not have permission to create issues in this project."],"errors":{}}"#;
        let ToolError::PermissionDenied(m) = check(403, &[], body) else {
            panic!("403 is permission denied");
        };
        assert!(m.contains("(403)"), "{m}");
        assert!(
            m.contains("You do not have permission to create issues in this project"),
            "{m}"
        );
    }

    #[test]
    fn not_found_says_what_to_check() {
        let body = r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#;
        let ToolError::InvalidArguments(m) = check(404, &[], body) else {
            panic!("404 is invalid arguments");
        };
        assert!(
            m.contains("not found or not visible to the configured account"),
            "{m}"
        );
        assert!(m.contains("Issue does not exist"), "{m}");
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        let ToolError::Upstream(m) = check(
            429,
            &[
                ("Retry-After", "30"),
                ("X-RateLimit-Reset", "2025-01-01T10:00Z"),
            ],
            "",
        ) else {
            panic!("429 is upstream");
        };
        assert!(m.contains("wait 30 seconds"), "{m}");
        assert!(m.contains("2025-01-01T10:00Z"), "{m}");
        let ToolError::Upstream(m) = check(429, &[("retry-after", "600")], "") else {
            panic!("429 is upstream");
        };
        assert!(m.contains("wait 10 minutes"), "{m}");
        let ToolError::Upstream(m) = check(429, &[], "") else {
            panic!("429 is upstream");
        };
        assert!(m.contains("wait a minute"), "{m}");
    }

    #[test]
    fn server_errors_are_upstream() {
        let ToolError::Upstream(m) = check(500, &[], "") else {
            panic!("5xx is upstream");
        };
        assert!(m.contains("500") && m.contains("retry later"), "{m}");
        let ToolError::Upstream(m) = check(503, &[], "<html>Service Unavailable</html>") else {
            panic!("5xx is upstream");
        };
        assert!(m.contains("Service Unavailable"), "{m}");
    }

    #[test]
    fn other_statuses_explain_themselves() {
        assert!(matches!(check(409, &[], ""), ToolError::Upstream(m) if m.contains("conflicting")));
        assert!(
            matches!(check(413, &[], ""), ToolError::InvalidArguments(m) if m.contains("per-issue limit"))
        );
        assert!(
            matches!(check(422, &[], ""), ToolError::Upstream(m) if m.contains("administrator"))
        );
        assert!(matches!(
            check(302, &[("location", "https://id.atlassian.com/login")], ""),
            ToolError::Upstream(m) if m.contains("site_url") && m.contains("id.atlassian.com")
        ));
    }
}
