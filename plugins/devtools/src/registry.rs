//! The list of tools this plugin offers and dispatch of a call by tool name.

use crate::tool::{Output, ToolError, ToolSpec, Who};
use crate::tools;

/// Every tool, in the order `tools/list` shows them.
pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        tools::json_query::spec(),
        tools::json_format::spec(),
        tools::hash::spec(),
        tools::base64::spec(),
        tools::uuid::spec(),
        tools::time_convert::spec(),
        tools::regex_test::spec(),
        tools::text_diff::spec(),
        tools::url::spec(),
        tools::jwt_decode::spec(),
        tools::whoami::spec(),
    ]
}

/// Runs the named tool on its JSON arguments.
pub(crate) fn call(name: &str, arguments: &str, who: &Who) -> Result<Output, ToolError> {
    let run = runner(name)
        .ok_or_else(|| ToolError::UnknownTool(format!("this plugin has no tool named `{name}`")))?;
    run(arguments, who)
}

/// A tool's entry point: JSON arguments and the verified caller in, output
/// or error out.
type Run = fn(&str, &Who) -> Result<Output, ToolError>;

/// The function behind a tool name. Every call runs in a fresh instance, so
/// dispatch must not build the specs (with their JSON schemas) each time:
/// that allocation was most of a small call's cost.
fn runner(name: &str) -> Option<Run> {
    Some(match name {
        "json_query" => |args, _| tools::json_query::run(args),
        "json_format" => |args, _| tools::json_format::run(args),
        "hash" => |args, _| tools::hash::run(args),
        "base64" => |args, _| tools::base64::run(args),
        "uuid" => |args, _| tools::uuid::run(args),
        "time_convert" => |args, _| tools::time_convert::run(args),
        "regex_test" => |args, _| tools::regex_test::run(args),
        "text_diff" => |args, _| tools::text_diff::run(args),
        "url" => |args, _| tools::url::run(args),
        "jwt_decode" => |args, _| tools::jwt_decode::run(args),
        "whoami" => tools::whoami::run,
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashSet;

    fn is_valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn dispatch_matches_the_specs() {
        for spec in all() {
            assert!(
                runner(spec.name).is_some(),
                "{} is not dispatched",
                spec.name
            );
        }
        assert!(runner("nope").is_none());
    }

    #[test]
    fn names_are_valid_and_unique() {
        let mut seen = HashSet::new();
        for spec in all() {
            assert!(is_valid_name(spec.name), "bad tool name {}", spec.name);
            assert!(seen.insert(spec.name), "duplicate tool name {}", spec.name);
            assert!(!spec.description.is_empty() && !spec.title.is_empty());
        }
    }

    /// The host rejects a plugin whose schemas are not objects; beyond that we
    /// hold ourselves to describing every property and closing the object.
    #[test]
    fn input_schemas_are_closed_described_objects() {
        for spec in all() {
            let schema = &spec.input_schema;
            let name = spec.name;
            assert_eq!(schema["type"], "object", "{name}");
            assert_eq!(schema["additionalProperties"], false, "{name}");
            let props = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}"));
            for (prop, def) in props {
                assert!(
                    def["description"].is_string(),
                    "{name}.{prop} has no description"
                );
            }
            let required = schema["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}"));
            for key in required {
                let key = key.as_str().unwrap_or_default();
                assert!(props.contains_key(key), "{name} requires undeclared {key}");
            }
        }
    }

    #[test]
    fn output_schemas_are_objects() {
        for spec in all() {
            if let Some(schema) = &spec.output_schema {
                assert_eq!(schema["type"], "object", "{}", spec.name);
                assert!(schema["properties"].is_object(), "{}", spec.name);
            }
        }
    }

    #[test]
    fn unknown_tool_is_reported() {
        assert!(matches!(
            call("nope", "{}", &Who::default()),
            Err(ToolError::UnknownTool(_))
        ));
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let big = format!(
            "{{\"input\":\"{}\"}}",
            "a".repeat(crate::tool::MAX_INPUT_BYTES)
        );
        for spec in all() {
            match call(spec.name, &big, &Who::default()) {
                Err(ToolError::InvalidArguments(msg)) => assert!(msg.contains("1 MiB"), "{msg}"),
                other => panic!("{}: {other:?}", spec.name),
            }
        }
    }

    #[test]
    fn malformed_arguments_are_invalid_not_panics() {
        for spec in all() {
            for args in ["", "[]", "{\"no_such_field\": 1}", "not json"] {
                assert!(
                    matches!(
                        call(spec.name, args, &Who::default()),
                        Err(ToolError::InvalidArguments(_))
                    ),
                    "{} accepted {args:?}",
                    spec.name
                );
            }
        }
    }

    /// Structured content must match the declared output schema; this checks
    /// the parts a client relies on most: required keys and no stray keys.
    pub(crate) fn assert_matches_output_schema(name: &str, value: &Value) {
        let spec = all()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        let schema = spec
            .output_schema
            .unwrap_or_else(|| panic!("{name} has no output schema"));
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("{name}: not an object"));
        let props = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}"));
        for key in obj.keys() {
            assert!(props.contains_key(key), "{name}: undeclared key {key}");
        }
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            assert!(obj.contains_key(key), "{name}: missing required key {key}");
        }
    }

    /// Calls a tool the way the host would and insists on success.
    pub(crate) fn run_ok(name: &str, args: Value) -> crate::tool::Output {
        match call(name, &args.to_string(), &Who::default()) {
            Ok(out) => {
                if let Some(structured) = &out.structured {
                    assert_matches_output_schema(name, structured);
                }
                out
            }
            Err(e) => panic!("{name}({args}) failed: {e:?}"),
        }
    }

    /// Calls a tool and returns the invalid-arguments message it must produce.
    pub(crate) fn run_invalid(name: &str, args: Value) -> String {
        match call(name, &args.to_string(), &Who::default()) {
            Err(ToolError::InvalidArguments(msg)) => msg,
            other => panic!("{name}({args}) should be invalid, got {other:?}"),
        }
    }
}
