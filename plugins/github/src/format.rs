//! Shared pieces of the tools' answers: bounds on long texts, dates, the
//! "more pages" line and the issue summary several tools return.
//!
//! A tool's text goes into the model's context and its structured content
//! to programs; both come from the same truncated values, so the two never
//! disagree and the whole answer stays far below the host's output limit.

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::{self, DiffEntry, Issue};

/// An issue or pull request body in a `get_*` tool.
pub const BODY_LIMIT: usize = 20_000;
/// One comment in a list of comments.
pub const COMMENT_LIMIT: usize = 4_000;
/// One file's patch.
pub const PATCH_LIMIT: usize = 6_000;
/// All patches of one answer together.
pub const PATCH_BUDGET: usize = 120_000;
/// A file's text in `get_file_contents`.
pub const FILE_LIMIT: usize = 200_000;
/// A release body in a list of releases.
pub const RELEASE_BODY_LIMIT: usize = 1_500;
/// A one-line description (of a repository, in a list).
pub const LINE_LIMIT: usize = 200;

pub use toolhost_sdk::text::{bounded, one_line, truncate};

/// The date part of an ISO 8601 timestamp.
pub fn date(timestamp: &str) -> &str {
    timestamp.get(..10).unwrap_or(timestamp)
}

/// `1 branch`, `2 branches`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The first seven characters of a commit SHA.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The closing line of a paginated answer.
pub fn pages_line(shown: usize, next_page: Option<u32>) -> String {
    match next_page {
        Some(next) => format!("\nMore results exist: call again with page={next}."),
        None if shown == 0 => String::new(),
        None => "\nThis is the last page.".to_string(),
    }
}

/// `owner/repo` from an API URL `…/repos/OWNER/REPO`.
pub fn repo_from_api_url(url: &str) -> Option<String> {
    let (_, rest) = url.rsplit_once("/repos/")?;
    let mut parts = rest.split('/');
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let repo = parts.next().filter(|s| !s.is_empty())?;
    Some(format!("{owner}/{repo}"))
}

/// An issue (or pull request) in a list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssueSummary {
    /// The number within its repository.
    pub number: u64,
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    /// Why it was closed (`completed`, `not_planned`, `duplicate`) or reopened.
    pub state_reason: Option<String>,
    /// The item is a pull request (the issues API lists both).
    pub is_pull_request: bool,
    /// The author's login.
    pub user: Option<String>,
    pub labels: Vec<String>,
    /// Logins of the assignees.
    pub assignees: Vec<String>,
    /// Number of comments.
    pub comments: u64,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub html_url: String,
    /// `owner/repo`, when known (search results span repositories).
    pub repository: Option<String>,
}

impl IssueSummary {
    pub fn from_issue(issue: &Issue) -> IssueSummary {
        IssueSummary {
            number: issue.number,
            title: issue.title.clone(),
            state: issue.state.clone(),
            state_reason: issue.state_reason.clone(),
            is_pull_request: issue.pull_request.as_ref().is_some_and(|v| !v.is_null()),
            user: model::login(&issue.user),
            labels: model::label_names(&issue.labels),
            assignees: model::logins(&issue.assignees),
            comments: issue.comments,
            created_at: issue.created_at.clone(),
            updated_at: issue.updated_at.clone(),
            closed_at: issue.closed_at.clone(),
            html_url: issue.html_url.clone(),
            repository: issue.repository_url.as_deref().and_then(repo_from_api_url),
        }
    }

    /// `#12 [open] Title (bug, ui) — octocat, updated 2024-01-02`, with
    /// `owner/repo` in front when `with_repo`.
    pub fn line(&self, with_repo: bool) -> String {
        let mut line = String::new();
        if with_repo && let Some(repo) = &self.repository {
            line.push_str(repo);
        }
        line.push_str(&format!("#{} [{}", self.number, self.state));
        if self.is_pull_request {
            line.push_str(", pull request");
        }
        line.push_str(&format!("] {}", one_line(&self.title, LINE_LIMIT)));
        if !self.labels.is_empty() {
            line.push_str(&format!(" ({})", self.labels.join(", ")));
        }
        line.push_str(&format!(
            " — {}, updated {}",
            self.user.as_deref().unwrap_or("ghost"),
            date(&self.updated_at)
        ));
        if self.comments > 0 {
            line.push_str(&format!(
                ", {} comment{}",
                self.comments,
                if self.comments == 1 { "" } else { "s" }
            ));
        }
        line
    }
}

/// A changed file of a commit or pull request.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffFile {
    pub filename: String,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed` or `unchanged`.
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    pub changes: u64,
    /// The old name of a renamed file.
    pub previous_filename: Option<String>,
    /// The unified diff hunk(s); absent for binary or huge files, when
    /// patches were not asked for, or past the answer's budget.
    pub patch: Option<String>,
    /// `patch` was cut or left out to bound the answer.
    pub patch_truncated: bool,
}

/// Changed files as data and as text (a header line per file, then its
/// patch). Patches share one budget so a huge diff cannot crowd out the
/// list of files.
pub fn diff_files(entries: Vec<DiffEntry>, include_patch: bool) -> (Vec<DiffFile>, String) {
    let mut budget = PATCH_BUDGET;
    let mut text = String::new();
    let mut files = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut patch_truncated = false;
        let patch = match entry.patch.filter(|_| include_patch) {
            Some(patch) if budget == 0 => {
                patch_truncated = !patch.is_empty();
                None
            }
            Some(patch) => {
                let (cut, was_cut) = truncate(&patch, PATCH_LIMIT.min(budget));
                budget -= cut.len();
                patch_truncated = was_cut;
                Some(cut)
            }
            None => None,
        };
        text.push_str(&format!("\n{} {}", entry.status, entry.filename));
        if let Some(previous) = &entry.previous_filename {
            text.push_str(&format!(" (from {previous})"));
        }
        text.push_str(&format!(" (+{} -{})", entry.additions, entry.deletions));
        if let Some(patch) = &patch {
            text.push_str(&format!("\n```diff\n{patch}\n```"));
        }
        if patch_truncated {
            text.push_str(if patch.is_some() {
                "\n[patch truncated]"
            } else {
                "\n[patch left out: the answer's patch budget is spent; ask for fewer files per page]"
            });
        }
        files.push(DiffFile {
            filename: entry.filename,
            status: entry.status,
            additions: entry.additions,
            deletions: entry.deletions,
            changes: entry.changes,
            previous_filename: entry.previous_filename,
            patch,
            patch_truncated,
        });
    }
    (files, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), ("h".to_string(), true));
        assert_eq!(truncate("hi", 5), ("hi".to_string(), false));
        let text = bounded(&"x".repeat(50), 10);
        assert!(text.starts_with("xxxxxxxxxx\n… [truncated: 10 of 50 bytes shown]"));
        assert_eq!(one_line("a\n b\t c", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(date("2011-04-22T13:33:48Z"), "2011-04-22");
        assert_eq!(date("x"), "x");
        assert_eq!(
            short_sha("6dcb09b5b57875f334f61aebed695e2e4193db5e"),
            "6dcb09b"
        );
        assert_eq!(
            repo_from_api_url("https://ghe.example.com/api/v3/repos/octo/hello").as_deref(),
            Some("octo/hello")
        );
        assert!(pages_line(3, Some(2)).contains("page=2"));
        assert!(pages_line(3, None).contains("last page"));
    }

    #[test]
    fn patches_share_a_budget() {
        let entry = |name: &str, patch: &str| DiffEntry {
            filename: name.to_string(),
            status: "modified".to_string(),
            additions: 1,
            deletions: 1,
            changes: 2,
            patch: Some(patch.to_string()),
            previous_filename: None,
        };
        let big = "+x\n".repeat(PATCH_LIMIT);
        let entries: Vec<DiffEntry> = (0..30).map(|i| entry(&format!("f{i}"), &big)).collect();
        let (files, text) = diff_files(entries, true);
        assert_eq!(files.len(), 30);
        let shown: usize = files
            .iter()
            .filter_map(|f| f.patch.as_ref())
            .map(String::len)
            .sum();
        assert!(shown <= PATCH_BUDGET);
        assert!(files.iter().all(|f| f.patch_truncated));
        assert!(files[29].patch.is_none());
        assert!(text.contains("patch budget is spent"));
        let (files, text) = diff_files(vec![entry("a", "@@ -1 +1 @@")], false);
        assert!(files[0].patch.is_none() && !files[0].patch_truncated);
        assert_eq!(text, "\nmodified a (+1 -1)");
    }
}
