//! Commit history and single commits with their diffs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{
    BODY_LIMIT, DiffFile, LINE_LIMIT, bounded, count, date, diff_files, one_line, pages_line,
    short_sha, truncate,
};
use crate::model::{self, Commit};

/// A commit message in a list.
const LIST_MESSAGE_LIMIT: usize = 2_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCommits {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// Branch, tag or commit SHA to list history from; omit for the default branch.
    #[serde(default)]
    pub sha: Option<String>,
    /// Only commits touching this file or directory path, e.g. `src/lib.rs`.
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits by this author: a GitHub login or an email address.
    #[serde(default)]
    pub author: Option<String>,
    /// Only commits after this time: `YYYY-MM-DD` or ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub since: Option<String>,
    /// Only commits before this time: `YYYY-MM-DD` or ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub until: Option<String>,
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
pub struct CommitList {
    pub commits: Vec<CommitSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommitSummary {
    pub sha: String,
    /// The commit message (long messages are cut).
    pub message: String,
    /// The git author's name.
    pub author_name: Option<String>,
    /// The author's GitHub login, when the email maps to an account.
    pub author_login: Option<String>,
    /// When the change was authored (ISO 8601).
    pub date: Option<String>,
    pub html_url: String,
}

/// List a repository's commits, newest first.
///
/// One line each: short SHA, date, author and the message's first line.
/// Start from a branch, tag or SHA with `sha`; narrow with `path` (history
/// of a file or directory), `author`, `since` and `until`. Use get_commit
/// for one commit's full message and diff. Paginated: the answer says when
/// more pages exist.
#[tool(read_only, idempotent, open_world, title = "List commits")]
pub fn list_commits(cx: &Context, args: ListCommits) -> Result<Reply<CommitList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(&args.owner, &args.repo, "/commits")?;
    let since = args
        .since
        .as_deref()
        .map(|s| api::timestamp("since", s))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| api::timestamp("until", s))
        .transpose()?;
    let request = api
        .get(&path)
        .query_opt("sha", non_empty(&args.sha))
        .query_opt("path", non_empty(&args.path).map(|p| p.trim_matches('/')))
        .query_opt("author", non_empty(&args.author))
        .query_opt("since", since)
        .query_opt("until", until)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<Commit>>(request)?;
    Ok(format_commit_list(
        fetched.data,
        per_page,
        fetched.next_page,
    ))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub fn format_commit_list(
    commits: Vec<Commit>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<CommitList> {
    let commits: Vec<CommitSummary> = commits
        .into_iter()
        .take(per_page as usize)
        .map(|c| {
            let author = c.commit.author.unwrap_or_default();
            CommitSummary {
                message: truncate(&c.commit.message, LIST_MESSAGE_LIMIT).0,
                author_login: model::login(&c.author),
                author_name: author.name,
                date: author.date,
                sha: c.sha,
                html_url: c.html_url,
            }
        })
        .collect();
    let mut text = if commits.is_empty() {
        "No commits found.".to_string()
    } else {
        format!("{}:", count(commits.len(), "commit", "commits"))
    };
    for c in &commits {
        let who = match (&c.author_name, &c.author_login) {
            (Some(name), Some(login)) if name != login => format!("{name} ({login})"),
            (_, Some(login)) => login.clone(),
            (Some(name), None) => name.clone(),
            (None, None) => "unknown".to_string(),
        };
        let headline = c.message.lines().next().unwrap_or("");
        text.push_str(&format!(
            "\n{} {} {who}: {}",
            short_sha(&c.sha),
            c.date.as_deref().map(date).unwrap_or("????-??-??"),
            one_line(headline, LINE_LIMIT)
        ));
    }
    text.push_str(&pages_line(commits.len(), next_page));
    Reply::new(text, CommitList { commits, next_page })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetCommit {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// The commit: a SHA (full or abbreviated), or a branch or tag name for its latest commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Include each file's diff (patch); set false for just the list of changed files.
    #[serde(default = "yes")]
    pub include_patch: bool,
    /// Page of changed files, starting at 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Changed files per page, 1–100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u32,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommitInfo {
    pub sha: String,
    /// The full commit message (very long ones are cut).
    pub message: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// The author's GitHub login, when the email maps to an account.
    pub author_login: Option<String>,
    /// When the change was authored (ISO 8601).
    pub author_date: Option<String>,
    pub committer_name: Option<String>,
    /// When it was committed (ISO 8601).
    pub committer_date: Option<String>,
    /// SHAs of the parent commits (two or more for a merge).
    pub parents: Vec<String>,
    /// Lines added in the whole commit.
    pub additions: Option<u64>,
    /// Lines removed in the whole commit.
    pub deletions: Option<u64>,
    /// The changed files on this page.
    pub files: Vec<DiffFile>,
    pub html_url: String,
    /// The page of changed files to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

/// Get one commit with its message, stats and diff.
///
/// Shows the author, parents, line stats and the changed files with their
/// patches. `ref` is a SHA, or a branch or tag name for its latest commit.
/// Patches are cut when long (about 6 KB per file, 120 KB per answer);
/// large commits page through their files with `page`/`per_page`, or set
/// `include_patch` to false for a quick overview.
#[tool(read_only, idempotent, open_world, title = "Get a commit")]
pub fn get_commit(cx: &Context, args: GetCommit) -> Result<Reply<CommitInfo>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let git_ref = args.git_ref.trim();
    if git_ref.is_empty() {
        return Err(toolhost_sdk::ToolError::InvalidArguments(
            "ref is empty: pass a commit SHA, branch or tag".into(),
        ));
    }
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/commits/{}", api::encoded(git_ref)),
    )?;
    let request = api
        .get(&path)
        .query("page", page)
        .query("per_page", per_page);
    let fetched = api::send::<Commit>(request)?;
    Ok(format_commit(
        fetched.data,
        args.include_patch,
        fetched.next_page,
    ))
}

pub fn format_commit(
    commit: Commit,
    include_patch: bool,
    next_page: Option<u32>,
) -> Reply<CommitInfo> {
    let author = commit.commit.author.unwrap_or_default();
    let committer = commit.commit.committer.unwrap_or_default();
    let message = bounded(&commit.commit.message, BODY_LIMIT);
    let (files, files_text) = diff_files(commit.files, include_patch);
    let info = CommitInfo {
        sha: commit.sha,
        message,
        author_login: model::login(&commit.author),
        author_name: author.name,
        author_email: author.email,
        author_date: author.date,
        committer_name: committer.name,
        committer_date: committer.date,
        parents: commit.parents.into_iter().map(|p| p.sha).collect(),
        additions: commit.stats.as_ref().map(|s| s.additions),
        deletions: commit.stats.as_ref().map(|s| s.deletions),
        files,
        html_url: commit.html_url,
        next_page,
    };
    let mut text = format!("Commit {} — {}", info.sha, info.html_url);
    let who = match (&info.author_name, &info.author_email) {
        (Some(name), Some(email)) => format!("{name} <{email}>"),
        (Some(name), None) => name.clone(),
        (None, Some(email)) => email.clone(),
        (None, None) => "unknown".into(),
    };
    text.push_str(&format!("\nAuthor: {who}"));
    if let Some(login) = &info.author_login {
        text.push_str(&format!(" (@{login})"));
    }
    if let Some(when) = &info.author_date {
        text.push_str(&format!(" on {when}"));
    }
    if info.committer_name.is_some() && info.committer_name != info.author_name {
        text.push_str(&format!(
            "\nCommitter: {}",
            info.committer_name.as_deref().unwrap_or("")
        ));
    }
    if !info.parents.is_empty() {
        let parents: Vec<&str> = info.parents.iter().map(|p| short_sha(p)).collect();
        text.push_str(&format!("\nParents: {}", parents.join(", ")));
    }
    if let (Some(add), Some(del)) = (info.additions, info.deletions) {
        text.push_str(&format!("\nStats: +{add} -{del}"));
    }
    text.push_str(&format!("\n\n{}\n", info.message.trim_end()));
    if !info.files.is_empty() {
        text.push_str(&format!(
            "\n{} on this page:",
            count(info.files.len(), "changed file", "changed files")
        ));
        text.push_str(&files_text);
    }
    if let Some(next) = next_page {
        text.push_str(&format!(
            "\nMore changed files exist: call again with page={next}."
        ));
    }
    Reply::new(text, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_lists_read_one_per_line() {
        let commits: Vec<Commit> =
            serde_json::from_str(include_str!("../../testdata/commits.json")).expect("fixture");
        let reply = format_commit_list(commits, 30, None);
        assert_eq!(
            reply.text,
            "1 commit:\n6dcb09b 2011-04-14 Monalisa Octocat (octocat): Fix all the bugs\nThis is the last page."
        );
        let c = &reply.data.commits[0];
        assert_eq!(c.sha, "6dcb09b5b57875f334f61aebed695e2e4193db5e");
        assert_eq!(c.author_login.as_deref(), Some("octocat"));
        assert_eq!(reply.data.next_page, None);
    }

    #[test]
    fn a_commit_shows_its_files_and_patches() {
        let commit: Commit =
            serde_json::from_str(include_str!("../../testdata/commit.json")).expect("fixture");
        let reply = format_commit(commit, true, Some(2));
        let text = &reply.text;
        assert!(text.starts_with("Commit 6dcb09b5b57875f334f61aebed695e2e4193db5e — https://github.com/octocat/Hello-World/commit/"), "{text}");
        assert!(
            text.contains(
                "Author: Monalisa Octocat <mona@github.com> (@octocat) on 2011-04-14T16:00:49Z"
            ),
            "{text}"
        );
        assert!(text.contains("Stats: +104 -4"), "{text}");
        assert!(text.contains("\nFix all the bugs\n"), "{text}");
        assert!(
            text.contains("\nmodified file1.txt (+10 -2)\n```diff\n@@ -29,7 +29,7 @@"),
            "{text}"
        );
        assert!(text.ends_with("call again with page=2."), "{text}");
        assert_eq!(
            reply.data.parents,
            ["6dcb09b5b57875f334f61aebed695e2e4193db5e"]
        );
        assert_eq!(reply.data.files[0].filename, "file1.txt");

        let commit: Commit =
            serde_json::from_str(include_str!("../../testdata/commit.json")).expect("fixture");
        let reply = format_commit(commit, false, None);
        assert!(!reply.text.contains("```diff"));
        assert!(reply.data.files[0].patch.is_none());
    }
}
