//! Shared by the integration tests: an ADF validator for the subset
//! `markdown_to_adf` emits, and a tiny deterministic random generator.

#![allow(dead_code)]

use serde_json::{Map, Value};

/// Checks `doc` against the ADF rules Jira enforces for the nodes this crate
/// produces. Returns the first violation with its JSON path.
pub fn validate(doc: &Value) -> Result<(), String> {
    let map = doc.as_object().ok_or("doc is not an object")?;
    if map.get("type").and_then(Value::as_str) != Some("doc") {
        return Err("root type is not doc".into());
    }
    if map.get("version") != Some(&Value::from(1)) {
        return Err("doc version is not 1".into());
    }
    let content = content(map, "doc")?;
    for (i, block) in content.iter().enumerate() {
        let path = format!("content[{i}]");
        block_node(block, Parent::Doc, &path)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Parent {
    Doc,
    Quote,
    Item,
    Cell,
}

fn content<'a>(map: &'a Map<String, Value>, path: &str) -> Result<&'a Vec<Value>, String> {
    map.get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{path}: content is not an array"))
}

fn typed<'a>(node: &'a Value, path: &str) -> Result<(&'a Map<String, Value>, &'a str), String> {
    let map = node
        .as_object()
        .ok_or_else(|| format!("{path}: not an object"))?;
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{path}: no type"))?;
    Ok((map, kind))
}

fn block_node(node: &Value, parent: Parent, path: &str) -> Result<(), String> {
    let (map, kind) = typed(node, path)?;
    let allowed = match parent {
        Parent::Doc => &[
            "paragraph",
            "heading",
            "bulletList",
            "orderedList",
            "blockquote",
            "codeBlock",
            "rule",
            "table",
        ][..],
        Parent::Quote | Parent::Item => {
            &["paragraph", "bulletList", "orderedList", "codeBlock"][..]
        }
        Parent::Cell => &["paragraph"][..],
    };
    if !allowed.contains(&kind) {
        return Err(format!("{path}: {kind} not allowed here"));
    }
    match kind {
        "paragraph" => inline_content(map, path),
        "heading" => {
            let level = map
                .get("attrs")
                .and_then(|a| a.get("level"))
                .and_then(Value::as_u64);
            if !matches!(level, Some(1..=6)) {
                return Err(format!("{path}: heading level {level:?}"));
            }
            inline_content(map, path)
        }
        "bulletList" | "orderedList" => {
            if kind == "orderedList"
                && let Some(attrs) = map.get("attrs")
                && attrs.get("order").and_then(Value::as_u64).is_none()
            {
                return Err(format!("{path}: order is not a non-negative integer"));
            }
            let items = content(map, path)?;
            if items.is_empty() {
                return Err(format!("{path}: empty list"));
            }
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}.content[{i}]");
                let (item_map, item_kind) = typed(item, &path)?;
                if item_kind != "listItem" {
                    return Err(format!("{path}: {item_kind} in a list"));
                }
                let blocks = content(item_map, &path)?;
                match blocks
                    .first()
                    .map(|b| b.get("type").and_then(Value::as_str))
                {
                    Some(Some("paragraph")) => {}
                    other => return Err(format!("{path}: list item starts with {other:?}")),
                }
                for (j, block) in blocks.iter().enumerate() {
                    block_node(block, Parent::Item, &format!("{path}.content[{j}]"))?;
                }
            }
            Ok(())
        }
        "blockquote" => {
            let blocks = content(map, path)?;
            if blocks.is_empty() {
                return Err(format!("{path}: empty blockquote"));
            }
            for (i, block) in blocks.iter().enumerate() {
                block_node(block, Parent::Quote, &format!("{path}.content[{i}]"))?;
            }
            Ok(())
        }
        "codeBlock" => {
            if let Some(attrs) = map.get("attrs")
                && attrs.get("language").and_then(Value::as_str).is_none()
            {
                return Err(format!("{path}: language is not a string"));
            }
            for (i, text) in content(map, path)?.iter().enumerate() {
                let path = format!("{path}.content[{i}]");
                let (text_map, text_kind) = typed(text, &path)?;
                if text_kind != "text" {
                    return Err(format!("{path}: {text_kind} in a code block"));
                }
                if text_map.contains_key("marks") {
                    return Err(format!("{path}: marks in a code block"));
                }
                non_empty_text(text_map, &path)?;
            }
            Ok(())
        }
        "rule" => {
            if map
                .get("content")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
            {
                return Err(format!("{path}: rule with content"));
            }
            Ok(())
        }
        "table" => {
            let rows = content(map, path)?;
            if rows.is_empty() {
                return Err(format!("{path}: empty table"));
            }
            for (i, row) in rows.iter().enumerate() {
                let path = format!("{path}.content[{i}]");
                let (row_map, row_kind) = typed(row, &path)?;
                if row_kind != "tableRow" {
                    return Err(format!("{path}: {row_kind} in a table"));
                }
                let cells = content(row_map, &path)?;
                if cells.is_empty() {
                    return Err(format!("{path}: empty row"));
                }
                for (j, cell) in cells.iter().enumerate() {
                    let path = format!("{path}.content[{j}]");
                    let (cell_map, cell_kind) = typed(cell, &path)?;
                    if !matches!(cell_kind, "tableHeader" | "tableCell") {
                        return Err(format!("{path}: {cell_kind} in a row"));
                    }
                    let blocks = content(cell_map, &path)?;
                    if blocks.is_empty() {
                        return Err(format!("{path}: empty cell"));
                    }
                    for (k, block) in blocks.iter().enumerate() {
                        block_node(block, Parent::Cell, &format!("{path}.content[{k}]"))?;
                    }
                }
            }
            Ok(())
        }
        other => Err(format!("{path}: unexpected block {other}")),
    }
}

fn non_empty_text(map: &Map<String, Value>, path: &str) -> Result<(), String> {
    match map.get("text").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => Ok(()),
        _ => Err(format!("{path}: text node without text")),
    }
}

fn inline_content(map: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (i, node) in content(map, path)?.iter().enumerate() {
        let path = format!("{path}.content[{i}]");
        let (node_map, node_kind) = typed(node, &path)?;
        match node_kind {
            "text" => {
                non_empty_text(node_map, &path)?;
                marks(node_map, &path)?;
            }
            "hardBreak" => {}
            "mention" => {
                let id = node_map
                    .get("attrs")
                    .and_then(|a| a.get("id"))
                    .and_then(Value::as_str);
                if id.is_none_or(str::is_empty) {
                    return Err(format!("{path}: mention without id"));
                }
            }
            other => return Err(format!("{path}: unexpected inline {other}")),
        }
    }
    Ok(())
}

fn marks(map: &Map<String, Value>, path: &str) -> Result<(), String> {
    let Some(marks) = map.get("marks") else {
        return Ok(());
    };
    let marks = marks
        .as_array()
        .ok_or_else(|| format!("{path}: marks is not an array"))?;
    if marks.is_empty() {
        return Err(format!("{path}: empty marks array"));
    }
    let mut kinds = Vec::new();
    for mark in marks {
        let kind = mark
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path}: mark without type"))?;
        if !matches!(kind, "strong" | "em" | "strike" | "code" | "link") {
            return Err(format!("{path}: unexpected mark {kind}"));
        }
        if kind == "link" {
            let href = mark
                .get("attrs")
                .and_then(|a| a.get("href"))
                .and_then(Value::as_str);
            if href.is_none_or(str::is_empty) {
                return Err(format!("{path}: link without href"));
            }
        }
        if kinds.contains(&kind) {
            return Err(format!("{path}: duplicate {kind} mark"));
        }
        kinds.push(kind);
    }
    if kinds.contains(&"code") && kinds.iter().any(|k| !matches!(*k, "code" | "link")) {
        return Err(format!("{path}: code combined with {kinds:?}"));
    }
    Ok(())
}

/// xorshift64*: deterministic, dependency-free, good enough to vary inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Fragments that exercise Markdown syntax, escaping and Unicode.
const FRAGMENTS: &[&str] = &[
    "word",
    "other",
    "snake_case",
    "x",
    "42",
    "3.",
    "1)",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\n",
    "\n\n",
    "\n\n",
    "*",
    "**",
    "***",
    "_",
    "__",
    "`",
    "``",
    "```",
    "~",
    "~~",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "#",
    "## ",
    "- ",
    "* ",
    "+ ",
    "1. ",
    "7. ",
    "> ",
    "    ",
    "|",
    " | ",
    "---",
    "===",
    "!",
    "\\",
    "&",
    "&amp;",
    "&#42;",
    "&#10;",
    ":",
    ";",
    "\"",
    "'",
    "=",
    "-",
    ".",
    ",",
    "?",
    "é",
    "漢字",
    "😀",
    "\u{a0}",
    "\u{200b}",
    "\u{2003}",
    "ß",
    "[~accountid:5b10ac8d82e0]",
    "[~accountid:557058:f5-81]",
    "<br>",
    "<b>",
    "</b>",
    "<!-- c -->",
    "<https://ex.com/a_b>",
    "[t](https://ex.com/(x))",
    "![i](u.png)",
    "[r]",
    "[r]: /url",
    "| a | b |\n|---|---|\n",
    "```rust\n",
    "\n```\n",
    "~~~\n",
    "-\n",
    "  - ",
    "    - ",
    "\\\n",
    "  \n",
    "$",
    "%",
    "^",
    "{",
    "}",
    "@",
    "C:\\dir",
];

/// A random Markdown-ish string of up to `max_fragments` fragments.
pub fn random_markdown(rng: &mut Rng, max_fragments: usize) -> String {
    let count = rng.below(max_fragments + 1);
    (0..count).map(|_| *rng.pick(FRAGMENTS)).collect()
}

/// A random ADF node tree in the shape Jira returns, including node types
/// this crate does not know, wrong attribute types and plain garbage.
pub fn random_adf(rng: &mut Rng) -> Value {
    let blocks: Vec<Value> = (0..rng.below(6)).map(|_| random_block(rng, 0)).collect();
    serde_json::json!({"type": "doc", "version": 1, "content": blocks})
}

fn random_blocks(rng: &mut Rng, depth: usize, max: usize) -> Vec<Value> {
    (0..rng.below(max + 1))
        .map(|_| random_block(rng, depth + 1))
        .collect()
}

fn random_inlines(rng: &mut Rng, max: usize) -> Vec<Value> {
    (0..rng.below(max + 1))
        .map(|_| random_inline(rng))
        .collect()
}

fn random_block(rng: &mut Rng, depth: usize) -> Value {
    use serde_json::json;
    let leaf = depth > 4;
    let choice = if leaf { rng.below(4) } else { rng.below(22) };
    match choice {
        0 | 1 => json!({"type": "paragraph", "content": random_inlines(rng, 6)}),
        2 => {
            let level = rng
                .pick(&[json!(1), json!(3), json!(6), json!(0), json!(9), json!("2")])
                .clone();
            json!({"type": "heading", "attrs": {"level": level}, "content": random_inlines(rng, 4)})
        }
        3 => {
            let language = rng
                .pick(&[
                    json!("rust"),
                    json!(null),
                    json!("c++ x"),
                    json!("we`ird"),
                    json!("~~x"),
                    json!(7),
                ])
                .clone();
            let text: String = (0..rng.below(4))
                .map(|_| random_text(rng))
                .collect::<Vec<_>>()
                .join("\n");
            json!({"type": "codeBlock", "attrs": {"language": language}, "content": [{"type": "text", "text": text}]})
        }
        4 | 5 => {
            let kind = if rng.below(2) == 0 {
                "bulletList"
            } else {
                "orderedList"
            };
            let order = rng
                .pick(&[
                    json!(1),
                    json!(0),
                    json!(5),
                    json!(1_000_000_000_u64),
                    json!(-3),
                    json!("4"),
                ])
                .clone();
            // List items only hold what the ADF schema allows there: pulldown-cmark
            // mis-nests a quote ending in an empty loose-list item inside an item.
            let items: Vec<Value> = (0..rng.below(4))
                .map(|_| {
                    let blocks: Vec<Value> = random_blocks(rng, depth, 3)
                        .into_iter()
                        .filter(|b| {
                            b.get("type").and_then(Value::as_str).is_some_and(|t| {
                                matches!(
                                    t,
                                    "paragraph"
                                        | "bulletList"
                                        | "orderedList"
                                        | "codeBlock"
                                        | "mediaSingle"
                                        | "heading"
                                        | "rule"
                                )
                            })
                        })
                        .collect();
                    json!({"type": "listItem", "content": blocks})
                })
                .collect();
            json!({"type": kind, "attrs": {"order": order}, "content": items})
        }
        6 => json!({"type": "blockquote", "content": random_blocks(rng, depth, 3)}),
        7 => json!({"type": "rule"}),
        8 | 9 => {
            let rows: Vec<Value> = (0..rng.below(4))
                .map(|_| {
                    let cells: Vec<Value> = (0..rng.below(4))
                        .map(|_| {
                            let kind = if rng.below(3) == 0 { "tableHeader" } else { "tableCell" };
                            json!({"type": kind, "attrs": {"colspan": 2}, "content": random_blocks(rng, depth, 2)})
                        })
                        .collect();
                    json!({"type": "tableRow", "content": cells})
                })
                .collect();
            json!({"type": "table", "attrs": {"layout": "default"}, "content": rows})
        }
        10 => {
            let panel = rng.pick(&["info", "note", "warning", "error", "success", "custom"]);
            json!({"type": "panel", "attrs": {"panelType": panel}, "content": random_blocks(rng, depth, 3)})
        }
        11 => {
            json!({"type": "expand", "attrs": {"title": random_text(rng)}, "content": random_blocks(rng, depth, 2)})
        }
        12 => json!({"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
            {"type": "media", "attrs": {"type": "file", "id": "abc", "collection": "c", "alt": random_text(rng)}},
            {"type": "caption", "content": random_inlines(rng, 2)},
        ]}),
        13 => json!({"type": "mediaGroup", "content": [
            {"type": "media", "attrs": {"type": "external", "url": "https://i.example/x.png"}},
            {"type": "media", "attrs": {"type": "file", "id": "1"}},
        ]}),
        14 => json!({"type": "taskList", "attrs": {"localId": "t"}, "content": [
            {"type": "taskItem", "attrs": {"localId": "a", "state": "DONE"}, "content": random_inlines(rng, 3)},
            {"type": "taskItem", "attrs": {"localId": "b", "state": "TODO"}, "content": random_inlines(rng, 3)},
        ]}),
        15 => json!({"type": "blockCard", "attrs": {"url": "https://example.com/page?a=1&b=2"}}),
        16 => {
            json!({"type": "bodiedExtension", "attrs": {"extensionKey": "k"}, "content": random_blocks(rng, depth, 2)})
        }
        17 => json!({"type": "futureBlock", "attrs": {"text": random_text(rng)}}),
        18 => {
            json!({"type": "nestedExpand", "attrs": {"title": null}, "content": random_blocks(rng, depth, 2)})
        }
        19 => random_inline(rng),
        20 => rng
            .pick(&[
                json!(null),
                json!(42),
                json!("loose string"),
                json!([]),
                json!({}),
                json!({"type": 5}),
            ])
            .clone(),
        _ => {
            json!({"type": "decisionList", "content": [{"type": "decisionItem", "attrs": {"state": "DECIDED"}, "content": random_inlines(rng, 3)}]})
        }
    }
}

fn random_inline(rng: &mut Rng) -> Value {
    use serde_json::json;
    match rng.below(16) {
        0..=6 => {
            let mut marks = Vec::new();
            for _ in 0..rng.below(4) {
                marks.push(
                    rng.pick(&[
                        json!({"type": "strong"}),
                        json!({"type": "em"}),
                        json!({"type": "strike"}),
                        json!({"type": "code"}),
                        json!({"type": "underline"}),
                        json!({"type": "textColor", "attrs": {"color": "#ff0000"}}),
                        json!({"type": "link", "attrs": {"href": "https://example.com/a_(b)"}}),
                        json!({"type": "link", "attrs": {"href": "https://example.com/x y", "title": "T \"q\""}}),
                        json!({"type": "link", "attrs": {}}),
                        json!({"type": "subsup", "attrs": {"type": "sub"}}),
                    ])
                    .clone(),
                );
            }
            json!({"type": "text", "text": random_text(rng), "marks": marks})
        }
        7 => json!({"type": "hardBreak"}),
        8 => {
            let id = rng.pick(&[
                "5b10ac8d82e05b22cc7d4ef5",
                "557058:f58131cb-b67d",
                "bad id]",
                "",
            ]);
            json!({"type": "mention", "attrs": {"id": id, "text": "@Jane Doe", "accessLevel": ""}})
        }
        9 => {
            json!({"type": "emoji", "attrs": {"shortName": ":grinning:", "id": "1f600", "text": "😀"}})
        }
        10 => {
            json!({"type": "inlineCard", "attrs": {"url": rng.pick(&["https://ex.com/browse/PROJ-1", "https://ex.com/a b", "not a url"])}})
        }
        11 => {
            json!({"type": "date", "attrs": {"timestamp": rng.pick(&[json!("1700000000000"), json!(0), json!("garbage"), json!(null)])}})
        }
        12 => {
            json!({"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue", "localId": "s"}})
        }
        13 => {
            json!({"type": "mediaInline", "attrs": {"type": "file", "id": "m", "alt": "report.pdf"}})
        }
        14 => {
            json!({"type": "inlineFuture", "content": [{"type": "text", "text": random_text(rng)}]})
        }
        _ => json!({"type": "text", "text": ""}),
    }
}

fn random_text(rng: &mut Rng) -> String {
    random_markdown(rng, 6)
}

/// Every character of every text node in `node`, in document order.
pub fn texts(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("text") {
                out.push(text.clone());
            }
            if let Some(content) = map.get("content") {
                texts(content, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| texts(item, out)),
        _ => {}
    }
}
