//! GitHub for toolhost: the everyday work of the official GitHub MCP
//! server (repositories, files, branches, commits, issues, pull requests,
//! code search, releases) over the REST API, as a sandboxed component.
//!
//! The API root is the sidecar's `[config] base_url` (github.com by
//! default; `https://HOST/api/v3` for GitHub Enterprise Server), and the
//! token is the host's business: it adds the `Authorization` header the
//! operator configured under `[credentials]` after its allow-list check,
//! so the plugin never holds it. `github.toml` next to this crate is the
//! sidecar to start from.
//!
//! Each tool answers with a short text for the model and structured
//! content for programs, both bounded: lists stop at `per_page` and say
//! whether more pages exist; long bodies, patches and files are cut with a
//! note. GitHub's errors become messages that say what to change (see
//! [`errors`]).

mod api;
mod errors;
mod format;
mod model;
mod tools;

use tools::commits::{get_commit, list_commits};
use tools::contents::get_file_contents;
use tools::issues::{
    add_issue_comment, create_issue, get_issue, list_issue_comments, list_issues, update_issue,
};
use tools::pulls::{
    create_pull_request, get_pull_request, get_pull_request_files, list_pull_requests,
};
use tools::releases::list_releases;
use tools::repos::list_branches;
use tools::search::{search_code, search_issues, search_repositories};
use tools::users::get_me;

toolhost_sdk::export_plugin!(
    get_me,
    search_repositories,
    get_file_contents,
    list_branches,
    list_commits,
    get_commit,
    list_issues,
    get_issue,
    search_issues,
    create_issue,
    update_issue,
    add_issue_comment,
    list_issue_comments,
    list_pull_requests,
    get_pull_request,
    get_pull_request_files,
    create_pull_request,
    search_code,
    list_releases,
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use toolhost_sdk::{Context, Tool, ToolError};

    /// `$ref`s into `$defs`, resolved (the SDK inlines most, not all).
    fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or_default();
                &root["$defs"][name]
            }
            None => schema,
        }
    }

    /// The allowed values of a property, through `Option`'s `anyOf`.
    fn enum_values(root: &Value, property: &Value) -> Option<Vec<String>> {
        let property = resolve(root, property);
        if let Some(values) = property.get("enum").and_then(Value::as_array) {
            return Some(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            );
        }
        property
            .get("anyOf")
            .or_else(|| property.get("oneOf"))
            .and_then(Value::as_array)
            .and_then(|variants| variants.iter().find_map(|v| enum_values(root, v)))
    }

    #[test]
    fn there_are_the_expected_tools() {
        let names: Vec<&str> = exported_tool_specs().iter().map(|s| s.name).collect();
        for expected in [
            "get_me",
            "search_repositories",
            "get_file_contents",
            "list_branches",
            "list_commits",
            "get_commit",
            "list_issues",
            "get_issue",
            "search_issues",
            "create_issue",
            "update_issue",
            "add_issue_comment",
            "list_pull_requests",
            "get_pull_request",
            "get_pull_request_files",
            "create_pull_request",
            "search_code",
            "list_releases",
            "list_issue_comments",
        ] {
            assert!(names.contains(&expected), "{expected} is missing");
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate tool names");
    }

    #[test]
    fn every_schema_is_described() {
        for spec in exported_tool_specs() {
            let schema = &spec.input_schema;
            assert_eq!(schema["type"], "object", "{}", spec.name);
            assert_eq!(
                schema["additionalProperties"], false,
                "{} must deny unknown fields",
                spec.name
            );
            let empty = serde_json::Map::new();
            let properties = schema["properties"].as_object().unwrap_or(&empty);
            for (name, property) in properties {
                let description = property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                assert!(
                    description.len() > 5,
                    "{}.{name} needs a description",
                    spec.name
                );
                let ty = resolve(schema, property);
                if name == "per_page" {
                    assert_eq!(ty["minimum"], 1, "{}.per_page", spec.name);
                    assert_eq!(ty["maximum"], 100, "{}.per_page", spec.name);
                    assert_eq!(ty["default"], 30, "{}.per_page", spec.name);
                }
                if name == "page" {
                    assert_eq!(ty["minimum"], 1, "{}.page", spec.name);
                }
            }
            assert!(
                spec.description.len() > 80,
                "{} needs a fuller description",
                spec.name
            );
            let output = spec.output_schema.as_ref().expect("structured output");
            assert_eq!(output["type"], "object", "{}", spec.name);
            if properties.contains_key("page") {
                assert!(
                    output["properties"].get("next_page").is_some(),
                    "{} pages but has no next_page",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn enums_tell_the_model_the_allowed_values() {
        let specs = exported_tool_specs();
        let spec = |name: &str| {
            specs
                .iter()
                .find(|s| s.name == name)
                .expect("tool")
                .input_schema
                .clone()
        };
        let values = |tool: &str, property: &str| {
            let schema = spec(tool);
            enum_values(&schema, &schema["properties"][property])
                .unwrap_or_else(|| panic!("{tool}.{property} is not an enum: {schema}"))
        };
        assert_eq!(values("list_issues", "state"), ["open", "closed", "all"]);
        assert_eq!(
            values("list_issues", "sort"),
            ["created", "updated", "comments"]
        );
        assert_eq!(values("list_issues", "direction"), ["asc", "desc"]);
        assert_eq!(
            values("list_pull_requests", "state"),
            ["open", "closed", "all"]
        );
        assert_eq!(
            values("list_pull_requests", "sort"),
            ["created", "updated", "popularity", "long-running"]
        );
        assert_eq!(values("update_issue", "state"), ["open", "closed"]);
        assert_eq!(
            values("update_issue", "state_reason"),
            ["completed", "not_planned", "duplicate", "reopened"]
        );
        assert_eq!(
            values("search_repositories", "sort"),
            ["stars", "forks", "help-wanted-issues", "updated"]
        );
        assert_eq!(values("search_repositories", "order"), ["asc", "desc"]);
        assert!(values("search_issues", "sort").contains(&"reactions-+1".to_string()));
        assert_eq!(
            spec("list_issues")["properties"]["state"]["default"],
            "open"
        );
    }

    #[test]
    fn annotations_match_what_the_tools_do() {
        for spec in exported_tool_specs() {
            let h = spec.hints;
            assert!(h.open_world, "{} talks to GitHub", spec.name);
            let writes = matches!(
                spec.name,
                "create_issue" | "update_issue" | "add_issue_comment" | "create_pull_request"
            );
            if writes {
                assert!(!h.read_only, "{}", spec.name);
            } else {
                assert!(
                    h.read_only && h.idempotent && !h.destructive,
                    "{}",
                    spec.name
                );
            }
            assert!(spec.title.is_some(), "{} needs a title", spec.name);
        }
        let hints = |tool: &str| {
            exported_tool_specs()
                .into_iter()
                .find(|s| s.name == tool)
                .expect("tool")
                .hints
        };
        for tool in ["create_issue", "add_issue_comment", "create_pull_request"] {
            let h = hints(tool);
            assert!(!h.idempotent && !h.destructive, "{tool}");
        }
        let h = hints("update_issue");
        assert!(h.idempotent && h.destructive);
    }

    #[test]
    fn bad_arguments_fail_before_any_request() {
        let cx = Context::for_test(&[]);
        // Unknown fields are refused by the plugin too, not only the host.
        assert!(matches!(
            get_issue::call(
                &cx,
                r#"{"owner":"o","repo":"r","issue_number":1,"extra":1}"#
            ),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            get_issue::call(&cx, r#"{"owner":"o/r","repo":"r","issue_number":1}"#),
            Err(ToolError::InvalidArguments(m)) if m.contains("separately")
        ));
        assert!(matches!(
            update_issue::call(&cx, r#"{"owner":"o","repo":"r","issue_number":1}"#),
            Err(ToolError::InvalidArguments(m)) if m.starts_with("nothing to change")
        ));
        assert!(matches!(
            list_commits::call(&cx, r#"{"owner":"o","repo":"r","since":"yesterday"}"#),
            Err(ToolError::InvalidArguments(m)) if m.contains("ISO 8601")
        ));
        assert!(matches!(
            search_code::call(&cx, r#"{"query":"  "}"#),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            get_file_contents::call(
                &cx,
                r#"{"owner":"o","repo":"r","start_line":9,"end_line":2}"#
            ),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
