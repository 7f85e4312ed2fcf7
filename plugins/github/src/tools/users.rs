//! Who the configured credential belongs to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Context, Reply, Result, tool};

use crate::api::{self, Api};
use crate::format::one_line;
use crate::model::User;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMe {}

/// The authenticated account.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Me {
    pub login: String,
    pub id: Option<u64>,
    /// Display name.
    pub name: Option<String>,
    /// `User` or `Organization` (or `Bot`).
    #[serde(rename = "type")]
    pub kind: String,
    pub html_url: String,
    /// Public email, when the user shows one.
    pub email: Option<String>,
    pub company: Option<String>,
    pub location: Option<String>,
    pub bio: Option<String>,
    pub public_repos: Option<u64>,
    pub total_private_repos: Option<u64>,
    pub followers: Option<u64>,
    pub following: Option<u64>,
    pub created_at: Option<String>,
    /// The GitHub plan's name, when visible.
    pub plan: Option<String>,
}

/// Get the GitHub account that the server's credential belongs to.
///
/// Returns login, name, profile and repository counts. Call it to learn
/// "me" before queries such as `author:LOGIN` or `assignee:LOGIN`, or to
/// check that GitHub access works at all. Takes no arguments.
#[tool(read_only, idempotent, open_world, title = "Get my GitHub account")]
pub fn get_me(cx: &Context, args: GetMe) -> Result<Reply<Me>> {
    let GetMe {} = args;
    let api = Api::from_context(cx)?;
    let user: User = api::send(api.get("/user"))?.data;
    Ok(format_me(user))
}

pub fn format_me(user: User) -> Reply<Me> {
    let me = Me {
        login: user.login,
        id: user.id,
        name: user.name.filter(|n| !n.is_empty()),
        kind: user.kind,
        html_url: user.html_url,
        email: user.email.filter(|e| !e.is_empty()),
        company: user.company.filter(|c| !c.is_empty()),
        location: user.location.filter(|l| !l.is_empty()),
        bio: user.bio.filter(|b| !b.is_empty()),
        public_repos: user.public_repos,
        total_private_repos: user.total_private_repos,
        followers: user.followers,
        following: user.following,
        created_at: user.created_at,
        plan: user.plan.and_then(|p| p.name),
    };
    let mut text = format!("Authenticated as {}", me.login);
    if let Some(name) = &me.name {
        text.push_str(&format!(" ({name})"));
    }
    if !me.kind.is_empty() {
        text.push_str(&format!(", a {} account", me.kind));
    }
    text.push_str(&format!(" — {}", me.html_url));
    let details: Vec<String> = [
        me.company.as_ref().map(|c| format!("Company: {c}")),
        me.location.as_ref().map(|l| format!("Location: {l}")),
        me.email.as_ref().map(|e| format!("Email: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !details.is_empty() {
        text.push_str(&format!("\n{}", details.join(" · ")));
    }
    let counts: Vec<String> = [
        me.public_repos.map(|n| format!("Public repos: {n}")),
        me.total_private_repos
            .map(|n| format!("Private repos: {n}")),
        me.followers.map(|n| format!("Followers: {n}")),
        me.following.map(|n| format!("Following: {n}")),
        me.plan.as_ref().map(|p| format!("Plan: {p}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !counts.is_empty() {
        text.push_str(&format!("\n{}", counts.join(" · ")));
    }
    if let Some(bio) = &me.bio {
        text.push_str(&format!("\nBio: {}", one_line(bio, 300)));
    }
    Reply::new(text, me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_reads_well() {
        let user: User =
            serde_json::from_str(include_str!("../../testdata/user.json")).expect("fixture");
        let reply = format_me(user);
        assert!(
            reply.text.starts_with(
                "Authenticated as octocat (monalisa octocat), a User account — https://github.com/octocat"
            ),
            "{}",
            reply.text
        );
        assert!(
            reply
                .text
                .contains("Company: GitHub · Location: San Francisco")
        );
        assert!(reply.text.contains("Public repos: 2 · Private repos: 100"));
        assert_eq!(reply.data.login, "octocat");
        assert_eq!(reply.data.plan.as_deref(), Some("Medium"));
        let value = serde_json::to_value(&reply.data).expect("serializes");
        assert_eq!(value["type"], "User");
    }
}
