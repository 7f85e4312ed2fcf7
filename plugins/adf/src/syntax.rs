//! The Markdown conventions both directions must agree on.
//!
//! Round trips only hold if the parser and the renderer share one idea of the
//! dialect, so the parser options, the mention syntax and the character
//! classes that decide emphasis live here rather than in either converter.

use pulldown_cmark::Options;

/// GFM tables and strikethrough, nothing else: every extension enabled here is
/// syntax the renderer would have to escape everywhere.
pub(crate) fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Jira wiki markup's mention syntax, lower-cased when written back.
const MENTION_PREFIX: &str = "~accountid:";

/// The account id if `label` (the text between `[` and `]`) is a mention.
pub(crate) fn parse_mention_label(label: &str) -> Option<&str> {
    let prefix = label.get(..MENTION_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(MENTION_PREFIX) {
        return None;
    }
    let id = &label[MENTION_PREFIX.len()..];
    is_mentionable_id(id).then_some(id)
}

/// Account ids are like `5b10ac8d82e05b22cc7d4ef5` or
/// `557058:f58131cb-b67d-43c7-b30d-6b58d40bd077`. Anything outside this set
/// could change the meaning of the surrounding brackets, so such a mention is
/// rendered by its display text instead.
pub(crate) fn is_mentionable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
}

pub(crate) fn mention_markdown(id: &str) -> String {
    format!("[{MENTION_PREFIX}{id}]")
}

/// Whitespace as pulldown-cmark judges emphasis flanking.
pub(crate) fn is_whitespace(c: char) -> bool {
    c.is_whitespace()
}

/// A superset of CommonMark's Unicode punctuation (every P and S category)
/// for flanking decisions. Erring towards "punctuation" only ever costs an
/// unneeded entity in the output, never a lost mark.
pub(crate) fn may_be_punctuation(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_labels() {
        assert_eq!(parse_mention_label("~accountid:abc123"), Some("abc123"));
        assert_eq!(
            parse_mention_label("~AccountId:557058:f581-31cb"),
            Some("557058:f581-31cb")
        );
        assert_eq!(parse_mention_label("~accountid:"), None);
        assert_eq!(parse_mention_label("~accountid:a b"), None);
        assert_eq!(parse_mention_label("~accountid:a*b"), None);
        assert_eq!(parse_mention_label("accountid:abc"), None);
        assert_eq!(parse_mention_label("~acc"), None);
        assert_eq!(parse_mention_label("~accountidé"), None);
    }

    #[test]
    fn mention_markdown_round_trips_through_the_label_parser() {
        let md = mention_markdown("557058:f58131cb");
        let label = md.trim_start_matches('[').trim_end_matches(']');
        assert_eq!(parse_mention_label(label), Some("557058:f58131cb"));
    }

    #[test]
    fn punctuation_superset() {
        assert!(may_be_punctuation('.'));
        assert!(may_be_punctuation('“'));
        assert!(may_be_punctuation('😀'));
        assert!(!may_be_punctuation('a'));
        assert!(!may_be_punctuation('é'));
        assert!(!may_be_punctuation('漢'));
        assert!(!may_be_punctuation(' '));
    }
}
