//! What the consent page says a scope lets an application do on this
//! server: "call the 11 read-only tools, such as `hash`", not "read".
//!
//! The issuer sits below the plugin runtime and the MCP layer, so it does not
//! look at tools itself: the composition root hands it a [`ToolSource`], a
//! function returning a [`ToolSummary`] of what is served at that moment.

use std::sync::Arc;

use crate::auth::principal::{SCOPE_READ, SCOPE_WRITE};

use super::authorize::escape;

/// How many example tool names each scope's line shows.
const EXAMPLES: usize = 3;

/// The tools a token could reach, by the scope each needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolSummary {
    /// Tools that only read (`readOnlyHint`): the `read` scope.
    pub read_only: usize,
    /// Every other tool: the `write` scope.
    pub changing: usize,
    /// A few names of each kind, in the order given.
    pub read_only_examples: Vec<String>,
    pub changing_examples: Vec<String>,
}

impl ToolSummary {
    /// Summarises `(name, read_only)` pairs.
    pub fn from_tools<'a>(tools: impl IntoIterator<Item = (&'a str, bool)>) -> ToolSummary {
        let mut summary = ToolSummary::default();
        for (name, read_only) in tools {
            let (count, examples) = if read_only {
                (&mut summary.read_only, &mut summary.read_only_examples)
            } else {
                (&mut summary.changing, &mut summary.changing_examples)
            };
            *count += 1;
            if examples.len() < EXAMPLES {
                examples.push(name.to_string());
            }
        }
        summary
    }
}

/// The tools served now, asked when a consent page is drawn.
pub type ToolSource = Arc<dyn Fn() -> ToolSummary + Send + Sync>;

/// One HTML list item per scope, saying what it allows on this server.
pub(super) fn scope_items(scopes: &[String], tools: &ToolSummary) -> String {
    scopes
        .iter()
        .map(|scope| format!("<li>{}</li>\n", describe(scope, tools)))
        .collect()
}

fn describe(scope: &str, tools: &ToolSummary) -> String {
    match scope {
        SCOPE_READ => tools_line(
            "read-only tools",
            "that only read",
            tools.read_only,
            &tools.read_only_examples,
        ),
        SCOPE_WRITE => tools_line(
            "tools that change things",
            "that change things",
            tools.changing,
            &tools.changing_examples,
        ),
        other => format!("<code>{}</code>", escape(other)),
    }
}

/// "call the 12 tools that change things, such as `a`, `b` and `c`".
fn tools_line(kind: &str, that: &str, count: usize, examples: &[String]) -> String {
    let names: Vec<String> = examples
        .iter()
        .map(|name| format!("<code>{}</code>", escape(name)))
        .collect();
    let such_as = match names.as_slice() {
        [] => String::new(),
        [one] => format!(", such as {one}"),
        [init @ .., last] => format!(", such as {} and {last}", init.join(", ")),
    };
    match count {
        0 => format!("call tools {that} (none are served now; this covers any added later)"),
        1 => format!("call the <b>1</b> tool {that}{such_as}"),
        n => format!("call the <b>{n}</b> {kind}{such_as}"),
    }
}

/// The paragraph naming who asks and where the browser goes next.
pub(super) fn request_html(client_name: &str, redirect_uri: &str) -> String {
    let host = reqwest::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "<p><b>{client}</b> asks to use this server's tools as you. \
         Afterwards your browser returns to <b>{host}</b> \
         (<code class=\"uri\">{uri}</code>).</p>\n",
        client = escape(client_name),
        host = escape(&host),
        uri = escape(redirect_uri),
    )
}

/// The list of what allowing grants, for the sign-in and device pages.
pub(super) fn grants_html(scopes: &[String], tools: &ToolSummary) -> String {
    format!(
        "<p>If you allow it, it may:</p>\n<ul>\n{}</ul>\n",
        scope_items(scopes, tools)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn counts_and_examples_come_from_the_tools() {
        let summary = ToolSummary::from_tools([
            ("get_issue", true),
            ("create_issue", false),
            ("search", true),
            ("list_repos", true),
            ("get_file", true),
            ("merge", false),
        ]);
        assert_eq!(summary.read_only, 4);
        assert_eq!(summary.changing, 2);
        assert_eq!(
            summary.read_only_examples,
            ["get_issue", "search", "list_repos"]
        );
        assert_eq!(summary.changing_examples, ["create_issue", "merge"]);
    }

    /// The page's text for a known tool set: what each scope allows, with
    /// counts and example names, not the bare scope names.
    #[test]
    fn each_scope_says_what_it_allows() {
        let summary = ToolSummary {
            read_only: 24,
            changing: 12,
            read_only_examples: vec!["get_issue".into()],
            changing_examples: vec!["create_issue".into(), "add_comment".into()],
        };
        let html = grants_html(&scopes("read write"), &summary);
        assert!(
            html.contains(
                "<li>call the <b>24</b> read-only tools, such as <code>get_issue</code></li>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<li>call the <b>12</b> tools that change things, such as <code>create_issue</code> and <code>add_comment</code></li>"
            ),
            "{html}"
        );
        let none = grants_html(&scopes("write"), &ToolSummary::default());
        assert!(none.contains("none are served now"), "{none}");
        assert!(!none.contains("read-only"), "{none}");
    }

    #[test]
    fn names_and_addresses_are_escaped() {
        let html = request_html("<img src=x>", "http://127.0.0.1:9/cb?a=\"1\"&b=<2>");
        assert!(html.contains("<b>&lt;img src=x&gt;</b>"), "{html}");
        assert!(html.contains("<b>127.0.0.1</b>"), "{html}");
        assert!(html.contains("a=&quot;1&quot;&amp;b=&lt;2&gt;"), "{html}");
        let summary = ToolSummary::from_tools([("<b>", true)]);
        let items = scope_items(&scopes("read <x>"), &summary);
        assert!(items.contains("<code>&lt;b&gt;</code>"), "{items}");
        assert!(items.contains("<code>&lt;x&gt;</code>"), "{items}");
    }
}
