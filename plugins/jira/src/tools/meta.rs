//! Create metadata: a project's issue types, and the fields one of them
//! takes (which are required, their types and allowed values).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::{self, FieldMeta, FieldPage, IssueType, IssueTypePage};
use crate::tools::{LINE_LIMIT, count, one_line};

/// Allowed values listed per field; longer lists are cut with a count.
const ALLOWED_VALUES_SHOWN: usize = 25;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIssueTypes {
    /// The project's key (e.g. `PROJ`) or numeric id.
    pub project_key: String,
    /// An issue type's name (e.g. `Bug`) or id, to also list the fields creating one takes, required ones first.
    #[serde(default)]
    pub issue_type: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueTypes {
    pub issue_types: Vec<IssueTypeItem>,
    /// The fields of the issue type asked for with `issue_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldItem>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IssueTypeItem {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Issues of this type are subtasks and need a `parent`.
    pub subtask: bool,
    /// 1 for epics, 0 for standard types, -1 for subtasks (company-managed projects).
    pub hierarchy_level: Option<i64>,
}

/// A field of the create screen.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldItem {
    /// The id to use in `additional_fields`, e.g. `customfield_10016`.
    pub id: String,
    pub name: String,
    pub required: bool,
    /// Jira fills it in when it is left out.
    pub has_default: bool,
    /// The value's type: `string`, `number`, `date`, `user`, `option`, `array of option`, …
    pub kind: Option<String>,
    /// Names (or ids) of the allowed values, when the field has a fixed set.
    pub allowed_values: Vec<String>,
    /// More allowed values exist than are listed.
    pub allowed_values_truncated: bool,
}

/// List a Jira project's issue types (Task, Bug, Story, Epic, Subtask, …)
/// for jira_create_issue, and with `issue_type`, the fields creating such an
/// issue takes: which are required, their types and allowed values.
///
/// Use it before creating an issue in an unfamiliar project, or when Jira
/// answers that a field is required; pass extra fields to jira_create_issue
/// in `additional_fields` by id.
#[tool(
    read_only,
    idempotent,
    open_world,
    title = "Get Jira issue types and fields"
)]
pub fn jira_get_issue_types(cx: &Context, args: GetIssueTypes) -> Result<Reply<IssueTypes>> {
    let api = Api::from_context(cx)?;
    let project = args.project_key.trim();
    let page: IssueTypePage = api::send(types_request(&api, project)?)?;
    let fields = match api::non_empty(&args.issue_type) {
        Some(wanted) => {
            let chosen = choose(&page.issue_types, wanted)?.clone();
            let fields: FieldPage = api::send(fields_request(&api, project, &chosen.id)?)?;
            Some((chosen, fields))
        }
        None => None,
    };
    Ok(format_types(project, page, fields))
}

pub fn types_request(api: &Api, project: &str) -> Result<Request> {
    let project = api::project_segment(project)?;
    Ok(api
        .get(&format!("/issue/createmeta/{project}/issuetypes"))
        .query("maxResults", 200))
}

/// `GET /issue/createmeta/{project}/issuetypes/{id}`: the fields of one type.
pub fn fields_request(api: &Api, project: &str, issue_type_id: &str) -> Result<Request> {
    let project = api::project_segment(project)?;
    Ok(api
        .get(&format!(
            "/issue/createmeta/{project}/issuetypes/{}",
            toolhost_sdk::http::encode(issue_type_id)
        ))
        .query("maxResults", 200))
}

/// The issue type `wanted` names, by id or name (case-insensitive).
pub fn choose<'a>(types: &'a [IssueType], wanted: &str) -> Result<&'a IssueType> {
    types
        .iter()
        .find(|t| t.id == wanted)
        .or_else(|| types.iter().find(|t| t.name.eq_ignore_ascii_case(wanted)))
        .ok_or_else(|| {
            let names: Vec<String> = types
                .iter()
                .map(|t| format!("{} (id {})", t.name, t.id))
                .collect();
            ToolError::InvalidArguments(format!(
                "the project has no issue type {wanted:?}; its types: {}",
                if names.is_empty() {
                    "none the account may create".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })
}

pub fn format_types(
    project: &str,
    page: IssueTypePage,
    chosen: Option<(IssueType, FieldPage)>,
) -> Reply<IssueTypes> {
    let issue_types: Vec<IssueTypeItem> = page
        .issue_types
        .iter()
        .map(|t| IssueTypeItem {
            id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone().filter(|d| !d.is_empty()),
            subtask: t.subtask.unwrap_or(false),
            hierarchy_level: t.hierarchy_level,
        })
        .collect();
    let mut text = if issue_types.is_empty() {
        format!("{project} has no issue types this account may create.")
    } else {
        format!(
            "{} in {project}:",
            count(issue_types.len(), "issue type", "issue types")
        )
    };
    for t in &issue_types {
        text.push_str(&format!("\n{} (id {})", t.name, t.id));
        if t.subtask {
            text.push_str(" — subtask, needs a parent");
        }
        if let Some(description) = &t.description {
            text.push_str(&format!(": {}", one_line(description, LINE_LIMIT)));
        }
    }
    let fields = chosen.map(|(issue_type, page)| {
        let mut metas: Vec<(String, FieldMeta)> = if page.fields.is_empty() {
            page.results
        } else {
            page.fields
        }
        .into_iter()
        .map(|f| (field_id(&f), f))
        .collect();
        // A server that embeds fields in the listing needs no second page.
        if metas.is_empty() {
            metas = issue_type
                .fields
                .iter()
                .filter_map(|(id, v)| {
                    let meta: FieldMeta = serde_json::from_value(v.clone()).ok()?;
                    Some((id.clone(), meta))
                })
                .collect();
        }
        metas.sort_by_key(|(_, f)| f.required != Some(true));
        let items: Vec<FieldItem> = metas.into_iter().map(|(id, f)| field_item(id, f)).collect();
        text.push_str(&format!(
            "\n\nFields for creating a {} in {project}:",
            issue_type.name
        ));
        for f in &items {
            text.push_str(&format!(
                "\n{} {} ({})",
                if f.required { "required" } else { "optional" },
                f.id,
                f.name
            ));
            if let Some(kind) = &f.kind {
                text.push_str(&format!(": {kind}"));
            }
            if f.has_default {
                text.push_str(", has a default");
            }
            if !f.allowed_values.is_empty() {
                text.push_str(&format!(" — one of {}", f.allowed_values.join(", ")));
                if f.allowed_values_truncated {
                    text.push_str(", …");
                }
            }
        }
        items
    });
    Reply::new(
        text,
        IssueTypes {
            issue_types,
            fields,
        },
    )
}

fn field_id(field: &FieldMeta) -> String {
    field
        .field_id
        .clone()
        .or_else(|| field.key.clone())
        .unwrap_or_else(|| field.name.clone())
}

fn field_item(id: String, field: FieldMeta) -> FieldItem {
    let kind = field
        .schema
        .as_ref()
        .and_then(|s| match (&s.kind, &s.items) {
            (Some(kind), Some(items)) if kind == "array" => Some(format!("array of {items}")),
            (Some(kind), _) => Some(kind.clone()),
            (None, _) => None,
        });
    let allowed: Vec<String> = field
        .allowed_values
        .iter()
        .filter_map(|v| model::value_name(v).or_else(|| v.get("id").map(Value::to_string)))
        .collect();
    FieldItem {
        id,
        name: field.name,
        required: field.required == Some(true),
        has_default: field.has_default_value.unwrap_or(false),
        kind,
        allowed_values_truncated: allowed.len() > ALLOWED_VALUES_SHOWN,
        allowed_values: allowed.into_iter().take(ALLOWED_VALUES_SHOWN).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 example of GET /rest/api/3/issue/createmeta/{p}/issuetypes,
    /// plus a subtask type.
    const TYPES: &str = r#"{"issueTypes":[{"description":"An error in the code","iconUrl":"https://your-domain.atlassian.net/images/icons/issuetypes/bug.png","id":"1","name":"Bug","self":"https://your-domain.atlassian.net/rest/api/3/issueType/1","subtask":false},{"id":"10003","name":"Subtask","subtask":true,"hierarchyLevel":-1}],"maxResults":2,"startAt":0,"total":2}"#;

    /// The example of .../issuetypes/{issueTypeId}, plus fields as Jira
    /// Cloud sends them.
    const FIELDS: &str = r#"{"fields":[
        {"fieldId":"assignee","hasDefaultValue":false,"key":"assignee","name":"Assignee","operations":["set"],"required":false,"schema":{"type":"user","system":"assignee"}},
        {"fieldId":"summary","hasDefaultValue":false,"key":"summary","name":"Summary","operations":["set"],"required":true,"schema":{"type":"string","system":"summary"}},
        {"fieldId":"priority","hasDefaultValue":true,"key":"priority","name":"Priority","operations":["set"],"required":false,"schema":{"type":"priority","system":"priority"},"allowedValues":[{"id":"1","name":"Highest"},{"id":"3","name":"Medium"}]},
        {"fieldId":"customfield_10020","key":"customfield_10020","name":"Platforms","operations":["add","set","remove"],"required":true,"schema":{"type":"array","items":"option","custom":"com.atlassian.jira.plugin.system.customfieldtypes:multiselect","customId":10020},"allowedValues":[{"id":"10100","value":"iOS"},{"id":"10101","value":"Android"}]}
    ],"maxResults":50,"startAt":0,"total":4}"#;

    fn page() -> IssueTypePage {
        serde_json::from_str(TYPES).expect("fixture")
    }

    #[test]
    fn issue_types_list_one_per_line() {
        let reply = format_types("EX", page(), None);
        assert_eq!(
            reply.text,
            "2 issue types in EX:\nBug (id 1): An error in the code\nSubtask (id 10003) — subtask, needs a parent"
        );
        let data = serde_json::to_value(&reply.data).expect("serializes");
        assert!(data.get("fields").is_none());
        assert_eq!(data["issue_types"][1]["subtask"], true);
        crate::tools::assert_fits::<jira_get_issue_types>(&reply.data);
    }

    #[test]
    fn fields_list_required_ones_first() {
        let page = page();
        let chosen = choose(&page.issue_types, "bug").expect("by name").clone();
        let fields: FieldPage = serde_json::from_str(FIELDS).expect("fixture");
        let reply = format_types("EX", page, Some((chosen, fields)));
        assert!(
            reply.text.ends_with(
                "\n\nFields for creating a Bug in EX:\n\
                 required summary (Summary): string\n\
                 required customfield_10020 (Platforms): array of option — one of iOS, Android\n\
                 optional assignee (Assignee): user\n\
                 optional priority (Priority): priority, has a default — one of Highest, Medium"
            ),
            "{}",
            reply.text
        );
        crate::tools::assert_fits::<jira_get_issue_types>(&reply.data);
        let fields = reply.data.fields.expect("fields");
        assert_eq!(fields[1].id, "customfield_10020");
        assert!(fields[1].required);
    }

    #[test]
    fn unknown_types_list_the_choices() {
        let page = page();
        assert_eq!(
            choose(&page.issue_types, "10003").expect("by id").name,
            "Subtask"
        );
        let Err(ToolError::InvalidArguments(m)) = choose(&page.issue_types, "Story") else {
            panic!("an unknown type is invalid");
        };
        assert!(m.contains("Bug (id 1), Subtask (id 10003)"), "{m}");
    }

    #[test]
    fn requests_address_the_project() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        assert_eq!(
            types_request(&api, "EX").expect("request").url(),
            "https://acme.atlassian.net/rest/api/3/issue/createmeta/EX/issuetypes?maxResults=200"
        );
        assert_eq!(
            fields_request(&api, "EX", "1").expect("request").url(),
            "https://acme.atlassian.net/rest/api/3/issue/createmeta/EX/issuetypes/1?maxResults=200"
        );
        assert!(types_request(&api, "E X").is_err());
    }
}
