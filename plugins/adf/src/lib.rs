//! Markdown ⇄ Atlassian Document Format (ADF).
//!
//! Jira Cloud's REST API v3 only speaks ADF for descriptions and comments,
//! while people and language models read and write Markdown. This crate is the
//! bridge a Jira plugin needs, kept free of I/O, threads and system libraries
//! so it compiles unchanged into a `wasm32-wasip2` component.
//!
//! # Markdown dialect
//!
//! CommonMark plus GFM tables and strikethrough (`~~text~~`), with two
//! additions:
//!
//! * **Mentions** are written `[~accountid:ACCOUNT_ID]`, Jira's own
//!   wiki-markup syntax, so anyone who has used Jira recognises it. Parsing
//!   reuses Markdown's shortcut references, so an escaped `\[` or a matching
//!   link definition keeps its usual Markdown meaning.
//! * **`<br>`** inline is a hard break. Headings and table cells are single
//!   lines in Markdown, so this is how their hard breaks survive a round trip.
//!
//! # What does not survive
//!
//! ADF → Markdown keeps every word but not everything ADF can say: panels
//! become quotes opened by a bold label (`> **Note:** …`), expands a bold
//! title followed by their content, media `[attachment]` placeholders (or an
//! image for external media), inline cards links, dates (as `YYYY-MM-DD`),
//! statuses and emoji plain text, and mentions lose their display name.
//! Underline, colours, alignment, cell spans and which cells are headers
//! (GFM's first row always is) are dropped, as are empty paragraphs.
//!
//! Markdown → ADF drops presentation (bullet characters, loose versus tight
//! lists, setext headings, link reference style). Images become links, as ADF
//! media need an upload; raw HTML stays literal text; and content ADF cannot
//! nest (a heading in a list item, a quote in a quote) is flattened into the
//! nearest container that may hold it.
//!
//! Within those limits the pair is stable: for Markdown `md`,
//! `markdown_to_adf(&adf_to_markdown(&markdown_to_adf(md)))` equals
//! `markdown_to_adf(md)`, which the tests check on generated documents.
//! Keeping that true occasionally costs readability in odd corners, such as
//! a numeric entity (`&#116;`) next to emphasis that CommonMark would
//! otherwise not recognise.

mod inline;
mod render_inline;
mod syntax;
mod to_adf;
mod to_markdown;

pub use to_adf::markdown_to_adf;
pub use to_markdown::adf_to_markdown;
