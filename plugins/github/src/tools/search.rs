//! GitHub search: repositories, issues and pull requests, code.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{IssueSummary, LINE_LIMIT, date, one_line, pages_line};
use crate::model::{CodeResult, Issue, Repository, SearchResults};
use crate::tools::Direction;

/// GitHub serves at most this many results of any search.
const SEARCH_CAP: u64 = 1000;

fn check_query(query: &str) -> Result<&str> {
    let query = query.trim();
    if query.is_empty() {
        return Err(ToolError::InvalidArguments(
            "query is empty: give keywords and/or qualifiers".into(),
        ));
    }
    Ok(query)
}

/// "Found 1,234 repositories (showing 31–60):" and the caveats of a
/// search answer.
fn search_header(
    what: (&str, &str),
    total: u64,
    shown: usize,
    page: u32,
    per_page: u32,
    incomplete: bool,
) -> String {
    let noun = if total == 1 { what.0 } else { what.1 };
    let mut text = if shown == 0 {
        format!("Found {total} {noun}; none on page {page}.")
    } else {
        let first = u64::from(page - 1) * u64::from(per_page) + 1;
        let last = first + shown as u64 - 1;
        format!("Found {total} {noun} (showing {first}–{last}):")
    };
    if incomplete {
        text.push_str(
            "\n(GitHub timed out and the results are incomplete; a narrower query gives complete results.)",
        );
    }
    if total > SEARCH_CAP && shown > 0 {
        text.push_str(&format!(
            "\n(GitHub serves only the first {SEARCH_CAP} results; narrow the query to reach the rest.)"
        ));
    }
    text
}

/// Pages past the 1000th result are refused by GitHub, so none is offered.
fn searchable_next(next_page: Option<u32>, per_page: u32) -> Option<u32> {
    next_page.filter(|next| u64::from(next - 1) * u64::from(per_page) < SEARCH_CAP)
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub enum RepoSort {
    Stars,
    Forks,
    HelpWantedIssues,
    Updated,
}

impl RepoSort {
    fn as_str(self) -> &'static str {
        match self {
            RepoSort::Stars => "stars",
            RepoSort::Forks => "forks",
            RepoSort::HelpWantedIssues => "help-wanted-issues",
            RepoSort::Updated => "updated",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRepositories {
    /// GitHub repository search syntax: keywords plus qualifiers, e.g. `http client language:rust stars:>500` or `org:github topic:cli archived:false`.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Sort by this instead of best match.
    #[serde(default)]
    pub sort: Option<RepoSort>,
    /// Sort direction; only used with `sort`.
    #[serde(default)]
    pub order: Direction,
    /// Page number, starting at 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Results per page, 1–100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RepoResults {
    /// Matches in all (GitHub serves at most 1000).
    pub total_count: u64,
    /// GitHub timed out and results may be missing.
    pub incomplete_results: bool,
    pub repositories: Vec<RepoSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RepoSummary {
    /// `owner/name`.
    pub full_name: String,
    pub description: Option<String>,
    pub html_url: String,
    pub private: bool,
    pub fork: bool,
    pub archived: bool,
    /// Main language.
    pub language: Option<String>,
    pub stars: u64,
    pub forks: u64,
    /// Open issues and pull requests.
    pub open_issues: u64,
    pub topics: Vec<String>,
    pub default_branch: Option<String>,
    /// SPDX id of the license.
    pub license: Option<String>,
    /// Last push (ISO 8601).
    pub pushed_at: Option<String>,
    pub updated_at: Option<String>,
}

/// Search GitHub repositories by keywords and qualifiers.
///
/// Each result shows the name, stars, language, last push and description.
/// `query` uses GitHub search syntax: keywords (matched in name,
/// description and topics) plus qualifiers such as `user:octocat`,
/// `org:github`, `language:rust`, `topic:cli`, `stars:>100`,
/// `pushed:>2024-01-01`, `archived:false`, `fork:true`, `is:public`,
/// `in:name`. Sort by `stars`, `forks`, `help-wanted-issues` or `updated`
/// instead of best match. Paginated; GitHub serves at most 1000 results.
#[tool(read_only, idempotent, open_world, title = "Search repositories")]
pub fn search_repositories(cx: &Context, args: SearchRepositories) -> Result<Reply<RepoResults>> {
    let query = check_query(&args.query)?;
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let request = api
        .get("/search/repositories")
        .query("q", query)
        .query_opt("sort", args.sort.map(RepoSort::as_str))
        .query_opt("order", args.sort.map(|_| args.order.as_str()))
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<SearchResults<Repository>>(request)?;
    Ok(format_repositories(
        fetched.data,
        page,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_repositories(
    results: SearchResults<Repository>,
    page: u32,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<RepoResults> {
    let repositories: Vec<RepoSummary> = results
        .items
        .into_iter()
        .take(per_page as usize)
        .map(|r| RepoSummary {
            description: r
                .description
                .map(|d| one_line(&d, LINE_LIMIT))
                .filter(|d| !d.is_empty()),
            full_name: r.full_name,
            html_url: r.html_url,
            private: r.private,
            fork: r.fork,
            archived: r.archived,
            language: r.language,
            stars: r.stargazers_count,
            forks: r.forks_count,
            open_issues: r.open_issues_count,
            topics: r.topics,
            default_branch: r.default_branch,
            license: r.license.and_then(|l| l.spdx_id),
            pushed_at: r.pushed_at,
            updated_at: r.updated_at,
        })
        .collect();
    let next_page = searchable_next(next_page, per_page);
    let mut text = search_header(
        ("repository", "repositories"),
        results.total_count,
        repositories.len(),
        page,
        per_page,
        results.incomplete_results,
    );
    for r in &repositories {
        text.push_str(&format!("\n{} ★{}", r.full_name, r.stars));
        if let Some(language) = &r.language {
            text.push_str(&format!(" · {language}"));
        }
        if let Some(pushed) = r.pushed_at.as_deref().or(r.updated_at.as_deref()) {
            text.push_str(&format!(" · pushed {}", date(pushed)));
        }
        let flags: Vec<&str> = [
            (r.private, "private"),
            (r.fork, "fork"),
            (r.archived, "archived"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if !flags.is_empty() {
            text.push_str(&format!(" ({})", flags.join(", ")));
        }
        if let Some(description) = &r.description {
            text.push_str(&format!(" — {description}"));
        }
    }
    text.push_str(&pages_line(repositories.len(), next_page));
    Reply::new(
        text,
        RepoResults {
            total_count: results.total_count,
            incomplete_results: results.incomplete_results,
            repositories,
            next_page,
        },
    )
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(inline)]
pub enum IssueSearchSort {
    #[serde(rename = "comments")]
    Comments,
    #[serde(rename = "reactions")]
    Reactions,
    #[serde(rename = "reactions-+1")]
    ReactionsPlusOne,
    #[serde(rename = "reactions--1")]
    ReactionsMinusOne,
    #[serde(rename = "reactions-smile")]
    ReactionsSmile,
    #[serde(rename = "reactions-thinking_face")]
    ReactionsThinkingFace,
    #[serde(rename = "reactions-heart")]
    ReactionsHeart,
    #[serde(rename = "reactions-tada")]
    ReactionsTada,
    #[serde(rename = "interactions")]
    Interactions,
    #[serde(rename = "created")]
    Created,
    #[serde(rename = "updated")]
    Updated,
}

impl IssueSearchSort {
    fn as_str(self) -> &'static str {
        match self {
            IssueSearchSort::Comments => "comments",
            IssueSearchSort::Reactions => "reactions",
            IssueSearchSort::ReactionsPlusOne => "reactions-+1",
            IssueSearchSort::ReactionsMinusOne => "reactions--1",
            IssueSearchSort::ReactionsSmile => "reactions-smile",
            IssueSearchSort::ReactionsThinkingFace => "reactions-thinking_face",
            IssueSearchSort::ReactionsHeart => "reactions-heart",
            IssueSearchSort::ReactionsTada => "reactions-tada",
            IssueSearchSort::Interactions => "interactions",
            IssueSearchSort::Created => "created",
            IssueSearchSort::Updated => "updated",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchIssues {
    /// GitHub issue search syntax: keywords plus qualifiers, e.g. `repo:octocat/hello-world is:issue is:open label:bug crash` or `is:pr author:@me review:approved`.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Sort by this instead of best match.
    #[serde(default)]
    pub sort: Option<IssueSearchSort>,
    /// Sort direction; only used with `sort`.
    #[serde(default)]
    pub order: Direction,
    /// Page number, starting at 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Results per page, 1–100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueResults {
    /// Matches in all (GitHub serves at most 1000).
    pub total_count: u64,
    /// GitHub timed out and results may be missing.
    pub incomplete_results: bool,
    pub items: Vec<IssueSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// Search issues and pull requests across GitHub.
///
/// One line each: `owner/repo#number`, state, title, labels, author and
/// last update. `query` uses GitHub search syntax: keywords plus qualifiers
/// such as `repo:owner/name`, `org:github`, `is:issue` or `is:pr`,
/// `is:open`, `is:closed`, `is:merged`, `author:LOGIN`, `assignee:LOGIN`,
/// `mentions:LOGIN`, `involves:LOGIN`, `review-requested:LOGIN` (`@me` is
/// the authenticated user), `label:"good first issue"`, `no:assignee`,
/// `created:>2024-01-01`, `updated:<2024-06-01`, `in:title`. Add `is:issue`
/// or `is:pr` to get only one kind (tokens of GitHub Apps must). Sort by
/// `created`, `updated`, `comments`, `reactions` and more instead of best
/// match. Paginated; GitHub serves at most 1000 results.
#[tool(
    read_only,
    idempotent,
    open_world,
    title = "Search issues and pull requests"
)]
pub fn search_issues(cx: &Context, args: SearchIssues) -> Result<Reply<IssueResults>> {
    let query = check_query(&args.query)?;
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let request = api
        .get("/search/issues")
        .query("q", query)
        .query_opt("sort", args.sort.map(IssueSearchSort::as_str))
        .query_opt("order", args.sort.map(|_| args.order.as_str()))
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<SearchResults<Issue>>(request)?;
    Ok(format_issue_results(
        fetched.data,
        page,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_issue_results(
    results: SearchResults<Issue>,
    page: u32,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<IssueResults> {
    let items: Vec<IssueSummary> = results
        .items
        .iter()
        .take(per_page as usize)
        .map(IssueSummary::from_issue)
        .collect();
    let next_page = searchable_next(next_page, per_page);
    let mut text = search_header(
        ("issue or pull request", "issues and pull requests"),
        results.total_count,
        items.len(),
        page,
        per_page,
        results.incomplete_results,
    );
    for item in &items {
        text.push('\n');
        text.push_str(&item.line(true));
    }
    text.push_str(&pages_line(items.len(), next_page));
    Reply::new(
        text,
        IssueResults {
            total_count: results.total_count,
            incomplete_results: results.incomplete_results,
            items,
            next_page,
        },
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchCode {
    /// GitHub code search syntax: at least one search term plus qualifiers, e.g. `parse_config repo:octocat/hello-world language:rust` or `"TODO" path:src/ extension:py org:github`.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Page number, starting at 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Results per page, 1–100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CodeResults {
    /// Matching files in all (GitHub serves at most 1000).
    pub total_count: u64,
    /// GitHub timed out and results may be missing.
    pub incomplete_results: bool,
    pub items: Vec<CodeMatch>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CodeMatch {
    /// `owner/name` of the repository.
    pub repository: String,
    /// Path of the file in the repository.
    pub path: String,
    /// Blob SHA of the file.
    pub sha: String,
    pub html_url: String,
}

/// Search code across GitHub repositories by keywords and qualifiers.
///
/// Returns the repository and path of each matching file. `query` needs at
/// least one search term plus qualifiers such as `repo:owner/name`,
/// `org:github`, `user:LOGIN`, `language:go`, `path:src/`,
/// `filename:Dockerfile`, `extension:toml`; quote phrases (`"fn main"`).
/// This is GitHub's REST code search: exact terms (no regex), files under
/// 384 KB, default branches only. Read a match with get_file_contents
/// (owner, repo, path). Paginated; GitHub serves at most 1000 results.
#[tool(read_only, idempotent, open_world, title = "Search code")]
pub fn search_code(cx: &Context, args: SearchCode) -> Result<Reply<CodeResults>> {
    let query = check_query(&args.query)?;
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let request = api
        .get("/search/code")
        .query("q", query)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<SearchResults<CodeResult>>(request)?;
    Ok(format_code_results(
        fetched.data,
        page,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_code_results(
    results: SearchResults<CodeResult>,
    page: u32,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<CodeResults> {
    let items: Vec<CodeMatch> = results
        .items
        .into_iter()
        .take(per_page as usize)
        .map(|c| CodeMatch {
            repository: c.repository.full_name,
            path: c.path,
            sha: c.sha,
            html_url: c.html_url,
        })
        .collect();
    let next_page = searchable_next(next_page, per_page);
    let mut text = search_header(
        ("file", "files"),
        results.total_count,
        items.len(),
        page,
        per_page,
        results.incomplete_results,
    );
    for item in &items {
        text.push_str(&format!("\n{} {}", item.repository, item.path));
    }
    text.push_str(&pages_line(items.len(), next_page));
    Reply::new(
        text,
        CodeResults {
            total_count: results.total_count,
            incomplete_results: results.incomplete_results,
            items,
            next_page,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_read_one_per_line() {
        let results: SearchResults<Repository> =
            serde_json::from_str(include_str!("../../testdata/search_repositories.json"))
                .expect("fixture");
        let reply = format_repositories(results, 1, 30, Some(2));
        assert_eq!(
            reply.text,
            "Found 40 repositories (showing 1–1):\n\
             dtrupenn/Tetris ★1 · Assembly · pushed 2012-01-01 (archived) — A C implementation of Tetris using Pennsim through LC4\n\
             More results exist: call again with page=2."
        );
        let repo = &reply.data.repositories[0];
        assert_eq!(repo.full_name, "dtrupenn/Tetris");
        assert_eq!(reply.data.total_count, 40);
    }

    #[test]
    fn issue_results_name_their_repository() {
        let results: SearchResults<Issue> =
            serde_json::from_str(include_str!("../../testdata/search_issues.json"))
                .expect("fixture");
        let reply = format_issue_results(results, 1, 30, None);
        assert_eq!(
            reply.text,
            "Found 280 issues and pull requests (showing 1–1):\n\
             batterseapower/pinyin-toolkit#132 [open, pull request] Line Number Indexes Beyond 20 Not Displayed (bug) — Nick3C, updated 2009-07-19, 15 comments\n\
             This is the last page."
        );
        assert_eq!(
            reply.data.items[0].repository.as_deref(),
            Some("batterseapower/pinyin-toolkit")
        );
    }

    #[test]
    fn code_results_list_files() {
        let results: SearchResults<CodeResult> =
            serde_json::from_str(include_str!("../../testdata/search_code.json")).expect("fixture");
        let reply = format_code_results(results, 2, 5, Some(3));
        assert_eq!(
            reply.text,
            "Found 7 files (showing 6–6):\njquery/jquery src/attributes/classes.js\nMore results exist: call again with page=3."
        );
        assert_eq!(reply.data.items[0].path, "src/attributes/classes.js");
    }

    #[test]
    fn searches_stop_at_githubs_cap() {
        assert_eq!(searchable_next(Some(11), 100), None);
        assert_eq!(searchable_next(Some(10), 100), Some(10));
        assert_eq!(searchable_next(Some(34), 30), Some(34));
        assert_eq!(searchable_next(Some(35), 30), None);
        let header = search_header(("file", "files"), 5000, 30, 1, 30, true);
        assert!(header.contains("incomplete"));
        assert!(header.contains("first 1000 results"));
        assert!(check_query("  ").is_err());
    }
}
