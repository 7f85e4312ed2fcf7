//! `text_diff`: line-based unified diff of two texts.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use similar::{Algorithm, ChangeTag, TextDiff};

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

/// Myers diff is quadratic in the worst case; past this it settles for a
/// correct but less minimal diff instead of running on.
const DIFF_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_CONTEXT: usize = 10_000;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "text_diff",
        title: "Diff two texts",
        description: "Compare two texts line by line and return a unified diff (as `diff -u` or \
            `git diff` print it) with counts of added and removed lines.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "old": {"type": "string", "description": "The original text."},
                "new": {"type": "string", "description": "The changed text."},
                "context_lines": {"type": "integer", "minimum": 0, "maximum": MAX_CONTEXT, "default": 3, "description": "Unchanged lines shown around each change."},
                "old_label": {"type": "string", "default": "old", "description": "Name shown on the `---` line."},
                "new_label": {"type": "string", "default": "new", "description": "Name shown on the `+++` line."}
            },
            "required": ["old", "new"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "identical": {"type": "boolean"},
                "lines_added": {"type": "integer"},
                "lines_removed": {"type": "integer"},
                "similarity": {"type": "number", "description": "0 (nothing shared) to 1 (identical)."},
                "diff": {"type": "string", "description": "The unified diff; empty when identical."}
            },
            "required": ["identical", "lines_added", "lines_removed", "similarity", "diff"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    old: String,
    new: String,
    #[serde(default = "default_context")]
    context_lines: usize,
    #[serde(default = "default_old_label")]
    old_label: String,
    #[serde(default = "default_new_label")]
    new_label: String,
}

fn default_context() -> usize {
    3
}
fn default_old_label() -> String {
    "old".to_string()
}
fn default_new_label() -> String {
    "new".to_string()
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    if args.context_lines > MAX_CONTEXT {
        return Err(invalid(format!(
            "`context_lines` must be at most {MAX_CONTEXT}"
        )));
    }
    // A label with a line break would forge extra diff lines.
    if args.old_label.contains(['\n', '\r']) || args.new_label.contains(['\n', '\r']) {
        return Err(invalid("labels must be a single line"));
    }
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(DIFF_TIMEOUT)
        .diff_lines(args.old.as_str(), args.new.as_str());
    let (mut added, mut removed) = (0usize, 0usize);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let identical = added == 0 && removed == 0;
    let unified = if identical {
        String::new()
    } else {
        diff.unified_diff()
            .context_radius(args.context_lines)
            .header(&args.old_label, &args.new_label)
            .to_string()
    };
    let text = if identical {
        "The texts are identical.".to_string()
    } else {
        format!("{added} line(s) added, {removed} removed:\n{unified}")
    };
    Ok(Output::with_structured(
        text,
        json!({
            "identical": identical,
            "lines_added": added,
            "lines_removed": removed,
            "similarity": diff.ratio(),
            "diff": unified,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn unified_diff_with_counts() {
        let out = run_ok(
            "text_diff",
            json!({"old": "a\nb\nc\n", "new": "a\nB\nc\nd\n", "old_label": "x.txt", "new_label": "y.txt"}),
        );
        let s = out.structured.unwrap_or_default();
        assert_eq!(
            (s["lines_added"].as_u64(), s["lines_removed"].as_u64()),
            (Some(2), Some(1))
        );
        let diff = s["diff"].as_str().unwrap_or_default();
        assert!(
            diff.starts_with("--- x.txt\n+++ y.txt\n@@ -1,3 +1,4 @@\n"),
            "{diff}"
        );
        assert!(diff.contains("-b\n+B\n"));
        assert!(diff.contains("+d\n"));
    }

    #[test]
    fn identical_texts() {
        let out = run_ok("text_diff", json!({"old": "same", "new": "same"}));
        assert_eq!(out.text, "The texts are identical.");
        assert_eq!(out.structured.unwrap_or_default()["similarity"], 1.0);
    }

    #[test]
    fn missing_trailing_newline_is_marked() {
        let s = run_ok("text_diff", json!({"old": "a", "new": "a\n"}))
            .structured
            .unwrap_or_default();
        assert!(
            s["diff"]
                .as_str()
                .unwrap_or_default()
                .contains("No newline at end of file")
        );
    }

    #[test]
    fn rejects_multiline_labels() {
        run_invalid(
            "text_diff",
            json!({"old": "", "new": "x", "old_label": "a\n+++ b"}),
        );
    }
}
