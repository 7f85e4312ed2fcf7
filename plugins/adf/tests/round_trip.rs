//! Round trips on representative documents, and ADF as Jira returns it.

mod common;

use common::validate;
use serde_json::{Value, json};
use toolhost_adf::{adf_to_markdown, markdown_to_adf};

const BUG_REPORT: &str = r#"# Login fails on Safari

Users on **Safari 17** can't log in after the *SSO* redirect. See [the logs](https://logs.example.com/q?id=42&env=prod "Prod logs").

## Steps

1. Open <https://app.example.com>
2. Click **Sign in** → choose `Okta`
3. Observe the error:
   ```text
   Error: invalid_state (code 400)
   ```

## Expected

- Redirect back to `/dashboard`
- No ~~double~~ single prompt
  - nested detail with snake_case_names and C:\Temp paths

> Reported by [~accountid:557058:f58131cb-b67d-43c7-b30d-6b58d40bd077] on 2024-06-20.
> Second line of the quote.

| Browser | Version | Works? |
|---------|--------:|:------:|
| Safari  | 17.4    | **no** |
| Chrome  | 125     | yes    |

---

Line one  
line two\
line three<br>line four
"#;

const RELEASE_NOTES: &str = r#"### Changes since 2.3

3. Faster `cargo build`
4. Fixed `` a `b` c `` parsing
5. ***Breaking:*** removed `--legacy`

#### Escapes

Literal \*stars\*, \_underscores\_, \`ticks\`, \[brackets\], \# hash, 1\. not a list,
\> not a quote, a\\b, &amp; entity, &copy; sign.

##### Media

![Architecture diagram](https://img.example.com/arch.png) and an inline <span>tag</span>.

###### Code

````markdown
```rust
fn main() {}
```
````

    indented code
    block

- [ ] not a task list in this dialect
- item with a [link](https://example.com/a_(b)) and **bold `code` inside**
"#;

const NESTING: &str = "\
> quoted paragraph
>
> - quoted list
>   - nested in quote
>     > quote in a list in a quote
>
> # heading in a quote

- item

  second paragraph in the item

  ```sh
  echo inside
  ```
- 7. ordered inside bullet
  8. next

10. ten
11. eleven

* star list right after

0. zero start
";

const INLINE_ZOO: &str = "\
**bold**text, *em*text, **Note:** spaced, ~~gone~~, `a|b`, [~accountid:abc123], \
[~accountid:abc123] and [~accountid:def456], \\[~accountid:escaped], [~accountid:x]: colon, \
<me@example.com>, <https://example.com/x_y>, [empty]() and [](https://bare.example.com), \
Größe 漢字 😀 — “quotes” ‘single’, tab\there, a_b_c, _a_, __b__, 2 * 3 * 4, x<y, a &b, \
trailing backslash \\";

const TABLES: &str = "\
| Left | Center | Right |
|:-----|:------:|------:|
| `x\\|y` | a \\| b | **c** |
| only one |

| Single |
|--------|
| row |
";

fn assert_round_trip(md: &str) {
    let adf = markdown_to_adf(md);
    if let Err(err) = validate(&adf) {
        panic!("invalid ADF: {err}\n{adf:#}");
    }
    let rendered = adf_to_markdown(&adf);
    let again = markdown_to_adf(&rendered);
    assert_eq!(
        again, adf,
        "ADF changed after a round trip; rendered:\n{rendered}"
    );
    assert_eq!(
        adf_to_markdown(&again),
        rendered,
        "rendering is not a fixpoint"
    );
}

#[test]
fn representative_markdown_round_trips() {
    for md in [
        BUG_REPORT,
        RELEASE_NOTES,
        NESTING,
        INLINE_ZOO,
        TABLES,
        "",
        "plain",
        "\n\n  \n",
    ] {
        assert_round_trip(md);
    }
}

#[test]
fn bug_report_renders_readably() {
    let rendered = adf_to_markdown(&markdown_to_adf(BUG_REPORT));
    let expected = r#"# Login fails on Safari

Users on **Safari 17** can't log in after the *SSO* redirect. See [the logs](https://logs.example.com/q?id=42&env=prod "Prod logs").

## Steps

1. Open <https://app.example.com>
2. Click **Sign in** → choose `Okta`
3. Observe the error:
   ```text
   Error: invalid_state (code 400)
   ```

## Expected

- Redirect back to `/dashboard`
- No ~~double~~ single prompt
  - nested detail with snake_case_names and C:\Temp paths

> Reported by [~accountid:557058:f58131cb-b67d-43c7-b30d-6b58d40bd077] on 2024-06-20. Second line of the quote.

| Browser | Version | Works? |
| --- | --- | --- |
| Safari | 17.4 | **no** |
| Chrome | 125 | yes |

---

Line one\
line two\
line three\
line four"#;
    assert_eq!(rendered, expected);
}

#[test]
fn bug_report_converts_to_the_expected_adf() {
    let adf = markdown_to_adf(BUG_REPORT);
    let content = adf["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let types: Vec<&str> = content.iter().filter_map(|b| b["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "heading",
            "paragraph",
            "heading",
            "orderedList",
            "heading",
            "bulletList",
            "blockquote",
            "table",
            "rule",
            "paragraph"
        ]
    );
    assert_eq!(
        content[1]["content"][5],
        json!({"type": "text", "text": "the logs", "marks": [
            {"type": "link", "attrs": {"href": "https://logs.example.com/q?id=42&env=prod", "title": "Prod logs"}}
        ]})
    );
    let third_step = &content[3]["content"][2]["content"];
    assert_eq!(
        third_step[1],
        json!({"type": "codeBlock", "attrs": {"language": "text"}, "content": [
            {"type": "text", "text": "Error: invalid_state (code 400)"}
        ]})
    );
    assert_eq!(
        content[6]["content"][0]["content"][1],
        json!({"type": "mention", "attrs": {"id": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"}})
    );
    assert_eq!(
        content[7]["content"][1]["content"][2],
        json!({"type": "tableCell", "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "no", "marks": [{"type": "strong"}]}
        ]}]})
    );
    let breaks = content[9]["content"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|n| n["type"] == "hardBreak").count());
    assert_eq!(breaks, 3);
}

/// A bug report the way Jira's REST API returns it, extras included.
fn jira_issue_description() -> Value {
    json!({
        "version": 1,
        "type": "doc",
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Steps to reproduce"}]},
            {"type": "orderedList", "attrs": {"order": 1}, "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "Open "},
                    {"type": "text", "text": "Settings ", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": "→ "},
                    {"type": "text", "text": "Billing", "marks": [{"type": "em"}]}
                ]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": "Run "},
                    {"type": "text", "text": "npm run build", "marks": [{"type": "code"}]}
                ]}]}
            ]},
            {"type": "panel", "attrs": {"panelType": "warning"}, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Only happens on "},
                    {"type": "text", "text": "staging", "marks": [{"type": "underline"}]},
                    {"type": "text", "text": "."}
                ]}
            ]},
            {"type": "paragraph", "content": [
                {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5", "text": "@Jane Doe", "accessLevel": ""}},
                {"type": "text", "text": " can you look? "},
                {"type": "emoji", "attrs": {"shortName": ":pray:", "id": "1f64f", "text": "🙏"}}
            ]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Related: "},
                {"type": "inlineCard", "attrs": {"url": "https://example.atlassian.net/browse/PROJ-42"}},
                {"type": "text", "text": ", due "},
                {"type": "date", "attrs": {"timestamp": "1718841600000"}},
                {"type": "text", "text": ", status "},
                {"type": "status", "attrs": {"text": "IN REVIEW", "color": "blue", "localId": "a1"}}
            ]},
            {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
                {"type": "media", "attrs": {"id": "9a1f", "type": "file", "collection": "contentId-1", "width": 800, "height": 600}}
            ]},
            {"type": "codeBlock", "attrs": {"language": "bash"}, "content": [
                {"type": "text", "text": "$ curl -s https://api.example.com/health\n{\"ok\": false}"}
            ]},
            {"type": "expand", "attrs": {"title": "Logs"}, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "stack trace here"}]}
            ]},
            {"type": "extension", "attrs": {"extensionType": "com.atlassian.confluence.macro.core", "extensionKey": "toc"}},
            {"type": "someFutureNode", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "future text survives"}]}
            ]}
        ]
    })
}

#[test]
fn jira_issue_description_renders() {
    let expected = r#"## Steps to reproduce

1. Open **Settings** → *Billing*
2. Run `npm run build`

> **Warning:** Only happens on staging.

[~accountid:5b10ac8d82e05b22cc7d4ef5] can you look? 🙏

Related: <https://example.atlassian.net/browse/PROJ-42>, due 2024-06-20, status IN REVIEW

[attachment]

```bash
$ curl -s https://api.example.com/health
{"ok": false}
```

**Logs**

stack trace here

future text survives"#;
    assert_eq!(adf_to_markdown(&jira_issue_description()), expected);
}

#[test]
fn jira_comment_renders() {
    let comment = json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Summary: ", "marks": [{"type": "strong"}]},
            {"type": "text", "text": "the "},
            {"type": "text", "text": "cache", "marks": [{"type": "textColor", "attrs": {"color": "#ff5630"}}]},
            {"type": "text", "text": " is "},
            {"type": "text", "text": "not", "marks": [{"type": "strike"}]},
            {"type": "text", "text": " invalidated"},
            {"type": "hardBreak"},
            {"type": "text", "text": "See "},
            {"type": "text", "text": "the runbook", "marks": [{"type": "link", "attrs": {"href": "https://wiki.example.com/runbook"}}]}
        ]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Backend"}]},
                {"type": "bulletList", "content": [{"type": "listItem", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "API_KEY rotation"}]}
                ]}]}
            ]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Frontend"}]}]}
        ]},
        {"type": "table", "attrs": {"isNumberColumnEnabled": false, "layout": "default", "localId": "t1"}, "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Env"}]}]},
                {"type": "tableHeader", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Status"}]}]}
            ]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "prod"}]}]},
                {"type": "tableCell", "attrs": {}, "content": [{"type": "paragraph", "content": [
                    {"type": "status", "attrs": {"text": "OK", "color": "green"}}
                ]}]}
            ]}
        ]},
        {"type": "blockquote", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "It worked yesterday"}]}]},
        {"type": "rule"},
        {"type": "paragraph", "content": [{"type": "text", "text": "Costs *5* [approx] with 2 < 3 & #tags"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "# not a heading"}]}
    ]});
    let expected = r"**Summary:** the cache is ~~not~~ invalidated\
See [the runbook](https://wiki.example.com/runbook)

- Backend
  - API_KEY rotation
- Frontend

| Env | Status |
| --- | --- |
| prod | OK |

> It worked yesterday

---

Costs \*5\* \[approx\] with 2 < 3 & #tags

\# not a heading";
    assert_eq!(adf_to_markdown(&comment), expected);
}

#[test]
fn jira_odds_and_ends_render() {
    let doc = json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "", "text": "@Former User"}},
            {"type": "text", "text": " shared "},
            {"type": "mediaInline", "attrs": {"id": "m1", "type": "file", "alt": "report.pdf"}},
            {"type": "text", "text": " via "},
            {"type": "inlineExtension", "attrs": {"extensionKey": "jira", "text": "JRA-1"}},
            {"type": "hardBreak"}
        ]},
        {"type": "mediaGroup", "content": [
            {"type": "media", "attrs": {"id": "a", "type": "file", "collection": "c"}},
            {"type": "media", "attrs": {"type": "external", "url": "https://img.example.com/a.png", "alt": "diagram"}}
        ]},
        {"type": "taskList", "attrs": {"localId": "l"}, "content": [
            {"type": "taskItem", "attrs": {"localId": "1", "state": "DONE"}, "content": [{"type": "text", "text": "write tests"}]},
            {"type": "taskItem", "attrs": {"localId": "2", "state": "TODO"}, "content": [{"type": "text", "text": "ship"}]}
        ]},
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [
            {"type": "bulletList", "content": [{"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "listed"}]}
            ]}]}
        ]},
        {"type": "paragraph", "content": []},
        {"type": "blockCard", "attrs": {"url": "https://example.com/page"}},
        {"type": "nestedExpand", "attrs": {"title": ""}, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "untitled expand"}]}
        ]}
    ]});
    let expected = r"@Former User shared [attachment: report.pdf] via JRA-1

[attachment] ![diagram](https://img.example.com/a.png)

- [x] write tests
- [ ] ship

> **Info:**
>
> - listed

<https://example.com/page>

untitled expand";
    assert_eq!(adf_to_markdown(&doc), expected);
}

#[test]
fn rendered_jira_documents_convert_back_to_valid_adf() {
    for doc in [jira_issue_description(), markdown_to_adf(BUG_REPORT)] {
        let back = markdown_to_adf(&adf_to_markdown(&doc));
        if let Err(err) = validate(&back) {
            panic!("{err}\n{back:#}");
        }
    }
}

#[test]
fn validator_rejects_what_jira_rejects() {
    let doc = |content: Value| json!({"type": "doc", "version": 1, "content": content});
    let text = |t: &str| json!({"type": "text", "text": t});
    assert!(validate(&json!({"type": "doc", "content": []})).is_err());
    assert!(validate(&doc(json!([{"type": "paragraph", "content": [text("")]}]))).is_err());
    assert!(
        validate(&doc(json!([{"type": "paragraph", "content": [
            {"type": "text", "text": "x", "marks": [{"type": "code"}, {"type": "strong"}]}
        ]}])))
        .is_err()
    );
    assert!(
        validate(&doc(json!([{"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "codeBlock", "content": []}]}
        ]}])))
        .is_err()
    );
    assert!(
        validate(&doc(json!([{"type": "codeBlock", "content": [
            {"type": "text", "text": "x", "marks": [{"type": "strong"}]}
        ]}])))
        .is_err()
    );
    assert!(validate(&doc(json!([{"type": "blockquote", "content": [{"type": "heading", "attrs": {"level": 1}, "content": []}]}]))).is_err());
    assert!(
        validate(&doc(
            json!([{"type": "paragraph", "content": [text("ok")]}])
        ))
        .is_ok()
    );
}
