//! One function per fixture tool, plus the definitions `tools/list` shows.

use std::time::Duration;

use serde_json::{Value, json};

use crate::exports::toolhost::plugin::tools::{Caller, ToolDefinition, ToolError, ToolOutput};
use crate::toolhost::plugin::host::{self, LogLevel};
use crate::toolhost::plugin::types::{
    Annotations, Blob, Content, ElicitationRequest, EmbeddedResource, InputKind, InputRequest,
    ResourceContents,
};

/// A 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f,
    0x0f, 0x00, 0x02, 0x87, 0x01, 0x80, 0xeb, 0x47, 0xba, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const NO_ARGS: &str = r#"{"type":"object","properties":{},"additionalProperties":false}"#;

struct Fixture {
    name: &'static str,
    description: &'static str,
    input_schema: &'static str,
    run: fn(&Caller, &Value) -> Result<ToolOutput, ToolError>,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "test_simple_text",
        description: "Returns a simple text response",
        input_schema: NO_ARGS,
        run: simple_text,
    },
    Fixture {
        name: "test_image_content",
        description: "Returns a 1x1 PNG image",
        input_schema: NO_ARGS,
        run: image,
    },
    Fixture {
        name: "test_audio_content",
        description: "Returns a short WAV clip",
        input_schema: NO_ARGS,
        run: audio,
    },
    Fixture {
        name: "test_embedded_resource",
        description: "Returns an embedded text resource",
        input_schema: NO_ARGS,
        run: embedded_resource,
    },
    Fixture {
        name: "test_multiple_content_types",
        description: "Returns text, an image and a resource",
        input_schema: NO_ARGS,
        run: mixed,
    },
    Fixture {
        name: "test_error_handling",
        description: "Always fails with a tool-level error",
        input_schema: NO_ARGS,
        run: error_handling,
    },
    Fixture {
        name: "test_tool_with_progress",
        description: "Reports progress 0, 50, 100 of 100",
        input_schema: NO_ARGS,
        run: progress,
    },
    Fixture {
        name: "test_tool_with_logging",
        description: "Logs three messages while it runs",
        input_schema: NO_ARGS,
        run: logging,
    },
    Fixture {
        name: "test_logging_tool",
        description: "Logs a message; clients that set no log level must not receive it",
        input_schema: NO_ARGS,
        run: logging,
    },
    Fixture {
        name: "test_sampling",
        description: "Asks the client's model to answer a prompt",
        input_schema: r#"{"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send"}},"required":["prompt"]}"#,
        run: sampling,
    },
    Fixture {
        name: "test_elicitation",
        description: "Asks the user for a username and an email",
        input_schema: r#"{"type":"object","properties":{"message":{"type":"string","description":"What to ask the user"}},"required":["message"]}"#,
        run: elicitation,
    },
    Fixture {
        name: "test_elicitation_sep1034_defaults",
        description: "Elicitation whose fields carry defaults (SEP-1034)",
        input_schema: NO_ARGS,
        run: elicitation_defaults,
    },
    Fixture {
        name: "test_elicitation_sep1330_enums",
        description: "Elicitation with every enum style (SEP-1330)",
        input_schema: NO_ARGS,
        run: elicitation_enums,
    },
    Fixture {
        name: "test_missing_capability",
        description: "Needs sampling; refused for clients without it",
        input_schema: NO_ARGS,
        run: missing_capability,
    },
    Fixture {
        name: "test_streaming_elicitation",
        description: "Asks the user a question mid-call",
        input_schema: NO_ARGS,
        run: streaming_elicitation,
    },
    Fixture {
        name: "test_trigger_tool_change",
        description: "Asks for a tool-list change notification (the list of this plugin is fixed)",
        input_schema: NO_ARGS,
        run: trigger_tool_change,
    },
    Fixture {
        name: "test_input_required_result_elicitation",
        description: "Asks for the user's name, then greets them",
        input_schema: NO_ARGS,
        run: ir_elicitation,
    },
    Fixture {
        name: "test_input_required_result_sampling",
        description: "Asks the model a question",
        input_schema: NO_ARGS,
        run: ir_sampling,
    },
    Fixture {
        name: "test_input_required_result_list_roots",
        description: "Asks for the client's roots",
        input_schema: NO_ARGS,
        run: ir_list_roots,
    },
    Fixture {
        name: "test_input_required_result_request_state",
        description: "Asks for confirmation, keeping request state",
        input_schema: NO_ARGS,
        run: ir_request_state,
    },
    Fixture {
        name: "test_input_required_result_multiple_inputs",
        description: "Asks three questions at once",
        input_schema: NO_ARGS,
        run: ir_multiple,
    },
    Fixture {
        name: "test_input_required_result_multi_round",
        description: "Asks two questions in two rounds",
        input_schema: NO_ARGS,
        run: ir_multi_round,
    },
    Fixture {
        name: "test_input_required_result_tampered_state",
        description: "Asks a question; the answer must come with untampered state",
        input_schema: NO_ARGS,
        run: ir_elicitation,
    },
    Fixture {
        name: "test_input_required_result_capabilities",
        description: "Asks only what the client declared it can answer",
        input_schema: NO_ARGS,
        run: ir_capabilities,
    },
    Fixture {
        name: "json_schema_2020_12_tool",
        description: "Declares a JSON Schema 2020-12 input schema",
        input_schema: SCHEMA_2020_12,
        run: schema_2020_12,
    },
];

const SCHEMA_2020_12: &str = r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}"##;

pub(crate) fn definitions() -> Vec<ToolDefinition> {
    FIXTURES
        .iter()
        .map(|f| ToolDefinition {
            name: f.name.to_string(),
            title: None,
            description: f.description.to_string(),
            input_schema: f.input_schema.to_string(),
            output_schema: None,
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        })
        .collect()
}

pub(crate) fn call(
    caller: &Caller,
    name: &str,
    arguments: &Value,
) -> Result<ToolOutput, ToolError> {
    let fixture = FIXTURES
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ToolError::UnknownTool(name.to_string()))?;
    (fixture.run)(caller, arguments)
}

fn text(text: impl Into<String>) -> Content {
    Content::Text(text.into())
}

fn ok(content: Vec<Content>) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput {
        content,
        structured_content: None,
        is_error: false,
    })
}

fn simple_text(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![text("This is a simple text response for testing.")])
}

fn image(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![Content::Image(Blob {
        data: PNG.to_vec(),
        mime_type: "image/png".into(),
    })])
}

/// A 10 ms, 8 kHz, 8-bit mono WAV of silence.
fn wav() -> Vec<u8> {
    let samples = 80u32;
    let mut out = Vec::with_capacity(44 + samples as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + samples).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend(std::iter::repeat_n(0x80u8, samples as usize));
    out
}

fn audio(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![Content::Audio(Blob {
        data: wav(),
        mime_type: "audio/wav".into(),
    })])
}

fn embedded_resource(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![Content::Resource(EmbeddedResource {
        uri: "test://embedded-resource".into(),
        mime_type: Some("text/plain".into()),
        contents: ResourceContents::Text("This is an embedded resource content.".into()),
    })])
}

fn mixed(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![
        text("Multiple content types test:"),
        Content::Image(Blob {
            data: PNG.to_vec(),
            mime_type: "image/png".into(),
        }),
        Content::Resource(EmbeddedResource {
            uri: "test://mixed-content-resource".into(),
            mime_type: Some("application/json".into()),
            contents: ResourceContents::Text(r#"{"test":"data","value":123}"#.into()),
        }),
    ])
}

fn error_handling(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput {
        content: vec![text("This tool intentionally returns an error for testing")],
        structured_content: None,
        is_error: true,
    })
}

fn progress(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    for step in [0.0, 50.0, 100.0] {
        host::progress(step, Some(100.0), Some(&format!("step {}", step / 50.0)));
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(vec![text("Progress test completed")])
}

fn logging(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    for message in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ] {
        host::log(LogLevel::Info, message);
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(vec![text("Logging test completed")])
}

/// Asks the client and returns the answers, or the tool error to report.
fn ask(requests: Vec<InputRequest>) -> Result<Vec<Value>, ToolError> {
    let answers = host::request_input(&requests).map_err(|e| match e {
        crate::toolhost::plugin::types::InputError::Unsupported(m) => {
            ToolError::PermissionDenied(m)
        }
        crate::toolhost::plugin::types::InputError::Failed(m) => ToolError::Upstream(m),
    })?;
    answers
        .iter()
        .map(|a| {
            serde_json::from_str(a)
                .map_err(|e| ToolError::Internal(format!("host sent non-JSON answer: {e}")))
        })
        .collect()
}

fn elicit(key: &str, message: &str, schema: Value) -> InputRequest {
    InputRequest {
        key: key.into(),
        kind: InputKind::Elicitation(ElicitationRequest {
            message: message.into(),
            requested_schema: schema.to_string(),
        }),
    }
}

fn sample(key: &str, prompt: &str) -> InputRequest {
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100,
    });
    InputRequest {
        key: key.into(),
        kind: InputKind::Sampling(params.to_string()),
    }
}

fn sampled_text(answer: &Value) -> String {
    answer["content"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sampling(_: &Caller, args: &Value) -> Result<ToolOutput, ToolError> {
    let prompt = args["prompt"].as_str().unwrap_or_default();
    let answers = ask(vec![sample("sampling", prompt)])?;
    ok(vec![text(format!(
        "LLM response: {}",
        sampled_text(&answers[0])
    ))])
}

fn elicitation(_: &Caller, args: &Value) -> Result<ToolOutput, ToolError> {
    let message = args["message"]
        .as_str()
        .unwrap_or("Please provide your information");
    let schema = json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}
        },
        "required": ["username", "email"]
    });
    let answers = ask(vec![elicit("elicitation", message, schema)])?;
    ok(vec![text(format!("User response: {}", answers[0]))])
}

fn elicitation_defaults(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        }
    });
    let answers = ask(vec![elicit(
        "defaults",
        "Please review and update the form fields with defaults",
        schema,
    )])?;
    ok(vec![text(format!("Elicitation completed: {}", answers[0]))])
}

fn elicitation_enums(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"}
            ]}}
        }
    });
    let answers = ask(vec![elicit(
        "enums",
        "Please select options from the enum fields",
        schema,
    )])?;
    ok(vec![text(format!("Elicitation completed: {}", answers[0]))])
}

fn missing_capability(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let answers = ask(vec![sample("needs_sampling", "Say hello")])?;
    ok(vec![text(format!(
        "Sampled: {}",
        sampled_text(&answers[0])
    ))])
}

fn streaming_elicitation(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let answers = ask(vec![elicit("answer", "Please answer the question", schema)])?;
    ok(vec![text(format!("Answer: {}", answers[0]))])
}

fn trigger_tool_change(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![text(
        "This plugin's tool list is fixed; toolhost announces list changes on hot reload.",
    )])
}

fn name_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string", "description": "Your name"}}, "required": ["name"]})
}

/// The content of an accepted elicitation, or a tool error for the others.
fn accepted(answer: &Value) -> Result<&Value, ToolError> {
    match answer["action"].as_str() {
        Some("accept") => Ok(&answer["content"]),
        Some(other) => Err(ToolError::PermissionDenied(format!(
            "the user chose to {other}"
        ))),
        None => Err(ToolError::InvalidArguments(
            "the elicitation answer has no action".into(),
        )),
    }
}

fn ir_elicitation(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let answers = ask(vec![elicit(
        "user_name",
        "What is your name?",
        name_schema(),
    )])?;
    let content = accepted(&answers[0])?;
    let name = content["name"].as_str().unwrap_or("stranger");
    ok(vec![text(format!("Hello, {name}!"))])
}

fn ir_sampling(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let answers = ask(vec![sample(
        "capital_question",
        "What is the capital of France?",
    )])?;
    ok(vec![text(format!(
        "The model said: {}",
        sampled_text(&answers[0])
    ))])
}

fn ir_list_roots(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let answers = ask(vec![InputRequest {
        key: "client_roots".into(),
        kind: InputKind::ListRoots,
    }])?;
    let n_roots = answers[0]["roots"].as_array().map_or(0, Vec::len);
    ok(vec![text(format!(
        "The client has {n_roots} root(s): {}",
        answers[0]["roots"]
    ))])
}

fn ir_request_state(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let schema =
        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    let answers = ask(vec![elicit("confirm", "Please confirm", schema)])?;
    let content = accepted(&answers[0])?;
    ok(vec![text(format!("state-ok: confirmed={}", content["ok"]))])
}

fn ir_multiple(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let answers = ask(vec![
        elicit("user_name", "What is your name?", name_schema()),
        sample("capital_question", "What is the capital of France?"),
        InputRequest {
            key: "client_roots".into(),
            kind: InputKind::ListRoots,
        },
    ])?;
    let name = accepted(&answers[0])?["name"]
        .as_str()
        .unwrap_or("stranger")
        .to_string();
    ok(vec![text(format!(
        "Hello, {name}! The model said {:?}; you have {} root(s).",
        sampled_text(&answers[1]),
        answers[2]["roots"].as_array().map_or(0, Vec::len)
    ))])
}

fn ir_multi_round(_: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let first = ask(vec![elicit("step1", "What is your name?", name_schema())])?;
    let name = accepted(&first[0])?["name"]
        .as_str()
        .unwrap_or("stranger")
        .to_string();
    let colour_schema = json!({"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]});
    let second = ask(vec![elicit(
        "step2",
        &format!("Thanks {name}. What is your favourite colour?"),
        colour_schema,
    )])?;
    let colour = accepted(&second[0])?["color"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    ok(vec![text(format!("{name} likes {colour}"))])
}

fn ir_capabilities(caller: &Caller, _: &Value) -> Result<ToolOutput, ToolError> {
    let support = &caller.client_supports;
    let request = if support.elicitation {
        elicit("user_name", "What is your name?", name_schema())
    } else if support.sampling {
        sample("capital_question", "What is the capital of France?")
    } else if support.roots {
        InputRequest {
            key: "client_roots".into(),
            kind: InputKind::ListRoots,
        }
    } else {
        return ok(vec![text(
            "The client can answer no questions; nothing asked.",
        )]);
    };
    let answers = ask(vec![request])?;
    ok(vec![text(format!("Got: {}", answers[0]))])
}

fn schema_2020_12(_: &Caller, args: &Value) -> Result<ToolOutput, ToolError> {
    ok(vec![text(format!("Received: {args}"))])
}
