//! The MCP shapes of tools and tool results: `Tool` objects for `tools/list`
//! and `CallToolResult` for `tools/call`, converted by hand from the plugin
//! runtime's types (those types never derive `Serialize`).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::plugins::{CallError, CallOutput, Content, ResourceContents, ToolSpec};

/// The `Tool` object for one tool.
pub(crate) fn tool_json(tool: &ToolSpec) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), Value::String(tool.name.clone()));
    if let Some(title) = &tool.title {
        object.insert("title".into(), Value::String(title.clone()));
    }
    object.insert(
        "description".into(),
        Value::String(tool.description.clone()),
    );
    object.insert("inputSchema".into(), tool.input_schema.clone());
    if let Some(schema) = &tool.output_schema {
        object.insert("outputSchema".into(), schema.clone());
    }
    let hints = &tool.annotations;
    let mut annotations = json!({
        "readOnlyHint": hints.read_only,
        "openWorldHint": hints.open_world,
    });
    // Destructive and idempotent only mean something for tools that write.
    if !hints.read_only {
        annotations["destructiveHint"] = Value::Bool(hints.destructive);
        annotations["idempotentHint"] = Value::Bool(hints.idempotent);
    } else {
        annotations["idempotentHint"] = Value::Bool(hints.idempotent);
    }
    if let Some(title) = &tool.title {
        annotations["title"] = Value::String(title.clone());
    }
    object.insert("annotations".into(), annotations);
    Value::Object(object)
}

/// The `CallToolResult` for a call that ran.
pub(crate) fn output_json(output: CallOutput) -> Value {
    let content: Vec<Value> = output.content.into_iter().map(content_json).collect();
    let mut result = json!({ "content": content, "isError": output.is_error });
    if let Some(structured) = output.structured_content {
        result["structuredContent"] = structured;
    }
    result
}

/// The `CallToolResult` for a call that failed: MCP reports tool failures as
/// results with `isError`, so the model can read the reason and adjust.
pub(crate) fn error_json(err: &CallError) -> Value {
    json!({
        "content": [{ "type": "text", "text": err.to_string() }],
        "isError": true,
    })
}

fn content_json(item: Content) -> Value {
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    match item {
        Content::Text(text) => json!({ "type": "text", "text": text }),
        Content::Image(blob) => {
            json!({ "type": "image", "data": b64(&blob.data), "mimeType": blob.mime_type })
        }
        Content::Audio(blob) => {
            json!({ "type": "audio", "data": b64(&blob.data), "mimeType": blob.mime_type })
        }
        Content::Resource(resource) => {
            let mut inner = json!({ "uri": resource.uri });
            if let Some(mime) = resource.mime_type {
                inner["mimeType"] = Value::String(mime);
            }
            match resource.contents {
                ResourceContents::Text(text) => inner["text"] = Value::String(text),
                ResourceContents::Blob(data) => inner["blob"] = Value::String(b64(&data)),
            }
            json!({ "type": "resource", "resource": inner })
        }
        Content::ResourceLink(link) => {
            let mut object = json!({ "type": "resource_link", "uri": link.uri, "name": link.name });
            if let Some(description) = link.description {
                object["description"] = Value::String(description);
            }
            if let Some(mime) = link.mime_type {
                object["mimeType"] = Value::String(mime);
            }
            object
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Blob, EmbeddedResource, ResourceLink};

    #[test]
    fn content_shapes() {
        let check = |item: Content, expect: Value| assert_eq!(content_json(item), expect);
        check(
            Content::Text("hi".into()),
            json!({"type":"text","text":"hi"}),
        );
        check(
            Content::Image(Blob {
                data: vec![1, 2, 3],
                mime_type: "image/png".into(),
            }),
            json!({"type":"image","data":"AQID","mimeType":"image/png"}),
        );
        check(
            Content::Audio(Blob {
                data: vec![],
                mime_type: "audio/wav".into(),
            }),
            json!({"type":"audio","data":"","mimeType":"audio/wav"}),
        );
        check(
            Content::Resource(EmbeddedResource {
                uri: "file:///a".into(),
                mime_type: Some("text/plain".into()),
                contents: ResourceContents::Text("t".into()),
            }),
            json!({"type":"resource","resource":{"uri":"file:///a","mimeType":"text/plain","text":"t"}}),
        );
        check(
            Content::Resource(EmbeddedResource {
                uri: "file:///b".into(),
                mime_type: None,
                contents: ResourceContents::Blob(vec![255]),
            }),
            json!({"type":"resource","resource":{"uri":"file:///b","blob":"/w=="}}),
        );
        check(
            Content::ResourceLink(ResourceLink {
                uri: "https://x".into(),
                name: "x".into(),
                description: None,
                mime_type: None,
            }),
            json!({"type":"resource_link","uri":"https://x","name":"x"}),
        );
    }
}
