//! Issue comments: read them as Markdown, add one from Markdown.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use toolhost_sdk::http::{self, Request};
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::{Comment, CommentPage};
use crate::tools::{COMMENT_LIMIT, Person, to_adf, truncate, when};

/// Who may see a comment.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum VisibilityKind {
    Role,
    Group,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// The comment in Markdown (headings, lists, code blocks, tables, links); mention people as `[~accountid:ID]`.
    pub body: String,
    /// Restrict the comment to a project role or a group; omit for everyone who can see the issue.
    #[serde(default)]
    pub visibility: Option<VisibilityKind>,
    /// The role's or group's name, e.g. `Developers` or `jira-software-users`; required with `visibility`.
    #[serde(default)]
    pub visibility_name: Option<String>,
}

/// A comment, as Markdown.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommentItem {
    pub id: String,
    pub author: Option<Person>,
    pub created: Option<String>,
    /// Set when the comment was edited after it was made.
    pub updated: Option<String>,
    /// The comment as Markdown.
    pub body: String,
    /// `body` was cut to bound the answer.
    pub body_truncated: bool,
    /// `role NAME` or `group NAME` when the comment is restricted.
    pub visibility: Option<String>,
    /// The comment's address in Jira.
    pub url: String,
}

/// Add a comment to a Jira issue, written in Markdown.
///
/// Mention people as `[~accountid:ID]` (jira_lookup_account_id finds the
/// id); they are notified. Optionally restrict it to a project role or group
/// with `visibility` and `visibility_name`.
#[tool(open_world, title = "Add a Jira comment")]
pub fn jira_add_comment(cx: &Context, args: AddComment) -> Result<Reply<CommentItem>> {
    let api = Api::from_context(cx)?;
    let key = api::issue_segment(&args.issue_key)?;
    let body = comment_body(&args)?;
    let comment: Comment = api::send(api.post(&format!("/issue/{key}/comment"), &body)?)?;
    let key = args.issue_key.trim();
    let item = comment_item(&api, key, comment, usize::MAX);
    Ok(Reply::new(
        format!("Added comment {} to {key}: {}", item.id, item.url),
        item,
    ))
}

/// The body of `POST /issue/{key}/comment` (a `Comment` with an ADF body).
pub fn comment_body(args: &AddComment) -> Result<Value> {
    if args.body.trim().is_empty() {
        return Err(ToolError::InvalidArguments(
            "body is empty: write the comment".into(),
        ));
    }
    let mut body = Map::new();
    body.insert("body".into(), to_adf(&args.body));
    match (args.visibility, api::non_empty(&args.visibility_name)) {
        (Some(kind), Some(name)) => {
            body.insert("visibility".into(), json!({"type": kind, "value": name}));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(ToolError::InvalidArguments(
                "visibility needs visibility_name: the role's or group's name".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ToolError::InvalidArguments(
                "visibility_name needs visibility: `role` or `group`".into(),
            ));
        }
    }
    Ok(Value::Object(body))
}

/// Newest or oldest first.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum Order {
    #[default]
    Oldest,
    Newest,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetComments {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// `oldest` first (the conversation in order) or `newest` first.
    #[serde(default)]
    pub order: Order,
    /// Index of the first comment to return, from a previous answer's `next_start_at`; 0 for the first page.
    #[serde(default)]
    pub start_at: u64,
    /// Comments per page, 1–50.
    #[serde(default = "default_max_comments")]
    #[schemars(range(min = 1, max = 50))]
    pub max_results: u32,
}

fn default_max_comments() -> u32 {
    20
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommentList {
    pub comments: Vec<CommentItem>,
    /// Comments on the issue in all pages.
    pub total: Option<u64>,
    /// `start_at` for the next page; absent on the last page.
    pub next_start_at: Option<u64>,
}

/// Read the comments of a Jira issue as Markdown, with authors and dates,
/// oldest first by default.
///
/// Mentions read `[~accountid:ID]`. Paginated: when more comments exist the
/// answer gives the `start_at` to call again with.
#[tool(read_only, idempotent, open_world, title = "Get Jira comments")]
pub fn jira_get_comments(cx: &Context, args: GetComments) -> Result<Reply<CommentList>> {
    let api = Api::from_context(cx)?;
    let page: CommentPage = api::send(comments_request(&api, &args)?)?;
    Ok(format_comments(
        &api,
        args.issue_key.trim(),
        args.start_at,
        page,
    ))
}

pub fn comments_request(api: &Api, args: &GetComments) -> Result<Request> {
    let key = api::issue_segment(&args.issue_key)?;
    Ok(api
        .get(&format!("/issue/{key}/comment"))
        .query("startAt", args.start_at)
        .query("maxResults", args.max_results.clamp(1, 50))
        .query(
            "orderBy",
            match args.order {
                Order::Oldest => "created",
                Order::Newest => "-created",
            },
        ))
}

pub fn format_comments(
    api: &Api,
    key: &str,
    start_at: u64,
    page: CommentPage,
) -> Reply<CommentList> {
    let start = page.start_at.unwrap_or(start_at);
    let comments: Vec<CommentItem> = page
        .comments
        .into_iter()
        .map(|c| comment_item(api, key, c, COMMENT_LIMIT))
        .collect();
    let shown_end = start + comments.len() as u64;
    let next_start_at = page
        .total
        .filter(|total| shown_end < *total && !comments.is_empty())
        .map(|_| shown_end);
    let mut text = match (comments.is_empty(), page.total) {
        (true, Some(0)) | (true, None) if start == 0 => format!("{key} has no comments."),
        (true, total) => format!(
            "No comments from {start} on{}.",
            total
                .map(|t| format!(" ({key} has {t})"))
                .unwrap_or_default()
        ),
        (false, total) => format!(
            "Comments {}–{shown_end}{} on {key}:",
            start + 1,
            total.map(|t| format!(" of {t}")).unwrap_or_default()
        ),
    };
    for c in &comments {
        let author = c
            .author
            .as_ref()
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| "unknown".into());
        text.push_str(&format!("\n\n--- {author}"));
        if let Some(created) = &c.created {
            text.push_str(&format!(", {}", when(created)));
        }
        text.push_str(&format!(" (id {}", c.id));
        if let Some(updated) = &c.updated {
            text.push_str(&format!(", edited {}", when(updated)));
        }
        if let Some(visibility) = &c.visibility {
            text.push_str(&format!(", visible to {visibility}"));
        }
        text.push_str(")\n");
        text.push_str(&c.body);
        if c.body_truncated {
            text.push_str("\n… [comment truncated]");
        }
    }
    if let Some(next) = next_start_at {
        text.push_str(&format!(
            "\n\nMore comments exist: call again with start_at={next}."
        ));
    }
    Reply::new(
        text,
        CommentList {
            comments,
            total: page.total,
            next_start_at,
        },
    )
}

fn comment_item(api: &Api, key: &str, comment: Comment, limit: usize) -> CommentItem {
    let markdown = crate::model::rich_text(&comment.body);
    let (body, body_truncated) = truncate(&markdown, limit);
    // Jira stamps `updated` on every comment; it only means an edit when it
    // differs from `created`.
    let updated = comment
        .updated
        .filter(|u| Some(u) != comment.created.as_ref());
    CommentItem {
        url: format!(
            "{}?focusedCommentId={}",
            api.browse_url(key),
            http::encode(&comment.id)
        ),
        id: comment.id,
        author: comment.author.as_ref().map(Person::from_user),
        created: comment.created,
        updated,
        body,
        body_truncated,
        visibility: comment.visibility.and_then(|v| match (v.kind, v.value) {
            (Some(kind), Some(value)) => Some(format!("{kind} {value}")),
            (None, Some(value)) => Some(value),
            _ => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 example of GET /rest/api/3/issue/{issueIdOrKey}/comment.
    const PAGE: &str = r#"{"comments":[{"author":{"accountId":"5b10a2844c20165700ede21g","active":false,"displayName":"Mia Krystof","self":"https://your-domain.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g"},"body":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Lorem ipsum dolor sit amet, consectetur adipiscing elit. Pellentesque eget venenatis elit. Duis eu justo eget augue iaculis fermentum. Sed semper quam laoreet nisi egestas at posuere augue semper."}]}]},"created":"2021-01-17T12:34:00.000+0000","id":"10000","self":"https://your-domain.atlassian.net/rest/api/3/issue/10010/comment/10000","updateAuthor":{"accountId":"5b10a2844c20165700ede21g","active":false,"displayName":"Mia Krystof"},"updated":"2021-01-18T23:45:00.000+0000","visibility":{"identifier":"Administrators","type":"role","value":"Administrators"}}],"maxResults":1,"startAt":0,"total":1}"#;

    fn api() -> Api {
        Api::new("https://acme.atlassian.net").expect("api")
    }

    #[test]
    fn comments_read_as_markdown() {
        let page: CommentPage = serde_json::from_str(PAGE).expect("fixture");
        let reply = format_comments(&api(), "ED-1", 0, page);
        assert_eq!(
            reply.text,
            "Comments 1–1 of 1 on ED-1:\n\n--- Mia Krystof, 2021-01-17 12:34 (id 10000, edited \
             2021-01-18 23:45, visible to role Administrators)\nLorem ipsum dolor sit amet, \
             consectetur adipiscing elit. Pellentesque eget venenatis elit. Duis eu justo eget \
             augue iaculis fermentum. Sed semper quam laoreet nisi egestas at posuere augue semper."
        );
        let c = &reply.data.comments[0];
        assert_eq!(
            c.url,
            "https://acme.atlassian.net/browse/ED-1?focusedCommentId=10000"
        );
        assert_eq!(
            c.author.as_ref().map(|a| a.account_id.as_deref()),
            Some(Some("5b10a2844c20165700ede21g"))
        );
        assert_eq!(reply.data.next_start_at, None);
        crate::tools::assert_fits::<jira_get_comments>(&reply.data);
    }

    #[test]
    fn pages_of_comments_say_where_to_go_on() {
        let page: CommentPage = serde_json::from_str(
            r#"{"startAt":0,"maxResults":1,"total":3,"comments":[{"id":"1","body":"plain","created":"2024-01-01T00:00:00.000+0000","updated":"2024-01-01T00:00:00.000+0000"}]}"#,
        )
        .expect("fixture");
        let reply = format_comments(&api(), "ED-1", 0, page);
        assert_eq!(
            reply.text,
            "Comments 1–1 of 3 on ED-1:\n\n--- unknown, 2024-01-01 00:00 (id 1)\nplain\n\nMore \
             comments exist: call again with start_at=1."
        );
        assert_eq!(reply.data.next_start_at, Some(1));
        let empty: CommentPage =
            serde_json::from_str(r#"{"startAt":0,"total":0,"comments":[]}"#).expect("empty");
        assert_eq!(
            format_comments(&api(), "ED-1", 0, empty).text,
            "ED-1 has no comments."
        );
    }

    #[test]
    fn the_request_orders_and_pages() {
        let args = GetComments {
            issue_key: "ED-1".into(),
            order: Order::Newest,
            start_at: 20,
            max_results: 0,
        };
        assert_eq!(
            comments_request(&api(), &args).expect("request").url(),
            "https://acme.atlassian.net/rest/api/3/issue/ED-1/comment?startAt=20&maxResults=1&orderBy=-created"
        );
    }

    #[test]
    fn new_comments_are_adf() {
        let args = AddComment {
            issue_key: "ED-1".into(),
            body: "Ping [~accountid:5b10ac8d82e05b22cc7d4ef5]".into(),
            visibility: Some(VisibilityKind::Role),
            visibility_name: Some("Administrators".into()),
        };
        assert_eq!(
            comment_body(&args).expect("body"),
            json!({
                "body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "Ping "},
                    {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5"}}
                ]}]},
                "visibility": {"type": "role", "value": "Administrators"}
            })
        );
        let plain = AddComment {
            visibility: None,
            visibility_name: None,
            body: "Looks good".into(),
            ..args
        };
        assert_eq!(
            comment_body(&plain).expect("body"),
            json!({"body": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Looks good"}]}
            ]}})
        );
        let half = AddComment {
            visibility: Some(VisibilityKind::Group),
            ..plain
        };
        assert!(comment_body(&half).is_err());
        let empty = AddComment {
            visibility: None,
            body: " \n".into(),
            ..half
        };
        assert!(comment_body(&empty).is_err());
    }

    #[test]
    fn the_new_comment_answer_has_its_url() {
        let api = api();
        let comment: Comment = serde_json::from_str(r#"{"id":"10000","body":{"type":"doc","version":1,"content":[]},"created":"2021-01-17T12:34:00.000+0000"}"#).expect("fixture");
        let item = comment_item(&api, "ED-1", comment, usize::MAX);
        assert_eq!(
            item.url,
            "https://acme.atlassian.net/browse/ED-1?focusedCommentId=10000"
        );
        crate::tools::assert_fits::<jira_add_comment>(&item);
    }
}
