//! `regex_test`: runs a regular expression over text and reports every match
//! with its capture groups and byte offsets.

use regex::RegexBuilder;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

const MAX_PATTERN_BYTES: usize = 8 * 1024;
/// Caps compiled program size; the default (10 MiB) lets a short pattern such
/// as `\w{1000}` cost far more memory than a tool call should.
const MAX_COMPILED_BYTES: usize = 2 * 1024 * 1024;
const MAX_MATCHES: usize = 1000;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "regex_test",
        title: "Test a regular expression",
        description: "Run a regular expression (Rust `regex` syntax: like PCRE without \
            look-around or backreferences, always linear time) over text and list the matches \
            with numbered and named capture groups. Offsets are UTF-8 byte offsets.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "The regular expression. Inline flags such as `(?i)` work too."},
                "text": {"type": "string", "description": "The text to search."},
                "case_insensitive": {"type": "boolean", "default": false, "description": "Match letters regardless of case."},
                "multiline": {"type": "boolean", "default": false, "description": "`^` and `$` match at line starts and ends, not only at the ends of the text."},
                "dot_matches_newline": {"type": "boolean", "default": false, "description": "`.` also matches `\\n`."},
                "max_matches": {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES, "default": 100, "description": "Return at most this many matches; `match_count` still counts all."}
            },
            "required": ["pattern", "text"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "is_match": {"type": "boolean"},
                "match_count": {"type": "integer"},
                "truncated": {"type": "boolean"},
                "matches": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "start": {"type": "integer"},
                        "end": {"type": "integer"},
                        "text": {"type": "string"},
                        "groups": {"type": "array", "description": "Capture groups 1..n; null where a group did not take part.", "items": {
                            "type": ["object", "null"],
                            "properties": {
                                "index": {"type": "integer"},
                                "name": {"type": ["string", "null"]},
                                "start": {"type": "integer"},
                                "end": {"type": "integer"},
                                "text": {"type": "string"}
                            }
                        }}
                    },
                    "required": ["start", "end", "text", "groups"]
                }}
            },
            "required": ["is_match", "match_count", "truncated", "matches"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    text: String,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    multiline: bool,
    #[serde(default)]
    dot_matches_newline: bool,
    #[serde(default = "default_max_matches")]
    max_matches: usize,
}

fn default_max_matches() -> usize {
    100
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    if args.pattern.len() > MAX_PATTERN_BYTES {
        return Err(invalid(format!(
            "`pattern` is longer than {MAX_PATTERN_BYTES} bytes"
        )));
    }
    if !(1..=MAX_MATCHES).contains(&args.max_matches) {
        return Err(invalid(format!(
            "`max_matches` must be between 1 and {MAX_MATCHES}"
        )));
    }
    let re = RegexBuilder::new(&args.pattern)
        .case_insensitive(args.case_insensitive)
        .multi_line(args.multiline)
        .dot_matches_new_line(args.dot_matches_newline)
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| invalid(format!("`pattern` is not a valid regular expression: {e}")))?;
    let names: Vec<Option<&str>> = re.capture_names().collect();

    let mut match_count = 0;
    let mut matches = Vec::new();
    let mut lines = Vec::new();
    for caps in re.captures_iter(&args.text) {
        match_count += 1;
        if matches.len() >= args.max_matches {
            continue;
        }
        let Some(whole) = caps.get(0) else { continue };
        let mut line = format!("[{}..{}] {:?}", whole.start(), whole.end(), whole.as_str());
        let groups: Vec<Value> = (1..caps.len())
            .map(|i| {
                let name = names.get(i).copied().flatten();
                let label = name.map_or_else(|| i.to_string(), str::to_string);
                match caps.get(i) {
                    Some(g) => {
                        line.push_str(&format!("\n    {label}: {:?}", g.as_str()));
                        json!({"index": i, "name": name, "start": g.start(), "end": g.end(), "text": g.as_str()})
                    }
                    None => {
                        line.push_str(&format!("\n    {label}: (did not participate)"));
                        Value::Null
                    }
                }
            })
            .collect();
        lines.push(line);
        matches.push(json!({
            "start": whole.start(),
            "end": whole.end(),
            "text": whole.as_str(),
            "groups": groups,
        }));
    }
    let truncated = matches.len() < match_count;
    let text = match match_count {
        0 => "No match.".to_string(),
        n => {
            let shown = if truncated {
                format!(" (showing the first {})", matches.len())
            } else {
                String::new()
            };
            format!(
                "{n} match{}{shown}:\n{}",
                if n == 1 { "" } else { "es" },
                lines.join("\n")
            )
        }
    };
    Ok(Output::with_structured(
        text,
        json!({"is_match": match_count > 0, "match_count": match_count, "truncated": truncated, "matches": matches}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn reports_groups_and_offsets() {
        let out = run_ok(
            "regex_test",
            json!({"pattern": r"(?<key>\w+)=(\d+)?", "text": "a=1 é=x"}),
        );
        let s = out.structured.unwrap_or_default();
        assert_eq!(s["match_count"], 2);
        assert_eq!(s["matches"][0]["groups"][0]["name"], "key");
        assert_eq!(s["matches"][0]["groups"][1]["text"], "1");
        assert_eq!(s["matches"][1]["start"], 4);
        assert_eq!(s["matches"][1]["end"], 7, "byte offsets: é is two bytes");
        assert!(s["matches"][1]["groups"][1].is_null());
        assert!(out.text.contains("did not participate"));
    }

    #[test]
    fn flags_apply() {
        let s = run_ok(
            "regex_test",
            json!({"pattern": "^b$", "text": "a\nB", "multiline": true, "case_insensitive": true}),
        )
        .structured
        .unwrap_or_default();
        assert_eq!(s["is_match"], true);
        let s = run_ok(
            "regex_test",
            json!({"pattern": "x", "text": "xxx", "max_matches": 2}),
        )
        .structured
        .unwrap_or_default();
        assert_eq!(
            (s["match_count"].as_u64(), s["truncated"].as_bool()),
            (Some(3), Some(true))
        );
    }

    #[test]
    fn no_match_is_not_an_error() {
        let out = run_ok("regex_test", json!({"pattern": "z", "text": "abc"}));
        assert_eq!(out.text, "No match.");
    }

    #[test]
    fn bad_and_oversized_patterns_are_invalid() {
        assert!(
            run_invalid("regex_test", json!({"pattern": "(", "text": ""})).contains("not a valid")
        );
        run_invalid(
            "regex_test",
            json!({"pattern": r"\w{5000}{5000}", "text": ""}),
        );
        run_invalid(
            "regex_test",
            json!({"pattern": "a".repeat(10_000), "text": ""}),
        );
        run_invalid("regex_test", json!({"pattern": "(?=a)", "text": ""}));
    }
}
