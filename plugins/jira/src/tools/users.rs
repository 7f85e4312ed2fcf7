//! Accounts: the one the plugin acts as, and finding others by name or
//! email for assignees and mentions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::User;
use crate::tools::count;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMyself {}

/// A Jira account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Account {
    /// The id to use for assignees and in `[~accountid:ID]` mentions.
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    /// Shown only when the user's privacy settings allow it.
    pub email: Option<String>,
    /// `atlassian` (a person), `app` (a bot) or `customer` (Jira Service Management).
    pub account_type: Option<String>,
    pub active: Option<bool>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
}

impl Account {
    fn from_user(user: User) -> Account {
        Account {
            account_id: user.account_id,
            display_name: user.display_name.filter(|n| !n.is_empty()),
            email: user.email_address.filter(|e| !e.is_empty()),
            account_type: user.account_type.filter(|t| !t.is_empty()),
            active: user.active,
            time_zone: user.time_zone.filter(|t| !t.is_empty()),
            locale: user.locale.filter(|l| !l.is_empty()),
        }
    }

    /// `Mia Krystof — account id 5b10… — mia@example.com (inactive)`.
    fn line(&self) -> String {
        let mut line = self
            .display_name
            .clone()
            .unwrap_or_else(|| "(no name)".to_string());
        if let Some(id) = &self.account_id {
            line.push_str(&format!(" — account id {id}"));
        }
        if let Some(email) = &self.email {
            line.push_str(&format!(" — {email}"));
        }
        let mut notes = Vec::new();
        if let Some(kind) = self.account_type.as_deref().filter(|k| *k != "atlassian") {
            notes.push(format!("{kind} account"));
        }
        if self.active == Some(false) {
            notes.push("inactive".to_string());
        }
        if !notes.is_empty() {
            line.push_str(&format!(" ({})", notes.join(", ")));
        }
        line
    }
}

/// Get the Jira account this server acts as: account id, display name,
/// email, time zone.
///
/// Call it to learn "me" (for JQL, `assignee = currentUser()` works without
/// it), to assign issues to yourself with the account id, or to check that
/// Jira access works at all. Takes no arguments.
#[tool(read_only, idempotent, open_world, title = "Get my Jira account")]
pub fn jira_get_myself(cx: &Context, args: GetMyself) -> Result<Reply<Account>> {
    let GetMyself {} = args;
    let api = Api::from_context(cx)?;
    let user: User = api::send(api.get("/myself"))?;
    Ok(format_myself(api.site(), user))
}

pub fn format_myself(site: &str, user: User) -> Reply<Account> {
    let account = Account::from_user(user);
    let mut text = format!("Acting as {} on {site}", account.line());
    let details: Vec<String> = [
        account
            .time_zone
            .as_ref()
            .map(|t| format!("Time zone: {t}")),
        account.locale.as_ref().map(|l| format!("Locale: {l}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !details.is_empty() {
        text.push_str(&format!("\n{}", details.join(" · ")));
    }
    if let Some(id) = &account.account_id {
        text.push_str(&format!("\nMention as [~accountid:{id}]."));
    }
    Reply::new(text, account)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupAccountId {
    /// A name or email address, whole or the start of it, e.g. `mia` or `mia@example.com`.
    pub query: String,
    /// How many accounts to return at most, 1–50.
    #[serde(default = "default_max_users")]
    #[schemars(range(min = 1, max = 50))]
    pub max_results: u32,
}

fn default_max_users() -> u32 {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountList {
    pub accounts: Vec<Account>,
}

/// Find Jira users by display name or email and get their account ids.
///
/// Jira Cloud identifies people only by account id: use it for
/// `assignee_account_id` in jira_create_issue and jira_edit_issue, in JQL
/// (`assignee = "5b10ac8d82e05b22cc7d4ef5"`), and to mention someone in a
/// description or comment as `[~accountid:5b10ac8d82e05b22cc7d4ef5]`.
/// Matches the start of names and email addresses; emails are only matched
/// and shown when the user's privacy settings allow it.
#[tool(read_only, idempotent, open_world, title = "Look up Jira account ids")]
pub fn jira_lookup_account_id(cx: &Context, args: LookupAccountId) -> Result<Reply<AccountList>> {
    let api = Api::from_context(cx)?;
    let request = lookup_request(&api, &args)?;
    let users: Vec<User> = api::send(request)?;
    Ok(format_accounts(args.query.trim(), users))
}

pub fn lookup_request(api: &Api, args: &LookupAccountId) -> Result<Request> {
    let query = args.query.trim();
    if query.is_empty() {
        return Err(ToolError::InvalidArguments(
            "query is empty: give part of a name or an email address".into(),
        ));
    }
    Ok(api
        .get("/user/search")
        .query("query", query)
        .query("maxResults", args.max_results.clamp(1, 50)))
}

pub fn format_accounts(query: &str, users: Vec<User>) -> Reply<AccountList> {
    let accounts: Vec<Account> = users.into_iter().map(Account::from_user).collect();
    let mut text = if accounts.is_empty() {
        format!("No users match {query:?}. Try part of the display name or the full email address.")
    } else {
        format!(
            "{} matching {query:?}:",
            count(accounts.len(), "user", "users")
        )
    };
    for account in &accounts {
        text.push('\n');
        text.push_str(&account.line());
    }
    if let Some(id) = accounts.iter().find_map(|a| a.account_id.as_deref()) {
        text.push_str(&format!(
            "\nAssign with the account id; mention in Markdown as [~accountid:{id}]."
        ));
    }
    Reply::new(text, AccountList { accounts })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MYSELF: &str = r#"{"accountId":"5b10a2844c20165700ede21g","accountType":"atlassian","active":true,"applicationRoles":{"items":[],"size":1},"avatarUrls":{"16x16":"https://avatar-management--avatars.server-location.prod.public.atl-paas.net/initials/MK-5.png?size=16&s=16"},"displayName":"Mia Krystof","emailAddress":"mia@example.com","groups":{"items":[],"size":3},"key":"","name":"","self":"https://your-domain.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g","timeZone":"Australia/Sydney"}"#;

    const USERS: &str = r#"[{"accountId":"5b10a2844c20165700ede21g","accountType":"atlassian","active":false,"displayName":"Mia Krystof","key":"","name":"","self":"https://your-domain.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g"},{"accountId":"5b10ac8d82e05b22cc7d4ef5","accountType":"atlassian","active":true,"displayName":"Emma Richards","key":"","name":"","self":"https://your-domain.atlassian.net/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5"}]"#;

    #[test]
    fn myself_reads_well() {
        let user: User = serde_json::from_str(MYSELF).expect("fixture");
        let reply = format_myself("https://acme.atlassian.net", user);
        assert_eq!(
            reply.text,
            "Acting as Mia Krystof — account id 5b10a2844c20165700ede21g — mia@example.com on \
             https://acme.atlassian.net\nTime zone: Australia/Sydney\nMention as \
             [~accountid:5b10a2844c20165700ede21g]."
        );
        assert_eq!(reply.data.email.as_deref(), Some("mia@example.com"));
        assert_eq!(reply.data.active, Some(true));
        crate::tools::assert_fits::<jira_get_myself>(&reply.data);
    }

    #[test]
    fn lookups_list_account_ids() {
        let users: Vec<User> = serde_json::from_str(USERS).expect("fixture");
        let reply = format_accounts("m", users);
        assert_eq!(
            reply.text,
            "2 users matching \"m\":\nMia Krystof — account id 5b10a2844c20165700ede21g \
             (inactive)\nEmma Richards — account id 5b10ac8d82e05b22cc7d4ef5\nAssign with the \
             account id; mention in Markdown as [~accountid:5b10a2844c20165700ede21g]."
        );
        assert_eq!(reply.data.accounts.len(), 2);
        crate::tools::assert_fits::<jira_lookup_account_id>(&reply.data);
        assert!(
            format_accounts("zz", vec![])
                .text
                .starts_with("No users match")
        );
    }

    #[test]
    fn lookups_query_by_name() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let args = LookupAccountId {
            query: " mia@example.com ".into(),
            max_results: 500,
        };
        assert_eq!(
            lookup_request(&api, &args).expect("request").url(),
            "https://acme.atlassian.net/rest/api/3/user/search?query=mia%40example.com&maxResults=50"
        );
        let args = LookupAccountId {
            query: " ".into(),
            max_results: 5,
        };
        assert!(lookup_request(&api, &args).is_err());
    }
}
