//! The parts of Jira's responses the tools read, and helpers that read the
//! loosely typed `fields` of an issue.
//!
//! Everything is defaulted and optional: Jira omits what the account may not
//! see, Data Center lacks Cloud-only fields, custom fields can hold anything,
//! and a mock server answers with whatever the description's examples say
//! (an `updated` of `1`, a plain-text `description`). A missing or oddly
//! typed detail must never fail a call.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A string, or a number or boolean written as one; `null` and anything else
/// become empty. Jira's ids are strings, but not everywhere.
fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    })
}

/// `lenient`, for optional strings (an empty one is absent).
fn lenient_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(lenient(deserializer)?).filter(|s| !s.is_empty()))
}

/// A non-negative integer, or nothing: a count or page index that is
/// missing, negative or not a number (a mock's generated `-9007199254740991`)
/// is unknown, not an error.
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}

/// Any integer, or nothing.
fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_i64())
}

/// A boolean, or nothing.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_bool())
}

/// `null` as the type's default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    #[serde(deserialize_with = "lenient_opt")]
    pub account_id: Option<String>,
    /// `atlassian`, `app` or `customer`.
    pub account_type: Option<String>,
    pub display_name: Option<String>,
    /// Shown only when the user's privacy settings allow it.
    pub email_address: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub active: Option<bool>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    /// Data Center's user name (Cloud sends an empty string).
    pub name: Option<String>,
}

impl User {
    /// The name to show, falling back to the id.
    pub fn label(&self) -> String {
        self.display_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| self.account_id.clone())
            .or_else(|| self.name.clone().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "unknown user".into())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProjectPage {
    #[serde(deserialize_with = "nullable")]
    pub values: Vec<Project>,
    #[serde(deserialize_with = "count")]
    pub start_at: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub max_results: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub total: Option<u64>,
    #[serde(deserialize_with = "flag")]
    pub is_last: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Project {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub key: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    /// `software`, `service_desk` or `business`.
    pub project_type_key: Option<String>,
    /// `classic` (company-managed) or `next-gen` (team-managed).
    pub style: Option<String>,
    pub project_category: Option<Named>,
    pub description: Option<String>,
    pub lead: Option<User>,
    pub insight: Option<ProjectInsight>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProjectInsight {
    #[serde(deserialize_with = "count")]
    pub total_issue_count: Option<u64>,
    pub last_issue_update_time: Option<String>,
}

/// Anything with an id and a name (a category, a priority, a resolution).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Named {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SearchResults {
    #[serde(deserialize_with = "nullable")]
    pub issues: Vec<Issue>,
    pub next_page_token: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub is_last: Option<bool>,
    /// Field id → display name, with `expand=names`.
    #[serde(deserialize_with = "nullable")]
    pub names: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Issue {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub key: String,
    #[serde(deserialize_with = "nullable")]
    pub fields: Map<String, Value>,
    /// Field id → display name, with `expand=names`.
    #[serde(deserialize_with = "nullable")]
    pub names: Map<String, Value>,
    pub rendered_fields: Option<Value>,
    pub changelog: Option<Value>,
    pub transitions: Option<Value>,
    pub operations: Option<Value>,
    pub editmeta: Option<Value>,
    pub schema: Option<Value>,
    pub versioned_representations: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreatedIssue {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Transitions {
    #[serde(deserialize_with = "nullable")]
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Transition {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    pub to: Option<Status>,
    #[serde(deserialize_with = "flag")]
    pub has_screen: Option<bool>,
    #[serde(deserialize_with = "flag")]
    pub is_available: Option<bool>,
    /// Field id → metadata, with `expand=transitions.fields`.
    #[serde(deserialize_with = "nullable")]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    pub status_category: Option<StatusCategory>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StatusCategory {
    /// `new`, `indeterminate` or `done`.
    pub key: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CommentPage {
    #[serde(deserialize_with = "nullable")]
    pub comments: Vec<Comment>,
    #[serde(deserialize_with = "count")]
    pub start_at: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub max_results: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub total: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Comment {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    pub author: Option<User>,
    pub update_author: Option<User>,
    /// ADF (v3), or plain text from older payloads.
    pub body: Value,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Visibility {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IssueTypePage {
    #[serde(deserialize_with = "nullable")]
    pub issue_types: Vec<IssueType>,
    #[serde(deserialize_with = "count")]
    pub start_at: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub max_results: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub total: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IssueType {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    pub description: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub subtask: Option<bool>,
    #[serde(deserialize_with = "integer")]
    pub hierarchy_level: Option<i64>,
    /// Field metadata, when a server includes it in the listing.
    #[serde(deserialize_with = "nullable")]
    pub fields: Map<String, Value>,
}

/// A page of create-field metadata for one issue type (`fields`, or
/// `results` in some versions).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FieldPage {
    #[serde(deserialize_with = "nullable")]
    pub fields: Vec<FieldMeta>,
    #[serde(deserialize_with = "nullable")]
    pub results: Vec<FieldMeta>,
    #[serde(deserialize_with = "count")]
    pub total: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FieldMeta {
    #[serde(deserialize_with = "lenient_opt")]
    pub field_id: Option<String>,
    #[serde(deserialize_with = "lenient_opt")]
    pub key: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    #[serde(deserialize_with = "flag")]
    pub required: Option<bool>,
    #[serde(deserialize_with = "flag")]
    pub has_default_value: Option<bool>,
    pub schema: Option<FieldSchema>,
    #[serde(deserialize_with = "nullable")]
    pub allowed_values: Vec<Value>,
    #[serde(deserialize_with = "nullable")]
    pub operations: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct FieldSchema {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub items: Option<String>,
    pub system: Option<String>,
    pub custom: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Worklog {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub issue_id: String,
    pub author: Option<User>,
    pub started: Option<String>,
    pub time_spent: Option<String>,
    #[serde(deserialize_with = "count")]
    pub time_spent_seconds: Option<u64>,
}

/// `fields[name]` if present and not null.
pub fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

/// A field holding an object with a `name` (status, priority, issue type,
/// resolution), or a plain string.
pub fn field_name(fields: &Map<String, Value>, name: &str) -> Option<String> {
    value_name(field(fields, name)?)
}

/// The human name of a value: its `displayName`, `name`, `value`, `key`,
/// `filename` or `id` for objects, the text for strings and numbers.
pub fn value_name(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(map) => ["displayName", "name", "value", "key", "filename", "id"]
            .iter()
            .find_map(|k| {
                map.get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })?
            .to_string(),
        _ => return None,
    };
    Some(text).filter(|t| !t.is_empty())
}

/// A user-typed field (assignee, reporter) as a `User`.
pub fn field_user(fields: &Map<String, Value>, name: &str) -> Option<User> {
    let value = field(fields, name)?;
    if let Some(name) = value.as_str() {
        return Some(User {
            display_name: Some(name.to_string()),
            ..User::default()
        });
    }
    serde_json::from_value(value.clone()).ok()
}

/// A field holding a list of strings or named objects (labels, components,
/// fix versions).
pub fn field_names(fields: &Map<String, Value>, name: &str) -> Vec<String> {
    match field(fields, name) {
        Some(Value::Array(items)) => items.iter().filter_map(value_name).collect(),
        Some(other) => value_name(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A rich-text field (description, environment, a comment body) as
/// Markdown: ADF is converted, plain text (API v2 payloads) kept.
pub fn rich_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_string(),
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("doc") => {
            toolhost_adf::adf_to_markdown(value).trim().to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_payloads_still_parse() {
        let issue: Issue = serde_json::from_value(json!({
            "id": 10002, "key": "ED-1", "fields": null, "names": null
        }))
        .expect("parses");
        assert_eq!((issue.id.as_str(), issue.key.as_str()), ("10002", "ED-1"));
        assert!(issue.fields.is_empty());
        let user: User = serde_json::from_value(json!({"accountId": null, "displayName": "Mia"}))
            .expect("parses");
        assert_eq!(user.account_id, None);
        assert_eq!(user.label(), "Mia");
        // A mock generates extreme integers where the description has no example.
        let worklog: Worklog = serde_json::from_value(json!({
            "id": "1", "timeSpentSeconds": -9007199254740991i64, "started": "2021-01-17T12:34:00.000+0000"
        }))
        .expect("parses");
        assert_eq!(worklog.time_spent_seconds, None);
        let page: CommentPage =
            serde_json::from_value(json!({"total": "many", "startAt": 3})).expect("parses");
        assert_eq!((page.total, page.start_at), (None, Some(3)));
    }

    #[test]
    fn fields_read_by_shape() {
        let fields = json!({
            "status": {"name": "Open", "id": "1"},
            "assignee": {"accountId": "5b10", "displayName": "Mia Krystof"},
            "labels": ["bug", "ui"],
            "components": [{"id": "1", "name": "Backend"}],
            "custom": {"value": "red"},
            "updated": 1,
            "empty": null,
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there", "marks": [{"type": "strong"}]}]}
            ]}
        });
        let fields = fields.as_object().expect("object");
        assert_eq!(field_name(fields, "status").as_deref(), Some("Open"));
        assert_eq!(field_name(fields, "custom").as_deref(), Some("red"));
        assert_eq!(field_name(fields, "updated").as_deref(), Some("1"));
        assert_eq!(field_name(fields, "empty"), None);
        assert_eq!(field_names(fields, "labels"), vec!["bug", "ui"]);
        assert_eq!(field_names(fields, "components"), vec!["Backend"]);
        let user = field_user(fields, "assignee").expect("assignee");
        assert_eq!(user.account_id.as_deref(), Some("5b10"));
        assert_eq!(rich_text(&fields["description"]), "Hi **there**");
        assert_eq!(rich_text(&json!("plain text\n")), "plain text");
    }
}
