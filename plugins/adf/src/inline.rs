//! The inline model both directions share, and its canonical form.
//!
//! ADF can say things Markdown cannot: bold that ends in a space, a hard break
//! at the end of a paragraph, two text nodes with the same marks side by side.
//! Rather than special-casing each in the renderer and again in the parser,
//! both directions pass inline content through [`canonicalize`], which
//! rewrites such sequences into the one form Markdown *can* express. Since the
//! renderer only ever sees canonical input and the parser only ever produces
//! canonical output, ADF → Markdown → ADF becomes the identity on everything
//! `markdown_to_adf` returns.

use crate::syntax::is_whitespace;

/// The marks Markdown can express. The declaration order is the canonical
/// order of an ADF `marks` array.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mark {
    Strong,
    Em,
    Strike,
    Code,
    Link { href: String, title: Option<String> },
}

impl Mark {
    /// Marks written with delimiter runs, whose edges must not be whitespace.
    pub(crate) fn is_delimited(&self) -> bool {
        matches!(self, Mark::Strong | Mark::Em | Mark::Strike)
    }

    fn same_kind(&self, other: &Mark) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// One inline item. `A` is whatever each direction treats as opaque: a
/// mention on the way in, a pre-rendered Markdown snippet on the way out.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Inline<A> {
    Text { text: String, marks: Vec<Mark> },
    Break,
    Atom(A),
}

impl<A> Inline<A> {
    pub(crate) fn text(text: impl Into<String>, marks: Vec<Mark>) -> Self {
        Inline::Text {
            text: text.into(),
            marks,
        }
    }

    fn marks(&self) -> &[Mark] {
        match self {
            Inline::Text { marks, .. } => marks,
            Inline::Break | Inline::Atom(_) => &[],
        }
    }
}

/// Sorts, de-duplicates and applies ADF's rule that `code` only combines
/// with `link`.
pub(crate) fn normalize_marks(marks: &mut Vec<Mark>) {
    marks.sort();
    marks.dedup_by(|a, b| a.same_kind(b));
    if marks.contains(&Mark::Code) {
        marks.retain(|m| matches!(m, Mark::Code | Mark::Link { .. }));
    }
}

/// Rewrites `items` into the canonical form described in the module docs.
pub(crate) fn canonicalize<A: Clone + PartialEq>(mut items: Vec<Inline<A>>) -> Vec<Inline<A>> {
    for item in &mut items {
        if let Inline::Text { marks, .. } = item {
            normalize_marks(marks);
        }
    }
    // Each pass can expose work for the others (trimming a line edge can make
    // two texts adjacent); a handful of passes always reaches the fixpoint.
    for _ in 0..8 {
        let before = items.clone();
        items = merge_adjacent(items);
        items = move_edge_whitespace(&items);
        items = merge_adjacent(items);
        items = trim_lines(items);
        items = merge_adjacent(items);
        if items == before {
            break;
        }
    }
    items
}

/// Drops empty texts and joins neighbours with identical marks.
fn merge_adjacent<A>(items: Vec<Inline<A>>) -> Vec<Inline<A>> {
    let mut out: Vec<Inline<A>> = Vec::with_capacity(items.len());
    for item in items {
        if let Inline::Text { text, marks } = &item {
            if text.is_empty() {
                continue;
            }
            if let Some(Inline::Text {
                text: prev_text,
                marks: prev_marks,
            }) = out.last_mut()
                && prev_marks == marks
            {
                prev_text.push_str(text);
                continue;
            }
        }
        out.push(item);
    }
    out
}

/// `**bold **` is not bold in Markdown, so whitespace at the edge of a
/// delimited mark moves outside it unless the neighbour on that side carries
/// the same mark (in which case the whitespace is inside the span anyway).
fn move_edge_whitespace<A: Clone>(items: &[Inline<A>]) -> Vec<Inline<A>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Inline::Text { text, marks } = item else {
            out.push(item.clone());
            continue;
        };
        if marks.contains(&Mark::Code) || !marks.iter().any(Mark::is_delimited) {
            out.push(item.clone());
            continue;
        }
        let prev = i.checked_sub(1).map_or(&[][..], |p| items[p].marks());
        let next = items.get(i + 1).map_or(&[][..], Inline::marks);
        let keep = |m: &&Mark, before: bool, after: bool| {
            !m.is_delimited() || ((!before || prev.contains(m)) && (!after || next.contains(m)))
        };
        let Some(start) = text.find(|c| !is_whitespace(c)) else {
            let kept = marks.iter().filter(|m| keep(m, true, true)).cloned();
            out.push(Inline::text(text.clone(), kept.collect()));
            continue;
        };
        let end = text
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_whitespace(c))
            .map_or(text.len(), |(i, c)| i + c.len_utf8());
        if start > 0 {
            let kept = marks.iter().filter(|m| keep(m, true, false)).cloned();
            out.push(Inline::text(&text[..start], kept.collect()));
        }
        out.push(Inline::text(&text[start..end], marks.clone()));
        if end < text.len() {
            let kept = marks.iter().filter(|m| keep(m, false, true)).cloned();
            out.push(Inline::text(&text[end..], kept.collect()));
        }
    }
    out
}

/// Markdown strips spaces and tabs at the start and end of every line and
/// ignores hard breaks at the edges of a block, so canonical content has
/// neither. Code keeps its spaces: a code span preserves them.
fn trim_lines<A>(items: Vec<Inline<A>>) -> Vec<Inline<A>> {
    let mut lines: Vec<Vec<Inline<A>>> = vec![Vec::new()];
    for item in items {
        match item {
            Inline::Break => lines.push(Vec::new()),
            other => {
                if let Some(line) = lines.last_mut() {
                    line.push(other);
                }
            }
        }
    }
    for line in &mut lines {
        trim_line(line);
    }
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, line) in lines.into_iter().enumerate().take(last + 1).skip(first) {
        if n > first {
            out.push(Inline::Break);
        }
        out.extend(line);
    }
    out
}

fn trim_line<A>(line: &mut Vec<Inline<A>>) {
    const BLANK: [char; 2] = [' ', '\t'];
    while let Some(Inline::Text { text, marks }) = line.first_mut() {
        if marks.contains(&Mark::Code) {
            break;
        }
        let trimmed = text.trim_start_matches(BLANK);
        if trimmed.is_empty() {
            line.remove(0);
        } else {
            *text = trimmed.to_owned();
            break;
        }
    }
    while let Some(Inline::Text { text, marks }) = line.last_mut() {
        if marks.contains(&Mark::Code) {
            break;
        }
        let trimmed = text.trim_end_matches(BLANK);
        if trimmed.is_empty() {
            line.pop();
        } else {
            *text = trimmed.to_owned();
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Inline<&'static str>;

    fn t(text: &str, marks: &[Mark]) -> Item {
        Inline::text(text, marks.to_vec())
    }

    fn link(href: &str) -> Mark {
        Mark::Link {
            href: href.into(),
            title: None,
        }
    }

    #[test]
    fn marks_are_sorted_deduplicated_and_code_only_keeps_link() {
        let mut marks = vec![Mark::Em, Mark::Strong, Mark::Em];
        normalize_marks(&mut marks);
        assert_eq!(marks, [Mark::Strong, Mark::Em]);

        let mut marks = vec![link("u"), Mark::Strong, Mark::Code];
        normalize_marks(&mut marks);
        assert_eq!(marks, [Mark::Code, link("u")]);
    }

    #[test]
    fn adjacent_texts_with_equal_marks_merge() {
        let got = canonicalize(vec![
            t("a", &[Mark::Strong]),
            t("", &[]),
            t("b", &[Mark::Strong]),
            t("c", &[]),
        ]);
        assert_eq!(got, [t("ab", &[Mark::Strong]), t("c", &[])]);
    }

    #[test]
    fn whitespace_leaves_delimited_marks() {
        let got = canonicalize(vec![t("x", &[]), t(" bold ", &[Mark::Strong]), t("y", &[])]);
        assert_eq!(
            got,
            [t("x ", &[]), t("bold", &[Mark::Strong]), t(" y", &[])]
        );
    }

    #[test]
    fn whitespace_stays_inside_a_mark_the_neighbour_shares() {
        let got = canonicalize(vec![
            t("a ", &[Mark::Strong, Mark::Em]),
            t("b", &[Mark::Strong]),
        ]);
        assert_eq!(
            got,
            [t("a", &[Mark::Strong, Mark::Em]), t(" b", &[Mark::Strong])]
        );
    }

    #[test]
    fn links_and_code_keep_their_whitespace() {
        let got = canonicalize(vec![
            t("x", &[]),
            t(" a ", &[link("u")]),
            t(" c ", &[Mark::Code]),
            t("y", &[]),
        ]);
        assert_eq!(
            got,
            [
                t("x", &[]),
                t(" a ", &[link("u")]),
                t(" c ", &[Mark::Code]),
                t("y", &[])
            ]
        );
    }

    #[test]
    fn lines_are_trimmed_and_edge_breaks_dropped() {
        let got = canonicalize(vec![
            Inline::Break,
            t("  a  ", &[]),
            Inline::Break,
            t("\t", &[Mark::Strong]),
            Inline::Break,
            t(" b", &[]),
            Inline::Break,
            t("  ", &[]),
        ]);
        assert_eq!(
            got,
            [t("a", &[]), Inline::Break, Inline::Break, t("b", &[])]
        );
    }

    #[test]
    fn only_whitespace_becomes_nothing() {
        let got = canonicalize(vec![t("  ", &[Mark::Em]), Inline::Break, t(" ", &[])]);
        assert_eq!(got, []);
    }

    #[test]
    fn atoms_are_left_alone() {
        let got = canonicalize(vec![
            t("a ", &[Mark::Strong]),
            Inline::Atom("m"),
            t(" b", &[Mark::Strong]),
        ]);
        assert_eq!(
            got,
            [
                t("a", &[Mark::Strong]),
                t(" ", &[]),
                Inline::Atom("m"),
                t(" ", &[]),
                t("b", &[Mark::Strong])
            ]
        );
    }

    #[test]
    fn canonical_form_is_a_fixpoint() {
        let input = vec![
            t(" x ", &[Mark::Strong, Mark::Em]),
            t(" ", &[Mark::Em]),
            t("y", &[Mark::Em, Mark::Strike]),
            Inline::Break,
            t(" z", &[Mark::Code]),
        ];
        let once = canonicalize(input);
        assert_eq!(canonicalize(once.clone()), once);
    }
}
