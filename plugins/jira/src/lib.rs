//! Jira for toolhost: JQL search, issues (read, create, edit, transition),
//! comments, worklogs, projects, users and issue types over the REST API v3,
//! modelled on the Atlassian remote MCP server's Jira tools.
//!
//! Rich text is Markdown both ways (`toolhost-adf` converts to and from
//! Atlassian Document Format); mentions are `[~accountid:ID]`. The site comes
//! from the sidecar's `[config] site_url`, the credential from its
//! `[credentials]`, added by the host: this crate never sees a secret.

mod api;
mod errors;
mod model;
mod tools;

use tools::comments::{jira_add_comment, jira_get_comments};
use tools::issues::{jira_create_issue, jira_edit_issue, jira_get_issue};
use tools::meta::jira_get_issue_types;
use tools::projects::jira_list_projects;
use tools::search::jira_search_issues;
use tools::transitions::{jira_list_transitions, jira_transition_issue};
use tools::users::{jira_get_myself, jira_lookup_account_id};
use tools::worklog::jira_add_worklog;

toolhost_sdk::export_plugin!(
    jira_get_myself,
    jira_list_projects,
    jira_search_issues,
    jira_get_issue,
    jira_create_issue,
    jira_edit_issue,
    jira_list_transitions,
    jira_transition_issue,
    jira_add_comment,
    jira_get_comments,
    jira_lookup_account_id,
    jira_get_issue_types,
    jira_add_worklog,
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use toolhost_sdk::{Context, Hints, Tool, ToolError, ToolSpec};

    fn specs() -> Vec<ToolSpec> {
        exported_tool_specs()
    }

    /// Every property of an object schema, nested ones included, has a
    /// description: it is all a model reads to fill it in.
    fn check_properties(tool: &str, path: &str, schema: &Value) {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let description = property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                assert!(
                    !description.trim().is_empty(),
                    "{tool}: {path}{name} has no description"
                );
                check_properties(tool, &format!("{path}{name}."), property);
            }
        }
        for defs in ["$defs", "definitions"] {
            for (name, def) in schema
                .get(defs)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                check_properties(tool, &format!("{path}{defs}.{name}."), def);
            }
        }
    }

    #[test]
    fn every_tool_is_described_for_a_model() {
        let specs = specs();
        assert!(specs.len() >= 11);
        let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), specs.len(), "tool names are unique");
        for spec in &specs {
            assert!(
                spec.name.len() <= 64
                    && spec.name.starts_with("jira_")
                    && spec
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{}",
                spec.name
            );
            assert!(spec.title.is_some(), "{} has a title", spec.name);
            assert!(spec.description.len() > 80, "{} is described", spec.name);
            let schema = &spec.input_schema;
            assert_eq!(schema["type"], "object", "{}", spec.name);
            assert_eq!(schema["additionalProperties"], false, "{}", spec.name);
            check_properties(spec.name, "", schema);
            let output = spec
                .output_schema
                .as_ref()
                .expect("every tool replies with data");
            assert_eq!(output["type"], "object", "{}", spec.name);
            assert!(spec.hints.open_world, "{} talks to Jira", spec.name);
            assert!(!spec.hints.destructive, "{} deletes nothing", spec.name);
        }
    }

    #[test]
    fn annotations_match_what_each_tool_does() {
        let reads = Hints {
            read_only: true,
            idempotent: true,
            open_world: true,
            destructive: false,
        };
        let writes = Hints {
            open_world: true,
            ..Hints::default()
        };
        let edits = Hints {
            idempotent: true,
            ..writes
        };
        for spec in specs() {
            let expected = match spec.name {
                "jira_create_issue"
                | "jira_add_comment"
                | "jira_add_worklog"
                | "jira_transition_issue" => writes,
                "jira_edit_issue" => edits,
                _ => reads,
            };
            assert_eq!(spec.hints, expected, "{}", spec.name);
        }
    }

    #[test]
    fn descriptions_teach_markdown_and_mentions() {
        for spec in specs() {
            let markdown_args = spec.input_schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, p)| {
                    p["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("Markdown"))
                })
                .count();
            if markdown_args > 0 {
                assert!(
                    spec.description.contains("[~accountid:") || spec.name == "jira_add_worklog",
                    "{} explains mentions",
                    spec.name
                );
            }
        }
        let search = jira_search_issues::spec();
        assert!(search.description.contains("ORDER BY"));
        assert!(search.description.contains("currentUser()"));
    }

    #[test]
    fn without_a_site_every_tool_says_what_the_operator_must_set() {
        let cx = Context::for_test(&[]);
        let calls: Vec<(&str, &str)> = vec![
            ("jira_get_myself", "{}"),
            ("jira_list_projects", "{}"),
            ("jira_search_issues", r#"{"jql": "project = X"}"#),
            ("jira_get_issue", r#"{"issue_key": "X-1"}"#),
        ];
        for (name, arguments) in calls {
            let result = match name {
                "jira_get_myself" => jira_get_myself::call(&cx, arguments),
                "jira_list_projects" => jira_list_projects::call(&cx, arguments),
                "jira_search_issues" => jira_search_issues::call(&cx, arguments),
                _ => jira_get_issue::call(&cx, arguments),
            };
            assert!(
                matches!(&result, Err(ToolError::InvalidArguments(m)) if m.contains("site_url") && m.contains("jira.toml")),
                "{name}: {result:?}"
            );
        }
    }
}
