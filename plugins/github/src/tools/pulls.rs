//! Pull requests: list, read, changed files, create.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{
    BODY_LIMIT, DiffFile, LINE_LIMIT, count, date, diff_files, one_line, pages_line, short_sha,
    truncate,
};
use crate::model::{self, DiffEntry, PullRequest};
use crate::tools::{Direction, StateFilter};

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
pub enum PullSort {
    #[default]
    Created,
    Updated,
    Popularity,
    LongRunning,
}

impl PullSort {
    fn as_str(self) -> &'static str {
        match self {
            PullSort::Created => "created",
            PullSort::Updated => "updated",
            PullSort::Popularity => "popularity",
            PullSort::LongRunning => "long-running",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListPullRequests {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// Which pull requests by state (merged ones are `closed`).
    #[serde(default)]
    pub state: StateFilter,
    /// Only pull requests from this branch, written `user:branch` or `org:branch`.
    #[serde(default)]
    pub head: Option<String>,
    /// Only pull requests into this base branch, e.g. `main`.
    #[serde(default)]
    pub base: Option<String>,
    /// What to sort by: `popularity` is comment count, `long-running` is age for still-active ones.
    #[serde(default)]
    pub sort: PullSort,
    /// Sort direction.
    #[serde(default)]
    pub direction: Direction,
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
pub struct PullList {
    pub pull_requests: Vec<PullSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// A pull request in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PullSummary {
    pub number: u64,
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    pub draft: bool,
    /// It was merged (`state` is then `closed`).
    pub merged: bool,
    /// The author's login.
    pub user: Option<String>,
    /// The branch with the changes.
    pub head: String,
    /// The branch it merges into.
    pub base: String,
    pub labels: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub merged_at: Option<String>,
    pub html_url: String,
}

/// List a repository's pull requests, one line each.
///
/// Each line: number, state (draft, merged), title, head → base branches,
/// author and last update. Filter by `state` (default open; merged ones are
/// closed), `head` (`user:branch`) and `base`. For queries by author,
/// review state or text, use search_issues with `is:pr`. Paginated: the
/// answer says when more pages exist.
#[tool(read_only, idempotent, open_world, title = "List pull requests")]
pub fn list_pull_requests(cx: &Context, args: ListPullRequests) -> Result<Reply<PullList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(&args.owner, &args.repo, "/pulls")?;
    let request = api
        .get(&path)
        .query("state", args.state.as_str())
        .query_opt("head", non_empty(&args.head))
        .query_opt("base", non_empty(&args.base))
        .query("sort", args.sort.as_str())
        .query("direction", args.direction.as_str())
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<PullRequest>>(request)?;
    let repo = format!("{}/{}", args.owner.trim(), args.repo.trim());
    Ok(format_pull_list(
        &repo,
        args.state,
        fetched.data,
        per_page,
        fetched.next_page,
    ))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn pull_summary(pr: PullRequest) -> PullSummary {
    PullSummary {
        number: pr.number,
        user: model::login(&pr.user),
        labels: model::label_names(&pr.labels),
        title: pr.title,
        state: pr.state,
        draft: pr.draft.unwrap_or(false),
        merged: pr.merged.unwrap_or(false) || pr.merged_at.is_some(),
        head: pr.head.git_ref,
        base: pr.base.git_ref,
        created_at: pr.created_at,
        updated_at: pr.updated_at,
        merged_at: pr.merged_at,
        html_url: pr.html_url,
    }
}

pub fn format_pull_list(
    repo: &str,
    state: StateFilter,
    pulls: Vec<PullRequest>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<PullList> {
    let pulls: Vec<PullSummary> = pulls
        .into_iter()
        .take(per_page as usize)
        .map(pull_summary)
        .collect();
    let which = match state {
        StateFilter::Open => "open ",
        StateFilter::Closed => "closed ",
        StateFilter::All => "",
    };
    let mut text = if pulls.is_empty() {
        format!("No {which}pull requests found in {repo}.")
    } else {
        format!(
            "{} {which}{} in {repo}:",
            pulls.len(),
            if pulls.len() == 1 {
                "pull request"
            } else {
                "pull requests"
            }
        )
    };
    for pr in &pulls {
        let mut state = pr.state.clone();
        if pr.merged {
            state = "merged".into();
        }
        if pr.draft {
            state.push_str(", draft");
        }
        text.push_str(&format!(
            "\n#{} [{state}] {} ({} → {})",
            pr.number,
            one_line(&pr.title, LINE_LIMIT),
            pr.head,
            pr.base
        ));
        if !pr.labels.is_empty() {
            text.push_str(&format!(" ({})", pr.labels.join(", ")));
        }
        text.push_str(&format!(
            " — {}, updated {}",
            pr.user.as_deref().unwrap_or("ghost"),
            date(&pr.updated_at)
        ));
    }
    text.push_str(&pages_line(pulls.len(), next_page));
    Reply::new(
        text,
        PullList {
            pull_requests: pulls,
            next_page,
        },
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPullRequest {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The pull request number, as in `#42`.
    #[schemars(range(min = 1))]
    pub pull_number: u64,
}

/// One pull request in full.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PullDetail {
    pub number: u64,
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    pub draft: bool,
    pub merged: bool,
    /// Whether GitHub can merge it cleanly; null while GitHub is still computing it.
    pub mergeable: Option<bool>,
    /// GitHub's merge state: `clean`, `dirty` (conflicts), `blocked`, `behind`, `unstable`, `unknown`…
    pub mergeable_state: Option<String>,
    /// The author's login.
    pub user: Option<String>,
    /// The branch with the changes.
    pub head: String,
    /// The head branch's latest commit.
    pub head_sha: String,
    /// `owner/repo` of the head branch (a fork for cross-repository pull requests).
    pub head_repo: Option<String>,
    /// The branch it merges into.
    pub base: String,
    pub base_sha: String,
    pub labels: Vec<String>,
    /// Logins of the assignees.
    pub assignees: Vec<String>,
    /// Logins of users asked to review.
    pub requested_reviewers: Vec<String>,
    /// The milestone's title.
    pub milestone: Option<String>,
    pub commits: Option<u64>,
    pub additions: Option<u64>,
    pub deletions: Option<u64>,
    pub changed_files: Option<u64>,
    /// Conversation comments.
    pub comments: Option<u64>,
    /// Line comments from reviews.
    pub review_comments: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    /// Who merged it.
    pub merged_by: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// The description, Markdown (very long ones are cut).
    pub body: String,
    /// `body` was cut.
    pub body_truncated: bool,
    pub html_url: String,
}

/// Get one pull request in full, description included.
///
/// Shows the state, draft and merge status (mergeable, conflicts), head and
/// base branches with SHAs, author, reviewers, labels, commit and line
/// counts, then the description. Use get_pull_request_files for the changed
/// files and their diffs, and list_issue_comments with the same number for
/// the conversation.
#[tool(read_only, idempotent, open_world, title = "Get a pull request")]
pub fn get_pull_request(cx: &Context, args: GetPullRequest) -> Result<Reply<PullDetail>> {
    let api = Api::from_context(cx)?;
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/pulls/{}", args.pull_number),
    )?;
    let pr = api::send::<PullRequest>(api.get(&path))?.data;
    Ok(format_pull(pr, None))
}

pub fn pull_detail(pr: PullRequest) -> PullDetail {
    let (body, body_truncated) = truncate(pr.body.as_deref().unwrap_or(""), BODY_LIMIT);
    PullDetail {
        number: pr.number,
        user: model::login(&pr.user),
        labels: model::label_names(&pr.labels),
        assignees: model::logins(&pr.assignees),
        requested_reviewers: model::logins(&pr.requested_reviewers),
        milestone: pr.milestone.as_ref().map(|m| m.title.clone()),
        merged_by: model::login(&pr.merged_by),
        head_repo: pr
            .head
            .repo
            .as_ref()
            .map(|r| r.full_name.clone())
            .filter(|n| !n.is_empty()),
        title: pr.title,
        state: pr.state,
        draft: pr.draft.unwrap_or(false),
        merged: pr.merged.unwrap_or(false) || pr.merged_at.is_some(),
        mergeable: pr.mergeable,
        mergeable_state: pr.mergeable_state,
        head: pr.head.git_ref,
        head_sha: pr.head.sha,
        base: pr.base.git_ref,
        base_sha: pr.base.sha,
        commits: pr.commits,
        additions: pr.additions,
        deletions: pr.deletions,
        changed_files: pr.changed_files,
        comments: pr.comments,
        review_comments: pr.review_comments,
        created_at: pr.created_at,
        updated_at: pr.updated_at,
        closed_at: pr.closed_at,
        merged_at: pr.merged_at,
        merge_commit_sha: pr.merge_commit_sha,
        body,
        body_truncated,
        html_url: pr.html_url,
    }
}

pub fn format_pull(pr: PullRequest, action: Option<&str>) -> Reply<PullDetail> {
    let d = pull_detail(pr);
    let mut text = String::new();
    if let Some(action) = action {
        text.push_str(&format!("{action} pull request #{}.\n", d.number));
    }
    let mut state = if d.merged {
        "merged".to_string()
    } else {
        d.state.clone()
    };
    if d.draft {
        state.push_str(", draft");
    }
    text.push_str(&format!(
        "#{} [{state}] {}\n{}",
        d.number, d.title, d.html_url
    ));
    let head = match &d.head_repo {
        Some(repo) => format!("{repo}:{}", d.head),
        None => d.head.clone(),
    };
    text.push_str(&format!(
        "\n{head} ({}) → {} ({})",
        short_sha(&d.head_sha),
        d.base,
        short_sha(&d.base_sha)
    ));
    text.push_str(&format!(
        "\nAuthor: {} · created {} · updated {}",
        d.user.as_deref().unwrap_or("ghost"),
        date(&d.created_at),
        date(&d.updated_at)
    ));
    if let Some(merged) = &d.merged_at {
        text.push_str(&format!(" · merged {}", date(merged)));
        if let Some(by) = &d.merged_by {
            text.push_str(&format!(" by {by}"));
        }
    } else if let Some(closed) = &d.closed_at {
        text.push_str(&format!(" · closed {}", date(closed)));
    }
    if !d.merged && d.state == "open" {
        let mergeable = match d.mergeable {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not computed yet",
        };
        text.push_str(&format!("\nMergeable: {mergeable}"));
        if let Some(state) = d.mergeable_state.as_deref().filter(|s| !s.is_empty()) {
            text.push_str(&format!(" ({state})"));
        }
    }
    let stats: Vec<String> = [
        d.commits.map(|n| count(n as usize, "commit", "commits")),
        d.changed_files
            .map(|n| count(n as usize, "file changed", "files changed")),
        match (d.additions, d.deletions) {
            (Some(a), Some(r)) => Some(format!("+{a} -{r}")),
            _ => None,
        },
        d.comments.map(|n| count(n as usize, "comment", "comments")),
        d.review_comments
            .map(|n| count(n as usize, "review comment", "review comments")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !stats.is_empty() {
        text.push_str(&format!("\n{}", stats.join(" · ")));
    }
    let mut meta = Vec::new();
    if !d.labels.is_empty() {
        meta.push(format!("Labels: {}", d.labels.join(", ")));
    }
    if !d.assignees.is_empty() {
        meta.push(format!("Assignees: {}", d.assignees.join(", ")));
    }
    if !d.requested_reviewers.is_empty() {
        meta.push(format!(
            "Review requested from: {}",
            d.requested_reviewers.join(", ")
        ));
    }
    if let Some(milestone) = &d.milestone {
        meta.push(format!("Milestone: {milestone}"));
    }
    if !meta.is_empty() {
        text.push_str(&format!("\n{}", meta.join(" · ")));
    }
    if d.body.trim().is_empty() {
        text.push_str("\n\n(no description)");
    } else {
        text.push_str(&format!("\n\n{}", d.body.trim_end()));
        if d.body_truncated {
            text.push_str(&format!(
                "\n… [description truncated at {} bytes; the full text is at {}]",
                d.body.len(),
                d.html_url
            ));
        }
    }
    Reply::new(text, d)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPullRequestFiles {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The pull request number, as in `#42`.
    #[schemars(range(min = 1))]
    pub pull_number: u64,
    /// Include each file's diff (patch); set false for just the list of changed files.
    #[serde(default = "yes")]
    pub include_patch: bool,
    /// Page number, starting at 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Files per page, 1–100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u32,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PullFiles {
    pub files: Vec<DiffFile>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// List the files a pull request changes, with their diffs.
///
/// Each file comes with its status and line counts, then its patch. Patches
/// are cut when long (about 6 KB per file, 120 KB per answer); page through
/// large pull requests with `page`/`per_page`, or set `include_patch` to
/// false for a quick overview. GitHub lists at most 3000 files.
#[tool(read_only, idempotent, open_world, title = "Get pull request files")]
pub fn get_pull_request_files(cx: &Context, args: GetPullRequestFiles) -> Result<Reply<PullFiles>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/pulls/{}/files", args.pull_number),
    )?;
    let request = api
        .get(&path)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<DiffEntry>>(request)?;
    Ok(format_pull_files(
        args.pull_number,
        fetched.data,
        args.include_patch,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_pull_files(
    number: u64,
    entries: Vec<DiffEntry>,
    include_patch: bool,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<PullFiles> {
    let entries: Vec<DiffEntry> = entries.into_iter().take(per_page as usize).collect();
    let (added, removed) = entries
        .iter()
        .fold((0, 0), |(a, r), e| (a + e.additions, r + e.deletions));
    let (files, files_text) = diff_files(entries, include_patch);
    let mut text = if files.is_empty() {
        format!("No changed files on this page of pull request #{number}.")
    } else {
        format!(
            "{} in pull request #{number} on this page (+{added} -{removed}):",
            count(files.len(), "changed file", "changed files")
        )
    };
    text.push_str(&files_text);
    text.push_str(&pages_line(files.len(), next_page));
    Reply::new(text, PullFiles { files, next_page })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePullRequest {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The pull request's title.
    #[schemars(length(min = 1))]
    pub title: String,
    /// The branch with the changes, e.g. `fix-crash`; for a branch in a fork, `forkowner:fix-crash`.
    #[schemars(length(min = 1))]
    pub head: String,
    /// The branch to merge into, e.g. `main`.
    #[schemars(length(min = 1))]
    pub base: String,
    /// The description, in GitHub Markdown (`Fixes #12` links and closes an issue on merge).
    #[serde(default)]
    pub body: Option<String>,
    /// Open it as a draft.
    #[serde(default)]
    pub draft: Option<bool>,
    /// Let maintainers of the base repository push to the head branch (fork pull requests).
    #[serde(default)]
    pub maintainer_can_modify: Option<bool>,
}

/// The body of `POST /repos/{owner}/{repo}/pulls`.
#[derive(Debug, Serialize)]
struct NewPull<'a> {
    title: &'a str,
    head: &'a str,
    base: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    draft: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maintainer_can_modify: Option<bool>,
}

/// Open a pull request from a head branch into a base branch.
///
/// Returns its number and URL. Both branches must exist and differ
/// (list_branches shows them); for a branch in a fork write `head` as
/// `forkowner:branch`. Set `draft` to open it as a draft. Each call opens a
/// new pull request; do not retry a call that succeeded.
#[tool(open_world, title = "Create a pull request")]
pub fn create_pull_request(cx: &Context, args: CreatePullRequest) -> Result<Reply<PullDetail>> {
    let body = NewPull {
        title: args.title.trim(),
        head: args.head.trim(),
        base: args.base.trim(),
        body: args.body.as_deref(),
        draft: args.draft,
        maintainer_can_modify: args.maintainer_can_modify,
    };
    for (name, value) in [
        ("title", body.title),
        ("head", body.head),
        ("base", body.base),
    ] {
        if value.is_empty() {
            return Err(ToolError::InvalidArguments(format!("{name} is empty")));
        }
    }
    let api = Api::from_context(cx)?;
    let path = api::repo_path(&args.owner, &args.repo, "/pulls")?;
    let pr = api::send::<PullRequest>(api.post(&path, &body)?)?.data;
    Ok(format_pull(pr, Some("Created")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull() -> PullRequest {
        serde_json::from_str(include_str!("../../testdata/pull.json")).expect("fixture")
    }

    #[test]
    fn pull_lists_read_one_per_line() {
        let pulls: Vec<PullRequest> =
            serde_json::from_str(include_str!("../../testdata/pulls.json")).expect("fixture");
        let reply = format_pull_list("octocat/Hello-World", StateFilter::Open, pulls, 30, Some(3));
        assert_eq!(
            reply.text,
            "1 open pull request in octocat/Hello-World:\n\
             #1347 [merged] Amazing new feature (new-topic → master) (bug) — octocat, updated 2011-01-26\n\
             More results exist: call again with page=3."
        );
        let pr = &reply.data.pull_requests[0];
        assert_eq!(
            (pr.head.as_str(), pr.base.as_str()),
            ("new-topic", "master")
        );
        assert!(pr.merged);
    }

    #[test]
    fn a_pull_request_reads_in_full() {
        let reply = format_pull(pull(), None);
        let text = &reply.text;
        assert!(
            text.starts_with(
                "#1347 [merged] Amazing new feature\nhttps://github.com/octocat/Hello-World/pull/1347\n\
                 octocat/Hello-World:new-topic (6dcb09b) → master (6dcb09b)\n\
                 Author: octocat · created 2011-01-26 · updated 2011-01-26 · merged 2011-01-26 by octocat\n\
                 3 commits · 5 files changed · +100 -3 · 10 comments · 0 review comments"
            ),
            "{text}"
        );
        assert!(text.contains("Review requested from: other_user"), "{text}");
        assert!(
            text.ends_with("Please pull these awesome changes in!"),
            "{text}"
        );
        assert_eq!(
            reply.data.head_sha,
            "6dcb09b5b57875f334f61aebed695e2e4193db5e"
        );
        assert_eq!(reply.data.mergeable, Some(true));

        let mut open = pull();
        open.merged = Some(false);
        open.merged_at = None;
        open.draft = Some(true);
        let reply = format_pull(open, Some("Created"));
        assert!(
            reply
                .text
                .starts_with("Created pull request #1347.\n#1347 [open, draft]"),
            "{}",
            reply.text
        );
        assert!(
            reply.text.contains("Mergeable: yes (clean)"),
            "{}",
            reply.text
        );
    }

    #[test]
    fn changed_files_show_patches() {
        let entries: Vec<DiffEntry> =
            serde_json::from_str(include_str!("../../testdata/pull_files.json")).expect("fixture");
        let reply = format_pull_files(1347, entries, true, 30, None);
        assert_eq!(
            reply.text,
            "1 changed file in pull request #1347 on this page (+103 -21):\n\
             added file1.txt (+103 -21)\n```diff\n@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ module Test\n```\n\
             This is the last page."
        );
        assert_eq!(reply.data.files[0].status, "added");
    }

    #[test]
    fn new_pull_requests_send_the_required_fields() {
        let body = NewPull {
            title: "Fix",
            head: "octo:fix",
            base: "main",
            body: None,
            draft: Some(true),
            maintainer_can_modify: None,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"title": "Fix", "head": "octo:fix", "base": "main", "draft": true})
        );
    }
}
