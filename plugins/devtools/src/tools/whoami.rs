//! `whoami`: the caller as the server verified it, for checking which
//! identity and scopes a client's token carries.

use serde::Deserialize;
use serde_json::json;

use crate::tool::{Output, ToolError, ToolSpec, Who, parse_args};

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "whoami",
        title: "Who am I",
        description: "Show the identity this server verified for the current caller: subject, \
            OAuth client id and granted scopes. Useful to check which account and permissions \
            a client is signed in with.",
        input_schema: json!({
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "subject": {"type": ["string", "null"]},
                "client_id": {"type": ["string", "null"]},
                "scopes": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["subject", "client_id", "scopes"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {}

pub(crate) fn run(arguments: &str, who: &Who) -> Result<Output, ToolError> {
    let Args {} = parse_args(arguments)?;
    let text = format!(
        "subject: {}\nclient: {}\nscopes: {}",
        who.subject.as_deref().unwrap_or("(none)"),
        who.client_id.as_deref().unwrap_or("(none)"),
        if who.scopes.is_empty() {
            "(none)".to_string()
        } else {
            who.scopes.join(" ")
        }
    );
    Ok(Output::with_structured(
        text,
        json!({"subject": who.subject, "client_id": who.client_id, "scopes": who.scopes}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_verified_caller() {
        let who = Who {
            subject: Some("alice".into()),
            client_id: Some("cli".into()),
            scopes: vec!["read".into()],
        };
        let out = run("{}", &who).expect("whoami");
        assert_eq!(out.text, "subject: alice\nclient: cli\nscopes: read");
        assert_eq!(out.structured.expect("structured")["scopes"][0], "read");
        assert!(run("{\"x\":1}", &who).is_err());
    }
}
