//! Projects the account can see.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, tool};

use crate::api::{self, Api};
use crate::model::{Project, ProjectPage};
use crate::tools::{LINE_LIMIT, count, one_line, when};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListProjects {
    /// Only projects whose key or name contains this text (case-insensitive), e.g. `mobile`; omit for all.
    #[serde(default)]
    pub query: Option<String>,
    /// Index of the first project to return, from a previous answer's `next_start_at`; 0 for the first page.
    #[serde(default)]
    pub start_at: u64,
    /// Projects per page, 1–100.
    #[serde(default = "default_max_projects")]
    #[schemars(range(min = 1, max = 100))]
    pub max_results: u32,
}

fn default_max_projects() -> u32 {
    50
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectItem>,
    /// Projects matching in all pages, when Jira says.
    pub total: Option<u64>,
    /// `start_at` for the next page; absent on the last page.
    pub next_start_at: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectItem {
    /// The key issue keys start with, e.g. `PROJ` in `PROJ-123`.
    pub key: String,
    pub id: String,
    pub name: String,
    /// `software`, `service_desk` or `business`.
    pub project_type: Option<String>,
    /// `classic` (company-managed) or `next-gen` (team-managed).
    pub style: Option<String>,
    pub category: Option<String>,
    /// The project lead's display name, when Jira includes it.
    pub lead: Option<String>,
    pub issue_count: Option<u64>,
    pub last_issue_update: Option<String>,
}

/// List the Jira projects the account can see: key, name, type and style,
/// optionally filtered by a text `query`.
///
/// Use a project's key in JQL (`project = PROJ`), as `project_key` in
/// jira_create_issue and jira_get_issue_types. Paginated: when more projects
/// exist the answer gives the `start_at` to call again with.
#[tool(read_only, idempotent, open_world, title = "List Jira projects")]
pub fn jira_list_projects(cx: &Context, args: ListProjects) -> Result<Reply<ProjectList>> {
    let api = Api::from_context(cx)?;
    let page: ProjectPage = api::send(projects_request(&api, &args))?;
    Ok(format_projects(
        api::non_empty(&args.query),
        args.start_at,
        page,
    ))
}

pub fn projects_request(api: &Api, args: &ListProjects) -> Request {
    api.get("/project/search")
        .query_opt("query", api::non_empty(&args.query))
        .query("startAt", args.start_at)
        .query("maxResults", args.max_results.clamp(1, 100))
        .query("orderBy", "key")
        .query("expand", "lead,insight")
}

pub fn format_projects(
    query: Option<&str>,
    start_at: u64,
    page: ProjectPage,
) -> Reply<ProjectList> {
    let projects: Vec<ProjectItem> = page.values.into_iter().map(project_item).collect();
    let start = page.start_at.unwrap_or(start_at);
    let next_start_at = match page.is_last {
        Some(false) if !projects.is_empty() => Some(start + projects.len() as u64),
        Some(false) | Some(true) => None,
        // Without `isLast`, a total tells whether more exist.
        None => page
            .total
            .filter(|total| start + (projects.len() as u64) < *total && !projects.is_empty())
            .map(|_| start + projects.len() as u64),
    };
    let matching = query
        .map(|q| format!(" matching {q:?}"))
        .unwrap_or_default();
    let mut text = if projects.is_empty() {
        format!("No projects{matching} are visible to this account.")
    } else {
        let of_total = page.total.map(|t| format!(" (of {t})")).unwrap_or_default();
        format!(
            "{}{matching}{of_total}:",
            count(projects.len(), "project", "projects")
        )
    };
    for p in &projects {
        text.push_str(&format!("\n{} — {}", p.key, one_line(&p.name, LINE_LIMIT)));
        let details: Vec<String> = [
            p.project_type.clone(),
            p.style.as_deref().map(|s| match s {
                "classic" => "company-managed".to_string(),
                "next-gen" => "team-managed".to_string(),
                other => other.to_string(),
            }),
            p.category.as_ref().map(|c| format!("category {c}")),
            p.lead.as_ref().map(|l| format!("lead {l}")),
            p.issue_count.map(|n| count(n as usize, "issue", "issues")),
            p.last_issue_update
                .as_ref()
                .map(|u| format!("last update {}", when(u))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join(", ")));
        }
    }
    if let Some(next) = next_start_at {
        text.push_str(&format!(
            "\nMore projects exist: call again with start_at={next}."
        ));
    }
    Reply::new(
        text,
        ProjectList {
            projects,
            total: page.total,
            next_start_at,
        },
    )
}

fn project_item(project: Project) -> ProjectItem {
    let insight = project.insight.unwrap_or_default();
    ProjectItem {
        key: project.key,
        id: project.id,
        name: project.name,
        project_type: project.project_type_key.filter(|t| !t.is_empty()),
        style: project.style.filter(|s| !s.is_empty()),
        category: project
            .project_category
            .map(|c| c.name)
            .filter(|c| !c.is_empty()),
        lead: project.lead.map(|l| l.label()),
        issue_count: insight.total_issue_count,
        last_issue_update: insight.last_issue_update_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 example of GET /rest/api/3/project/search.
    const PAGE: &str = r#"{"isLast":false,"maxResults":2,"nextPage":"https://your-domain.atlassian.net/rest/api/3/project/search?startAt=2&maxResults=2","self":"https://your-domain.atlassian.net/rest/api/3/project/search?startAt=0&maxResults=2","startAt":0,"total":7,"values":[{"avatarUrls":{"16x16":"https://your-domain.atlassian.net/secure/projectavatar?size=xsmall&pid=10000"},"id":"10000","insight":{"lastIssueUpdateTime":"2021-04-22T05:37:05.000+0000","totalIssueCount":100},"key":"EX","name":"Example","projectCategory":{"description":"First Project Category","id":"10000","name":"FIRST","self":"https://your-domain.atlassian.net/rest/api/3/projectCategory/10000"},"self":"https://your-domain.atlassian.net/rest/api/3/project/EX","simplified":false,"style":"classic"},{"id":"10001","insight":{"lastIssueUpdateTime":"2021-04-22T05:37:05.000+0000","totalIssueCount":100},"key":"ABC","name":"Alphabetical","projectCategory":{"description":"First Project Category","id":"10000","name":"FIRST"},"self":"https://your-domain.atlassian.net/rest/api/3/project/ABC","simplified":false,"style":"classic"}]}"#;

    #[test]
    fn projects_list_one_per_line() {
        let page: ProjectPage = serde_json::from_str(PAGE).expect("fixture");
        let reply = format_projects(None, 0, page);
        assert_eq!(
            reply.text,
            "2 projects (of 7):\n\
             EX — Example (company-managed, category FIRST, 100 issues, last update 2021-04-22 05:37)\n\
             ABC — Alphabetical (company-managed, category FIRST, 100 issues, last update 2021-04-22 05:37)\n\
             More projects exist: call again with start_at=2."
        );
        assert_eq!(reply.data.next_start_at, Some(2));
        assert_eq!(reply.data.projects[1].key, "ABC");
        crate::tools::assert_fits::<jira_list_projects>(&reply.data);

        let last: ProjectPage =
            serde_json::from_str(r#"{"isLast":true,"startAt":0,"total":0,"values":[]}"#)
                .expect("empty");
        let reply = format_projects(Some("zzz"), 0, last);
        assert_eq!(
            reply.text,
            "No projects matching \"zzz\" are visible to this account."
        );
        assert_eq!(reply.data.next_start_at, None);
    }

    #[test]
    fn the_request_pages_and_filters() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let args = ListProjects {
            query: Some(" mobile ".into()),
            start_at: 50,
            max_results: 500,
        };
        assert_eq!(
            projects_request(&api, &args).url(),
            "https://acme.atlassian.net/rest/api/3/project/search?query=mobile&startAt=50&maxResults=100&orderBy=key&expand=lead%2Cinsight"
        );
    }
}
