//! GitHub's failures as errors a model can act on.
//!
//! The model cannot see status codes or headers, only the message, so each
//! message says what went wrong and whether changing the arguments, waiting
//! or asking the operator is the way out. GitHub's own `message` and
//! `documentation_url` are always kept: they name the missing scope, the
//! invalid field or the policy that refused the request.

use serde::Deserialize;
use serde_json::Value;
use toolhost_sdk::ToolError;

/// The error body GitHub sends (`basic-error`, `validation-error` and
/// `validation-error-simple` in the OpenAPI description).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitHubError {
    message: Option<String>,
    documentation_url: Option<String>,
    /// Objects (`resource`, `field`, `code`, `message`) or plain strings.
    errors: Vec<Value>,
    /// RFC 9457 problem details, which proxies in front of Enterprise
    /// Server and OpenAPI mocks send instead of GitHub's shape.
    detail: Option<String>,
    title: Option<String>,
    /// A mock's request-validation findings (`message` each).
    validation: Vec<Value>,
}

impl GitHubError {
    fn parse(body: &[u8]) -> GitHubError {
        let mut parsed: GitHubError = serde_json::from_slice(body).unwrap_or_default();
        if parsed
            .message
            .as_deref()
            .is_none_or(|m| m.trim().is_empty())
        {
            parsed.message = parsed.detail.take().or_else(|| parsed.title.take());
        }
        let validation = std::mem::take(&mut parsed.validation);
        parsed.errors.extend(validation);
        parsed
    }
}

/// Builds the error for a non-2xx response. `now` is the current Unix time
/// in seconds (a parameter so rate-limit messages are testable).
pub fn from_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    url: &str,
    now: u64,
) -> ToolError {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let parsed = GitHubError::parse(body);
    let message = parsed.message.as_deref().unwrap_or("").trim();
    let mut said = github_said(message, parsed.documentation_url.as_deref(), body);
    let problems: Vec<String> = parsed.errors.iter().filter_map(describe_error).collect();
    if !problems.is_empty() {
        said.push_str(&format!(" Problems: {}.", problems.join("; ")));
    }
    let target = target(url);

    match status {
        401 => ToolError::PermissionDenied(format!(
            "GitHub rejected the server's credential (401): it is missing, expired or invalid. \
             The operator must configure a valid token for this host under [credentials] in the \
             plugin's sidecar (github.toml); retrying or changing the arguments will not help.{said}"
        )),
        403 | 429 if header("x-ratelimit-remaining") == Some("0") => {
            let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
            let resource = header("x-ratelimit-resource")
                .map(|r| format!(" (the {r} quota)"))
                .unwrap_or_default();
            let when = match reset {
                Some(reset) => format!("; resets at {}", reset_time(reset, now)),
                None => String::new(),
            };
            ToolError::Upstream(format!(
                "GitHub rate limit exhausted{resource}{when}. Do not retry before then.{said}"
            ))
        }
        403 | 429
            if header("retry-after").is_some()
                || message
                    .to_ascii_lowercase()
                    .contains("secondary rate limit") =>
        {
            let wait = match header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
                Some(seconds) => format!("wait {} before retrying", seconds_text(seconds)),
                None => "wait at least a minute before retrying".to_string(),
            };
            ToolError::Upstream(format!(
                "GitHub secondary rate limit hit: {wait}, and make fewer requests in quick \
                 succession (especially creating or updating content).{said}"
            ))
        }
        429 => ToolError::Upstream(format!(
            "GitHub is rate limiting these requests (429): wait a minute before retrying.{said}"
        )),
        403 => ToolError::PermissionDenied(format!(
            "GitHub refused {target} (403): {}.{said}",
            forbidden_hint(&header),
        )),
        404 => ToolError::InvalidArguments(format!(
            "not found: check owner/repo/number (private repositories need access) and, for \
             files or commits, the path and ref; GitHub answers 404 both for what does not \
             exist and for what the token may not see ({target}).{said}"
        )),
        410 => ToolError::InvalidArguments(format!(
            "gone (410): {target} no longer exists or the feature is disabled on this \
             repository (for example issues turned off).{said}"
        )),
        422 => ToolError::InvalidArguments(format!(
            "GitHub could not process the request (422){}{}. Fix the arguments and retry.{}",
            if message.is_empty() { "" } else { ": " },
            message.trim_end_matches('.'),
            docs_and_errors(&parsed)
        )),
        400 | 409 => ToolError::InvalidArguments(format!(
            "GitHub refused {target} ({status}{}): {}.{}",
            if status == 409 { ", conflict" } else { "" },
            if message.is_empty() {
                "the request is not valid for this resource"
            } else {
                message.trim_end_matches('.')
            },
            docs_and_errors(&parsed)
        )),
        301 | 302 | 307 | 308 => ToolError::InvalidArguments(format!(
            "GitHub answered {status}: the repository was probably renamed or transferred{}; \
             call again with its new owner/repo.{said}",
            header("location")
                .map(|l| format!(" (now at {l})"))
                .unwrap_or_default()
        )),
        500..=599 => ToolError::Upstream(format!(
            "GitHub failed with {status} for {target}; this is on GitHub's side, retry later.{said}"
        )),
        _ => ToolError::Upstream(format!("GitHub answered {status} for {target}.{said}")),
    }
}

/// Why a 403 that is not a rate limit happened, from GitHub's headers
/// (GitHub's own message follows in the error).
fn forbidden_hint<'a>(header: &impl Fn(&str) -> Option<&'a str>) -> String {
    if let Some(sso) = header("x-github-sso") {
        return format!(
            "the organization requires SAML single sign-on: the token's owner must authorize \
             it for the organization ({sso})"
        );
    }
    // Classic tokens list their scopes; fine-grained ones send none.
    let needed = header("x-accepted-oauth-scopes").unwrap_or("");
    let has = header("x-oauth-scopes").unwrap_or("");
    let scopes = |list: &'a str| {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    };
    let (needed_list, has_list) = (scopes(needed), scopes(has));
    if !needed_list.is_empty() && !needed_list.iter().any(|n| has_list.contains(n)) {
        let has = if has_list.is_empty() { "none" } else { has };
        return format!(
            "this needs one of the token scopes {needed}; the configured token has {has}, so \
             the operator must grant the scope"
        );
    }
    "the configured token lacks the permission or repository access this needs, or a \
     repository or organization policy forbids it; only a request for something the token \
     may use can succeed"
        .to_string()
}

/// ` GitHub said: "…" (docs: …)`, or the start of a non-JSON body.
fn github_said(message: &str, docs: Option<&str>, body: &[u8]) -> String {
    let mut out = String::new();
    if !message.is_empty() {
        out.push_str(&format!(" GitHub said: \"{message}\""));
    } else if !body.is_empty() && serde_json::from_slice::<Value>(body).is_err() {
        let text = String::from_utf8_lossy(body);
        out.push_str(&format!(
            " GitHub said: \"{}\"",
            toolhost_sdk::http::snippet(text.trim())
        ));
    }
    if let Some(docs) = docs.filter(|d| !d.is_empty()) {
        out.push_str(&format!(" (docs: {docs})"));
    }
    out
}

/// The documentation link and each `errors[]` entry of a validation error.
fn docs_and_errors(parsed: &GitHubError) -> String {
    let mut out = String::new();
    let details: Vec<String> = parsed.errors.iter().filter_map(describe_error).collect();
    if !details.is_empty() {
        out.push_str(" Problems: ");
        out.push_str(&details.join("; "));
        out.push('.');
    }
    if let Some(docs) = parsed
        .documentation_url
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        out.push_str(&format!(" (docs: {docs})"));
    }
    out
}

/// One `errors[]` entry: `field` `code` (`message`), or the string itself.
fn describe_error(entry: &Value) -> Option<String> {
    if let Some(text) = entry.as_str() {
        return Some(text.to_string());
    }
    let object = entry.as_object()?;
    let get = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut parts = Vec::new();
    match (get("resource"), get("field")) {
        (Some(resource), Some(field)) => parts.push(format!("{resource}.{field}")),
        (None, Some(field)) => parts.push(field.to_string()),
        (Some(resource), None) => parts.push(resource.to_string()),
        (None, None) => {}
    }
    // A message says more than a code ("custom" says only that the
    // message carries the meaning).
    match (get("message"), get("code")) {
        (Some(message), _) => parts.push(message.to_string()),
        (None, Some(code)) if code != "custom" => parts.push(code_text(code).to_string()),
        _ => {}
    }
    if let Some(value) = object.get("value").filter(|v| !v.is_null()) {
        parts.push(format!("(value {value})"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// GitHub's validation codes in words.
fn code_text(code: &str) -> &str {
    match code {
        "missing" => "is missing (the resource does not exist)",
        "missing_field" => "is required",
        "invalid" => "is invalid",
        "already_exists" => "already exists",
        "unprocessable" => "cannot be processed",
        other => other,
    }
}

/// The request's path without the base URL, for messages.
fn target(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => url.to_string(),
    }
}

/// `2020-05-28T21:38:08Z (in 5 minutes)`.
fn reset_time(reset: u64, now: u64) -> String {
    let wait = reset.saturating_sub(now);
    let relative = if wait == 0 {
        "now".to_string()
    } else {
        let minutes = wait.div_ceil(60);
        if minutes == 1 {
            "in 1 minute".to_string()
        } else {
            format!("in {minutes} minutes")
        }
    };
    format!("{} ({relative})", iso_time(reset))
}

fn seconds_text(seconds: u64) -> String {
    match seconds {
        1 => "1 second".to_string(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a date crate.
pub fn iso_time(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.github.com/repos/octo/hello/issues/7";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unauthorized_points_at_the_operator() {
        let body = br#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#;
        let ToolError::PermissionDenied(m) = from_response(401, &[], body, URL, 0) else {
            panic!("401 is permission denied");
        };
        assert!(m.contains("credential"), "{m}");
        assert!(m.contains("operator"), "{m}");
        assert!(m.contains("Bad credentials"), "{m}");
        assert!(m.contains("https://docs.github.com/rest"), "{m}");
    }

    #[test]
    fn an_exhausted_rate_limit_says_when_it_resets() {
        let h = headers(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1590701888"),
            ("x-ratelimit-resource", "core"),
        ]);
        let body = br#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}"#;
        let err = from_response(403, &h, body, URL, 1_590_701_888 - 290);
        let ToolError::Upstream(m) = err else {
            panic!("a rate limit is upstream: {err:?}");
        };
        assert!(
            m.starts_with("GitHub rate limit exhausted (the core quota); resets at 2020-05-28T21:38:08Z (in 5 minutes)"),
            "{m}"
        );
        assert!(m.contains("API rate limit exceeded"), "{m}");
        // 429 with the same headers is the same case.
        assert!(matches!(
            from_response(429, &h, body, URL, 1_590_701_888),
            ToolError::Upstream(m) if m.contains("(now)")
        ));
    }

    #[test]
    fn a_secondary_limit_says_how_long_to_wait() {
        let body = br#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}"#;
        let h = headers(&[("retry-after", "60"), ("x-ratelimit-remaining", "4990")]);
        let ToolError::Upstream(m) = from_response(403, &h, body, URL, 0) else {
            panic!("secondary limits are upstream");
        };
        assert!(m.contains("secondary rate limit"), "{m}");
        assert!(m.contains("wait 60 seconds"), "{m}");
        // Without retry-after, the message alone identifies it.
        let ToolError::Upstream(m) = from_response(403, &[], body, URL, 0) else {
            panic!("secondary limits are upstream");
        };
        assert!(m.contains("at least a minute"), "{m}");
    }

    #[test]
    fn other_forbidden_answers_are_permission_denied_with_the_reason() {
        let body = br#"{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"403"}"#;
        let ToolError::PermissionDenied(m) = from_response(403, &[], body, URL, 0) else {
            panic!("403 is permission denied");
        };
        assert!(
            m.contains("Resource not accessible by personal access token"),
            "{m}"
        );
        assert!(m.contains("/repos/octo/hello/issues/7"), "{m}");

        let h = headers(&[
            ("x-accepted-oauth-scopes", "repo"),
            ("x-oauth-scopes", "read:user"),
        ]);
        let ToolError::PermissionDenied(m) = from_response(403, &h, body, URL, 0) else {
            panic!("403 is permission denied");
        };
        assert!(
            m.contains("scopes repo; the configured token has read:user"),
            "{m}"
        );

        let h = headers(&[(
            "x-github-sso",
            "required; url=https://github.com/orgs/o/sso",
        )]);
        let ToolError::PermissionDenied(m) = from_response(403, &h, body, URL, 0) else {
            panic!("403 is permission denied");
        };
        assert!(m.contains("single sign-on"), "{m}");
        assert!(m.contains("https://github.com/orgs/o/sso"), "{m}");
    }

    #[test]
    fn not_found_tells_what_to_check() {
        let body = br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/issues#get-an-issue","status":"404"}"#;
        let ToolError::InvalidArguments(m) = from_response(404, &[], body, URL, 0) else {
            panic!("404 is invalid arguments");
        };
        assert!(
            m.starts_with("not found: check owner/repo/number (private repositories need access)"),
            "{m}"
        );
        assert!(m.contains("\"Not Found\""), "{m}");
        assert!(m.contains("#get-an-issue"), "{m}");
    }

    #[test]
    fn validation_errors_list_each_field() {
        let body = br#"{
            "message": "Validation Failed",
            "errors": [
                {"resource": "Issue", "field": "title", "code": "missing_field"},
                {"resource": "Label", "field": "name", "code": "invalid", "value": "bad,label"},
                {"resource": "PullRequest", "code": "custom", "message": "No commits between main and feature"},
                "plain string entry"
            ],
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"
        }"#;
        let ToolError::InvalidArguments(m) = from_response(422, &[], body, URL, 0) else {
            panic!("422 is invalid arguments");
        };
        assert!(m.contains("Validation Failed"), "{m}");
        assert!(m.contains("Issue.title is required"), "{m}");
        assert!(
            m.contains("Label.name is invalid (value \"bad,label\")"),
            "{m}"
        );
        assert!(
            m.contains("PullRequest No commits between main and feature"),
            "{m}"
        );
        assert!(m.contains("plain string entry"), "{m}");
        assert!(m.contains("(docs: https://docs.github.com/rest/issues/issues#create-an-issue)"));
    }

    #[test]
    fn server_errors_are_upstream_with_the_status() {
        let ToolError::Upstream(m) = from_response(500, &[], b"", URL, 0) else {
            panic!("5xx is upstream");
        };
        assert!(m.contains("500"), "{m}");
        assert!(m.contains("retry later"), "{m}");
        let body = br#"{"title":"Request/Response not valid","detail":"Prism says no","validation":[{"message":"Response body property requested_teams.0 must have required property 'type'"}]}"#;
        let ToolError::Upstream(m) = from_response(500, &[], body, URL, 0) else {
            panic!("5xx is upstream");
        };
        assert!(
            m.contains("Prism says no") && m.contains("requested_teams.0"),
            "{m}"
        );
        let ToolError::Upstream(m) = from_response(502, &[], b"<html>Bad gateway</html>", URL, 0)
        else {
            panic!("5xx is upstream");
        };
        assert!(m.contains("502") && m.contains("Bad gateway"), "{m}");
    }

    #[test]
    fn moves_and_conflicts_say_what_to_change() {
        let h = headers(&[(
            "location",
            "https://api.github.com/repositories/42/issues/7",
        )]);
        let ToolError::InvalidArguments(m) = from_response(301, &h, b"", URL, 0) else {
            panic!("a move is invalid arguments");
        };
        assert!(m.contains("renamed or transferred"), "{m}");
        assert!(m.contains("repositories/42"), "{m}");
        let body = br#"{"message":"Git Repository is empty.","documentation_url":"https://docs.github.com/rest/commits/commits#list-commits"}"#;
        let ToolError::InvalidArguments(m) = from_response(409, &[], body, URL, 0) else {
            panic!("a conflict is invalid arguments");
        };
        assert!(m.contains("Git Repository is empty"), "{m}");
    }

    #[test]
    fn problem_details_are_read_too() {
        let body = br#"{"type":"https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY","title":"Invalid request","status":422,"detail":"Your request is not valid","validation":[{"location":["query","per_page"],"severity":"Error","code":"type","message":"Request query parameter per_page must be integer"}]}"#;
        let ToolError::InvalidArguments(m) = from_response(422, &[], body, URL, 0) else {
            panic!("422 is invalid arguments");
        };
        assert!(m.contains("Your request is not valid"), "{m}");
        assert!(
            m.contains("Request query parameter per_page must be integer"),
            "{m}"
        );
    }

    #[test]
    fn times_are_iso_8601() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_time(1_590_701_888), "2020-05-28T21:38:08Z");
        assert_eq!(reset_time(100, 100), "1970-01-01T00:01:40Z (now)");
        assert!(reset_time(160, 100).ends_with("(in 1 minute)"));
    }
}
