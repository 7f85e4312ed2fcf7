//! Issues and their comments: list, read, create, update, comment.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{BODY_LIMIT, COMMENT_LIMIT, IssueSummary, count, date, pages_line, truncate};
use crate::model::{self, Issue, IssueComment};
use crate::tools::{Direction, StateFilter};

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum IssueSort {
    #[default]
    Created,
    Updated,
    Comments,
}

impl IssueSort {
    fn as_str(self) -> &'static str {
        match self {
            IssueSort::Created => "created",
            IssueSort::Updated => "updated",
            IssueSort::Comments => "comments",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIssues {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// Which issues by state.
    #[serde(default)]
    pub state: StateFilter,
    /// Only issues that have all of these labels, e.g. `["bug", "good first issue"]`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Only issues assigned to this login; `none` for unassigned, `*` for assigned to anyone.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Only issues opened by this login.
    #[serde(default)]
    pub creator: Option<String>,
    /// Only issues that mention this login.
    #[serde(default)]
    pub mentioned: Option<String>,
    /// Only issues in this milestone: its number, `none` for no milestone, `*` for any.
    #[serde(default)]
    pub milestone: Option<String>,
    /// What to sort by.
    #[serde(default)]
    pub sort: IssueSort,
    /// Sort direction.
    #[serde(default)]
    pub direction: Direction,
    /// Only issues updated at or after this time: `YYYY-MM-DD` or ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub since: Option<String>,
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
pub struct IssueList {
    pub issues: Vec<IssueSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// List a repository's issues, one line each.
///
/// Each line: number, state, title, labels, author and last update. GitHub
/// counts pull requests as issues, so they appear too, marked "pull
/// request" (use list_pull_requests for pull requests only). Filter by
/// `state` (default open), `labels`, `assignee`, `creator`, `mentioned`,
/// `milestone` and `since`. For full-text or cross-repository queries use
/// search_issues. Paginated: the answer says when more pages exist.
#[tool(read_only, idempotent, open_world, title = "List issues")]
pub fn list_issues(cx: &Context, args: ListIssues) -> Result<Reply<IssueList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(&args.owner, &args.repo, "/issues")?;
    let labels: Vec<&str> = args
        .labels
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let since = args
        .since
        .as_deref()
        .map(|s| api::timestamp("since", s))
        .transpose()?;
    let request = api
        .get(&path)
        .query("state", args.state.as_str())
        .query_opt("labels", (!labels.is_empty()).then(|| labels.join(",")))
        .query_opt("assignee", non_empty(&args.assignee))
        .query_opt("creator", non_empty(&args.creator))
        .query_opt("mentioned", non_empty(&args.mentioned))
        .query_opt("milestone", non_empty(&args.milestone))
        .query("sort", args.sort.as_str())
        .query("direction", args.direction.as_str())
        .query_opt("since", since)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<Issue>>(request)?;
    let repo = format!("{}/{}", args.owner.trim(), args.repo.trim());
    Ok(format_issue_list(
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

pub fn format_issue_list(
    repo: &str,
    state: StateFilter,
    issues: Vec<Issue>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<IssueList> {
    let issues: Vec<IssueSummary> = issues
        .iter()
        .take(per_page as usize)
        .map(IssueSummary::from_issue)
        .collect();
    let which = match state {
        StateFilter::Open => "open ",
        StateFilter::Closed => "closed ",
        StateFilter::All => "",
    };
    let mut text = if issues.is_empty() {
        format!("No {which}issues found in {repo}.")
    } else {
        format!(
            "{} {which}{} in {repo}:",
            issues.len(),
            if issues.len() == 1 { "issue" } else { "issues" }
        )
    };
    for issue in &issues {
        text.push('\n');
        text.push_str(&issue.line(false));
    }
    text.push_str(&pages_line(issues.len(), next_page));
    Reply::new(text, IssueList { issues, next_page })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIssue {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The issue number, as in `#123`.
    #[schemars(range(min = 1))]
    pub issue_number: u64,
}

/// One issue in full.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueDetail {
    pub number: u64,
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    /// Why it was closed (`completed`, `not_planned`, `duplicate`) or reopened.
    pub state_reason: Option<String>,
    /// The issue is a pull request.
    pub is_pull_request: bool,
    /// The author's login.
    pub user: Option<String>,
    pub labels: Vec<String>,
    /// Logins of the assignees.
    pub assignees: Vec<String>,
    /// The milestone's title.
    pub milestone: Option<String>,
    /// The milestone's number.
    pub milestone_number: Option<u64>,
    /// Comments are locked.
    pub locked: bool,
    /// Number of comments.
    pub comments: u64,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// The description, Markdown (very long ones are cut).
    pub body: String,
    /// `body` was cut.
    pub body_truncated: bool,
    pub html_url: String,
}

/// Get one issue in full, description included.
///
/// Shows the title, state, author, labels, assignees, milestone and dates,
/// then the description (Markdown). Works for pull requests too (GitHub
/// numbers them with issues), but get_pull_request also gives branches,
/// merge state and diff stats. Use list_issue_comments for the discussion.
#[tool(read_only, idempotent, open_world, title = "Get an issue")]
pub fn get_issue(cx: &Context, args: GetIssue) -> Result<Reply<IssueDetail>> {
    let api = Api::from_context(cx)?;
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/issues/{}", args.issue_number),
    )?;
    let issue = api::send::<Issue>(api.get(&path))?.data;
    Ok(format_issue(&issue, None))
}

pub fn issue_detail(issue: &Issue) -> IssueDetail {
    let body = issue.body.as_deref().unwrap_or("");
    let (body, body_truncated) = truncate(body, BODY_LIMIT);
    IssueDetail {
        number: issue.number,
        title: issue.title.clone(),
        state: issue.state.clone(),
        state_reason: issue.state_reason.clone(),
        is_pull_request: issue.pull_request.as_ref().is_some_and(|v| !v.is_null()),
        user: model::login(&issue.user),
        labels: model::label_names(&issue.labels),
        assignees: model::logins(&issue.assignees),
        milestone: issue.milestone.as_ref().map(|m| m.title.clone()),
        milestone_number: issue.milestone.as_ref().and_then(|m| m.number),
        locked: issue.locked,
        comments: issue.comments,
        created_at: issue.created_at.clone(),
        updated_at: issue.updated_at.clone(),
        closed_at: issue.closed_at.clone(),
        closed_by: model::login(&issue.closed_by),
        body,
        body_truncated,
        html_url: issue.html_url.clone(),
    }
}

/// The issue as text; `action` ("Created", "Updated") heads the answer of
/// the write tools.
pub fn format_issue(issue: &Issue, action: Option<&str>) -> Reply<IssueDetail> {
    let d = issue_detail(issue);
    let mut text = String::new();
    if let Some(action) = action {
        text.push_str(&format!("{action} issue #{}.\n", d.number));
    }
    let mut state = d.state.clone();
    // GitHub keeps a stale reason on reopened-then-edited issues; it only
    // means something for closed ones or as "reopened".
    if let Some(reason) = &d.state_reason
        && (d.state == "closed" || reason == "reopened")
    {
        state.push_str(&format!(", {reason}"));
    }
    if d.is_pull_request {
        state.push_str(", pull request");
    }
    text.push_str(&format!(
        "#{} [{state}] {}\n{}",
        d.number, d.title, d.html_url
    ));
    text.push_str(&format!(
        "\nAuthor: {} · created {} · updated {}",
        d.user.as_deref().unwrap_or("ghost"),
        date(&d.created_at),
        date(&d.updated_at)
    ));
    if let Some(closed) = &d.closed_at {
        text.push_str(&format!(" · closed {}", date(closed)));
        if let Some(by) = &d.closed_by {
            text.push_str(&format!(" by {by}"));
        }
    }
    text.push_str(&format!(
        " · {}",
        count(d.comments as usize, "comment", "comments")
    ));
    if d.locked {
        text.push_str(" · locked");
    }
    let mut meta = Vec::new();
    if !d.labels.is_empty() {
        meta.push(format!("Labels: {}", d.labels.join(", ")));
    }
    if !d.assignees.is_empty() {
        meta.push(format!("Assignees: {}", d.assignees.join(", ")));
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
pub struct CreateIssue {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The issue's title.
    #[schemars(length(min = 1))]
    pub title: String,
    /// The description, in GitHub Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// Label names to apply (labels must exist; needs push access, otherwise GitHub silently drops them).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Logins to assign (needs push access, otherwise GitHub silently drops them).
    #[serde(default)]
    pub assignees: Vec<String>,
    /// Milestone number to put the issue in (needs push access).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub milestone: Option<u64>,
    /// Issue type name, for organizations that define issue types, e.g. `Bug`.
    #[serde(default, rename = "type")]
    pub issue_type: Option<String>,
}

/// The body of `POST /repos/{owner}/{repo}/issues`; unset fields are left
/// out, as GitHub treats a present field as a request to set it.
#[derive(Debug, Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    labels: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    assignees: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    milestone: Option<u64>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    issue_type: Option<&'a str>,
}

/// Create an issue in a repository.
///
/// Returns its number and URL. Write the body in GitHub Markdown. Labels,
/// assignees and milestone need push access to the repository: without it
/// GitHub silently drops them, so check the answer. Each call creates a new
/// issue; do not retry a call that succeeded.
#[tool(open_world, title = "Create an issue")]
pub fn create_issue(cx: &Context, args: CreateIssue) -> Result<Reply<IssueDetail>> {
    let title = args.title.trim();
    if title.is_empty() {
        return Err(ToolError::InvalidArguments("title is empty".into()));
    }
    let api = Api::from_context(cx)?;
    let path = api::repo_path(&args.owner, &args.repo, "/issues")?;
    let body = NewIssue {
        title,
        body: args.body.as_deref(),
        labels: &args.labels,
        assignees: &args.assignees,
        milestone: args.milestone,
        issue_type: non_empty(&args.issue_type),
    };
    let issue = api::send::<Issue>(api.post(&path, &body)?)?.data;
    Ok(format_issue(&issue, Some("Created")))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum IssueState {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum StateReason {
    Completed,
    NotPlanned,
    Duplicate,
    Reopened,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIssue {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The issue number, as in `#123`.
    #[schemars(range(min = 1))]
    pub issue_number: u64,
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description, replacing the old one entirely (GitHub Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// `closed` to close the issue, `open` to reopen it.
    #[serde(default)]
    pub state: Option<IssueState>,
    /// Why the state changes: `completed`, `not_planned` or `duplicate` when closing, `reopened` when reopening.
    #[serde(default)]
    pub state_reason: Option<StateReason>,
    /// The complete new set of label names: replaces the current labels; `[]` removes all.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// The complete new set of assignee logins: replaces the current assignees; `[]` removes all.
    #[serde(default)]
    pub assignees: Option<Vec<String>>,
    /// Milestone number to move the issue to; `null` removes it from its milestone.
    #[serde(default, deserialize_with = "present")]
    #[schemars(range(min = 1), transform = no_default)]
    pub milestone: Option<Option<u64>>,
}

/// Here `null` is an instruction (remove the milestone), so the schema
/// must not present it as the default a client may fill in.
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The body of `PATCH /repos/{owner}/{repo}/issues/{issue_number}`: only
/// what the caller asked to change.
#[derive(Debug, Serialize)]
struct IssuePatch<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<IssueState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<StateReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignees: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    milestone: Option<Option<u64>>,
}

/// Change an existing issue's title, body, state, labels, assignees or milestone.
///
/// Only the fields given change. `labels` and `assignees` replace the whole
/// set: to add one label, pass the current labels plus the new one
/// (get_issue shows them). `body` replaces the description. Close with
/// `state: "closed"` and `state_reason: "completed"` or `"not_planned"`.
/// Also works for pull requests' title, body, labels and assignees.
// Destructive: it overwrites the title and description and replaces the
// label and assignee sets outright, which is not an additive change, and it
// can close issues. GitHub keeps an edit history and a closed issue can be
// reopened, but clients that confirm destructive calls should confirm this
// one. Idempotent: the same arguments leave the issue in the same state.
#[tool(open_world, idempotent, destructive, title = "Update an issue")]
pub fn update_issue(cx: &Context, args: UpdateIssue) -> Result<Reply<IssueDetail>> {
    let patch = IssuePatch {
        title: args.title.as_deref().map(str::trim),
        body: args.body.as_deref(),
        state: args.state,
        state_reason: args.state_reason,
        labels: args.labels.as_deref(),
        assignees: args.assignees.as_deref(),
        milestone: args.milestone,
    };
    check_patch(&patch)?;
    let api = Api::from_context(cx)?;
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/issues/{}", args.issue_number),
    )?;
    let issue = api::send::<Issue>(api.patch(&path, &patch)?)?.data;
    Ok(format_issue(&issue, Some("Updated")))
}

fn check_patch(patch: &IssuePatch) -> Result<()> {
    let nothing = patch.title.is_none()
        && patch.body.is_none()
        && patch.state.is_none()
        && patch.state_reason.is_none()
        && patch.labels.is_none()
        && patch.assignees.is_none()
        && patch.milestone.is_none();
    if nothing {
        return Err(ToolError::InvalidArguments(
            "nothing to change: give at least one of title, body, state, state_reason, labels, \
             assignees or milestone"
                .into(),
        ));
    }
    if patch.title == Some("") {
        return Err(ToolError::InvalidArguments("title cannot be empty".into()));
    }
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddIssueComment {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The issue or pull request number, as in `#123`.
    #[schemars(range(min = 1))]
    pub issue_number: u64,
    /// The comment, in GitHub Markdown.
    #[schemars(length(min = 1))]
    pub body: String,
}

/// One comment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommentInfo {
    pub id: u64,
    /// The commenter's login.
    pub user: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The comment, Markdown (long ones are cut in lists).
    pub body: String,
    /// `body` was cut.
    pub body_truncated: bool,
    pub html_url: String,
}

#[derive(Serialize)]
struct NewComment<'a> {
    body: &'a str,
}

/// Add a comment to an issue or pull request.
///
/// GitHub numbers both alike, so a pull request's number works here.
/// Returns the comment's URL. Write the comment in GitHub Markdown. Each
/// call posts a new comment; do not retry a call that succeeded.
#[tool(open_world, title = "Comment on an issue or pull request")]
pub fn add_issue_comment(cx: &Context, args: AddIssueComment) -> Result<Reply<CommentInfo>> {
    if args.body.trim().is_empty() {
        return Err(ToolError::InvalidArguments("body is empty".into()));
    }
    let api = Api::from_context(cx)?;
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/issues/{}/comments", args.issue_number),
    )?;
    let request = api.post(&path, &NewComment { body: &args.body })?;
    let comment = api::send::<IssueComment>(request)?.data;
    Ok(format_new_comment(args.issue_number, comment))
}

fn comment_info(comment: IssueComment, limit: usize) -> CommentInfo {
    let (body, body_truncated) = truncate(comment.body.as_deref().unwrap_or(""), limit);
    CommentInfo {
        id: comment.id,
        user: model::login(&comment.user),
        created_at: comment.created_at,
        updated_at: comment.updated_at,
        body,
        body_truncated,
        html_url: comment.html_url,
    }
}

pub fn format_new_comment(number: u64, comment: IssueComment) -> Reply<CommentInfo> {
    let info = comment_info(comment, BODY_LIMIT);
    let text = format!(
        "Commented on #{number} as {} (comment {}): {}",
        info.user.as_deref().unwrap_or("unknown"),
        info.id,
        info.html_url
    );
    Reply::new(text, info)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIssueComments {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The issue or pull request number, as in `#123`.
    #[schemars(range(min = 1))]
    pub issue_number: u64,
    /// Only comments updated at or after this time: `YYYY-MM-DD` or ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub since: Option<String>,
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
pub struct CommentList {
    pub comments: Vec<CommentInfo>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// List the comments on an issue or pull request, oldest first.
///
/// Each comment comes with its author, date and Markdown text, cut at 4 KB
/// when long. These are the conversation comments; a pull request's
/// line-by-line review comments are not included. Paginated: the answer
/// says when more pages exist.
#[tool(read_only, idempotent, open_world, title = "List issue comments")]
pub fn list_issue_comments(cx: &Context, args: ListIssueComments) -> Result<Reply<CommentList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/issues/{}/comments", args.issue_number),
    )?;
    let since = args
        .since
        .as_deref()
        .map(|s| api::timestamp("since", s))
        .transpose()?;
    let request = api
        .get(&path)
        .query_opt("since", since)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<IssueComment>>(request)?;
    Ok(format_comments(
        args.issue_number,
        fetched.data,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_comments(
    number: u64,
    comments: Vec<IssueComment>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<CommentList> {
    let comments: Vec<CommentInfo> = comments
        .into_iter()
        .take(per_page as usize)
        .map(|c| comment_info(c, COMMENT_LIMIT))
        .collect();
    let mut text = if comments.is_empty() {
        format!("No comments on #{number}.")
    } else {
        format!(
            "{} on #{number}:",
            count(comments.len(), "comment", "comments")
        )
    };
    for c in &comments {
        text.push_str(&format!(
            "\n\n--- {} on {} (comment {}, {})\n{}",
            c.user.as_deref().unwrap_or("ghost"),
            date(&c.created_at),
            c.id,
            c.html_url,
            c.body.trim_end()
        ));
        if c.body_truncated {
            text.push_str("\n… [comment truncated]");
        }
    }
    text.push_str(&pages_line(comments.len(), next_page));
    Reply::new(
        text,
        CommentList {
            comments,
            next_page,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues() -> Vec<Issue> {
        serde_json::from_str(include_str!("../../testdata/issues.json")).expect("fixture")
    }

    #[test]
    fn issue_lists_read_one_per_line() {
        let reply = format_issue_list(
            "octocat/Hello-World",
            StateFilter::Open,
            issues(),
            30,
            Some(2),
        );
        assert_eq!(
            reply.text,
            "1 open issue in octocat/Hello-World:\n\
             #1347 [open, pull request] Found a bug (bug) — octocat, updated 2011-04-22\n\
             More results exist: call again with page=2."
        );
        let issue = &reply.data.issues[0];
        assert_eq!(issue.number, 1347);
        assert_eq!(issue.labels, ["bug"]);
        assert_eq!(issue.user.as_deref(), Some("octocat"));
        assert!(issue.is_pull_request);
        assert_eq!(reply.data.next_page, Some(2));
        // Never more than per_page, whatever the server sends.
        let mut many = issues();
        many.extend(issues());
        let reply = format_issue_list("o/r", StateFilter::All, many, 1, None);
        assert_eq!(reply.data.issues.len(), 1);
        let reply = format_issue_list("o/r", StateFilter::Closed, Vec::new(), 30, None);
        assert_eq!(reply.text, "No closed issues found in o/r.");
    }

    #[test]
    fn an_issue_reads_in_full() {
        let issue: Issue =
            serde_json::from_str(include_str!("../../testdata/issue.json")).expect("fixture");
        let reply = format_issue(&issue, None);
        assert!(
            reply.text.starts_with(
                "#1347 [open, pull request] Found a bug\nhttps://github.com/octocat/Hello-World/issues/1347\n\
                 Author: octocat · created 2011-04-22 · updated 2011-04-22 · 0 comments · locked\n\
                 Labels: bug · Assignees: octocat · Milestone: v1.0\n\nI'm having a problem with this."
            ),
            "{}",
            reply.text
        );
        assert_eq!(reply.data.milestone_number, Some(1));
        assert!(!reply.data.body_truncated);

        let mut long: Issue =
            serde_json::from_str(include_str!("../../testdata/issue.json")).expect("fixture");
        long.body = Some("y".repeat(BODY_LIMIT * 2));
        let reply = format_issue(&long, Some("Updated"));
        assert!(reply.text.starts_with("Updated issue #1347.\n"));
        assert!(reply.data.body_truncated);
        assert_eq!(reply.data.body.len(), BODY_LIMIT);
        assert!(reply.text.contains("description truncated"));
    }

    #[test]
    fn new_issues_send_only_what_was_given() {
        let labels = vec!["bug".to_string()];
        let body = NewIssue {
            title: "Crash",
            body: None,
            labels: &labels,
            assignees: &[],
            milestone: None,
            issue_type: None,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"title": "Crash", "labels": ["bug"]})
        );
    }

    #[test]
    fn updates_send_only_changes_and_null_milestones() {
        let args: UpdateIssue = serde_json::from_str(
            r#"{"owner":"o","repo":"r","issue_number":5,"state":"closed","state_reason":"not_planned","milestone":null}"#,
        )
        .expect("args");
        assert_eq!(args.milestone, Some(None));
        let patch = IssuePatch {
            title: None,
            body: None,
            state: args.state,
            state_reason: args.state_reason,
            labels: None,
            assignees: Some(&[]),
            milestone: args.milestone,
        };
        assert_eq!(
            serde_json::to_value(&patch).expect("json"),
            serde_json::json!({"state": "closed", "state_reason": "not_planned", "assignees": [], "milestone": null})
        );
        let args: UpdateIssue =
            serde_json::from_str(r#"{"owner":"o","repo":"r","issue_number":5}"#).expect("args");
        assert_eq!(args.milestone, None);
        let empty = IssuePatch {
            title: None,
            body: None,
            state: None,
            state_reason: None,
            labels: None,
            assignees: None,
            milestone: None,
        };
        assert!(
            matches!(check_patch(&empty), Err(ToolError::InvalidArguments(m)) if m.starts_with("nothing to change"))
        );
    }

    #[test]
    fn comments_read_with_their_authors() {
        let comments: Vec<IssueComment> =
            serde_json::from_str(include_str!("../../testdata/issue_comments.json"))
                .expect("fixture");
        let reply = format_comments(1347, comments, 30, None);
        assert_eq!(
            reply.text,
            "1 comment on #1347:\n\n--- octocat on 2011-04-14 (comment 1, https://github.com/octocat/Hello-World/issues/1347#issuecomment-1)\nMe too\nThis is the last page."
        );
        let comment: IssueComment =
            serde_json::from_str(include_str!("../../testdata/issue_comment.json"))
                .expect("fixture");
        let reply = format_new_comment(1347, comment);
        assert_eq!(
            reply.text,
            "Commented on #1347 as octocat (comment 1): https://github.com/octocat/Hello-World/issues/1347#issuecomment-1"
        );
    }
}
