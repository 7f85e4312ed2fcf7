//! Branches of a repository.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{count, pages_line, short_sha};
use crate::model::Branch;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBranches {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// Only protected branches (`true`) or only unprotected ones (`false`); omit for all.
    #[serde(default)]
    pub protected: Option<bool>,
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
pub struct BranchList {
    pub branches: Vec<BranchItem>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchItem {
    pub name: String,
    /// SHA of the branch's head commit.
    pub sha: String,
    pub protected: bool,
}

/// List a repository's branches with their head commits.
///
/// Also says which branches are protected. Use a branch name as `ref`/`sha`
/// in get_file_contents, list_commits and get_commit, or as `head`/`base`
/// in create_pull_request. Paginated: the answer says when more pages
/// exist.
#[tool(read_only, idempotent, open_world, title = "List branches")]
pub fn list_branches(cx: &Context, args: ListBranches) -> Result<Reply<BranchList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(&args.owner, &args.repo, "/branches")?;
    let request = api
        .get(&path)
        .query_opt("protected", args.protected)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<Branch>>(request)?;
    Ok(format_branches(
        &format!("{}/{}", args.owner.trim(), args.repo.trim()),
        fetched.data,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_branches(
    repo: &str,
    branches: Vec<Branch>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<BranchList> {
    let branches: Vec<BranchItem> = branches
        .into_iter()
        .take(per_page as usize)
        .map(|b| BranchItem {
            name: b.name,
            sha: b.commit.map(|c| c.sha).unwrap_or_default(),
            protected: b.protected,
        })
        .collect();
    let mut text = if branches.is_empty() {
        format!("No branches found in {repo}.")
    } else {
        format!("{} in {repo}:", count(branches.len(), "branch", "branches"))
    };
    for b in &branches {
        text.push_str(&format!("\n{} {}", b.name, short_sha(&b.sha)));
        if b.protected {
            text.push_str(" (protected)");
        }
    }
    text.push_str(&pages_line(branches.len(), next_page));
    Reply::new(
        text,
        BranchList {
            branches,
            next_page,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_list_one_per_line() {
        let branches: Vec<Branch> =
            serde_json::from_str(include_str!("../../testdata/branches.json")).expect("fixture");
        let reply = format_branches("octocat/Hello-World", branches, 30, Some(2));
        assert_eq!(
            reply.text,
            "1 branch in octocat/Hello-World:\nmaster c5b97d5 (protected)\nMore results exist: call again with page=2."
        );
        assert_eq!(
            reply.data.branches[0].sha,
            "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc"
        );
        assert_eq!(reply.data.next_page, Some(2));
    }
}
