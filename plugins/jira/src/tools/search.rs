//! JQL search through the enhanced search endpoint (`/search/jql`), which
//! pages with an opaque `nextPageToken` instead of offsets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::{self, Issue, SearchResults};
use crate::tools::{LINE_LIMIT, count, field_text, one_line, raw_bounded, timestamp, when};

/// What a search returns when the caller names no fields: enough for one
/// useful line per issue.
pub const DEFAULT_FIELDS: [&str; 6] = [
    "summary",
    "status",
    "assignee",
    "priority",
    "issuetype",
    "updated",
];

/// Per issue, the JSON of one requested extra field, of all of them, and
/// their text on the issue's line: a hundred issues with `*all` must still
/// fit an answer.
const EXTRA_FIELD_LIMIT: usize = 2_000;
const EXTRA_FIELDS_BUDGET: usize = 4_000;
const EXTRA_TEXT_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchIssues {
    /// The JQL query, e.g. `project = PROJ AND status = "In Progress" ORDER BY updated DESC`.
    pub jql: String,
    /// Fields to return for each issue (ids like `summary`, `labels`, `duedate`, `customfield_10016`, or `*navigable`); replaces the default summary, status, assignee, priority, issuetype, updated. The key is always returned.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Issues per page, 1–100.
    #[serde(default = "default_max_issues")]
    #[schemars(range(min = 1, max = 100))]
    pub max_results: u32,
    /// The `next_page_token` of the previous answer, to get the page after it; omit for the first page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

fn default_max_issues() -> u32 {
    25
}

/// The body of `POST /rest/api/3/search/jql` (`SearchAndReconcileRequestBean`,
/// which allows no other keys).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    pub jql: String,
    pub fields: Vec<String>,
    pub max_results: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueList {
    pub issues: Vec<IssueSummary>,
    /// Pass as `next_page_token` to get the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// An issue in a list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssueSummary {
    /// The issue key, e.g. `PROJ-123`.
    pub key: String,
    pub id: String,
    /// The issue's page in Jira.
    pub url: String,
    pub summary: Option<String>,
    pub status: Option<String>,
    pub issue_type: Option<String>,
    pub priority: Option<String>,
    /// The assignee's display name.
    pub assignee: Option<String>,
    pub assignee_account_id: Option<String>,
    pub updated: Option<String>,
    /// Other requested fields by id, as Jira returns them (rich text as ADF).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// Search Jira issues with JQL; one line per issue (key, type, status,
/// summary, assignee, priority, last update) plus structured results.
///
/// JQL examples:
/// - `project = PROJ AND statusCategory != Done ORDER BY priority DESC`
/// - `assignee = currentUser() AND resolution = Unresolved ORDER BY updated DESC`
/// - `text ~ "login error" AND created >= -14d`
/// - `reporter = "5b10ac8d82e05b22cc7d4ef5" AND labels in (backend, api)`
/// - `parent = PROJ-42` (an epic's or a task's children), `sprint in openSprints()`
///
/// Jira Cloud refuses unbounded queries: include a restriction such as a
/// project, assignee or date. Users are matched by account id
/// (jira_lookup_account_id finds it) or `currentUser()`; quote values with
/// spaces. `fields` chooses what each issue carries (the key always comes).
/// Paginated: when more issues match, the answer gives a `next_page_token`
/// to call again with, with the same `jql`.
#[tool(read_only, idempotent, open_world, title = "Search Jira issues (JQL)")]
pub fn jira_search_issues(cx: &Context, args: SearchIssues) -> Result<Reply<IssueList>> {
    let api = Api::from_context(cx)?;
    let body = search_body(&args)?;
    let results: SearchResults = api::send(api.post("/search/jql", &body)?)?;
    Ok(format_search(&api, &body.jql, results))
}

pub fn search_body(args: &SearchIssues) -> Result<SearchRequest> {
    let jql = args.jql.trim();
    if jql.is_empty() {
        return Err(ToolError::InvalidArguments(
            "jql is empty: give a query such as `project = PROJ ORDER BY updated DESC`".into(),
        ));
    }
    let fields = match &args.fields {
        Some(fields) if fields.iter().any(|f| !f.trim().is_empty()) => clean_list(fields),
        _ => DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect(),
    };
    Ok(SearchRequest {
        jql: jql.to_string(),
        fields,
        max_results: args.max_results.clamp(1, 100),
        next_page_token: api::non_empty(&args.next_page_token).map(str::to_string),
    })
}

/// Trimmed, non-empty, without repeats, in order.
pub fn clean_list(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

pub fn format_search(api: &Api, jql: &str, results: SearchResults) -> Reply<IssueList> {
    let issues: Vec<IssueSummary> = results
        .issues
        .iter()
        .map(|issue| IssueSummary::from_issue(api, issue))
        .collect();
    // Jira keeps sending a token on the last page of some queries; `isLast`
    // is the authority when present.
    let next_page_token = results
        .next_page_token
        .filter(|t| !t.is_empty() && results.is_last != Some(true) && !issues.is_empty());
    let mut text = if issues.is_empty() {
        format!("No issues match `{jql}`.")
    } else {
        format!("{} for `{jql}`:", count(issues.len(), "issue", "issues"))
    };
    for issue in &issues {
        text.push('\n');
        text.push_str(&issue.line());
    }
    match &next_page_token {
        Some(token) => text.push_str(&format!(
            "\nMore issues match: call again with the same jql and next_page_token=\"{token}\"."
        )),
        None if !issues.is_empty() => text.push_str("\nThis is the last page."),
        None => {}
    }
    Reply::new(
        text,
        IssueList {
            issues,
            next_page_token,
        },
    )
}

impl IssueSummary {
    pub fn from_issue(api: &Api, issue: &Issue) -> IssueSummary {
        let fields = &issue.fields;
        let assignee = model::field_user(fields, "assignee");
        let extra = raw_bounded(
            fields
                .iter()
                .map(|(name, value)| (name.as_str(), value))
                .filter(|(name, _)| !DEFAULT_FIELDS.contains(name)),
            EXTRA_FIELD_LIMIT,
            EXTRA_FIELDS_BUDGET,
        );
        IssueSummary {
            key: issue.key.clone(),
            id: issue.id.clone(),
            url: api.browse_url(&issue.key),
            summary: model::field_name(fields, "summary"),
            status: model::field_name(fields, "status"),
            issue_type: model::field_name(fields, "issuetype"),
            priority: model::field_name(fields, "priority"),
            assignee: assignee.as_ref().map(|a| a.label()),
            assignee_account_id: assignee.and_then(|a| a.account_id),
            updated: timestamp(model::field(fields, "updated")),
            fields: extra,
        }
    }

    /// `PROJ-1 [Bug, In Progress] Summary — Mia Krystof, priority High, updated 2024-01-02 10:00`.
    pub fn line(&self) -> String {
        let mut line = self.key.clone();
        let tags: Vec<&str> = [self.issue_type.as_deref(), self.status.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !tags.is_empty() {
            line.push_str(&format!(" [{}]", tags.join(", ")));
        }
        if let Some(summary) = &self.summary {
            line.push_str(&format!(" {}", one_line(summary, LINE_LIMIT)));
        }
        let mut details: Vec<String> = Vec::new();
        if let Some(assignee) = &self.assignee {
            details.push(assignee.clone());
        }
        if let Some(priority) = &self.priority {
            details.push(format!("priority {priority}"));
        }
        if let Some(updated) = &self.updated {
            details.push(format!("updated {}", when(updated)));
        }
        let extras: Vec<String> = self
            .fields
            .iter()
            .map(|(name, value)| format!("{name}: {}", field_text(value)))
            .collect();
        if !extras.is_empty() {
            details.push(one_line(&extras.join(", "), EXTRA_TEXT_LIMIT));
        }
        if !details.is_empty() {
            line.push_str(&format!(" — {}", details.join(", ")));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Trimmed from the 200 example of /rest/api/3/search/jql (with its
    /// plain-text description and numeric `updated`), plus a second issue as
    /// Jira Cloud sends it.
    const RESULTS: &str = r#"{"isLast":false,"nextPageToken":"CAEaAggD","issues":[
        {"expand":"","id":"10002","key":"ED-1","self":"https://your-domain.atlassian.net/rest/api/3/issue/10002","fields":{"watcher":{"isWatching":false,"watchCount":1},"description":"Main order flow broken","updated":1,"timetracking":{"originalEstimate":"10m","timeSpent":"6m"}}},
        {"id":"10003","key":"ED-2","fields":{"summary":"Checkout button\nmisaligned","status":{"name":"In Progress","statusCategory":{"key":"indeterminate"}},"issuetype":{"name":"Bug","subtask":false},"priority":{"name":"High","id":"2"},"assignee":{"accountId":"5b10ac8d82e05b22cc7d4ef5","displayName":"Emma Richards"},"updated":"2024-03-05T09:15:27.000+0000"}}
    ]}"#;

    fn api() -> Api {
        Api::new("https://acme.atlassian.net").expect("api")
    }

    #[test]
    fn results_read_one_line_per_issue() {
        let results: SearchResults = serde_json::from_str(RESULTS).expect("fixture");
        let reply = format_search(&api(), "project = ED", results);
        assert_eq!(
            reply.text,
            "2 issues for `project = ED`:\n\
             ED-1 — updated 1, watcher: {\"isWatching\":false,\"watchCount\":1}, description: Main order flow broken, timetracking: {\"originalEstimate\":\"10m\",\"timeSpent\":\"6m\"}\n\
             ED-2 [Bug, In Progress] Checkout button misaligned — Emma Richards, priority High, updated 2024-03-05 09:15\n\
             More issues match: call again with the same jql and next_page_token=\"CAEaAggD\"."
        );
        assert_eq!(reply.data.next_page_token.as_deref(), Some("CAEaAggD"));
        let second = &reply.data.issues[1];
        assert_eq!(second.url, "https://acme.atlassian.net/browse/ED-2");
        assert_eq!(
            second.assignee_account_id.as_deref(),
            Some("5b10ac8d82e05b22cc7d4ef5")
        );
        assert!(second.fields.is_empty());
        let value = serde_json::to_value(&reply.data).expect("serializes");
        assert_eq!(
            value["issues"][0]["fields"]["description"],
            "Main order flow broken"
        );
        assert!(value["issues"][1].get("fields").is_none());
        crate::tools::assert_fits::<jira_search_issues>(&reply.data);
    }

    #[test]
    fn the_last_page_says_so() {
        let results: SearchResults =
            serde_json::from_str(r#"{"isLast":true,"nextPageToken":"x","issues":[{"key":"A-1","id":"1","fields":{"summary":"One"}}]}"#)
                .expect("fixture");
        let reply = format_search(&api(), "project = A", results);
        assert_eq!(
            reply.text,
            "1 issue for `project = A`:\nA-1 One\nThis is the last page."
        );
        assert_eq!(reply.data.next_page_token, None);
        let reply = format_search(&api(), "project = A", SearchResults::default());
        assert_eq!(reply.text, "No issues match `project = A`.");
    }

    #[test]
    fn the_body_matches_the_request_bean() {
        let args = SearchIssues {
            jql: " project = ED ".into(),
            fields: None,
            max_results: 0,
            next_page_token: Some("CAEaAggD".into()),
        };
        let body = serde_json::to_value(search_body(&args).expect("body")).expect("json");
        assert_eq!(
            body,
            json!({
                "jql": "project = ED",
                "fields": ["summary", "status", "assignee", "priority", "issuetype", "updated"],
                "maxResults": 1,
                "nextPageToken": "CAEaAggD"
            })
        );
        let args = SearchIssues {
            jql: "project = ED".into(),
            fields: Some(vec![
                "summary".into(),
                " labels ".into(),
                "summary".into(),
                "".into(),
            ]),
            max_results: 25,
            next_page_token: Some(" ".into()),
        };
        let body = serde_json::to_value(search_body(&args).expect("body")).expect("json");
        assert_eq!(
            body,
            json!({"jql": "project = ED", "fields": ["summary", "labels"], "maxResults": 25})
        );
        let args = SearchIssues {
            jql: "  ".into(),
            fields: None,
            max_results: 25,
            next_page_token: None,
        };
        assert!(matches!(
            search_body(&args),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
