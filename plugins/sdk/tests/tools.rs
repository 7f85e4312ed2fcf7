//! `#[tool]` and `export_plugin!` as a plugin author uses them.

use toolhost_sdk::{Context, JsonSchema, Reply, Result, Serialize, Tool, ToolError, tool};

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Greet {
    /// Who to greet.
    name: String,
    /// How many exclamation marks.
    #[serde(default)]
    excitement: u8,
}

/// Say hello to someone.
///
/// Uses the configured greeting.
#[tool(read_only, idempotent, title = "Greet")]
fn greet(cx: &Context, args: Greet) -> Result<String> {
    let greeting = cx.config("greeting").unwrap_or_else(|| "Hello".into());
    Ok(format!(
        "{greeting}, {}{}",
        args.name,
        "!".repeat(args.excitement as usize)
    ))
}

#[derive(serde::Deserialize, JsonSchema)]
struct Count {
    /// Text to count the words of.
    text: String,
}

#[derive(Serialize, JsonSchema)]
struct Words {
    /// How many words.
    words: usize,
}

/// Count the words in a text.
#[tool(read_only, name = "count_words")]
fn count(args: Count) -> Result<Reply<Words>> {
    if args.text.is_empty() {
        return Err(ToolError::InvalidArguments("text is empty".into()));
    }
    let words = args.text.split_whitespace().count();
    Ok(Reply::new(format!("{words} words"), Words { words }))
}

toolhost_sdk::export_plugin!(greet, count);

#[test]
fn the_doc_comment_and_types_make_the_spec() {
    let spec = greet::spec();
    assert_eq!(spec.name, "greet");
    assert_eq!(spec.title, Some("Greet"));
    assert_eq!(
        spec.description,
        "Say hello to someone.\n\nUses the configured greeting."
    );
    assert!(spec.hints.read_only && spec.hints.idempotent && !spec.hints.open_world);
    assert_eq!(
        spec.input_schema["properties"]["name"]["description"],
        "Who to greet."
    );
    assert_eq!(spec.input_schema["required"], serde_json::json!(["name"]));
    assert!(spec.output_schema.is_none());

    let spec = count::spec();
    assert_eq!(spec.name, "count_words");
    let output = spec.output_schema.expect("a reply has an output schema");
    assert_eq!(
        output["properties"]["words"]["description"],
        "How many words."
    );
}

#[test]
fn calls_parse_arguments_and_run_the_body() {
    let cx = Context::for_test(&[("greeting", "Hi")]);
    let out = greet::call(&cx, r#"{"name": "Ada", "excitement": 2}"#).expect("greets");
    assert_eq!(out.text, "Hi, Ada!!");
    let out = count::call(&cx, r#"{"text": "one two three"}"#).expect("counts");
    assert_eq!(out.structured, Some(serde_json::json!({"words": 3})));
    assert!(matches!(
        greet::call(&cx, r#"{"name": "Ada", "shout": true}"#),
        Err(ToolError::InvalidArguments(_))
    ));
    assert!(matches!(
        count::call(&cx, r#"{"text": ""}"#),
        Err(ToolError::InvalidArguments(m)) if m == "text is empty"
    ));
    // The body stays callable directly.
    assert_eq!(
        greet::run(
            &cx,
            Greet {
                name: "Bo".into(),
                excitement: 0
            }
        )
        .expect("run"),
        "Hi, Bo"
    );
}
