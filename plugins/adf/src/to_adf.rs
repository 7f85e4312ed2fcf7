//! Markdown → ADF.
//!
//! pulldown-cmark does the parsing; this module folds its event stream into
//! ADF with an explicit stack instead of recursion, so arbitrarily deep input
//! cannot overflow a component's small stack. Markdown nests more freely
//! than ADF allows (headings in list items, quotes in quotes), and Jira
//! rejects a document that breaks the schema, so such content is flattened
//! into the nearest container that may hold it instead.

use pulldown_cmark::{BrokenLink, CodeBlockKind, CowStr, Event, LinkType, Parser, Tag, TagEnd};
use serde_json::{Map, Value, json};

use crate::inline::{Inline, Mark, canonicalize, normalize_marks};
use crate::syntax::{parse_mention_label, parser_options};

/// Lists nested deeper than this are flattened into the deepest allowed one.
const MAX_LIST_DEPTH: usize = 24;

/// Converts Markdown into an ADF `doc` node.
///
/// Never fails: any string is Markdown. Empty input gives a document with
/// empty `content`.
#[must_use]
pub fn markdown_to_adf(markdown: &str) -> Value {
    // Mentions are shortcut references that resolve through this callback,
    // so `\[~accountid:x]` stays text and link definitions keep priority.
    let mut mentions = |link: BrokenLink<'_>| {
        let id = parse_mention_label(&link.reference)?;
        Some((CowStr::from(id.to_owned()), CowStr::Borrowed("")))
    };
    let parser =
        Parser::new_with_broken_link_callback(markdown, parser_options(), Some(&mut mentions));
    let mut builder = Builder::new();
    for event in parser {
        builder.event(event);
    }
    builder.finish()
}

/// The account id of a mention, the only opaque inline on this side.
type MentionId = String;

#[derive(Debug)]
enum Kind {
    Doc,
    BlockQuote,
    List {
        order: Option<u64>,
    },
    Item,
    Paragraph,
    Heading(u64),
    CodeBlock {
        language: Option<String>,
    },
    Html,
    Table,
    TableHead,
    TableRow,
    TableCell {
        header: bool,
    },
    /// Structure ADF cannot hold here; its blocks go to the parent.
    Transparent,
}

impl Kind {
    /// Frames whose inline content is a paragraph of its own (tight list
    /// items carry their text without a paragraph event).
    fn is_container(&self) -> bool {
        matches!(
            self,
            Kind::Doc | Kind::BlockQuote | Kind::Item | Kind::Transparent
        )
    }
}

struct Frame {
    kind: Kind,
    blocks: Vec<Value>,
    inline: Vec<Inline<MentionId>>,
    /// Verbatim text of code and HTML blocks.
    raw: String,
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Frame {
            kind,
            blocks: Vec::new(),
            inline: Vec::new(),
            raw: String::new(),
        }
    }
}

/// Inline content whose events are swallowed until its end tag.
enum Capture {
    /// A mention's label; its events say nothing the id does not.
    Mention { id: String, depth: usize },
    /// An image's alt text, which becomes the text of a link.
    Image {
        href: String,
        title: String,
        alt: String,
        depth: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    /// Open inline marks, innermost last.
    marks: Vec<Mark>,
    /// For each open link: inline length at its start, to spot empty links.
    link_starts: Vec<usize>,
    capture: Option<Capture>,
    list_depth: usize,
}

impl Builder {
    fn new() -> Self {
        Builder {
            stack: vec![Frame::new(Kind::Doc)],
            marks: Vec::new(),
            link_starts: Vec::new(),
            capture: None,
            list_depth: 0,
        }
    }

    fn event(&mut self, event: Event<'_>) {
        if self.capture.is_some() {
            self.captured(event);
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => {
                let mut marks = self.current_marks();
                marks.push(Mark::Code);
                self.push_inline(Inline::text(code.as_ref(), marks));
            }
            Event::InlineHtml(html) if is_br(&html) => self.push_inline(Inline::Break),
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::SoftBreak => self.text(" "),
            Event::HardBreak => self.push_inline(Inline::Break),
            Event::Rule => {
                self.flush_inline();
                self.add_block(json!({"type": "rule"}));
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                self.text(&text);
            }
        }
    }

    fn captured(&mut self, event: Event<'_>) {
        let Some(capture) = self.capture.as_mut() else {
            return;
        };
        let depth = match capture {
            Capture::Mention { depth, .. } | Capture::Image { depth, .. } => depth,
        };
        match event {
            Event::Start(_) => *depth += 1,
            Event::End(TagEnd::Link | TagEnd::Image) if *depth == 0 => self.end_capture(),
            Event::End(_) => *depth = depth.saturating_sub(1),
            Event::Text(text) | Event::Code(text) => {
                if let Capture::Image { alt, .. } = capture {
                    alt.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Capture::Image { alt, .. } = capture {
                    alt.push(' ');
                }
            }
            _ => {}
        }
    }

    fn end_capture(&mut self) {
        match self.capture.take() {
            Some(Capture::Mention { id, .. }) => self.push_inline(Inline::Atom(id)),
            Some(Capture::Image {
                href, title, alt, ..
            }) => {
                // ADF images need an uploaded attachment; a link to the
                // source keeps both the words and the target.
                let text = if alt.trim().is_empty() {
                    href.clone()
                } else {
                    alt
                };
                let mut marks = self.current_marks();
                if !href.is_empty() && !marks.iter().any(|m| matches!(m, Mark::Link { .. })) {
                    marks.push(link_mark(href, &title));
                }
                self.push_inline(Inline::text(text, marks));
            }
            None => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.open_block(Kind::Paragraph),
            Tag::Heading { level, .. } => self.open_block(Kind::Heading(level as u64)),
            Tag::BlockQuote(_) => self.open_block(Kind::BlockQuote),
            Tag::CodeBlock(kind) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().map(str::to_owned)
                    }
                    CodeBlockKind::Indented => None,
                };
                self.open_block(Kind::CodeBlock { language });
            }
            Tag::HtmlBlock => self.open_block(Kind::Html),
            Tag::List(order) => {
                if self.list_depth < MAX_LIST_DEPTH {
                    self.list_depth += 1;
                    self.open_block(Kind::List { order });
                } else {
                    self.open_block(Kind::Transparent);
                }
            }
            Tag::Item => {
                let in_list = matches!(self.top().map(|f| &f.kind), Some(Kind::List { .. }));
                self.open_block(if in_list {
                    Kind::Item
                } else {
                    Kind::Transparent
                });
            }
            Tag::Table(_) => self.open_block(Kind::Table),
            Tag::TableHead => self.open_block(Kind::TableHead),
            Tag::TableRow => self.open_block(Kind::TableRow),
            Tag::TableCell => {
                let header = matches!(self.top().map(|f| &f.kind), Some(Kind::TableHead));
                self.open_block(Kind::TableCell { header });
            }
            Tag::Emphasis => self.marks.push(Mark::Em),
            Tag::Strong => self.marks.push(Mark::Strong),
            Tag::Strikethrough => self.marks.push(Mark::Strike),
            Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            } => {
                if is_mention(link_type) {
                    self.capture = Some(Capture::Mention {
                        id: dest_url.into_string(),
                        depth: 0,
                    });
                    return;
                }
                let href = match link_type {
                    LinkType::Email => format!("mailto:{dest_url}"),
                    _ => dest_url.into_string(),
                };
                self.link_starts.push(self.inline_len());
                self.marks.push(link_mark(href, &title));
            }
            Tag::Image {
                link_type,
                dest_url,
                title,
                ..
            } => {
                if is_mention(link_type) {
                    // `![~accountid:x]` is a "!" and a mention.
                    self.text("!");
                    self.capture = Some(Capture::Mention {
                        id: dest_url.into_string(),
                        depth: 0,
                    });
                    return;
                }
                self.capture = Some(Capture::Image {
                    href: dest_url.into_string(),
                    title: title.into_string(),
                    alt: String::new(),
                    depth: 0,
                });
            }
            // Not enabled in the parser options; if they ever appear their
            // content is still kept.
            Tag::Superscript | Tag::Subscript => {}
            Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.open_block(Kind::Transparent),
        }
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::Emphasis => self.pop_mark(|m| *m == Mark::Em),
            TagEnd::Strong => self.pop_mark(|m| *m == Mark::Strong),
            TagEnd::Strikethrough => self.pop_mark(|m| *m == Mark::Strike),
            TagEnd::Link => self.end_link(),
            TagEnd::Image | TagEnd::Superscript | TagEnd::Subscript => {}
            TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::HtmlBlock
            | TagEnd::List(_)
            | TagEnd::Item
            | TagEnd::Table
            | TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::TableCell
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_) => self.close_block(),
        }
    }

    fn end_link(&mut self) {
        let Some(start) = self.link_starts.pop() else {
            return;
        };
        let Some(at) = self
            .marks
            .iter()
            .rposition(|m| matches!(m, Mark::Link { .. }))
        else {
            return;
        };
        let link = self.marks.remove(at);
        // `[](url)` has no text to carry the link, so the URL becomes it.
        if self.inline_len() == start
            && let Mark::Link { href, .. } = &link
        {
            let text = href.clone();
            let mut marks = self.current_marks();
            marks.push(link);
            self.push_inline(Inline::text(text, marks));
        }
    }

    fn pop_mark(&mut self, is: impl Fn(&Mark) -> bool) {
        if let Some(at) = self.marks.iter().rposition(is) {
            self.marks.remove(at);
        }
    }

    fn current_marks(&self) -> Vec<Mark> {
        let mut marks: Vec<Mark> = self
            .marks
            .iter()
            .filter(|m| !matches!(m, Mark::Link { href, .. } if href.is_empty()))
            .cloned()
            .collect();
        normalize_marks(&mut marks);
        marks
    }

    fn top(&self) -> Option<&Frame> {
        self.stack.last()
    }

    fn inline_len(&self) -> usize {
        self.top().map_or(0, |f| f.inline.len())
    }

    fn text(&mut self, text: &str) {
        if let Some(frame) = self.stack.last_mut()
            && matches!(frame.kind, Kind::CodeBlock { .. } | Kind::Html)
        {
            frame.raw.push_str(text);
            return;
        }
        // Only entities can put a line break here; inline it reads as a space.
        let text = text.replace("\r\n", " ").replace(['\n', '\r'], " ");
        let marks = self.current_marks();
        self.push_inline(Inline::text(text, marks));
    }

    fn push_inline(&mut self, item: Inline<MentionId>) {
        if let Some(frame) = self.stack.last_mut() {
            frame.inline.push(item);
        }
    }

    fn open_block(&mut self, kind: Kind) {
        self.flush_inline();
        self.stack.push(Frame::new(kind));
    }

    /// Turns a container's loose inline content into a paragraph.
    fn flush_inline(&mut self) {
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        if !frame.kind.is_container() || frame.inline.is_empty() {
            return;
        }
        let content = inline_to_adf(std::mem::take(&mut frame.inline));
        if !content.is_empty() {
            frame.blocks.push(node("paragraph", None, content));
        }
    }

    fn close_block(&mut self) {
        self.flush_inline();
        // The document frame is never closed by an event.
        if self.stack.len() <= 1 {
            return;
        }
        let Some(frame) = self.stack.pop() else {
            return;
        };
        if matches!(frame.kind, Kind::List { .. }) {
            self.list_depth = self.list_depth.saturating_sub(1);
        }
        match finish_frame(frame) {
            Finished::Node(node) => self.add_block(node),
            Finished::Blocks(blocks) => {
                for block in blocks {
                    self.add_block(block);
                }
            }
            Finished::Nothing => {}
        }
    }

    /// Adds a finished block to the current frame, reshaping it if ADF does
    /// not allow it there.
    fn add_block(&mut self, block: Value) {
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        if !matches!(frame.kind, Kind::BlockQuote | Kind::Item) {
            frame.blocks.push(block);
            return;
        }
        // Quotes and list items hold paragraphs, lists and code only.
        match node_type(&block) {
            "heading" => {
                let content = take_content(block);
                if !content.is_empty() {
                    frame.blocks.push(node("paragraph", None, content));
                }
            }
            "blockquote" => frame.blocks.extend(take_content(block)),
            "table" => {
                for row in take_content(block) {
                    for cell in take_content(row) {
                        frame
                            .blocks
                            .extend(take_content(cell).into_iter().filter(|p| {
                                p.get("content")
                                    .and_then(Value::as_array)
                                    .is_some_and(|c| !c.is_empty())
                            }));
                    }
                }
            }
            // A rule has no content to keep.
            "rule" => {}
            // Paragraphs, lists and code blocks.
            _ => frame.blocks.push(block),
        }
    }

    fn finish(mut self) -> Value {
        while self.stack.len() > 1 {
            self.close_block();
        }
        self.flush_inline();
        let blocks = self.stack.pop().map(|f| f.blocks).unwrap_or_default();
        json!({"type": "doc", "version": 1, "content": blocks})
    }
}

enum Finished {
    Node(Value),
    Blocks(Vec<Value>),
    Nothing,
}

fn finish_frame(frame: Frame) -> Finished {
    let Frame {
        kind,
        mut blocks,
        inline,
        raw,
    } = frame;
    match kind {
        Kind::Paragraph => {
            let content = inline_to_adf(inline);
            if content.is_empty() {
                Finished::Nothing
            } else {
                Finished::Node(node("paragraph", None, content))
            }
        }
        Kind::Heading(level) => {
            let attrs = json!({"level": level});
            Finished::Node(node("heading", Some(attrs), inline_to_adf(inline)))
        }
        Kind::CodeBlock { language } => {
            let code = raw.strip_suffix('\n').unwrap_or(&raw);
            let content = if code.is_empty() {
                Vec::new()
            } else {
                vec![json!({"type": "text", "text": code})]
            };
            let attrs = language.map(|l| json!({"language": l}));
            Finished::Node(node("codeBlock", attrs, content))
        }
        Kind::Html => {
            // Raw HTML is not rendered by Jira, so it stays visible as text,
            // line for line.
            let mut items = Vec::new();
            for (n, line) in raw.trim_end_matches('\n').split('\n').enumerate() {
                if n > 0 {
                    items.push(Inline::Break);
                }
                items.push(Inline::text(line, Vec::new()));
            }
            let content = inline_to_adf(items);
            if content.is_empty() {
                Finished::Nothing
            } else {
                Finished::Node(node("paragraph", None, content))
            }
        }
        Kind::BlockQuote => {
            if blocks.is_empty() {
                Finished::Nothing
            } else {
                Finished::Node(node("blockquote", None, blocks))
            }
        }
        Kind::List { order } => {
            if blocks.is_empty() {
                return Finished::Nothing;
            }
            match order {
                None => Finished::Node(node("bulletList", None, blocks)),
                Some(1) => Finished::Node(node("orderedList", None, blocks)),
                Some(start) => {
                    Finished::Node(node("orderedList", Some(json!({"order": start})), blocks))
                }
            }
        }
        Kind::Item => {
            // ADF requires a list item to open with a paragraph.
            if blocks.first().is_none_or(|b| node_type(b) != "paragraph") {
                blocks.insert(0, node("paragraph", None, Vec::new()));
            }
            Finished::Node(node("listItem", None, blocks))
        }
        Kind::Table => {
            if blocks.is_empty() {
                Finished::Nothing
            } else {
                Finished::Node(node("table", None, blocks))
            }
        }
        Kind::TableHead | Kind::TableRow => Finished::Node(node("tableRow", None, blocks)),
        Kind::TableCell { header } => {
            let paragraph = node("paragraph", None, inline_to_adf(inline));
            let kind = if header { "tableHeader" } else { "tableCell" };
            Finished::Node(node(kind, None, vec![paragraph]))
        }
        Kind::Transparent | Kind::Doc => Finished::Blocks(blocks),
    }
}

fn inline_to_adf(items: Vec<Inline<MentionId>>) -> Vec<Value> {
    canonicalize(items)
        .into_iter()
        .map(|item| match item {
            Inline::Text { text, marks } => {
                let mut map = Map::new();
                map.insert("type".into(), "text".into());
                map.insert("text".into(), text.into());
                if !marks.is_empty() {
                    map.insert("marks".into(), marks.iter().map(mark_to_adf).collect());
                }
                Value::Object(map)
            }
            Inline::Break => json!({"type": "hardBreak"}),
            Inline::Atom(id) => json!({"type": "mention", "attrs": {"id": id}}),
        })
        .collect()
}

fn mark_to_adf(mark: &Mark) -> Value {
    match mark {
        Mark::Strong => json!({"type": "strong"}),
        Mark::Em => json!({"type": "em"}),
        Mark::Strike => json!({"type": "strike"}),
        Mark::Code => json!({"type": "code"}),
        Mark::Link { href, title } => {
            let mut attrs = Map::new();
            attrs.insert("href".into(), href.as_str().into());
            if let Some(title) = title {
                attrs.insert("title".into(), title.as_str().into());
            }
            json!({"type": "link", "attrs": attrs})
        }
    }
}

fn link_mark(href: String, title: &str) -> Mark {
    Mark::Link {
        href,
        title: (!title.is_empty()).then(|| title.to_owned()),
    }
}

/// Only the mention callback resolves references that have no definition.
fn is_mention(link_type: LinkType) -> bool {
    matches!(
        link_type,
        LinkType::ShortcutUnknown | LinkType::CollapsedUnknown | LinkType::ReferenceUnknown
    )
}

fn is_br(html: &str) -> bool {
    let tag: String = html.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(tag.to_ascii_lowercase().as_str(), "<br>" | "<br/>")
}

/// A node with `type`, optional `attrs` and `content`, keys in that order.
fn node(kind: &str, attrs: Option<Value>, content: Vec<Value>) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), kind.into());
    if let Some(attrs) = attrs {
        map.insert("attrs".into(), attrs);
    }
    map.insert("content".into(), Value::Array(content));
    Value::Object(map)
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn take_content(node: Value) -> Vec<Value> {
    match node {
        Value::Object(mut map) => match map.remove("content") {
            Some(Value::Array(content)) => content,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(md: &str) -> Value {
        markdown_to_adf(md)["content"].clone()
    }

    fn text(t: &str) -> Value {
        json!({"type": "text", "text": t})
    }

    fn p(items: Value) -> Value {
        json!({"type": "paragraph", "content": items})
    }

    #[test]
    fn empty_input_is_an_empty_doc() {
        assert_eq!(
            markdown_to_adf(""),
            json!({"type": "doc", "version": 1, "content": []})
        );
        assert_eq!(content("  \n\n \t\n"), json!([]));
    }

    #[test]
    fn paragraphs_and_soft_breaks() {
        assert_eq!(
            content("a\nb\n\nc"),
            json!([p(json!([text("a b")])), p(json!([text("c")]))])
        );
    }

    #[test]
    fn headings_all_levels() {
        for level in 1..=6 {
            let md = format!("{} Title", "#".repeat(level));
            assert_eq!(
                content(&md),
                json!([{"type": "heading", "attrs": {"level": level}, "content": [text("Title")]}])
            );
        }
        assert_eq!(
            content("Setext\n---"),
            json!([{"type": "heading", "attrs": {"level": 2}, "content": [text("Setext")]}])
        );
    }

    #[test]
    fn marks() {
        let got = content("**b** *i* ~~s~~ `c` [l](https://x \"T\") ***bi***");
        assert_eq!(
            got,
            json!([p(json!([
                {"type": "text", "text": "b", "marks": [{"type": "strong"}]},
                text(" "),
                {"type": "text", "text": "i", "marks": [{"type": "em"}]},
                text(" "),
                {"type": "text", "text": "s", "marks": [{"type": "strike"}]},
                text(" "),
                {"type": "text", "text": "c", "marks": [{"type": "code"}]},
                text(" "),
                {"type": "text", "text": "l", "marks": [{"type": "link", "attrs": {"href": "https://x", "title": "T"}}]},
                text(" "),
                {"type": "text", "text": "bi", "marks": [{"type": "strong"}, {"type": "em"}]},
            ]))])
        );
    }

    #[test]
    fn code_only_combines_with_link() {
        let got = content("**[`x`](https://u)**");
        assert_eq!(
            got,
            json!([p(json!([{"type": "text", "text": "x", "marks": [
                {"type": "code"}, {"type": "link", "attrs": {"href": "https://u"}}
            ]}]))])
        );
    }

    #[test]
    fn links_images_and_autolinks() {
        let link = |t: &str, href: &str| json!({"type": "text", "text": t, "marks": [{"type": "link", "attrs": {"href": href}}]});
        assert_eq!(
            content("<https://a.io> <me@x.io> ![alt](https://i/p.png) [](https://e)"),
            json!([p(json!([
                link("https://a.io", "https://a.io"),
                text(" "),
                link("me@x.io", "mailto:me@x.io"),
                text(" "),
                link("alt", "https://i/p.png"),
                text(" "),
                link("https://e", "https://e"),
            ]))])
        );
    }

    #[test]
    fn mentions() {
        assert_eq!(
            content("Hi [~accountid:557058:abc-1], \\[~accountid:no]"),
            json!([p(json!([
                text("Hi "),
                {"type": "mention", "attrs": {"id": "557058:abc-1"}},
                text(", [~accountid:no]"),
            ]))])
        );
        // A definition wins over the mention syntax.
        assert_eq!(
            content("[~accountid:x]\n\n[~accountid:x]: https://d"),
            json!([p(
                json!([{"type": "text", "text": "~accountid:x", "marks": [{"type": "link", "attrs": {"href": "https://d"}}]}])
            )])
        );
    }

    #[test]
    fn hard_breaks() {
        let br = json!({"type": "hardBreak"});
        assert_eq!(
            content("a  \nb\\\nc<br>d <BR /> e<br>"),
            json!([p(json!([
                text("a"),
                br,
                text("b"),
                br,
                text("c"),
                br,
                text("d"),
                br,
                text("e")
            ]))])
        );
    }

    #[test]
    fn lists() {
        let item = |content: Value| json!({"type": "listItem", "content": content});
        assert_eq!(
            content("- a\n  1. b\n  2. c\n- d"),
            json!([{"type": "bulletList", "content": [
                item(json!([p(json!([text("a")])), {"type": "orderedList", "content": [
                    item(json!([p(json!([text("b")]))])),
                    item(json!([p(json!([text("c")]))])),
                ]}])),
                item(json!([p(json!([text("d")]))])),
            ]}])
        );
        assert_eq!(content("7. x\n8. y")[0]["attrs"], json!({"order": 7}));
        assert_eq!(content("0. x")[0]["attrs"], json!({"order": 0}));
    }

    #[test]
    fn list_items_start_with_a_paragraph() {
        let item = &content("- ```\n  code\n  ```\n-")[0]["content"];
        assert_eq!(
            item[0]["content"][0],
            json!({"type": "paragraph", "content": []})
        );
        assert_eq!(item[0]["content"][1]["type"], "codeBlock");
        assert_eq!(
            item[1]["content"],
            json!([{"type": "paragraph", "content": []}])
        );
    }

    #[test]
    fn code_blocks() {
        assert_eq!(
            content("```rust ignore\nfn x() {}\n```\n\n    indented\n\n```\n```"),
            json!([
                {"type": "codeBlock", "attrs": {"language": "rust"}, "content": [text("fn x() {}")]},
                {"type": "codeBlock", "content": [text("indented")]},
                {"type": "codeBlock", "content": []},
            ])
        );
    }

    #[test]
    fn quotes_rules_and_flattening() {
        assert_eq!(
            content("> # H\n> > inner\n> ---\n> - a\n\n---"),
            json!([
                {"type": "blockquote", "content": [
                    p(json!([text("H")])),
                    p(json!([text("inner")])),
                    {"type": "bulletList", "content": [{"type": "listItem", "content": [p(json!([text("a")]))]}]},
                ]},
                {"type": "rule"},
            ])
        );
    }

    #[test]
    fn tables() {
        let cell = |kind: &str, t: Value| json!({"type": kind, "content": [p(t)]});
        assert_eq!(
            content("| a | **b** |\n|---|:-:|\n| 1 |\n"),
            json!([{"type": "table", "content": [
                {"type": "tableRow", "content": [
                    cell("tableHeader", json!([text("a")])),
                    cell("tableHeader", json!([{"type": "text", "text": "b", "marks": [{"type": "strong"}]}])),
                ]},
                {"type": "tableRow", "content": [cell("tableCell", json!([text("1")])), cell("tableCell", json!([]))]},
            ]}])
        );
    }

    #[test]
    fn html_stays_text() {
        assert_eq!(
            content("<div>\n<b>x</b>\n</div>\n\nan <i>inline</i> tag"),
            json!([
                p(
                    json!([text("<div>"), {"type": "hardBreak"}, text("<b>x</b>"), {"type": "hardBreak"}, text("</div>")])
                ),
                p(json!([text("an <i>inline</i> tag")])),
            ])
        );
    }

    #[test]
    fn deep_lists_are_flattened() {
        let mut md = String::new();
        for depth in 0..100 {
            md.push_str(&"  ".repeat(depth));
            md.push_str("- x\n");
        }
        let doc = markdown_to_adf(&md);
        let mut depth = 0;
        let mut node = &doc["content"][0];
        while node["type"] == "bulletList" {
            depth += 1;
            node = node["content"][0]["content"]
                .as_array()
                .and_then(|c| c.last())
                .unwrap_or(&Value::Null);
        }
        assert_eq!(depth, MAX_LIST_DEPTH);
        assert_eq!(doc.to_string().matches("\"x\"").count(), 100);
    }
}
