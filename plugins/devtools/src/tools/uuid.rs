//! `uuid`: generates random (v4) or time-ordered (v7) UUIDs.

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

const MAX_COUNT: usize = 100;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "uuid",
        title: "Generate UUIDs",
        description: "Generate 1 to 100 UUIDs: version 4 (random) or version 7 (Unix-time ordered, \
            good as database keys). Each call returns new values.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "version": {"type": "string", "enum": ["v4", "v7"], "default": "v4", "description": "UUID version: `v4` random, `v7` time-ordered."},
                "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1, "description": "How many UUIDs to generate."},
                "uppercase": {"type": "boolean", "default": false, "description": "Use uppercase hex digits."}
            },
            "required": [],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "version": {"type": "string"},
                "uuids": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["version", "uuids"]
        })),
        idempotent: false,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    version: Version,
    #[serde(default = "default_count")]
    count: usize,
    #[serde(default)]
    uppercase: bool,
}

fn default_count() -> usize {
    1
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Version {
    #[default]
    V4,
    V7,
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    if !(1..=MAX_COUNT).contains(&args.count) {
        return Err(invalid(format!(
            "`count` must be between 1 and {MAX_COUNT}"
        )));
    }
    let uuids: Vec<String> = (0..args.count)
        .map(|_| {
            let id = match args.version {
                Version::V4 => Uuid::new_v4(),
                // now_v7 keeps a shared counter, so ids made in one call sort in order.
                Version::V7 => Uuid::now_v7(),
            };
            let text = id.hyphenated().to_string();
            if args.uppercase {
                text.to_ascii_uppercase()
            } else {
                text
            }
        })
        .collect();
    let version = match args.version {
        Version::V4 => "v4",
        Version::V7 => "v7",
    };
    Ok(Output::with_structured(
        uuids.join("\n"),
        json!({"version": version, "uuids": uuids}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn generates_requested_versions() {
        let out = run_ok("uuid", json!({}));
        let id = uuid::Uuid::parse_str(&out.text).unwrap_or_default();
        assert_eq!(id.get_version_num(), 4);

        let out = run_ok(
            "uuid",
            json!({"version": "v7", "count": 5, "uppercase": true}),
        );
        let ids: Vec<&str> = out.text.lines().collect();
        assert_eq!(ids.len(), 5);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "v7 ids must sort in creation order"
        );
        assert!(
            ids.iter()
                .all(|s| s.chars().all(|c| !c.is_ascii_lowercase()))
        );
        assert_eq!(
            uuid::Uuid::parse_str(ids[0])
                .unwrap_or_default()
                .get_version_num(),
            7
        );
    }

    #[test]
    fn count_is_bounded() {
        run_invalid("uuid", json!({"count": 0}));
        run_invalid("uuid", json!({"count": 101}));
        run_invalid("uuid", json!({"version": "v1"}));
    }
}
