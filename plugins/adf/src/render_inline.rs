//! Inline content → Markdown: escaping, mark nesting and delimiter flanking.
//!
//! The parser side gets CommonMark for free; this side has to produce text
//! that parses back to exactly the same inline items. Three things make that
//! hard, and each is handled here rather than spread across block rendering:
//!
//! * Plain text must not turn into syntax, so significant characters are
//!   escaped, but only where they would be significant: `snake_case` and
//!   `C:\path` stay readable.
//! * ADF marks are flat sets per text node while Markdown nests, so marks
//!   that run further are opened first and kept open across nodes.
//! * `**` only opens or closes when CommonMark's flanking rules allow it
//!   (`a**(b)**` is not bold). Where a delimiter run would fail them, the
//!   neighbouring character is written as a numeric entity, which parses back
//!   to the same character but counts as punctuation for flanking.

use std::fmt::Write as _;

use crate::inline::{Inline, Mark, canonicalize};
use crate::syntax::{is_whitespace, may_be_punctuation};

/// Where the inline content sits, which decides what must be escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// A paragraph (also inside quotes and list items): may span lines.
    Block,
    /// An ATX heading: a single line in which `#` is significant.
    Heading,
    /// A GFM table cell: a single line in which `|` is significant.
    TableCell,
}

/// Markdown written verbatim for inline nodes that are syntax, not text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Raw {
    pub(crate) markdown: String,
    /// `[label]` shortcut references change meaning when `[` follows them.
    pub(crate) shortcut_reference: bool,
}

/// Renders inline items (canonicalized first) as Markdown.
pub(crate) fn render(items: Vec<Inline<Raw>>, context: Context) -> String {
    let mut items = canonicalize(items);
    let markdown = render_canonical(&items, context);
    if context != Context::Block || !looks_like_definition(&markdown) {
        return markdown;
    }
    // A block starting `[label]:` is a link reference definition. Only a code
    // span inside link text can put an unescaped `]` there, so linked code
    // loses its code mark rather than the block losing its text.
    for item in &mut items {
        if let Inline::Text { marks, .. } = item
            && marks.iter().any(|m| matches!(m, Mark::Link { .. }))
        {
            marks.retain(|m| *m != Mark::Code);
        }
    }
    render_canonical(&canonicalize(items), context)
}

/// Whether `markdown` opens with `[label]:`.
fn looks_like_definition(markdown: &str) -> bool {
    let Some(rest) = markdown.strip_prefix('[') else {
        return false;
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => return false,
            ']' => return chars.next() == Some(':'),
            _ => {}
        }
    }
    false
}

fn render_canonical(items: &[Inline<Raw>], context: Context) -> String {
    let mut writer = Writer::new(context);
    // Open marks, outermost first, with the delimiter each was opened with.
    let mut open: Vec<(Mark, &'static str)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let autolink = is_autolink(items, i);
        let wanted: Vec<&Mark> = match item {
            Inline::Text { marks, .. } => marks
                .iter()
                .filter(|m| **m != Mark::Code && !(autolink && matches!(m, Mark::Link { .. })))
                .collect(),
            Inline::Break | Inline::Atom(_) => Vec::new(),
        };
        let keep = open.iter().take_while(|(m, _)| wanted.contains(&m)).count();
        let mut last_closed = None;
        while open.len() > keep {
            if let Some((mark, delimiter)) = open.pop() {
                writer.close(&mark, delimiter);
                last_closed = Some(delimiter);
            }
        }
        let mut to_open: Vec<&Mark> = wanted
            .into_iter()
            .filter(|m| !open.iter().any(|(o, _)| o == *m))
            .collect();
        // The mark that runs furthest goes outermost so it can stay open.
        to_open.sort_by(|a, b| extent(items, i, b).cmp(&extent(items, i, a)).then(a.cmp(b)));
        // Adjacent `*` delimiters merge into one run (`**` + `*` is `***`),
        // and CommonMark's "multiple of 3" rule can then pair them wrongly.
        // So strong and em opened together, or right after a `*` closer,
        // alternate with `_` delimiters, which form a run of their own.
        let mut underscores = last_closed.is_some_and(|d| d.starts_with('*'));
        for mark in to_open {
            let delimiter = delimiter(mark, underscores);
            if matches!(mark, Mark::Strong | Mark::Em) {
                underscores = !underscores;
            }
            writer.open(mark, delimiter);
            open.push((mark.clone(), delimiter));
        }
        match item {
            Inline::Text { text, marks } if marks.contains(&Mark::Code) => {
                let span = code_span(text, context);
                writer.content(&span, false);
            }
            Inline::Text { text, .. } if autolink => writer.content(&format!("<{text}>"), false),
            Inline::Text { text, .. } => writer.text(text),
            Inline::Break => writer.hard_break(),
            Inline::Atom(raw) if context == Context::TableCell => {
                // Any `|` in an atom is literal (alt text, a URL), and
                // `\|` means just that to both the cell splitter and the
                // inline parser.
                writer.content(&raw.markdown.replace('|', "\\|"), raw.shortcut_reference);
            }
            Inline::Atom(raw) => writer.content(&raw.markdown, raw.shortcut_reference),
        }
    }
    while let Some((mark, delimiter)) = open.pop() {
        writer.close(&mark, delimiter);
    }
    writer.finish()
}

/// How many items from `from` on carry `mark` without interruption.
fn extent(items: &[Inline<Raw>], from: usize, mark: &Mark) -> usize {
    items[from..]
        .iter()
        .take_while(|item| matches!(item, Inline::Text { marks, .. } if marks.contains(mark)))
        .count()
}

/// A link whose text is its own URL is written `<url>` when that parses back
/// identically.
fn is_autolink(items: &[Inline<Raw>], i: usize) -> bool {
    let Some(Inline::Text { text, marks }) = items.get(i) else {
        return false;
    };
    let Some(link) = marks.iter().find(|m| matches!(m, Mark::Link { .. })) else {
        return false;
    };
    let Mark::Link { href, title: None } = link else {
        return false;
    };
    let shares_link = |item: Option<&Inline<Raw>>| matches!(item, Some(Inline::Text { marks, .. }) if marks.contains(link));
    text == href
        && !marks.contains(&Mark::Code)
        && is_autolink_safe(href)
        && !shares_link(i.checked_sub(1).and_then(|p| items.get(p)))
        && !shares_link(items.get(i + 1))
}

/// CommonMark URI autolinks: a 2–32 character scheme, then no spaces, `<`,
/// `>` or controls. Backslashes, `&` and `|` are excluded because autolinks
/// do not process escapes, so they could not be written unambiguously (`|`
/// splits table cells).
pub(crate) fn is_autolink_safe(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && (2..=32).contains(&scheme.len())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && !rest.is_empty()
        && !rest.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '\\' | '&' | '|')
        })
}

struct Writer {
    out: String,
    context: Context,
    at_line_start: bool,
    /// Where the delimiter runs written since the last content began, and
    /// where the closing delimiters among them end (closers come first).
    zone: Option<Zone>,
    after_shortcut_reference: bool,
}

#[derive(Clone, Copy)]
struct Zone {
    start: usize,
    close_end: usize,
}

impl Writer {
    fn new(context: Context) -> Self {
        Writer {
            out: String::new(),
            context,
            at_line_start: true,
            zone: None,
            after_shortcut_reference: false,
        }
    }

    fn open(&mut self, mark: &Mark, delimiter: &str) {
        match mark {
            Mark::Link { .. } => self.content("[", false),
            Mark::Code => {}
            Mark::Strong | Mark::Em | Mark::Strike => {
                let at = self.out.len();
                self.zone.get_or_insert(Zone {
                    start: at,
                    close_end: at,
                });
                self.out.push_str(delimiter);
                self.at_line_start = false;
                self.after_shortcut_reference = false;
            }
        }
    }

    fn close(&mut self, mark: &Mark, delimiter: &str) {
        match mark {
            Mark::Link { href, title } => {
                let mut target = link_target(href, title.as_deref());
                if self.context == Context::TableCell {
                    target = target.replace('|', "\\|");
                }
                self.content(&format!("]({target})"), false);
            }
            Mark::Code => {}
            Mark::Strong | Mark::Em | Mark::Strike => {
                let at = self.out.len();
                let zone = self.zone.get_or_insert(Zone {
                    start: at,
                    close_end: at,
                });
                self.out.push_str(delimiter);
                zone.close_end = self.out.len();
                self.after_shortcut_reference = false;
            }
        }
    }

    fn hard_break(&mut self) {
        if self.context == Context::Block {
            self.content("\\\n", false);
            self.at_line_start = true;
        } else {
            self.content("<br>", false);
        }
    }

    fn text(&mut self, text: &str) {
        let prev = self.out.chars().next_back();
        let escaped = escape_text(text, prev, self.at_line_start, self.context);
        self.content(&escaped, false);
    }

    /// Appends rendered Markdown that is content (not a delimiter), first
    /// repairing the delimiter runs just before it.
    fn content(&mut self, markdown: &str, shortcut_reference: bool) {
        let Some(first) = markdown.chars().next() else {
            return;
        };
        let mut markdown = std::borrow::Cow::Borrowed(markdown);
        if let Some(zone) = self.zone.take()
            && self.repair_zone(zone, first)
        {
            markdown = std::borrow::Cow::Owned(encode_first_char(&markdown));
        }
        if self.after_shortcut_reference && (first == '[' || markdown.starts_with("\\[")) {
            // `[a][b]` would be a full reference link (and pulldown-cmark
            // takes `[a]\[b]` as one too); `[a][]` is the same reference and
            // leaves what follows alone.
            self.out.push_str("[]");
        } else if first == '[' && ends_with_unescaped(&self.out, '!') {
            // `![` would start an image.
            let at = self.out.len() - 1;
            self.out.insert(at, '\\');
        }
        self.out.push_str(&markdown);
        self.at_line_start = false;
        self.after_shortcut_reference = shortcut_reference;
    }

    /// Makes the delimiter runs of `zone` open and close as intended when
    /// followed by `next`, by writing a neighbouring character as an entity
    /// where CommonMark's flanking rules would otherwise refuse. The
    /// character before the zone is rewritten in place; the return value
    /// says whether `next` must be written as an entity too.
    ///
    /// A run's neighbours inside the zone are other delimiters, which count
    /// as punctuation, so only the runs touching either end can fail.
    fn repair_zone(&mut self, zone: Zone, next: char) -> bool {
        let runs = runs(&self.out[zone.start..]);
        let last_run = runs.len().saturating_sub(1);
        let run_at = |offset: usize| {
            runs.iter()
                .rposition(|&(start, _)| start <= offset - zone.start)
                .unwrap_or(0)
        };
        let closes = zone.close_end > zone.start;
        let opens = self.out.len() > zone.close_end;
        // The run holding the last closer, and the run holding the first opener.
        let close_run = closes.then(|| run_at(zone.close_end - 1));
        let open_run = opens.then(|| run_at(zone.close_end));
        let char_of = |run: usize| runs.get(run).map_or('*', |&(_, c)| c);
        let mut prev = self.out[..zone.start].chars().next_back();
        // Rewriting the character before the zone moves the zone along.
        let mut start = zone.start;
        let mut next = Some(next);
        let mut encode_next = false;
        let is_other =
            |c: Option<char>| c.is_some_and(|c| !is_whitespace(c) && !c.is_ascii_punctuation());
        let is_space = |c: Option<char>| c.is_some_and(is_whitespace);
        let is_punct = |c: Option<char>| c.is_some_and(may_be_punctuation);
        // Whitespace never touches a delimiter on its inner side.
        if closes && is_space(prev) && self.encode_char_before(&mut start) {
            prev = Some(';');
        }
        if opens && is_space(next) {
            encode_next = true;
            next = Some('&');
        }
        // Entities are punctuation, so each repair can only enable the other
        // rule; two rounds settle it.
        for _ in 0..2 {
            if let Some(run) = close_run.filter(|&r| r == last_run) {
                let before = if run == 0 { prev } else { Some('*') };
                // `_` cannot close before a letter at all; `*` and `~` only
                // fail after punctuation.
                let fails = is_other(next) && (char_of(run) == '_' || is_punct(before));
                if fails {
                    encode_next = true;
                    next = Some('&');
                }
            }
            if let Some(run) = open_run.filter(|&r| r == 0) {
                let after = if run == last_run { next } else { Some('*') };
                // pulldown-cmark lets `~~` open anywhere.
                let fails = match char_of(run) {
                    '~' => false,
                    '_' => is_other(prev),
                    _ => is_other(prev) && is_punct(after),
                };
                if fails && self.encode_char_before(&mut start) {
                    prev = Some(';');
                }
            }
        }
        encode_next
    }

    /// Rewrites the character before `at` as an entity.
    ///
    /// That character may itself be the first content after an earlier
    /// opening `*`/`_` run, which then faces punctuation (`&`) and in turn
    /// needs punctuation before it, so the repair walks back run by run.
    /// `at` is updated to stay on the same character as the text before it
    /// grows.
    fn encode_char_before(&mut self, at: &mut usize) -> bool {
        let Some((mut pos, c)) = self.out[..*at].char_indices().next_back() else {
            return false;
        };
        if c == '\n' {
            // A line break is structure, not content; nothing closes across one.
            return false;
        }
        let before = self.out.len();
        self.encode_at(pos, c);
        loop {
            let run_start = self.raw_delimiter_run_start(pos);
            if run_start == pos {
                break;
            }
            match self.out[..run_start].char_indices().next_back() {
                Some((i, p)) if !is_whitespace(p) && !p.is_ascii_punctuation() => {
                    self.encode_at(i, p);
                    pos = i;
                }
                _ => break,
            }
        }
        *at += self.out.len() - before;
        true
    }

    /// Where the run of unescaped `*`/`_` ending at `end` starts.
    fn raw_delimiter_run_start(&self, end: usize) -> usize {
        let mut start = end;
        while let Some(c @ ('*' | '_')) = self.out[..start].chars().next_back()
            && ends_with_unescaped(&self.out[..start], c)
        {
            start -= 1;
        }
        start
    }

    /// Replaces `c` at byte `i` with its entity. A lone backslash before it
    /// would then escape the `&`, so it is doubled.
    fn encode_at(&mut self, i: usize, c: char) {
        let mut replacement = entity(c);
        if ends_with_unescaped(&self.out[..i], '\\') {
            replacement.insert(0, '\\');
        }
        self.out.replace_range(i..i + c.len_utf8(), &replacement);
    }

    fn finish(self) -> String {
        self.out
    }
}

/// Start offset and character of each run of equal characters in `zone`.
fn runs(zone: &str) -> Vec<(usize, char)> {
    let mut runs: Vec<(usize, char)> = Vec::new();
    for (i, c) in zone.char_indices() {
        if runs.last().is_none_or(|&(_, last)| last != c) {
            runs.push((i, c));
        }
    }
    runs
}

fn delimiter(mark: &Mark, underscores: bool) -> &'static str {
    match (mark, underscores) {
        (Mark::Strong, false) => "**",
        (Mark::Strong, true) => "__",
        (Mark::Em, false) => "*",
        (Mark::Em, true) => "_",
        (Mark::Strike, _) => "~~",
        (Mark::Code | Mark::Link { .. }, _) => "",
    }
}

fn entity(c: char) -> String {
    format!("&#{};", u32::from(c))
}

fn encode_first_char(markdown: &str) -> String {
    let mut chars = markdown.chars();
    let first = chars.next().map(entity).unwrap_or_default();
    first + chars.as_str()
}

/// Whether `s` ends with `c` that is not itself backslash-escaped.
fn ends_with_unescaped(s: &str, c: char) -> bool {
    let Some(rest) = s.strip_suffix(c) else {
        return false;
    };
    let backslashes = rest.chars().rev().take_while(|&b| b == '\\').count();
    backslashes % 2 == 0
}

/// Escapes plain text. `prev` is the character already written before it and
/// `at_line_start` says whether block syntax could begin here.
pub(crate) fn escape_text(
    text: &str,
    prev: Option<char>,
    at_line_start: bool,
    context: Context,
) -> String {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev = prev;
    let mut line_start = at_line_start;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // Leading blanks would be stripped, or make an indented code block.
        if line_start && matches!(c, ' ' | '\t') {
            i += 1;
            continue;
        }
        let block_start = line_start && context == Context::Block;
        line_start = false;
        if block_start && c.is_ascii_digit() {
            // `1.` or `1)` at the start of a line begins an ordered list.
            let digits = chars[i..].iter().take_while(|d| d.is_ascii_digit()).count();
            out.extend(&chars[i..i + digits]);
            i += digits;
            if let Some(&d @ ('.' | ')')) = chars.get(i) {
                out.push('\\');
                out.push(d);
                i += 1;
            }
            prev = out.chars().next_back();
            continue;
        }
        if c == '_' {
            // Between alphanumerics an underscore run can neither open nor
            // close emphasis, so `snake_case` needs no backslashes.
            let run = chars[i..].iter().take_while(|&&u| u == '_').count();
            let after = chars.get(i + run);
            let intraword = prev.is_some_and(|p| p.is_ascii_alphanumeric())
                && after.is_some_and(char::is_ascii_alphanumeric);
            for _ in 0..run {
                if !intraword {
                    out.push('\\');
                }
                out.push('_');
            }
            i += run;
            prev = Some('_');
            continue;
        }
        let next = chars.get(i + 1).copied();
        let escape = match c {
            '\\' => next.is_none_or(|n| n.is_ascii_punctuation()),
            '*' | '`' | '[' | ']' | '~' => true,
            '<' => next.is_none_or(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')),
            '&' => starts_entity(&chars[i + 1..]),
            // After a bracket these would turn it into a link or a
            // reference definition.
            '(' => prev == Some(']'),
            ':' => prev == Some(']') || block_start,
            '#' => block_start || context == Context::Heading,
            '|' => block_start || context == Context::TableCell,
            '>' | '-' | '+' | '=' => block_start,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
        prev = Some(c);
        i += 1;
    }
    out
}

/// Whether `&` followed by `rest` would be read as an entity reference.
fn starts_entity(rest: &[char]) -> bool {
    let name = rest
        .iter()
        .take(33)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '#')
        .count();
    name > 0 && rest.get(name) == Some(&';')
}

/// A code span whose fence is longer than any backtick run inside it.
pub(crate) fn code_span(text: &str, context: Context) -> String {
    let mut text = text.replace(['\n', '\r'], " ");
    if context == Context::TableCell {
        text = text.replace('|', "\\|");
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space from each side when both are present, so
    // padding protects edge backticks and edge spaces alike.
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && !text.chars().all(|c| c == ' '));
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{text}{space}{fence}")
}

/// The `(…)` part of an inline link.
pub(crate) fn link_target(href: &str, title: Option<&str>) -> String {
    let mut out = link_destination(href);
    if let Some(title) = title {
        out.push_str(" \"");
        let title: Vec<char> = title.chars().collect();
        for (i, &c) in title.iter().enumerate() {
            if c.is_control() {
                out.push_str(&entity(c));
                continue;
            }
            if matches!(c, '"' | '\\') || (c == '&' && starts_entity(&title[i + 1..])) {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out
}

/// A link destination, in `<…>` form when it contains spaces. Control
/// characters (which cannot appear literally) are written as entities.
pub(crate) fn link_destination(href: &str) -> String {
    let chars: Vec<char> = href.chars().collect();
    let pointy = chars.is_empty() || chars.iter().any(|c| c.is_whitespace() && !c.is_control());
    let mut out = String::with_capacity(href.len() + 2);
    if pointy {
        out.push('<');
    }
    for (i, &c) in chars.iter().enumerate() {
        if c.is_control() {
            out.push_str(&entity(c));
            continue;
        }
        let escape = match c {
            '\\' | '<' | '>' => true,
            '(' | ')' => !pointy,
            '&' => starts_entity(&chars[i + 1..]),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    if pointy {
        out.push('>');
    }
    out
}

/// A fence info string: backslash escapes and entities are decoded there.
pub(crate) fn escape_info_string(info: &str) -> String {
    let chars: Vec<char> = info.chars().collect();
    let mut out = String::with_capacity(info.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '\\' || (c == '&' && starts_entity(&chars[i + 1..])) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An image-style or placeholder snippet for media, which ADF stores as
/// attachments Markdown cannot reference.
pub(crate) fn media_placeholder(
    kind: Option<&str>,
    url: Option<&str>,
    alt: Option<&str>,
) -> String {
    let alt = alt.filter(|a| !a.trim().is_empty());
    let escaped_alt = alt.map(|a| escape_text(a, None, false, Context::Block));
    if let (Some("external"), Some(url)) = (kind, url.filter(|u| !u.is_empty())) {
        let mut out = String::from("![");
        out.push_str(escaped_alt.as_deref().unwrap_or_default());
        let _ = write!(out, "]({})", link_destination(url));
        return out;
    }
    match escaped_alt {
        Some(alt) => format!("[attachment: {alt}]"),
        None => "[attachment]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str, marks: &[Mark]) -> Inline<Raw> {
        Inline::text(text, marks.to_vec())
    }

    fn link(href: &str) -> Mark {
        Mark::Link {
            href: href.into(),
            title: None,
        }
    }

    fn block(items: Vec<Inline<Raw>>) -> String {
        render(items, Context::Block)
    }

    fn mention(id: &str) -> Inline<Raw> {
        Inline::Atom(Raw {
            markdown: crate::syntax::mention_markdown(id),
            shortcut_reference: true,
        })
    }

    #[test]
    fn escapes_only_where_significant() {
        assert_eq!(
            escape_text("a*b_c snake_case _x_ [y] `z`", None, true, Context::Block),
            r"a\*b_c snake_case \_x\_ \[y\] \`z\`"
        );
        assert_eq!(
            escape_text(r"C:\dir\*", None, false, Context::Block),
            r"C:\dir\\\*"
        );
        assert_eq!(
            escape_text("a < b <c", None, false, Context::Block),
            r"a < b \<c"
        );
        assert_eq!(
            escape_text("AT&T &amp; &#35;", None, false, Context::Block),
            r"AT&T \&amp; \&#35;"
        );
        assert_eq!(escape_text("~ok~", None, false, Context::Block), r"\~ok\~");
    }

    #[test]
    fn escapes_block_syntax_at_line_start_only() {
        for (text, want) in [
            ("# no heading", r"\# no heading"),
            ("> no quote", r"\> no quote"),
            ("- no list", r"\- no list"),
            ("+ no list", r"\+ no list"),
            ("1. no list", r"1\. no list"),
            ("2024) no list", r"2024\) no list"),
            ("=== no setext", r"\=== no setext"),
            ("| a | b", r"\| a | b"),
            ("   indented", "indented"),
            ("a # - > 1. b", "a # - > 1. b"),
        ] {
            assert_eq!(
                escape_text(text, None, true, Context::Block),
                want,
                "{text}"
            );
        }
        assert_eq!(escape_text("a #b", None, true, Context::Heading), r"a \#b");
        assert_eq!(escape_text("a|b", None, false, Context::TableCell), r"a\|b");
    }

    #[test]
    fn brackets_are_not_continued_into_links() {
        assert_eq!(
            escape_text("(x): y", Some(']'), false, Context::Block),
            r"\(x): y"
        );
        assert_eq!(
            escape_text(": y", Some(']'), false, Context::Block),
            r"\: y"
        );
    }

    #[test]
    fn code_spans_outfence_their_backticks() {
        assert_eq!(code_span("a", Context::Block), "`a`");
        assert_eq!(code_span("a`b", Context::Block), "``a`b``");
        assert_eq!(code_span("`a", Context::Block), "`` `a ``");
        assert_eq!(code_span(" a ", Context::Block), "`  a  `");
        assert_eq!(code_span("  ", Context::Block), "`  `");
        assert_eq!(code_span("a|b", Context::TableCell), r"`a\|b`");
    }

    #[test]
    fn link_destinations() {
        assert_eq!(
            link_destination("https://x.y/a_(b)"),
            r"https://x.y/a_\(b\)"
        );
        assert_eq!(link_destination("a b"), "<a b>");
        assert_eq!(link_destination(""), "<>");
        assert_eq!(link_target("u", Some("say \"hi\"")), r#"u "say \"hi\"""#);
    }

    #[test]
    fn autolink_safety() {
        assert!(is_autolink_safe("https://example.com/a?b=c"));
        assert!(is_autolink_safe("mailto:me@example.com"));
        assert!(!is_autolink_safe("example.com"));
        assert!(!is_autolink_safe("x:y"));
        assert!(!is_autolink_safe("https://a b"));
        assert!(!is_autolink_safe("https://a?b&c"));
    }

    #[test]
    fn nests_marks_by_extent() {
        let got = block(vec![
            t("a", &[Mark::Strong]),
            t("b", &[Mark::Strong, link("u")]),
            t("c", &[link("u")]),
        ]);
        assert_eq!(got, "**a[b](u)**[c](u)");
        let got = block(vec![
            t("a", &[Mark::Strong, Mark::Em]),
            t(" b", &[Mark::Strong]),
        ]);
        assert_eq!(got, "**_a_ b**");
    }

    #[test]
    fn moves_whitespace_out_of_emphasis() {
        assert_eq!(
            block(vec![t("Bold ", &[Mark::Strong]), t("text", &[])]),
            "**Bold** text"
        );
    }

    #[test]
    fn repairs_flanking_with_entities() {
        assert_eq!(
            block(vec![t("Note:", &[Mark::Strong]), t("text", &[])]),
            "**Note:**&#116;ext"
        );
        assert_eq!(
            block(vec![t("a", &[]), t("(b)", &[Mark::Em])]),
            "&#97;*(b)*"
        );
        // Re-opening right after a close switches to `_` so the runs stay apart.
        assert_eq!(
            block(vec![t("a", &[Mark::Strong]), t("b", &[Mark::Em])]),
            "**a**_b_"
        );
        assert_eq!(
            block(vec![
                t("bold ", &[Mark::Strong]),
                t("both", &[Mark::Strong, Mark::Em]),
                t(" italic", &[Mark::Em])
            ]),
            "**bold *both***_&#32;italic_"
        );
    }

    #[test]
    fn code_and_links() {
        assert_eq!(
            block(vec![
                t("run ", &[]),
                t("ls -l", &[Mark::Code]),
                t(" now", &[])
            ]),
            "run `ls -l` now"
        );
        assert_eq!(
            block(vec![t("docs", &[Mark::Code, link("https://d")])]),
            "[`docs`](https://d)"
        );
        assert_eq!(
            block(vec![t("https://d.io", &[link("https://d.io")])]),
            "<https://d.io>"
        );
        assert_eq!(
            block(vec![t("see", &[]), t("!", &[]), t("x", &[link("u")])]),
            r"see\![x](u)"
        );
    }

    #[test]
    fn never_writes_a_link_reference_definition() {
        let got = block(vec![t("a]:b", &[Mark::Code, link("u")]), t(" c", &[])]);
        assert_eq!(got, r"[a\]\:b](u) c");
        assert_eq!(
            block(vec![t("x", &[]), t("a]:b", &[Mark::Code, link("u")])]),
            "x[`a]:b`](u)"
        );
    }

    #[test]
    fn mentions_keep_their_brackets_to_themselves() {
        assert_eq!(
            block(vec![mention("a1"), t("(x)", &[])]),
            r"[~accountid:a1]\(x)"
        );
        assert_eq!(
            block(vec![mention("a1"), mention("b2")]),
            "[~accountid:a1][][~accountid:b2]"
        );
    }

    #[test]
    fn breaks() {
        let items = vec![t("a", &[]), Inline::Break, t("# b", &[])];
        assert_eq!(block(items.clone()), "a\\\n\\# b");
        assert_eq!(render(items, Context::TableCell), "a<br># b");
    }

    #[test]
    fn placeholders() {
        assert_eq!(media_placeholder(Some("file"), None, None), "[attachment]");
        assert_eq!(
            media_placeholder(Some("file"), None, Some("log [1].txt")),
            r"[attachment: log \[1\].txt]"
        );
        assert_eq!(
            media_placeholder(Some("external"), Some("https://i/x.png"), Some("x")),
            "![x](https://i/x.png)"
        );
    }
}
