//! Workflow transitions: which status changes an issue allows, and making
//! one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::{Transition, Transitions};
use crate::tools::{count, to_adf};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTransitions {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TransitionList {
    pub transitions: Vec<TransitionItem>,
}

/// One transition the issue can take now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TransitionItem {
    /// Pass as `transition` to jira_transition_issue.
    pub id: String,
    /// The transition's name, e.g. `Start progress`.
    pub name: String,
    /// The status the issue moves to.
    pub to_status: Option<String>,
    /// `new` (to do), `indeterminate` (in progress) or `done`.
    pub to_status_category: Option<String>,
    /// The transition shows a screen in Jira's UI (it may ask for fields).
    pub has_screen: bool,
    /// Ids of the fields this transition requires, e.g. `resolution`.
    pub required_fields: Vec<String>,
}

/// List the transitions a Jira issue can take now (its workflow's next
/// statuses), with their ids, target statuses and required fields.
///
/// Pass a transition's id or name to jira_transition_issue. Only
/// transitions the account may perform from the current status are listed.
#[tool(
    read_only,
    idempotent,
    open_world,
    title = "List Jira issue transitions"
)]
pub fn jira_list_transitions(cx: &Context, args: ListTransitions) -> Result<Reply<TransitionList>> {
    let api = Api::from_context(cx)?;
    let transitions: Transitions = api::send(transitions_request(&api, &args.issue_key)?)?;
    Ok(format_transitions(args.issue_key.trim(), transitions))
}

pub fn transitions_request(api: &Api, issue_key: &str) -> Result<Request> {
    let key = api::issue_segment(issue_key)?;
    Ok(api
        .get(&format!("/issue/{key}/transitions"))
        .query("expand", "transitions.fields"))
}

pub fn format_transitions(key: &str, transitions: Transitions) -> Reply<TransitionList> {
    let transitions: Vec<TransitionItem> = transitions
        .transitions
        .iter()
        .map(transition_item)
        .collect();
    let mut text = if transitions.is_empty() {
        format!("{key} has no transitions available to this account from its current status.")
    } else {
        format!(
            "{} available for {key}:",
            count(transitions.len(), "transition", "transitions")
        )
    };
    for t in &transitions {
        text.push_str(&format!("\n{}: {}", t.id, t.name));
        if let Some(status) = &t.to_status {
            text.push_str(&format!(" → {status}"));
        }
        if !t.required_fields.is_empty() {
            text.push_str(&format!(" (requires {})", t.required_fields.join(", ")));
        }
    }
    Reply::new(text, TransitionList { transitions })
}

fn transition_item(t: &Transition) -> TransitionItem {
    let required_fields = t
        .fields
        .iter()
        .filter(|(_, meta)| meta.get("required").and_then(Value::as_bool) == Some(true))
        .map(|(id, _)| id.clone())
        .collect();
    TransitionItem {
        id: t.id.clone(),
        name: t.name.clone(),
        to_status: t
            .to
            .as_ref()
            .map(|s| s.name.clone())
            .filter(|n| !n.is_empty()),
        to_status_category: t
            .to
            .as_ref()
            .and_then(|s| s.status_category.as_ref())
            .and_then(|c| c.key.clone()),
        has_screen: t.has_screen.unwrap_or(false),
        required_fields,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionIssue {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// The transition's id (e.g. `31`) or name (e.g. `Done`, `Start progress`), or the name of the status to move to; jira_list_transitions lists them.
    pub transition: String,
    /// A comment to add with the transition, in Markdown; mention people as `[~accountid:ID]`.
    #[serde(default)]
    pub comment: Option<String>,
    /// The resolution's name, e.g. `Done`, `Fixed` or `Won't Do`, for transitions that ask for one.
    #[serde(default)]
    pub resolution: Option<String>,
    /// Other fields the transition's screen sets, by id in Jira's REST format, e.g. `{"customfield_10020": 3}`.
    #[serde(default)]
    pub fields: Option<Map<String, Value>>,
}

/// A transition made.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Transitioned {
    pub key: String,
    /// The issue's page in Jira.
    pub url: String,
    pub transition_id: String,
    pub transition_name: String,
    /// The status the issue moved to.
    pub status: Option<String>,
}

/// Move a Jira issue through its workflow (change its status) by
/// transition id or name, optionally with a Markdown comment and a
/// resolution.
///
/// A name matches a transition's name or, failing that, its target status
/// (case-insensitive), so `Done` or `In Progress` usually work; if nothing
/// matches, the error lists the transitions available. Mention people in the
/// comment as `[~accountid:ID]`.
#[tool(open_world, title = "Transition a Jira issue")]
pub fn jira_transition_issue(cx: &Context, args: TransitionIssue) -> Result<Reply<Transitioned>> {
    let api = Api::from_context(cx)?;
    let key = api::issue_segment(&args.issue_key)?;
    let available: Transitions = api::send(transitions_request(&api, &args.issue_key)?)?;
    let chosen = resolve(&available.transitions, &args.transition)?.clone();
    let body = transition_body(&chosen.id, &args)?;
    api::send_no_content(api.post(&format!("/issue/{key}/transitions"), &body)?)?;
    let key = args.issue_key.trim();
    Ok(format_transitioned(&api, key, &chosen))
}

/// The transition `wanted` names: by id, then by name, then by target
/// status.
pub fn resolve<'a>(available: &'a [Transition], wanted: &str) -> Result<&'a Transition> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return Err(ToolError::InvalidArguments(
            "transition is empty: give an id or a name from jira_list_transitions".into(),
        ));
    }
    let by_status = |t: &&Transition| {
        t.to.as_ref()
            .is_some_and(|s| s.name.eq_ignore_ascii_case(wanted))
    };
    let found = available
        .iter()
        .find(|t| t.id == wanted)
        .or_else(|| {
            available
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(wanted))
        })
        .or_else(|| {
            let mut matches = available.iter().filter(by_status);
            // Two transitions into one status are a choice for the caller.
            match (matches.next(), matches.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        });
    found.ok_or_else(|| {
        let listed: Vec<String> = available
            .iter()
            .map(|t| match &t.to {
                Some(to) if !to.name.is_empty() => format!("{} ({}, to {})", t.id, t.name, to.name),
                _ => format!("{} ({})", t.id, t.name),
            })
            .collect();
        let choices = if listed.is_empty() {
            "none are available to this account from the issue's current status".to_string()
        } else {
            format!("available: {}", listed.join("; "))
        };
        ToolError::InvalidArguments(format!(
            "no transition matches {wanted:?} for this issue; {choices}"
        ))
    })
}

/// The body of `POST /issue/{key}/transitions`.
pub fn transition_body(id: &str, args: &TransitionIssue) -> Result<Value> {
    let mut body = Map::new();
    body.insert("transition".into(), json!({"id": id}));
    let mut fields = args.fields.clone().unwrap_or_default();
    if let Some(resolution) = api::non_empty(&args.resolution) {
        if fields.contains_key("resolution") {
            return Err(ToolError::InvalidArguments(
                "resolution is given both as its own argument and in fields; give it once".into(),
            ));
        }
        fields.insert("resolution".into(), json!({"name": resolution}));
    }
    if !fields.is_empty() {
        body.insert("fields".into(), Value::Object(fields));
    }
    if let Some(comment) = api::non_empty(&args.comment) {
        body.insert(
            "update".into(),
            json!({"comment": [{"add": {"body": to_adf(comment)}}]}),
        );
    }
    Ok(Value::Object(body))
}

pub fn format_transitioned(api: &Api, key: &str, chosen: &Transition) -> Reply<Transitioned> {
    let status = chosen
        .to
        .as_ref()
        .map(|s| s.name.clone())
        .filter(|n| !n.is_empty());
    let url = api.browse_url(key);
    let mut text = format!(
        "Transitioned {key} with \"{}\" (id {})",
        chosen.name, chosen.id
    );
    if let Some(status) = &status {
        text.push_str(&format!(" to {status}"));
    }
    text.push_str(&format!(": {url}"));
    Reply::new(
        text,
        Transitioned {
            key: key.to_string(),
            url,
            transition_id: chosen.id.clone(),
            transition_name: chosen.name.clone(),
            status,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 example of GET /rest/api/3/issue/{issueIdOrKey}/transitions,
    /// with the first field marked required.
    const TRANSITIONS: &str = r#"{"transitions":[{"fields":{"summary":{"allowedValues":["red","blue"],"defaultValue":"red","hasDefaultValue":false,"key":"field_key","name":"My Multi Select","operations":["set","add"],"required":true,"schema":{"custom":"com.atlassian.jira.plugin.system.customfieldtypes:multiselect","customId":10001,"items":"option","type":"array"}}},"hasScreen":false,"id":"2","isAvailable":true,"isConditional":false,"isGlobal":false,"isInitial":false,"name":"Close Issue","to":{"description":"The issue is currently being worked on.","iconUrl":"https://your-domain.atlassian.net/images/icons/progress.gif","id":"10000","name":"In Progress","self":"https://your-domain.atlassian.net/rest/api/3/status/10000","statusCategory":{"colorName":"yellow","id":1,"key":"in-flight","name":"In Progress","self":"https://your-domain.atlassian.net/rest/api/3/statuscategory/1"}}},{"fields":{"summary":{"allowedValues":["red","blue"],"defaultValue":"red","hasDefaultValue":false,"key":"field_key","name":"My Multi Select","operations":["set","add"],"required":false,"schema":{"custom":"com.atlassian.jira.plugin.system.customfieldtypes:multiselect","customId":10001,"items":"option","type":"array"}}},"hasScreen":true,"id":"711","name":"QA Review","to":{"description":"The issue is closed.","iconUrl":"https://your-domain.atlassian.net/images/icons/closed.gif","id":"5","name":"Closed","self":"https://your-domain.atlassian.net/rest/api/3/status/5","statusCategory":{"colorName":"green","id":9,"key":"completed","self":"https://your-domain.atlassian.net/rest/api/3/statuscategory/9"}}}]}"#;

    fn transitions() -> Transitions {
        serde_json::from_str(TRANSITIONS).expect("fixture")
    }

    fn args(transition: &str) -> TransitionIssue {
        TransitionIssue {
            issue_key: "ED-1".into(),
            transition: transition.into(),
            comment: None,
            resolution: None,
            fields: None,
        }
    }

    #[test]
    fn transitions_list_ids_names_and_targets() {
        let reply = format_transitions("ED-1", transitions());
        assert_eq!(
            reply.text,
            "2 transitions available for ED-1:\n2: Close Issue → In Progress (requires summary)\n711: QA Review → Closed"
        );
        assert_eq!(
            reply.data.transitions[1].to_status_category.as_deref(),
            Some("completed")
        );
        assert!(reply.data.transitions[1].has_screen);
        crate::tools::assert_fits::<jira_list_transitions>(&reply.data);
        let reply = format_transitions("ED-1", Transitions::default());
        assert!(reply.text.contains("no transitions available"));
        let api = Api::new("https://acme.atlassian.net").expect("api");
        assert_eq!(
            transitions_request(&api, "ED-1").expect("request").url(),
            "https://acme.atlassian.net/rest/api/3/issue/ED-1/transitions?expand=transitions.fields"
        );
    }

    #[test]
    fn names_resolve_to_ids() {
        let t = transitions();
        assert_eq!(
            resolve(&t.transitions, "711").expect("id").name,
            "QA Review"
        );
        assert_eq!(
            resolve(&t.transitions, "qa review").expect("name").id,
            "711"
        );
        assert_eq!(resolve(&t.transitions, "Closed").expect("status").id, "711");
        let Err(ToolError::InvalidArguments(m)) = resolve(&t.transitions, "Done") else {
            panic!("an unknown name is invalid");
        };
        assert!(
            m.contains("available: 2 (Close Issue, to In Progress); 711 (QA Review, to Closed)"),
            "{m}"
        );
        assert!(resolve(&[], "Done").is_err());
        assert!(resolve(&t.transitions, " ").is_err());
    }

    #[test]
    fn bodies_match_the_spec() {
        assert_eq!(
            transition_body("5", &args("5")).expect("body"),
            json!({"transition": {"id": "5"}})
        );
        let full = TransitionIssue {
            comment: Some("Bug has been fixed".into()),
            resolution: Some("Fixed".into()),
            fields: json!({"customfield_10020": 3}).as_object().cloned(),
            ..args("5")
        };
        assert_eq!(
            transition_body("5", &full).expect("body"),
            json!({
                "transition": {"id": "5"},
                "fields": {"customfield_10020": 3, "resolution": {"name": "Fixed"}},
                "update": {"comment": [{"add": {"body": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Bug has been fixed"}]}
                ]}}}]}
            })
        );
        let twice = TransitionIssue {
            resolution: Some("Fixed".into()),
            fields: json!({"resolution": {"name": "Done"}}).as_object().cloned(),
            ..args("5")
        };
        assert!(transition_body("5", &twice).is_err());
    }

    #[test]
    fn the_answer_names_the_new_status() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let t = transitions();
        let reply = format_transitioned(&api, "ED-1", &t.transitions[1]);
        assert_eq!(
            reply.text,
            "Transitioned ED-1 with \"QA Review\" (id 711) to Closed: https://acme.atlassian.net/browse/ED-1"
        );
        assert_eq!(reply.data.status.as_deref(), Some("Closed"));
        crate::tools::assert_fits::<jira_transition_issue>(&reply.data);
    }
}
