//! One issue: read it, create it, edit it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::{self, CreatedIssue, Issue};
use crate::tools::search::clean_list;
use crate::tools::{
    DESCRIPTION_LIMIT, LINE_LIMIT, Person, bounded, field_text, one_line, raw_bounded, timestamp,
    to_adf, truncate, when,
};

/// The JSON of one extra field, of one expanded section, and of each group
/// together, in `jira_get_issue`'s structured content; and the text of the
/// extra fields. `fields: ["*all"]` or a long changelog must still fit.
const RAW_FIELD_LIMIT: usize = 20_000;
const RAW_SECTION_LIMIT: usize = 100_000;
const RAW_BUDGET: usize = 200_000;
const EXTRAS_TEXT_LIMIT: usize = 40_000;

/// What `jira_get_issue` always asks for; `fields` adds to it.
pub const ISSUE_FIELDS: [&str; 19] = [
    "summary",
    "status",
    "issuetype",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "components",
    "fixVersions",
    "description",
    "comment",
    "created",
    "updated",
    "resolution",
    "duedate",
    "project",
    "parent",
    "subtasks",
    "issuelinks",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIssue {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// More fields to include by id, e.g. `["timetracking", "customfield_10016"]`; the usual fields (summary, status, description, people, labels, dates, links) always come.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Extra sections: `renderedFields` (HTML), `names` (field display names), `transitions`, `changelog`, `editmeta`, `schema`, `operations`.
    #[serde(default)]
    pub expand: Option<Vec<String>>,
}

/// One issue in full.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueDetail {
    pub key: String,
    pub id: String,
    /// The issue's page in Jira.
    pub url: String,
    pub summary: Option<String>,
    pub status: Option<String>,
    /// `new` (to do), `indeterminate` (in progress) or `done`.
    pub status_category: Option<String>,
    pub issue_type: Option<String>,
    /// The project's key.
    pub project: Option<String>,
    pub priority: Option<String>,
    /// Absent when unresolved.
    pub resolution: Option<String>,
    pub assignee: Option<Person>,
    pub reporter: Option<Person>,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub fix_versions: Vec<String>,
    /// The parent issue's key (of a subtask, or an epic's child).
    pub parent: Option<String>,
    /// Keys of the subtasks.
    pub subtasks: Vec<String>,
    /// Links to other issues, e.g. `blocks PROJ-7`.
    pub links: Vec<String>,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub due_date: Option<String>,
    /// The description as Markdown.
    pub description: String,
    /// `description` was cut to bound the answer.
    pub description_truncated: bool,
    /// How many comments the issue has.
    pub comment_count: Option<u64>,
    /// The other requested fields by id, as Jira returns them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// The requested `expand` sections, as Jira returns them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub expanded: Map<String, Value>,
}

/// Get one Jira issue: summary, status, type, priority, assignee, reporter,
/// labels, components, dates, parent, subtasks, links, the number of
/// comments and the description as Markdown.
///
/// Mentions in the description read `[~accountid:ID]`. Ask for more fields
/// by id with `fields` (custom fields are `customfield_NNNNN`; `expand:
/// ["names"]` tells which is which) and for extra sections with `expand`.
/// Read the comments with jira_get_comments.
#[tool(read_only, idempotent, open_world, title = "Get a Jira issue")]
pub fn jira_get_issue(cx: &Context, args: GetIssue) -> Result<Reply<IssueDetail>> {
    let api = Api::from_context(cx)?;
    let issue: Issue = api::send(get_request(&api, &args)?)?;
    Ok(format_issue(&api, &issue))
}

pub fn get_request(api: &Api, args: &GetIssue) -> Result<Request> {
    let key = api::issue_segment(&args.issue_key)?;
    let mut fields: Vec<String> = ISSUE_FIELDS.iter().map(|f| f.to_string()).collect();
    for extra in clean_list(args.fields.as_deref().unwrap_or_default()) {
        if !fields.contains(&extra) {
            fields.push(extra);
        }
    }
    let expand = clean_list(args.expand.as_deref().unwrap_or_default());
    Ok(api
        .get(&format!("/issue/{key}"))
        .query("fields", fields.join(","))
        .query_opt("expand", (!expand.is_empty()).then(|| expand.join(","))))
}

pub fn format_issue(api: &Api, issue: &Issue) -> Reply<IssueDetail> {
    let detail = issue_detail(api, issue);
    let mut text = format!(
        "{}: {}\n{}",
        detail.key,
        detail.summary.as_deref().unwrap_or("(no summary)"),
        detail.url
    );
    let status = detail
        .status
        .as_ref()
        .map(|s| match &detail.status_category {
            Some(category) => format!("{s} ({category})"),
            None => s.clone(),
        });
    let lines: [Vec<Option<String>>; 6] = [
        vec![
            detail.issue_type.as_ref().map(|t| format!("Type: {t}")),
            status.map(|s| format!("Status: {s}")),
            detail.priority.as_ref().map(|p| format!("Priority: {p}")),
            Some(format!(
                "Resolution: {}",
                detail.resolution.as_deref().unwrap_or("Unresolved")
            )),
        ],
        vec![
            detail.project.as_ref().map(|p| format!("Project: {p}")),
            detail.parent.as_ref().map(|p| format!("Parent: {p}")),
        ],
        vec![
            Some(format!(
                "Assignee: {}",
                person_text(detail.assignee.as_ref())
            )),
            detail
                .reporter
                .as_ref()
                .map(|r| format!("Reporter: {}", person_text(Some(r)))),
        ],
        vec![
            list_text("Labels", &detail.labels),
            list_text("Components", &detail.components),
            list_text("Fix versions", &detail.fix_versions),
        ],
        vec![
            detail
                .created
                .as_ref()
                .map(|c| format!("Created: {}", when(c))),
            detail
                .updated
                .as_ref()
                .map(|u| format!("Updated: {}", when(u))),
            detail.due_date.as_ref().map(|d| format!("Due: {d}")),
        ],
        vec![
            list_text("Subtasks", &detail.subtasks),
            list_text("Links", &detail.links),
        ],
    ];
    for line in lines {
        let parts: Vec<String> = line.into_iter().flatten().collect();
        if !parts.is_empty() {
            text.push_str(&format!("\n{}", parts.join(" · ")));
        }
    }
    if let Some(n) = detail.comment_count {
        text.push_str(&format!("\nComments: {n}"));
        if n > 0 {
            text.push_str(" (read them with jira_get_comments)");
        }
    }
    let mut extras_text = String::new();
    for (id, value) in &detail.fields {
        let label = match issue.names.get(id).and_then(Value::as_str) {
            Some(name) => format!("{name} ({id})"),
            None => id.clone(),
        };
        if value.get("type").and_then(Value::as_str) == Some("doc") {
            let markdown = model::rich_text(value);
            extras_text.push_str(&format!(
                "\n{label}:\n{}",
                bounded(&markdown, DESCRIPTION_LIMIT / 4)
            ));
        } else {
            extras_text.push_str(&format!("\n{label}: {}", field_text(value)));
        }
    }
    text.push_str(&bounded(&extras_text, EXTRAS_TEXT_LIMIT));
    if let Some(transitions) = issue.transitions.as_ref().and_then(Value::as_array) {
        let names: Vec<String> = transitions
            .iter()
            .filter_map(|t| {
                let name = t.get("name").and_then(Value::as_str)?;
                let id = model::value_name(t.get("id")?)?;
                Some(format!("{name} (id {id})"))
            })
            .collect();
        text.push_str(&format!("\nTransitions: {}", names.join(", ")));
    }
    let other: Vec<&str> = detail
        .expanded
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "transitions")
        .collect();
    if !other.is_empty() {
        text.push_str(&format!(
            "\nExpanded in the structured content: {}.",
            other.join(", ")
        ));
    }
    if detail.description.is_empty() {
        text.push_str("\n\nNo description.");
    } else {
        text.push_str(&format!("\n\nDescription:\n{}", detail.description));
        if detail.description_truncated {
            text.push_str("\n… [description truncated]");
        }
    }
    Reply::new(text, detail)
}

fn issue_detail(api: &Api, issue: &Issue) -> IssueDetail {
    let fields = &issue.fields;
    let status = model::field(fields, "status");
    let description = model::field(fields, "description")
        .map(model::rich_text)
        .unwrap_or_default();
    let (description, description_truncated) = truncate(&description, DESCRIPTION_LIMIT);
    let extra = raw_bounded(
        fields
            .iter()
            .map(|(name, value)| (name.as_str(), value))
            .filter(|(name, _)| !ISSUE_FIELDS.contains(name)),
        RAW_FIELD_LIMIT,
        RAW_BUDGET,
    );
    let names = (!issue.names.is_empty()).then(|| Value::Object(issue.names.clone()));
    let sections = [
        ("renderedFields", &issue.rendered_fields),
        ("names", &names),
        ("schema", &issue.schema),
        ("transitions", &issue.transitions),
        ("changelog", &issue.changelog),
        ("editmeta", &issue.editmeta),
        ("operations", &issue.operations),
        ("versionedRepresentations", &issue.versioned_representations),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value.as_ref()?)));
    let expanded = raw_bounded(sections, RAW_SECTION_LIMIT, RAW_BUDGET);
    IssueDetail {
        key: issue.key.clone(),
        id: issue.id.clone(),
        url: api.browse_url(&issue.key),
        summary: model::field_name(fields, "summary"),
        status: status.and_then(model::value_name),
        status_category: status
            .and_then(|s| s.pointer("/statusCategory/key"))
            .and_then(Value::as_str)
            .map(str::to_string),
        issue_type: model::field_name(fields, "issuetype"),
        project: model::field(fields, "project")
            .and_then(|p| p.get("key"))
            .and_then(Value::as_str)
            .map(str::to_string),
        priority: model::field_name(fields, "priority"),
        resolution: model::field_name(fields, "resolution"),
        assignee: model::field_user(fields, "assignee").map(|u| Person::from_user(&u)),
        reporter: model::field_user(fields, "reporter").map(|u| Person::from_user(&u)),
        labels: model::field_names(fields, "labels"),
        components: model::field_names(fields, "components"),
        fix_versions: model::field_names(fields, "fixVersions"),
        parent: model::field(fields, "parent")
            .and_then(|p| p.get("key"))
            .and_then(Value::as_str)
            .map(str::to_string),
        subtasks: subtasks(fields),
        links: links(fields),
        created: timestamp(model::field(fields, "created")),
        updated: timestamp(model::field(fields, "updated")),
        due_date: timestamp(model::field(fields, "duedate")),
        description,
        description_truncated,
        comment_count: comment_count(model::field(fields, "comment")),
        fields: extra,
        expanded,
    }
}

/// `PROJ-2 (Done) Summary` for each subtask.
fn subtasks(fields: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(items)) = model::field(fields, "subtasks") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let key = item.get("key").and_then(Value::as_str)?;
            let mut text = key.to_string();
            if let Some(status) = item.pointer("/fields/status/name").and_then(Value::as_str) {
                text.push_str(&format!(" ({status})"));
            }
            if let Some(summary) = item.pointer("/fields/summary").and_then(Value::as_str) {
                text.push_str(&format!(" {}", one_line(summary, LINE_LIMIT)));
            }
            Some(text)
        })
        .collect()
}

/// `blocks PROJ-7`: an outward link reads with the type's outward verb, an
/// inward one with its inward verb.
fn links(fields: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(items)) = model::field(fields, "issuelinks") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|link| {
            let (other, verb) = match (link.get("outwardIssue"), link.get("inwardIssue")) {
                (Some(other), _) => (other, "/type/outward"),
                (None, Some(other)) => (other, "/type/inward"),
                (None, None) => return None,
            };
            let key = other.get("key").and_then(Value::as_str)?;
            let verb = link
                .pointer(verb)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .unwrap_or("relates to");
            let mut text = format!("{verb} {key}");
            if let Some(status) = other.pointer("/fields/status/name").and_then(Value::as_str) {
                text.push_str(&format!(" ({status})"));
            }
            Some(text)
        })
        .collect()
}

/// The `comment` field is a page (`total`) from Jira, a bare list in some
/// payloads.
fn comment_count(comment: Option<&Value>) -> Option<u64> {
    match comment? {
        Value::Array(items) => Some(items.len() as u64),
        Value::Object(page) => page.get("total").and_then(Value::as_u64).or_else(|| {
            page.get("comments")
                .and_then(Value::as_array)
                .map(|c| c.len() as u64)
        }),
        _ => None,
    }
}

fn person_text(person: Option<&Person>) -> String {
    match person {
        Some(Person {
            display_name,
            account_id: Some(id),
        }) if display_name != id => format!("{display_name} ({id})"),
        Some(person) => person.display_name.clone(),
        None => "Unassigned".to_string(),
    }
}

fn list_text(label: &str, items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| format!("{label}: {}", items.join(", ")))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssue {
    /// The project's key (e.g. `PROJ`) or numeric id.
    pub project_key: String,
    /// The issue type's name (e.g. `Task`, `Bug`, `Story`, `Epic`, `Subtask`) or numeric id; jira_get_issue_types lists a project's types.
    pub issue_type: String,
    /// A one-line title.
    pub summary: String,
    /// The description in Markdown; mention people as `[~accountid:ID]`.
    #[serde(default)]
    pub description: Option<String>,
    /// Who to assign it to: an account id from jira_lookup_account_id or jira_get_myself.
    #[serde(default)]
    pub assignee_account_id: Option<String>,
    /// Labels (single words, no spaces), e.g. `["backend", "customer-reported"]`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The priority's name (e.g. `High`) or numeric id.
    #[serde(default)]
    pub priority: Option<String>,
    /// The parent issue's key: required for a subtask, or an epic for a child issue.
    #[serde(default)]
    pub parent: Option<String>,
    /// Due date as `YYYY-MM-DD`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Other fields by id, in Jira's REST format, e.g. `{"customfield_10016": 5, "components": [{"name": "API"}]}`; jira_get_issue_types with `issue_type` lists the fields and which are required.
    #[serde(default)]
    pub additional_fields: Option<Map<String, Value>>,
}

/// A new issue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    /// The new issue's key, e.g. `PROJ-124`.
    pub key: String,
    pub id: String,
    /// The issue's page in Jira.
    pub url: String,
}

/// Create a Jira issue (or a subtask, with `parent`) and get its key and
/// URL.
///
/// The description is Markdown (headings, lists, code blocks, tables,
/// links); mention people as `[~accountid:ID]` (jira_lookup_account_id finds
/// the id). If Jira answers that a field is required, jira_get_issue_types
/// with the `issue_type` lists the project's required fields; pass them in
/// `additional_fields`.
#[tool(open_world, title = "Create a Jira issue")]
pub fn jira_create_issue(cx: &Context, args: CreateIssue) -> Result<Reply<Created>> {
    let api = Api::from_context(cx)?;
    let body = create_body(&args)?;
    let created: CreatedIssue = api::send(api.post("/issue", &body)?)?;
    Ok(format_created(&api, created))
}

pub fn create_body(args: &CreateIssue) -> Result<Value> {
    let mut fields = Map::new();
    let project = args.project_key.trim();
    if project.is_empty() {
        return Err(ToolError::InvalidArguments("project_key is empty".into()));
    }
    fields.insert("project".into(), reference(project, "key"));
    let issue_type = args.issue_type.trim();
    if issue_type.is_empty() {
        return Err(ToolError::InvalidArguments(
            "issue_type is empty: give a name like Task or an id from jira_get_issue_types".into(),
        ));
    }
    fields.insert("issuetype".into(), reference(issue_type, "name"));
    fields.insert("summary".into(), json!(summary(&args.summary)?));
    if let Some(description) = api::non_empty(&args.description) {
        fields.insert("description".into(), to_adf(description));
    }
    if let Some(id) = api::non_empty(&args.assignee_account_id) {
        fields.insert("assignee".into(), json!({"accountId": id}));
    }
    let labels = labels("labels", &args.labels)?;
    if !labels.is_empty() {
        fields.insert("labels".into(), json!(labels));
    }
    if let Some(priority) = api::non_empty(&args.priority) {
        fields.insert("priority".into(), reference(priority, "name"));
    }
    if let Some(parent) = api::non_empty(&args.parent) {
        fields.insert("parent".into(), reference(parent, "key"));
    }
    if let Some(due) = api::non_empty(&args.due_date) {
        fields.insert("duedate".into(), json!(date(due)?));
    }
    merge_additional(&mut fields, args.additional_fields.as_ref())?;
    Ok(json!({ "fields": fields }))
}

pub fn format_created(api: &Api, created: CreatedIssue) -> Reply<Created> {
    let url = api.browse_url(&created.key);
    Reply::new(
        format!("Created {}: {url}", created.key),
        Created {
            key: created.key,
            id: created.id,
            url,
        },
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditIssue {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// A new one-line title.
    #[serde(default)]
    pub summary: Option<String>,
    /// A new description in Markdown, replacing the old one (mention people as `[~accountid:ID]`); an empty string clears it.
    #[serde(default)]
    pub description: Option<String>,
    /// Replace all labels with these; `[]` removes them all. Not together with add_labels/remove_labels.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Labels to add, keeping the others.
    #[serde(default)]
    pub add_labels: Vec<String>,
    /// Labels to remove, keeping the others.
    #[serde(default)]
    pub remove_labels: Vec<String>,
    /// The new assignee's account id (from jira_lookup_account_id); an empty string unassigns.
    #[serde(default)]
    pub assignee_account_id: Option<String>,
    /// The new priority's name (e.g. `High`) or numeric id.
    #[serde(default)]
    pub priority: Option<String>,
    /// A new due date as `YYYY-MM-DD`; an empty string clears it.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Other fields to set by id, in Jira's REST format, e.g. `{"customfield_10016": 8}`; `null` clears a field.
    #[serde(default)]
    pub additional_fields: Option<Map<String, Value>>,
}

/// An edited issue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Edited {
    pub key: String,
    /// The issue's page in Jira.
    pub url: String,
    /// The fields that were sent.
    pub changed: Vec<String>,
}

/// Edit a Jira issue's summary, description, labels, assignee, priority,
/// due date or other fields; only what is given changes.
///
/// The description is Markdown and replaces the old one whole (read it first
/// with jira_get_issue to keep parts of it); mention people as
/// `[~accountid:ID]`. To change the status use jira_transition_issue.
#[tool(open_world, idempotent, title = "Edit a Jira issue")]
pub fn jira_edit_issue(cx: &Context, args: EditIssue) -> Result<Reply<Edited>> {
    let api = Api::from_context(cx)?;
    let key = api::issue_segment(&args.issue_key)?;
    let (body, changed) = edit_body(&args)?;
    api::send_no_content(api.put(&format!("/issue/{key}"), &body)?)?;
    Ok(format_edited(&api, args.issue_key.trim(), changed))
}

pub fn format_edited(api: &Api, key: &str, changed: Vec<String>) -> Reply<Edited> {
    let url = api.browse_url(key);
    Reply::new(
        format!("Updated {key} ({}): {url}", changed.join(", ")),
        Edited {
            key: key.to_string(),
            url,
            changed,
        },
    )
}

/// The body of `PUT /issue/{key}` and the names of what it changes.
pub fn edit_body(args: &EditIssue) -> Result<(Value, Vec<String>)> {
    let mut fields = Map::new();
    let mut update = Map::new();
    if let Some(text) = &args.summary {
        fields.insert("summary".into(), json!(summary(text)?));
    }
    if let Some(text) = &args.description {
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            to_adf(text)
        };
        fields.insert("description".into(), value);
    }
    if let Some(all) = &args.labels {
        if !args.add_labels.is_empty() || !args.remove_labels.is_empty() {
            return Err(ToolError::InvalidArguments(
                "give either labels (the whole new set) or add_labels/remove_labels, not both"
                    .into(),
            ));
        }
        fields.insert("labels".into(), json!(labels("labels", all)?));
    }
    let operations: Vec<Value> = labels("add_labels", &args.add_labels)?
        .into_iter()
        .map(|l| json!({"add": l}))
        .chain(
            labels("remove_labels", &args.remove_labels)?
                .into_iter()
                .map(|l| json!({"remove": l})),
        )
        .collect();
    if !operations.is_empty() {
        update.insert("labels".into(), Value::Array(operations));
    }
    if let Some(id) = &args.assignee_account_id {
        let id = id.trim();
        let value = if id.is_empty() {
            Value::Null
        } else {
            json!({"accountId": id})
        };
        fields.insert("assignee".into(), value);
    }
    if let Some(priority) = &args.priority {
        let priority = priority.trim();
        if priority.is_empty() {
            return Err(ToolError::InvalidArguments(
                "priority is empty: give a name like High or a numeric id".into(),
            ));
        }
        fields.insert("priority".into(), reference(priority, "name"));
    }
    if let Some(due) = &args.due_date {
        let due = due.trim();
        let value = if due.is_empty() {
            Value::Null
        } else {
            json!(date(due)?)
        };
        fields.insert("duedate".into(), value);
    }
    merge_additional(&mut fields, args.additional_fields.as_ref())?;
    let changed: Vec<String> = fields.keys().chain(update.keys()).cloned().collect();
    if changed.is_empty() {
        return Err(ToolError::InvalidArguments(
            "nothing to change: give at least one of summary, description, labels, add_labels, \
             remove_labels, assignee_account_id, priority, due_date or additional_fields"
                .into(),
        ));
    }
    let mut body = Map::new();
    if !fields.is_empty() {
        body.insert("fields".into(), Value::Object(fields));
    }
    if !update.is_empty() {
        body.insert("update".into(), Value::Object(update));
    }
    Ok((Value::Object(body), changed))
}

/// `{"id": "10001"}` for an all-digit value, else `{other: value}` (`key`
/// for projects and issues, `name` for types and priorities).
fn reference(value: &str, other: &str) -> Value {
    let mut object = Map::new();
    let name = if api::is_id(value) { "id" } else { other };
    object.insert(name.into(), json!(value));
    Value::Object(object)
}

/// Jira wants a summary on one line and under 255 characters.
fn summary(text: &str) -> Result<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Err(ToolError::InvalidArguments("summary is empty".into()));
    }
    if text.chars().count() > 255 {
        return Err(ToolError::InvalidArguments(
            "summary is over 255 characters: shorten it and put the details in the description"
                .into(),
        ));
    }
    Ok(text)
}

/// Jira refuses labels with spaces; say so before it does.
fn labels(what: &str, labels: &[String]) -> Result<Vec<String>> {
    let labels = clean_list(labels);
    if let Some(bad) = labels.iter().find(|l| l.chars().any(char::is_whitespace)) {
        return Err(ToolError::InvalidArguments(format!(
            "{what}: label {bad:?} contains a space; Jira labels are single words (use - or _)"
        )));
    }
    Ok(labels)
}

/// `YYYY-MM-DD`, checked.
fn date(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
    let valid = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if valid {
        Ok(value.to_string())
    } else {
        Err(ToolError::InvalidArguments(format!(
            "due_date {value:?} is not a date: use YYYY-MM-DD"
        )))
    }
}

/// Adds `additional_fields` to `fields`; a field given both ways is a
/// mistake the caller should resolve, not one to guess at.
fn merge_additional(
    fields: &mut Map<String, Value>,
    extra: Option<&Map<String, Value>>,
) -> Result<()> {
    for (name, value) in extra.into_iter().flatten() {
        if fields.contains_key(name) {
            return Err(ToolError::InvalidArguments(format!(
                "{name} is given both as its own argument and in additional_fields; give it once"
            )));
        }
        fields.insert(name.clone(), value.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 example of GET /rest/api/3/issue/{issueIdOrKey}, trimmed.
    const ISSUE: &str = r#"{"fields":{"watcher":{"isWatching":false,"watchCount":1},"sub-tasks":[{"id":"10000","outwardIssue":{"fields":{"status":{"name":"Open"}},"id":"10003","key":"ED-2"},"type":{"id":"10000","inward":"Parent","name":"","outward":"Sub-task"}}],"description":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Main order flow broken"}]}]},"project":{"id":"10000","key":"EX","name":"Example","style":"classic"},"comment":[{"author":{"accountId":"5b10a2844c20165700ede21g","active":false,"displayName":"Mia Krystof"},"body":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Lorem ipsum"}]}]},"created":"2021-01-17T12:34:00.000+0000","id":"10000"}],"issuelinks":[{"id":"10001","outwardIssue":{"fields":{"status":{"iconUrl":"https://your-domain.atlassian.net/images/icons/statuses/open.png","name":"Open"}},"id":"10004L","key":"PR-2","self":"https://your-domain.atlassian.net/rest/api/3/issue/PR-2"},"type":{"id":"10000","inward":"depends on","name":"Dependent","outward":"is depended by"}},{"id":"10002","inwardIssue":{"fields":{"status":{"name":"Open"}},"id":"10004","key":"PR-3"},"type":{"id":"10000","inward":"depends on","name":"Dependent","outward":"is depended by"}}],"updated":1,"timetracking":{"originalEstimate":"10m","timeSpent":"6m"}},"id":"10002","key":"ED-1","self":"https://your-domain.atlassian.net/rest/api/3/issue/10002"}"#;

    /// An issue as Jira Cloud sends it with the default field set.
    const CLOUD_ISSUE: &str = r#"{"id":"10042","key":"PROJ-7","fields":{
        "summary":"Login fails for SSO users","status":{"name":"In Progress","statusCategory":{"key":"indeterminate","name":"In Progress"}},
        "issuetype":{"name":"Bug"},"priority":{"name":"High","id":"2"},"resolution":null,
        "assignee":{"accountId":"5b10ac8d82e05b22cc7d4ef5","displayName":"Emma Richards"},
        "reporter":{"accountId":"5b10a2844c20165700ede21g","displayName":"Mia Krystof"},
        "labels":["sso","login"],"components":[{"name":"Auth"}],"fixVersions":[],
        "created":"2024-03-01T10:00:00.000+0000","updated":"2024-03-05T09:15:27.000+0000","duedate":"2024-03-31",
        "project":{"key":"PROJ"},"parent":{"key":"PROJ-1"},
        "subtasks":[{"key":"PROJ-8","fields":{"summary":"Add a test","status":{"name":"Done"}}}],
        "issuelinks":[],"comment":{"comments":[],"total":3,"maxResults":0,"startAt":0},
        "description":{"type":"doc","version":1,"content":[{"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Steps"}]},{"type":"paragraph","content":[{"type":"text","text":"Ask "},{"type":"mention","attrs":{"id":"5b10ac8d82e05b22cc7d4ef5","text":"@Emma"}}]}]},
        "customfield_10016":5},
        "names":{"customfield_10016":"Story point estimate"},
        "transitions":[{"id":"31","name":"Done"}]}"#;

    fn api() -> Api {
        Api::new("https://acme.atlassian.net").expect("api")
    }

    #[test]
    fn the_spec_example_reads_well() {
        let issue: Issue = serde_json::from_str(ISSUE).expect("fixture");
        let reply = format_issue(&api(), &issue);
        assert_eq!(
            reply.text,
            "ED-1: (no summary)\nhttps://acme.atlassian.net/browse/ED-1\n\
             Resolution: Unresolved\nProject: EX\nAssignee: Unassigned\n\
             Updated: 1\nLinks: is depended by PR-2 (Open), depends on PR-3 (Open)\nComments: 1 \
             (read them with jira_get_comments)\n\
             watcher: {\"isWatching\":false,\"watchCount\":1}\n\
             sub-tasks: 10000\n\
             timetracking: {\"originalEstimate\":\"10m\",\"timeSpent\":\"6m\"}\n\n\
             Description:\nMain order flow broken"
        );
        assert_eq!(reply.data.comment_count, Some(1));
        assert_eq!(reply.data.project.as_deref(), Some("EX"));
        crate::tools::assert_fits::<jira_get_issue>(&reply.data);
    }

    #[test]
    fn a_cloud_issue_reads_in_full() {
        let issue: Issue = serde_json::from_str(CLOUD_ISSUE).expect("fixture");
        let reply = format_issue(&api(), &issue);
        assert_eq!(
            reply.text,
            "PROJ-7: Login fails for SSO users\nhttps://acme.atlassian.net/browse/PROJ-7\n\
             Type: Bug · Status: In Progress (indeterminate) · Priority: High · Resolution: Unresolved\n\
             Project: PROJ · Parent: PROJ-1\n\
             Assignee: Emma Richards (5b10ac8d82e05b22cc7d4ef5) · Reporter: Mia Krystof (5b10a2844c20165700ede21g)\n\
             Labels: sso, login · Components: Auth\n\
             Created: 2024-03-01 10:00 · Updated: 2024-03-05 09:15 · Due: 2024-03-31\n\
             Subtasks: PROJ-8 (Done) Add a test\n\
             Comments: 3 (read them with jira_get_comments)\n\
             Story point estimate (customfield_10016): 5\n\
             Transitions: Done (id 31)\n\
             Expanded in the structured content: names.\n\n\
             Description:\n## Steps\n\nAsk [~accountid:5b10ac8d82e05b22cc7d4ef5]"
        );
        let data = serde_json::to_value(&reply.data).expect("serializes");
        assert_eq!(data["fields"]["customfield_10016"], 5);
        assert_eq!(data["expanded"]["transitions"][0]["id"], "31");
        assert_eq!(data["assignee"]["account_id"], "5b10ac8d82e05b22cc7d4ef5");
        assert_eq!(data["labels"], json!(["sso", "login"]));
        crate::tools::assert_fits::<jira_get_issue>(&reply.data);
    }

    #[test]
    fn the_get_request_adds_fields_and_expands() {
        let args = GetIssue {
            issue_key: "PROJ-7".into(),
            fields: Some(vec!["customfield_10016".into(), "summary".into()]),
            expand: Some(vec!["names".into(), "transitions".into()]),
        };
        let url = get_request(&api(), &args).expect("request").url();
        assert!(
            url.starts_with(
                "https://acme.atlassian.net/rest/api/3/issue/PROJ-7?fields=summary%2Cstatus%2C"
            ),
            "{url}"
        );
        assert!(
            url.ends_with("issuelinks%2Ccustomfield_10016&expand=names%2Ctransitions"),
            "{url}"
        );
        let args = GetIssue {
            issue_key: "PROJ 7".into(),
            fields: None,
            expand: None,
        };
        assert!(get_request(&api(), &args).is_err());
    }

    fn create_args() -> CreateIssue {
        CreateIssue {
            project_key: "PROJ".into(),
            issue_type: "Bug".into(),
            summary: "Main order flow broken".into(),
            description: None,
            assignee_account_id: None,
            labels: vec![],
            priority: None,
            parent: None,
            due_date: None,
            additional_fields: None,
        }
    }

    #[test]
    fn a_minimal_issue_sends_only_what_is_needed() {
        assert_eq!(
            create_body(&create_args()).expect("body"),
            json!({"fields": {
                "project": {"key": "PROJ"},
                "issuetype": {"name": "Bug"},
                "summary": "Main order flow broken"
            }})
        );
    }

    #[test]
    fn a_full_issue_uses_adf_and_references() {
        let args = CreateIssue {
            project_key: "10000".into(),
            issue_type: "10002".into(),
            summary: "  Order entry\nfails ".into(),
            description: Some("Order entry fails when selecting **supplier**.".into()),
            assignee_account_id: Some("5b109f2e9729b51b54dc274d".into()),
            labels: vec!["bugfix".into(), "blitz_test".into()],
            priority: Some("High".into()),
            parent: Some("PROJ-123".into()),
            due_date: Some("2019-05-11".into()),
            additional_fields: Some(
                json!({"customfield_10016": 3, "components": [{"id": "10000"}]})
                    .as_object()
                    .expect("object")
                    .clone(),
            ),
        };
        assert_eq!(
            create_body(&args).expect("body"),
            json!({"fields": {
                "project": {"id": "10000"},
                "issuetype": {"id": "10002"},
                "summary": "Order entry fails",
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Order entry fails when selecting "},
                        {"type": "text", "text": "supplier", "marks": [{"type": "strong"}]},
                        {"type": "text", "text": "."}
                    ]}
                ]},
                "assignee": {"accountId": "5b109f2e9729b51b54dc274d"},
                "labels": ["bugfix", "blitz_test"],
                "priority": {"name": "High"},
                "parent": {"key": "PROJ-123"},
                "duedate": "2019-05-11",
                "customfield_10016": 3,
                "components": [{"id": "10000"}]
            }})
        );
    }

    #[test]
    fn bad_create_arguments_say_what_to_fix() {
        let check = |change: fn(&mut CreateIssue), needle: &str| {
            let mut args = create_args();
            change(&mut args);
            let Err(ToolError::InvalidArguments(m)) = create_body(&args) else {
                panic!("{needle}: expected invalid arguments");
            };
            assert!(m.contains(needle), "{m}");
        };
        check(|a| a.summary = " ".into(), "summary is empty");
        check(|a| a.summary = "x".repeat(256), "255");
        check(|a| a.labels = vec!["two words".into()], "contains a space");
        check(|a| a.due_date = Some("31/12/2024".into()), "YYYY-MM-DD");
        check(|a| a.project_key = "".into(), "project_key");
        check(|a| a.issue_type = "".into(), "issue_type");
        check(
            |a| {
                a.priority = Some("High".into());
                a.additional_fields = json!({"priority": {"id": "1"}}).as_object().cloned();
            },
            "given both",
        );
    }

    #[test]
    fn created_issues_give_key_and_url() {
        let created: CreatedIssue = serde_json::from_str(
            r#"{"id":"10000","key":"ED-24","self":"https://your-domain.atlassian.net/rest/api/3/issue/10000","transition":{"status":200,"errorCollection":{"errorMessages":[],"errors":{}}}}"#,
        )
        .expect("fixture");
        let reply = format_created(&api(), created);
        assert_eq!(
            reply.text,
            "Created ED-24: https://acme.atlassian.net/browse/ED-24"
        );
        assert_eq!(reply.data.id, "10000");
        crate::tools::assert_fits::<jira_create_issue>(&reply.data);
    }

    fn edit_args() -> EditIssue {
        EditIssue {
            issue_key: "PROJ-7".into(),
            summary: None,
            description: None,
            labels: None,
            add_labels: vec![],
            remove_labels: vec![],
            assignee_account_id: None,
            priority: None,
            due_date: None,
            additional_fields: None,
        }
    }

    #[test]
    fn edits_send_only_changes() {
        let args = EditIssue {
            summary: Some("Bug in business logic".into()),
            description: Some("Investigation underway".into()),
            add_labels: vec!["triaged".into()],
            remove_labels: vec!["blocker".into()],
            assignee_account_id: Some("".into()),
            priority: Some("3".into()),
            due_date: Some("".into()),
            ..edit_args()
        };
        let (body, changed) = edit_body(&args).expect("body");
        assert_eq!(
            body,
            json!({
                "fields": {
                    "summary": "Bug in business logic",
                    "description": {"type": "doc", "version": 1, "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "Investigation underway"}]}
                    ]},
                    "assignee": null,
                    "priority": {"id": "3"},
                    "duedate": null
                },
                "update": {"labels": [{"add": "triaged"}, {"remove": "blocker"}]}
            })
        );
        assert_eq!(
            changed,
            vec![
                "summary",
                "description",
                "assignee",
                "priority",
                "duedate",
                "labels"
            ]
        );
        let reply = format_edited(&api(), "PROJ-7", changed);
        assert_eq!(
            reply.text,
            "Updated PROJ-7 (summary, description, assignee, priority, duedate, labels): \
             https://acme.atlassian.net/browse/PROJ-7"
        );
        crate::tools::assert_fits::<jira_edit_issue>(&reply.data);

        let args = EditIssue {
            labels: Some(vec![]),
            description: Some(" ".into()),
            assignee_account_id: Some("5b10ac8d82e05b22cc7d4ef5".into()),
            ..edit_args()
        };
        let (body, _) = edit_body(&args).expect("body");
        assert_eq!(
            body,
            json!({"fields": {
                "description": null,
                "labels": [],
                "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
            }})
        );
    }

    #[test]
    fn empty_or_conflicting_edits_are_refused() {
        assert!(matches!(
            edit_body(&edit_args()),
            Err(ToolError::InvalidArguments(m)) if m.starts_with("nothing to change")
        ));
        let args = EditIssue {
            labels: Some(vec!["a".into()]),
            add_labels: vec!["b".into()],
            ..edit_args()
        };
        assert!(
            matches!(edit_body(&args), Err(ToolError::InvalidArguments(m)) if m.contains("not both"))
        );
        let args = EditIssue {
            priority: Some(" ".into()),
            ..edit_args()
        };
        assert!(edit_body(&args).is_err());
    }
}
