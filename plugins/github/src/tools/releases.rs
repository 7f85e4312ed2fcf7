//! Releases of a repository.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, tool};

use crate::api::{self, Api, default_per_page, first_page};
use crate::format::{RELEASE_BODY_LIMIT, count, date, pages_line, truncate};
use crate::model::{self, Release};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListReleases {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
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
pub struct ReleaseList {
    pub releases: Vec<ReleaseSummary>,
    /// The page to ask for next; absent on the last page.
    pub next_page: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleaseSummary {
    pub id: u64,
    pub tag_name: String,
    pub name: Option<String>,
    /// Unpublished draft (visible only with push access).
    pub draft: bool,
    pub prerelease: bool,
    /// Branch or commit the tag was created from.
    pub target_commitish: String,
    pub created_at: String,
    pub published_at: Option<String>,
    /// The author's login.
    pub author: Option<String>,
    /// Release notes, Markdown (cut at 1.5 KB in lists).
    pub body: String,
    /// `body` was cut.
    pub body_truncated: bool,
    pub assets: Vec<AssetSummary>,
    pub html_url: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AssetSummary {
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    pub download_count: u64,
    pub browser_download_url: String,
}

/// List a repository's releases, newest first.
///
/// Each with its tag, name, draft or prerelease flag, publication date,
/// author, assets and the start of the release notes (cut at 1.5 KB; the
/// release's page has the rest). Tags without a release do not appear.
/// Paginated: the answer says when more pages exist.
#[tool(read_only, idempotent, open_world, title = "List releases")]
pub fn list_releases(cx: &Context, args: ListReleases) -> Result<Reply<ReleaseList>> {
    let api = Api::from_context(cx)?;
    let (page, per_page) = api::paging(args.page, args.per_page);
    let path = api::repo_path(&args.owner, &args.repo, "/releases")?;
    let request = api
        .get(&path)
        .query("per_page", per_page)
        .query("page", page);
    let fetched = api::send::<Vec<Release>>(request)?;
    let repo = format!("{}/{}", args.owner.trim(), args.repo.trim());
    Ok(format_releases(
        &repo,
        fetched.data,
        per_page,
        fetched.next_page,
    ))
}

pub fn format_releases(
    repo: &str,
    releases: Vec<Release>,
    per_page: u32,
    next_page: Option<u32>,
) -> Reply<ReleaseList> {
    let releases: Vec<ReleaseSummary> = releases
        .into_iter()
        .take(per_page as usize)
        .map(|r| {
            let (body, body_truncated) =
                truncate(r.body.as_deref().unwrap_or(""), RELEASE_BODY_LIMIT);
            ReleaseSummary {
                id: r.id,
                author: model::login(&r.author),
                tag_name: r.tag_name,
                name: r.name.filter(|n| !n.is_empty()),
                draft: r.draft,
                prerelease: r.prerelease,
                target_commitish: r.target_commitish,
                created_at: r.created_at,
                published_at: r.published_at,
                body,
                body_truncated,
                assets: r
                    .assets
                    .into_iter()
                    .map(|a| AssetSummary {
                        name: a.name,
                        size: a.size,
                        download_count: a.download_count,
                        browser_download_url: a.browser_download_url,
                    })
                    .collect(),
                html_url: r.html_url,
            }
        })
        .collect();
    let mut text = if releases.is_empty() {
        format!("No releases found in {repo}.")
    } else {
        format!(
            "{} in {repo}:",
            count(releases.len(), "release", "releases")
        )
    };
    for r in &releases {
        text.push_str(&format!("\n\n{}", r.tag_name));
        if let Some(name) = r.name.as_ref().filter(|n| **n != r.tag_name) {
            text.push_str(&format!(" — {name}"));
        }
        let mut flags = Vec::new();
        if r.draft {
            flags.push("draft");
        }
        if r.prerelease {
            flags.push("prerelease");
        }
        if !flags.is_empty() {
            text.push_str(&format!(" [{}]", flags.join(", ")));
        }
        match &r.published_at {
            Some(published) => text.push_str(&format!(", published {}", date(published))),
            None => text.push_str(&format!(", created {}", date(&r.created_at))),
        }
        if let Some(author) = &r.author {
            text.push_str(&format!(" by {author}"));
        }
        if !r.assets.is_empty() {
            let names: Vec<&str> = r.assets.iter().map(|a| a.name.as_str()).collect();
            text.push_str(&format!(
                "\n{}: {}",
                count(names.len(), "asset", "assets"),
                names.join(", ")
            ));
        }
        text.push_str(&format!("\n{}", r.html_url));
        if !r.body.trim().is_empty() {
            text.push_str(&format!("\n{}", r.body.trim_end()));
            if r.body_truncated {
                text.push_str("\n… [release notes truncated]");
            }
        }
    }
    text.push_str(&pages_line(releases.len(), next_page));
    Reply::new(
        text,
        ReleaseList {
            releases,
            next_page,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_show_tags_dates_and_notes() {
        let releases: Vec<Release> =
            serde_json::from_str(include_str!("../../testdata/releases.json")).expect("fixture");
        let reply = format_releases("octocat/Hello-World", releases, 30, None);
        assert_eq!(
            reply.text,
            "1 release in octocat/Hello-World:\n\n\
             v1.0.0, published 2013-02-27 by octocat\n\
             1 asset: example.zip\n\
             https://github.com/octocat/Hello-World/releases/v1.0.0\n\
             Description of the release\n\
             This is the last page."
        );
        let release = &reply.data.releases[0];
        assert_eq!(release.assets[0].size, 1024);
        assert!(!release.body_truncated);
    }
}
