//! The parts of GitHub's responses the tools read.
//!
//! Everything is defaulted and nullable fields are `Option`: GitHub sends
//! `null` for many fields the OpenAPI description marks as present, older
//! Enterprise Server versions omit newer ones, and a mock server generates
//! whatever the schema allows. A missing detail must never fail a call.

use serde::{Deserialize, Deserializer};

/// `null` as the type's default, for fields that are "always" present.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "nullable")]
    pub login: String,
    pub id: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub location: Option<String>,
    pub bio: Option<String>,
    pub public_repos: Option<u64>,
    pub total_private_repos: Option<u64>,
    pub followers: Option<u64>,
    pub following: Option<u64>,
    pub created_at: Option<String>,
    pub plan: Option<Plan>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Plan {
    pub name: Option<String>,
}

/// The login of an optional user; GitHub sends `null` for deleted users
/// and `{}` for commit authors without an account.
pub fn login(user: &Option<User>) -> Option<String> {
    user.as_ref()
        .map(|u| u.login.clone())
        .filter(|l| !l.is_empty())
}

/// Issue labels come as objects, or as bare names in some payloads.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Name(String),
    Object {
        #[serde(default, deserialize_with = "nullable")]
        name: String,
    },
}

impl Label {
    pub fn name(&self) -> &str {
        match self {
            Label::Name(name) | Label::Object { name } => name,
        }
    }
}

pub fn label_names(labels: &[Label]) -> Vec<String> {
    labels
        .iter()
        .map(|l| l.name().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

pub fn logins(users: &[User]) -> Vec<String> {
    users
        .iter()
        .map(|u| u.login.clone())
        .filter(|l| !l.is_empty())
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Milestone {
    pub number: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct License {
    pub spdx_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Repository {
    #[serde(deserialize_with = "nullable")]
    pub full_name: String,
    pub description: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    pub private: bool,
    pub fork: bool,
    pub archived: bool,
    pub language: Option<String>,
    pub stargazers_count: u64,
    pub forks_count: u64,
    pub open_issues_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub topics: Vec<String>,
    pub default_branch: Option<String>,
    pub updated_at: Option<String>,
    pub pushed_at: Option<String>,
    pub license: Option<License>,
}

/// A search endpoint's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchResults<T> {
    pub total_count: u64,
    pub incomplete_results: bool,
    pub items: Vec<T>,
}

/// One entry of the contents API: a file, directory entry, symlink or
/// submodule.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Content {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    pub size: u64,
    pub encoding: Option<String>,
    pub content: Option<String>,
    pub html_url: Option<String>,
    pub download_url: Option<String>,
    /// For symlinks.
    pub target: Option<String>,
    /// For submodules.
    pub submodule_git_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Branch {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub commit: Option<ShaRef>,
    pub protected: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShaRef {
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GitUser {
    pub name: Option<String>,
    pub email: Option<String>,
    pub date: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CommitDetail {
    pub author: Option<GitUser>,
    pub committer: Option<GitUser>,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CommitStats {
    pub additions: u64,
    pub deletions: u64,
    pub total: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Commit {
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    pub commit: CommitDetail,
    pub author: Option<User>,
    pub committer: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub parents: Vec<ShaRef>,
    pub stats: Option<CommitStats>,
    #[serde(deserialize_with = "nullable")]
    pub files: Vec<DiffEntry>,
}

/// A changed file of a commit or pull request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffEntry {
    #[serde(deserialize_with = "nullable")]
    pub filename: String,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    pub changes: u64,
    pub patch: Option<String>,
    pub previous_filename: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Issue {
    pub number: u64,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    pub state_reason: Option<String>,
    pub body: Option<String>,
    pub user: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "nullable")]
    pub assignees: Vec<User>,
    pub milestone: Option<Milestone>,
    pub locked: bool,
    pub comments: u64,
    /// Present when the issue is a pull request.
    pub pull_request: Option<serde_json::Value>,
    pub draft: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    /// `https://api.github.com/repos/OWNER/REPO`, in search results.
    pub repository_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IssueComment {
    pub id: u64,
    pub body: Option<String>,
    pub user: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
}

/// A pull request's head or base.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PullRef {
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub git_ref: String,
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    pub repo: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    pub number: u64,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    pub draft: Option<bool>,
    pub merged: Option<bool>,
    pub mergeable: Option<bool>,
    pub mergeable_state: Option<String>,
    pub body: Option<String>,
    pub user: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "nullable")]
    pub assignees: Vec<User>,
    #[serde(deserialize_with = "nullable")]
    pub requested_reviewers: Vec<User>,
    pub milestone: Option<Milestone>,
    pub head: PullRef,
    pub base: PullRef,
    pub commits: Option<u64>,
    pub additions: Option<u64>,
    pub deletions: Option<u64>,
    pub changed_files: Option<u64>,
    pub comments: Option<u64>,
    pub review_comments: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    pub merged_by: Option<User>,
    pub merge_commit_sha: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeResult {
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    pub repository: Repository,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseAsset {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub size: u64,
    pub download_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub browser_download_url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Release {
    pub id: u64,
    #[serde(deserialize_with = "nullable")]
    pub tag_name: String,
    pub name: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
    pub prerelease: bool,
    #[serde(deserialize_with = "nullable")]
    pub target_commitish: String,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    pub published_at: Option<String>,
    pub author: Option<User>,
    #[serde(deserialize_with = "nullable")]
    pub assets: Vec<ReleaseAsset>,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_gaps_parse() {
        let issue: Issue = serde_json::from_str(
            r#"{"number": 3, "title": null, "labels": ["bug", {"name": "ui"}, {"id": 1}],
                "user": null, "assignees": null, "unknown": {"x": 1}}"#,
        )
        .expect("parses");
        assert_eq!(issue.number, 3);
        assert_eq!(issue.title, "");
        assert_eq!(label_names(&issue.labels), ["bug", "ui"]);
        assert_eq!(login(&issue.user), None);
        let commit: Commit =
            serde_json::from_str(r#"{"sha": "abc", "author": {}, "commit": {"message": "m"}}"#)
                .expect("parses");
        assert_eq!(login(&commit.author), None);
    }
}
