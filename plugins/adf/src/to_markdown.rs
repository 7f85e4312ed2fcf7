//! ADF → Markdown, block structure.
//!
//! Input is whatever Jira returns, which is not always what the ADF schema
//! promises: unknown node types, missing attributes, inline nodes where
//! blocks belong. The renderer therefore never fails; anything it does not
//! recognise is reduced to its text so no words are lost. Structure Markdown
//! lacks is mapped to the closest readable form (panels to quotes, expands to
//! a bold title, media to placeholders).

use serde_json::{Map, Value};

use crate::inline::{Inline, Mark, normalize_marks};
use crate::render_inline::{self, Context, Raw};
use crate::syntax::{is_mentionable_id, mention_markdown};

/// Nesting beyond this is rendered as plain text, so hostile or runaway
/// documents cannot exhaust the (small, in a component) stack.
const MAX_DEPTH: usize = 64;

/// CommonMark's limit for a list number (nine digits).
const MAX_LIST_NUMBER: u64 = 999_999_999;

/// Renders an ADF document as Markdown.
///
/// Accepts a `doc` node, any other single node, or an array of nodes, and
/// never fails: unknown nodes contribute their text. The result has no
/// trailing newline.
#[must_use]
pub fn adf_to_markdown(doc: &Value) -> String {
    let nodes: &[Value] = match doc {
        Value::Array(nodes) => nodes,
        Value::Object(map) if str_field(map, "type") == Some("doc") => map
            .get("content")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        Value::Object(_) => std::slice::from_ref(doc),
        _ => &[],
    };
    join_blocks(&render_blocks(nodes, 0))
}

/// What a rendered block is, as far as its neighbours need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Paragraph,
    List {
        ordered: bool,
        /// Written with the alternate marker (`*` or `)`), which is how two
        /// adjacent lists stay two lists.
        alternate: bool,
        /// Whether it may directly follow a paragraph line: CommonMark only
        /// lets a list interrupt a paragraph if it starts at 1 and its first
        /// item is not empty.
        interrupts: bool,
    },
    Rule,
    /// A fenced code block, which may directly follow a paragraph line.
    Code,
    Other,
}

struct Block {
    markdown: String,
    kind: Kind,
}

fn join_blocks(blocks: &[Block]) -> String {
    let parts: Vec<&str> = blocks.iter().map(|b| b.markdown.as_str()).collect();
    parts.join("\n\n")
}

/// Renders sibling blocks, dropping the ones that render to nothing.
fn render_blocks(nodes: &[Value], depth: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    render_blocks_into(nodes, depth, &mut blocks);
    blocks
}

fn render_blocks_into(nodes: &[Value], depth: usize, blocks: &mut Vec<Block>) {
    let mut i = 0;
    while i < nodes.len() {
        // Inline nodes where a block belongs are gathered into a paragraph.
        let run = nodes[i..].iter().take_while(|n| is_inline_node(n)).count();
        if run > 0 {
            let markdown = render_inline(&nodes[i..i + run], depth, Context::Block);
            push_block(blocks, markdown, Kind::Paragraph);
            i += run;
            continue;
        }
        let node = &nodes[i];
        i += 1;
        if depth > MAX_DEPTH {
            let markdown = plain_paragraph(node);
            push_block(blocks, markdown, Kind::Other);
            continue;
        }
        if let Some(content) = wrapped_content(node) {
            // Rendered in place, so their blocks meet their real neighbours
            // (two lists in a row must not merge, for one).
            render_blocks_into(content, depth + 1, blocks);
            continue;
        }
        let ordered = match node_type(node) {
            "bulletList" => Some(false),
            "orderedList" => Some(true),
            _ => None,
        };
        if let Some(ordered) = ordered {
            let alternate = matches!(
                blocks.last(),
                Some(Block { kind: Kind::List { ordered: o, alternate: false, .. }, .. }) if *o == ordered
            );
            if let Some(block) = render_list(node, ordered, alternate, depth) {
                blocks.push(block);
            }
            continue;
        }
        let (markdown, kind) = render_block(node, depth);
        push_block(blocks, markdown, kind);
    }
}

/// The content of nodes that only wrap other blocks from Markdown's point of
/// view: unknown containers (extensions, future node types) and structure
/// found out of place.
fn wrapped_content(node: &Value) -> Option<&[Value]> {
    let map = node.as_object()?;
    let content = content_of(map);
    let wraps = match str_field(map, "type").unwrap_or_default() {
        "listItem" | "taskItem" | "decisionItem" | "tableRow" | "tableCell" | "tableHeader" => true,
        "paragraph" | "heading" | "codeBlock" | "blockquote" | "rule" | "table" | "panel"
        | "expand" | "nestedExpand" | "mediaSingle" | "mediaGroup" | "media" | "taskList"
        | "decisionList" | "blockCard" | "embedCard" | "bulletList" | "orderedList" => false,
        _ => !content.is_empty(),
    };
    wraps.then_some(content)
}

fn push_block(blocks: &mut Vec<Block>, markdown: String, kind: Kind) {
    if !markdown.is_empty() {
        blocks.push(Block { markdown, kind });
    }
}

fn render_block(node: &Value, depth: usize) -> (String, Kind) {
    let Some(map) = node.as_object() else {
        return (String::new(), Kind::Other);
    };
    let content = content_of(map);
    match str_field(map, "type").unwrap_or_default() {
        "paragraph" => (
            render_inline(content, depth, Context::Block),
            Kind::Paragraph,
        ),
        "heading" => (render_heading(map, depth), Kind::Other),
        "codeBlock" => (render_code_block(map), Kind::Code),
        "blockquote" => (
            quote(&join_blocks(&render_blocks(content, depth + 1))),
            Kind::Other,
        ),
        "rule" => ("---".to_owned(), Kind::Rule),
        "table" => (render_table(content, depth), Kind::Other),
        "panel" => (render_panel(map, depth), Kind::Other),
        "expand" | "nestedExpand" => (render_expand(map, depth), Kind::Other),
        "mediaSingle" | "mediaGroup" => (render_media_block(content, depth), Kind::Other),
        "media" => (media_markdown(map), Kind::Other),
        "taskList" | "decisionList" => (render_task_list(map, depth), Kind::Other),
        "blockCard" | "embedCard" => (render_card(map), Kind::Paragraph),
        _ => render_unknown(map),
    }
}

/// Unknown blocks without content (extensions, future node types) keep
/// whatever text they carry.
fn render_unknown(map: &Map<String, Value>) -> (String, Kind) {
    let text = str_field(map, "text")
        .or_else(|| attr_str(map, "text"))
        .unwrap_or_default();
    let items = text_items(text, &[]);
    (
        render_inline::render(items, Context::Block),
        Kind::Paragraph,
    )
}

fn render_heading(map: &Map<String, Value>, depth: usize) -> String {
    let level = attrs(map)
        .and_then(|a| a.get("level"))
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 6);
    let hashes = "#".repeat(usize::try_from(level).unwrap_or(1));
    let text = render_inline(content_of(map), depth, Context::Heading);
    if text.is_empty() {
        hashes
    } else {
        format!("{hashes} {text}")
    }
}

fn render_code_block(map: &Map<String, Value>) -> String {
    let mut code = String::new();
    for node in content_of(map) {
        match node.as_object() {
            Some(m) if str_field(m, "type") == Some("hardBreak") => code.push('\n'),
            Some(m) => code.push_str(str_field(m, "text").unwrap_or_default()),
            None => {}
        }
    }
    // Only the first word: the rest of a fence's info string is not a
    // language, and spaces would change how the fence parses.
    let language = attr_str(map, "language")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default();
    let fence_char = if language.contains('`') { '~' } else { '`' };
    let mut language = render_inline::escape_info_string(language);
    if language.starts_with(fence_char) {
        // Leading spaces are trimmed from the info string, fence characters
        // would lengthen the fence.
        language.insert(0, ' ');
    }
    let longest_run = code
        .lines()
        .map(|line| {
            line.trim_start()
                .chars()
                .take_while(|&c| c == fence_char)
                .count()
        })
        .max()
        .unwrap_or(0);
    let fence = fence_char.to_string().repeat(longest_run.max(2) + 1);
    if code.is_empty() {
        format!("{fence}{language}\n{fence}")
    } else {
        format!("{fence}{language}\n{code}\n{fence}")
    }
}

fn render_list(node: &Value, ordered: bool, alternate: bool, depth: usize) -> Option<Block> {
    let map = node.as_object()?;
    let items = content_of(map);
    if items.is_empty() {
        return None;
    }
    let rendered: Vec<Vec<Block>> = items
        .iter()
        .map(|item| match item.as_object() {
            Some(m) if str_field(m, "type") == Some("listItem") => {
                render_blocks(content_of(m), depth + 1)
            }
            _ => render_blocks(std::slice::from_ref(item), depth + 1),
        })
        .collect();
    // ADF has no loose/tight distinction; tight reads better wherever it
    // parses back to the same structure.
    let tight = rendered.iter().all(|blocks| is_tight_item(blocks));
    // Only the first number counts, so later ones may saturate.
    let start = attrs(map)
        .and_then(|a| a.get("order"))
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(MAX_LIST_NUMBER);
    let bullet = if alternate { "*" } else { "-" };
    let delimiter = if alternate { ')' } else { '.' };
    let mut out = Vec::with_capacity(rendered.len());
    for (n, blocks) in rendered.iter().enumerate() {
        let marker = if ordered {
            let number = start.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            format!("{}{delimiter}", number.min(MAX_LIST_NUMBER))
        } else {
            bullet.to_owned()
        };
        out.push(render_item(&marker, blocks, tight));
    }
    // The first line must carry content: a bare marker cannot interrupt.
    let first_line_has_content = rendered
        .first()
        .and_then(|blocks| blocks.first())
        .is_some_and(|b| !starts_on_own_line(b));
    let markdown = out.join(if tight { "\n" } else { "\n\n" });
    Some(Block {
        markdown,
        kind: Kind::List {
            ordered,
            alternate,
            interrupts: first_line_has_content && (!ordered || start == 1),
        },
    })
}

/// Whether an item's blocks parse back the same without blank lines between
/// them: after a paragraph line only a fence or an interrupting list starts a
/// new block (anything else would continue the paragraph).
fn is_tight_item(blocks: &[Block]) -> bool {
    let Some((first, rest)) = blocks.split_first() else {
        return true;
    };
    matches!(first.kind, Kind::Paragraph | Kind::List { .. } | Kind::Code)
        && rest.iter().all(|b| {
            matches!(
                b.kind,
                Kind::List {
                    interrupts: true,
                    ..
                } | Kind::Code
            )
        })
}

fn render_item(marker: &str, blocks: &[Block], tight: bool) -> String {
    let mut body = String::new();
    for (n, block) in blocks.iter().enumerate() {
        if n > 0 {
            body.push_str(if tight { "\n" } else { "\n\n" });
        }
        body.push_str(&block.markdown);
    }
    if body.is_empty() {
        return marker.to_owned();
    }
    let indent = " ".repeat(marker.len() + 1);
    let own_line = blocks.first().is_some_and(starts_on_own_line);
    let mut out = String::with_capacity(body.len() + 16);
    out.push_str(marker);
    if own_line {
        out.push('\n');
        out.push_str(&indent_lines(&body, &indent));
        return out;
    }
    for (n, line) in body.split('\n').enumerate() {
        if n == 0 {
            out.push(' ');
            out.push_str(line);
        } else {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&indent);
                out.push_str(line);
            }
        }
    }
    out
}

/// `- ---` would be a rule rather than an item holding one, and so would
/// `- - -`, three empty items nested on one line; blocks that start with a
/// rule or list marker (including containers starting with one) begin on
/// the line after the marker instead.
fn starts_on_own_line(block: &Block) -> bool {
    matches!(block.kind, Kind::Rule | Kind::List { .. })
        || block.markdown.starts_with(['-', '*', '_', '+'])
}

fn indent_lines(text: &str, indent: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{indent}{line}")
            }
        })
        .collect();
    lines.join("\n")
}

fn quote(body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = body
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect();
    lines.join("\n")
}

fn render_table(rows: &[Value], depth: usize) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .filter_map(Value::as_object)
        .map(|row| {
            content_of(row)
                .iter()
                .map(|cell| render_cell(cell, depth))
                .collect::<Vec<_>>()
        })
        .filter(|cells| !cells.is_empty())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    if columns == 0 {
        return String::new();
    }
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for n in 0..columns {
            let cell = cells.get(n).map_or("", String::as_str);
            out.push(' ');
            out.push_str(cell);
            out.push_str(" |");
        }
        out
    };
    // GFM tables always have a header row, so the first row serves as one.
    let mut lines = Vec::with_capacity(rows.len() + 1);
    let mut rows = rows.iter();
    if let Some(header) = rows.next() {
        lines.push(line(header));
    }
    lines.push(format!("|{}", " --- |".repeat(columns)));
    lines.extend(rows.map(|cells| line(cells)));
    lines.join("\n")
}

/// GFM cells hold one line of inline content, so block content is joined
/// with `<br>` and anything that is not a paragraph or heading is reduced to
/// its text.
fn render_cell(cell: &Value, depth: usize) -> String {
    let Some(map) = cell.as_object() else {
        return String::new();
    };
    let mut items: Vec<Inline<Raw>> = Vec::new();
    for block in content_of(map) {
        if !items.is_empty() {
            items.push(Inline::Break);
        }
        match block.as_object() {
            Some(b) if matches!(str_field(b, "type"), Some("paragraph" | "heading")) => {
                inline_items(content_of(b), depth + 1, &mut items);
            }
            Some(_) if is_inline_node(block) => {
                inline_items(std::slice::from_ref(block), depth + 1, &mut items)
            }
            _ => items.extend(text_items(&plain_text(block), &[])),
        }
    }
    render_inline::render(items, Context::TableCell)
}

/// Panels read as a quote opened by their type in bold, `> **Note:** …`.
fn render_panel(map: &Map<String, Value>, depth: usize) -> String {
    let label = match attr_str(map, "panelType").unwrap_or_default() {
        "info" => "Info",
        "warning" => "Warning",
        "error" => "Error",
        "success" => "Success",
        "tip" => "Tip",
        _ => "Note",
    };
    let label = format!("**{label}:**");
    let blocks = render_blocks(content_of(map), depth + 1);
    let body = match blocks.split_first() {
        Some((first, rest)) if first.kind == Kind::Paragraph => {
            let mut body = format!("{label} {}", first.markdown);
            if !rest.is_empty() {
                body.push_str("\n\n");
                body.push_str(&join_blocks(rest));
            }
            body
        }
        Some(_) => format!("{label}\n\n{}", join_blocks(&blocks)),
        None => label,
    };
    quote(&body)
}

/// Expands have no Markdown equivalent; their title in bold followed by
/// their content keeps everything readable.
fn render_expand(map: &Map<String, Value>, depth: usize) -> String {
    let title = attr_str(map, "title").unwrap_or_default();
    let title = render_inline::render(text_items(title, &[Mark::Strong]), Context::Block);
    let body = join_blocks(&render_blocks(content_of(map), depth + 1));
    match (title.is_empty(), body.is_empty()) {
        (true, _) => body,
        (false, true) => title,
        (false, false) => format!("{title}\n\n{body}"),
    }
}

fn render_media_block(content: &[Value], depth: usize) -> String {
    let mut placeholders = Vec::new();
    let mut caption = String::new();
    for node in content {
        let Some(map) = node.as_object() else {
            continue;
        };
        match str_field(map, "type") {
            Some("media" | "mediaInline") => placeholders.push(media_markdown(map)),
            Some("caption") => caption = render_inline(content_of(map), depth + 1, Context::Block),
            _ => {
                let text = render_inline(std::slice::from_ref(node), depth + 1, Context::Block);
                if !text.is_empty() {
                    placeholders.push(text);
                }
            }
        }
    }
    let mut out = placeholders.join(" ");
    if !caption.is_empty() {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&caption);
    }
    out
}

fn media_markdown(map: &Map<String, Value>) -> String {
    render_inline::media_placeholder(
        attr_str(map, "type"),
        attr_str(map, "url"),
        attr_str(map, "alt"),
    )
}

/// Jira action items and decisions as a Markdown task list.
fn render_task_list(map: &Map<String, Value>, depth: usize) -> String {
    let mut lines = Vec::new();
    for item in content_of(map) {
        let Some(m) = item.as_object() else { continue };
        match str_field(m, "type") {
            Some("taskList" | "decisionList") if depth < MAX_DEPTH => {
                let nested = render_task_list(m, depth + 1);
                if !nested.is_empty() {
                    lines.push(indent_lines(&nested, "  "));
                }
            }
            kind => {
                let marker = match (kind, attr_str(m, "state")) {
                    (Some("taskItem"), Some("DONE")) => "- [x]",
                    (Some("taskItem"), _) => "- [ ]",
                    _ => "-",
                };
                let text = render_inline(content_of(m), depth + 1, Context::Block);
                let text = text.replace('\n', "\n  ");
                lines.push(if text.is_empty() {
                    marker.to_owned()
                } else {
                    format!("{marker} {text}")
                });
            }
        }
    }
    lines.join("\n")
}

fn render_card(map: &Map<String, Value>) -> String {
    let url = attr_str(map, "url").unwrap_or_default();
    render_inline::render(link_items(url), Context::Block)
}

fn render_inline(nodes: &[Value], depth: usize, context: Context) -> String {
    let mut items = Vec::new();
    inline_items(nodes, depth, &mut items);
    render_inline::render(items, context)
}

/// Flattens ADF inline nodes into the shared inline model.
fn inline_items(nodes: &[Value], depth: usize, out: &mut Vec<Inline<Raw>>) {
    for node in nodes {
        let Some(map) = node.as_object() else {
            continue;
        };
        match str_field(map, "type").unwrap_or_default() {
            "text" => {
                let text = str_field(map, "text").unwrap_or_default();
                out.extend(text_items(text, &marks_of(map)));
            }
            "hardBreak" => out.push(Inline::Break),
            "mention" => match attr_str(map, "id") {
                Some(id) if is_mentionable_id(id) => out.push(Inline::Atom(Raw {
                    markdown: mention_markdown(id),
                    shortcut_reference: true,
                })),
                _ => out.extend(text_items(attr_str(map, "text").unwrap_or_default(), &[])),
            },
            "emoji" => {
                let text = attr_str(map, "text")
                    .filter(|t| !t.is_empty())
                    .or_else(|| attr_str(map, "shortName"))
                    .unwrap_or_default();
                out.extend(text_items(text, &[]));
            }
            "inlineCard" => out.extend(link_items(attr_str(map, "url").unwrap_or_default())),
            "date" => {
                let date = attrs(map).and_then(|a| a.get("timestamp")).map(format_date);
                out.extend(text_items(&date.unwrap_or_default(), &[]));
            }
            "mediaInline" | "media" => out.push(Inline::Atom(Raw {
                markdown: media_markdown(map),
                shortcut_reference: false,
            })),
            _ => {
                if let Some(text) = str_field(map, "text") {
                    out.extend(text_items(text, &marks_of(map)));
                } else if !content_of(map).is_empty() {
                    if depth < MAX_DEPTH {
                        inline_items(content_of(map), depth + 1, out);
                    } else {
                        out.extend(text_items(&plain_text(node), &[]));
                    }
                } else {
                    // status, placeholder and unknown atoms carry attrs.text.
                    out.extend(text_items(attr_str(map, "text").unwrap_or_default(), &[]));
                }
            }
        }
    }
}

/// Text with newlines turned into hard breaks, which is how Jira shows them.
fn text_items(text: &str, marks: &[Mark]) -> Vec<Inline<Raw>> {
    let mut items = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            items.push(Inline::Break);
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.is_empty() {
            items.push(Inline::text(line, marks.to_vec()));
        }
    }
    items
}

fn link_items(url: &str) -> Vec<Inline<Raw>> {
    let link = Mark::Link {
        href: url.to_owned(),
        title: None,
    };
    text_items(url, &[link])
}

/// The marks Markdown can express; the rest (underline, colours, …) are
/// dropped, keeping their text.
fn marks_of(map: &Map<String, Value>) -> Vec<Mark> {
    let mut marks: Vec<Mark> = map
        .get("marks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|mark| match str_field(mark, "type")? {
            "strong" => Some(Mark::Strong),
            "em" => Some(Mark::Em),
            "strike" => Some(Mark::Strike),
            "code" => Some(Mark::Code),
            "link" => {
                let href = attr_str(mark, "href").filter(|h| !h.is_empty())?;
                let title = attr_str(mark, "title").filter(|t| !t.is_empty());
                Some(Mark::Link {
                    href: href.to_owned(),
                    title: title.map(str::to_owned),
                })
            }
            _ => None,
        })
        .collect();
    normalize_marks(&mut marks);
    marks
}

/// Jira dates are UTC midnight in milliseconds, as a string or a number.
fn format_date(timestamp: &Value) -> String {
    let millis = match timestamp {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        // `as` saturates, so a fractional or absurd timestamp still renders
        // as some date rather than failing.
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    };
    let Some(millis) = millis else {
        return timestamp.as_str().unwrap_or_default().to_owned();
    };
    let (year, month, day) = civil_from_days(millis.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), to avoid a date-time dependency for one conversion.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// A node's text as paragraphs, gathered without recursion.
fn plain_paragraph(node: &Value) -> String {
    render_inline::render(text_items(&plain_text(node), &[]), Context::Block)
}

/// All text below `node`, one line per block, walked with an explicit stack
/// so depth does not matter.
fn plain_text(node: &Value) -> String {
    let mut out = String::new();
    let mut stack = vec![node];
    while let Some(value) = stack.pop() {
        let Some(map) = value.as_object() else {
            continue;
        };
        if let Some(text) = str_field(map, "text") {
            out.push_str(text);
        } else if let Some(text) = attr_str(map, "text") {
            out.push_str(text);
        } else if str_field(map, "type") == Some("hardBreak") {
            out.push('\n');
        }
        let content = content_of(map);
        if !content.is_empty() {
            if !is_inline_node(value) && !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            stack.extend(content.iter().rev());
        }
    }
    out
}

/// Inline node types, plus anything carrying its own text.
fn is_inline_node(node: &Value) -> bool {
    let Some(map) = node.as_object() else {
        return false;
    };
    matches!(
        str_field(map, "type"),
        Some(
            "text"
                | "hardBreak"
                | "mention"
                | "emoji"
                | "inlineCard"
                | "date"
                | "status"
                | "mediaInline"
                | "placeholder"
                | "inlineExtension"
        )
    ) || str_field(map, "text").is_some()
}

fn node_type(node: &Value) -> &str {
    node.as_object()
        .and_then(|m| str_field(m, "type"))
        .unwrap_or_default()
}

fn content_of(map: &Map<String, Value>) -> &[Value] {
    map.get("content")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn attrs(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    map.get("attrs").and_then(Value::as_object)
}

fn attr_str<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attrs(map).and_then(|a| a.get(key)).and_then(Value::as_str)
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(content: Value) -> Value {
        json!({"type": "doc", "version": 1, "content": content})
    }

    fn p(text: &str) -> Value {
        json!({"type": "paragraph", "content": [{"type": "text", "text": text}]})
    }

    fn md(content: Value) -> String {
        adf_to_markdown(&doc(content))
    }

    #[test]
    fn empty_and_odd_inputs() {
        assert_eq!(
            adf_to_markdown(&json!({"type": "doc", "version": 1, "content": []})),
            ""
        );
        assert_eq!(adf_to_markdown(&json!(null)), "");
        assert_eq!(adf_to_markdown(&json!("text")), "");
        assert_eq!(adf_to_markdown(&json!([p("a"), p("b")])), "a\n\nb");
        assert_eq!(adf_to_markdown(&p("solo")), "solo");
        assert_eq!(md(json!([{"type": "paragraph"}, 5, {"content": "x"}])), "");
    }

    #[test]
    fn headings_clamp_their_level() {
        let h = |level: Value| json!({"type": "heading", "attrs": {"level": level}, "content": [{"type": "text", "text": "T #1"}]});
        assert_eq!(md(json!([h(json!(2))])), r"## T \#1");
        assert_eq!(md(json!([h(json!(9))])), r"###### T \#1");
        assert_eq!(md(json!([h(json!("x"))])), r"# T \#1");
        assert_eq!(
            md(json!([{"type": "heading", "attrs": {"level": 3}}])),
            "###"
        );
    }

    #[test]
    fn code_blocks_choose_a_safe_fence() {
        let code = |text: &str, lang: Value| json!({"type": "codeBlock", "attrs": {"language": lang}, "content": [{"type": "text", "text": text}]});
        assert_eq!(
            md(json!([code("fn main() {}", json!("rust"))])),
            "```rust\nfn main() {}\n```"
        );
        assert_eq!(
            md(json!([code("```\nx", json!(null))])),
            "````\n```\nx\n````"
        );
        assert_eq!(md(json!([code("x", json!("c++ extra"))])), "```c++\nx\n```");
        assert_eq!(md(json!([code("x", json!("we`ird"))])), "~~~we`ird\nx\n~~~");
        assert_eq!(md(json!([{"type": "codeBlock"}])), "```\n```");
    }

    #[test]
    fn lists_nest_and_number() {
        let item = |content: Value| json!({"type": "listItem", "content": content});
        let list = json!({"type": "orderedList", "attrs": {"order": 3}, "content": [
            item(json!([p("three"), {"type": "bulletList", "content": [item(json!([p("nested")]))]}])),
            item(json!([p("four")])),
        ]});
        assert_eq!(md(json!([list])), "3. three\n   - nested\n4. four");
    }

    #[test]
    fn loose_lists_when_items_hold_more_than_a_paragraph() {
        let item = |content: Value| json!({"type": "listItem", "content": content});
        let list = json!({"type": "bulletList", "content": [item(json!([p("a"), p("more")])), item(json!([p("b")]))]});
        assert_eq!(md(json!([list])), "- a\n\n  more\n\n- b");
        // A fence may follow a paragraph line directly.
        let code = json!({"type": "codeBlock", "content": [{"type": "text", "text": "x"}]});
        let list = json!({"type": "bulletList", "content": [item(json!([p("a"), code])), item(json!([p("b")]))]});
        assert_eq!(md(json!([list])), "- a\n  ```\n  x\n  ```\n- b");
    }

    #[test]
    fn adjacent_lists_alternate_markers() {
        let list = |kind: &str| json!({"type": kind, "content": [{"type": "listItem", "content": [p("x")]}]});
        assert_eq!(
            md(json!([
                list("bulletList"),
                list("bulletList"),
                list("bulletList"),
                list("orderedList"),
                list("orderedList")
            ])),
            "- x\n\n* x\n\n- x\n\n1. x\n\n1) x"
        );
    }

    #[test]
    fn nested_list_that_cannot_interrupt_a_paragraph_gets_a_blank_line() {
        let item = |content: Value| json!({"type": "listItem", "content": content});
        let nested = json!({"type": "orderedList", "attrs": {"order": 5}, "content": [item(json!([p("five")]))]});
        let list = json!({"type": "bulletList", "content": [item(json!([p("a"), nested]))]});
        assert_eq!(md(json!([list])), "- a\n\n  5. five");
    }

    #[test]
    fn quotes_prefix_every_line() {
        let quote = json!({"type": "blockquote", "content": [p("a"), p("b")]});
        assert_eq!(md(json!([quote])), "> a\n>\n> b");
    }

    #[test]
    fn panels_become_labelled_quotes() {
        let panel = json!({"type": "panel", "attrs": {"panelType": "warning"}, "content": [p("Careful"), p("More")]});
        assert_eq!(md(json!([panel])), "> **Warning:** Careful\n>\n> More");
        let panel = json!({"type": "panel", "attrs": {"panelType": "custom"}, "content": []});
        assert_eq!(md(json!([panel])), "> **Note:**");
    }

    #[test]
    fn tables_pad_rows_and_escape_pipes() {
        let cell = |kind: &str, text: &str| json!({"type": kind, "content": [p(text)]});
        let table = json!({"type": "table", "content": [
            {"type": "tableRow", "content": [cell("tableHeader", "a|b"), cell("tableHeader", "c")]},
            {"type": "tableRow", "content": [cell("tableCell", "1")]},
            {"type": "tableRow", "content": [cell("tableCell", "x"), {"type": "tableCell", "content": [p("y"), p("z")]}]},
        ]});
        let media = json!({"type": "table", "content": [{"type": "tableRow", "content": [
            {"type": "tableCell", "content": [{"type": "paragraph", "content": [
                {"type": "mediaInline", "attrs": {"type": "file", "alt": "a|b.png"}}
            ]}]}
        ]}]});
        assert_eq!(md(json!([media])), "| [attachment: a\\|b.png] |\n| --- |");
        assert_eq!(
            md(json!([table])),
            "| a\\|b | c |\n| --- | --- |\n| 1 |  |\n| x | y<br>z |"
        );
    }

    #[test]
    fn expand_media_and_cards() {
        let expand =
            json!({"type": "expand", "attrs": {"title": "Details"}, "content": [p("inside")]});
        assert_eq!(md(json!([expand])), "**Details**\n\ninside");
        let media = json!({"type": "mediaSingle", "content": [{"type": "media", "attrs": {"type": "file", "id": "1"}}]});
        assert_eq!(md(json!([media])), "[attachment]");
        let card = json!({"type": "blockCard", "attrs": {"url": "https://x.io/a"}});
        assert_eq!(md(json!([card])), "<https://x.io/a>");
    }

    #[test]
    fn inline_atoms() {
        let para = json!({"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "abc", "text": "@Ann"}},
            {"type": "text", "text": " "},
            {"type": "mention", "attrs": {"id": "bad id", "text": "@Bob"}},
            {"type": "text", "text": " "},
            {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}},
            {"type": "emoji", "attrs": {"shortName": ":custom:"}},
            {"type": "text", "text": " "},
            {"type": "date", "attrs": {"timestamp": "1700000000000"}},
            {"type": "text", "text": " "},
            {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
            {"type": "text", "text": " "},
            {"type": "inlineCard", "attrs": {"url": "https://x.io"}},
        ]});
        assert_eq!(
            md(json!([para])),
            "[~accountid:abc] @Bob 😄:custom: 2023-11-14 IN PROGRESS <https://x.io>"
        );
    }

    #[test]
    fn unknown_containers_render_in_place() {
        let list =
            json!({"type": "bulletList", "content": [{"type": "listItem", "content": [p("x")]}]});
        let wrapped = json!({"type": "bodiedExtension", "content": [list.clone()]});
        assert_eq!(md(json!([list, wrapped])), "- x\n\n* x");
    }

    #[test]
    fn unknown_nodes_keep_their_text() {
        let weird = json!({"type": "bodiedExtension", "content": [p("kept")]});
        let inline_weird = json!({"type": "paragraph", "content": [
            {"type": "futureInline", "content": [{"type": "text", "text": "deep"}]},
            {"type": "futureAtom", "attrs": {"text": " atom"}},
        ]});
        let textual = json!({"type": "futureBlock", "attrs": {"text": "attr text"}});
        assert_eq!(
            md(json!([weird, inline_weird, textual])),
            "kept\n\ndeep atom\n\nattr text"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(format_date(&json!("0")), "1970-01-01");
        assert_eq!(format_date(&json!(951_782_400_000_i64)), "2000-02-29");
        assert_eq!(format_date(&json!(-86_400_000)), "1969-12-31");
        assert_eq!(format_date(&json!("soon")), "soon");
    }

    #[test]
    fn depth_is_bounded() {
        let mut node = p("bottom");
        for _ in 0..500 {
            node = json!({"type": "blockquote", "content": [node]});
        }
        let out = md(json!([node]));
        assert!(out.ends_with("bottom"), "{out}");
    }
}
