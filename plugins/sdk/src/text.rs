//! Keeping answers bounded. The host refuses a result over its output
//! limit, and a model reads every byte it is given, so tools cut long
//! bodies, patches and files themselves and say that they did.

/// `text` cut to at most `max` bytes on a character boundary, and whether
/// it was cut.
pub fn truncate(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

/// `text` cut to `max` bytes with a note saying how much was left out.
pub fn bounded(text: &str, max: usize) -> String {
    let (mut out, cut) = truncate(text, max);
    if cut {
        out.push_str(&format!(
            "\n… [truncated: {} of {} bytes shown]",
            out.len(),
            text.len()
        ));
    }
    out
}

/// A text on one line (whitespace runs become one space), bounded, with
/// `…` where it was cut.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (mut out, cut) = truncate(&flat, max);
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries_and_say_so() {
        assert_eq!(truncate("héllo", 2), ("h".to_string(), true));
        assert_eq!(truncate("abc", 5), ("abc".to_string(), false));
        assert_eq!(
            bounded("abcdef", 3),
            "abc\n… [truncated: 3 of 6 bytes shown]"
        );
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("one two three", 7), "one two…");
    }
}
