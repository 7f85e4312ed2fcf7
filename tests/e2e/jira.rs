//! The Jira plugin through the real server against Atlassian's Jira Cloud
//! REST v3 description (Prism, `tests/specs/jira.json`): every tool makes the
//! request the API defines, with the Basic credential the host built from
//! the operator's secrets, and Markdown becomes Atlassian Document Format.

use serde_json::{Value, json};

use crate::harness::{Server, Session, Setup};
use crate::upstream::{Canned, Prism, Recorder};

const EMAIL: &str = "bot@example.com";
const API_TOKEN: &str = "jira-stand-in-api-token";

/// A server with the Jira plugin pointed at a stand-in on `port`, with the
/// operator's Basic credential when `credentials`.
async fn jira_server(port: u16, credentials: bool) -> anyhow::Result<Server> {
    let mut sidecar = format!(
        "[config]\nsite_url = \"http://localhost:{port}\"\n\
         [network]\nallow = [\"http://localhost:{port}\"]\n\
         allow_private = [\"127.0.0.0/8\", \"::1/128\"]\n"
    );
    if credentials {
        sidecar.push_str(&format!(
            "[credentials]\n\"http://localhost:{port}\" = {{ basic = {{ \
             username = \"${{env:TOOLHOST_TEST_JIRA_EMAIL}}\", \
             password = \"${{env:TOOLHOST_TEST_JIRA_TOKEN}}\" }} }}\n"
        ));
    }
    Setup::new()
        .integration("jira")
        .env("TOOLHOST_TEST_JIRA_EMAIL", EMAIL)
        .env("TOOLHOST_TEST_JIRA_TOKEN", API_TOKEN)
        .sidecar("jira", &sidecar)
        .start()
        .await
}

async fn start() -> anyhow::Result<(Prism, Recorder, Server)> {
    let prism = Prism::start("jira.json").await?;
    let recorder = Recorder::start(&prism.url).await?;
    let server = jira_server(recorder.port, true).await?;
    Ok((prism, recorder, server))
}

async fn call(session: &Session<'_>, tool: &str, args: Value) -> anyhow::Result<(bool, String)> {
    let res = session.call(tool, args).await?;
    let result = &res["result"];
    anyhow::ensure!(result.is_object(), "{tool}: no result: {res}");
    Ok((
        result["isError"] == true,
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{API_TOKEN}"))
    )
}

#[tokio::test]
async fn every_tool_speaks_the_jira_api_with_injected_basic_auth() -> anyhow::Result<()> {
    let (_prism, recorder, server) = start().await?;
    let session = server.session("2025-11-25").await?;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("jira_get_myself", json!({}), "GET", "/rest/api/3/myself"),
        (
            "jira_list_projects",
            json!({"query": "eng", "max_results": 10}),
            "GET",
            "/rest/api/3/project/search",
        ),
        (
            "jira_search_issues",
            json!({"jql": "project = ENG AND status = \"In Progress\" ORDER BY updated DESC"}),
            "POST",
            "/rest/api/3/search/jql",
        ),
        (
            "jira_get_issue",
            json!({"issue_key": "ENG-1"}),
            "GET",
            "/rest/api/3/issue/ENG-1",
        ),
        (
            "jira_create_issue",
            json!({"project_key": "ENG", "issue_type": "Bug", "summary": "Login fails", "description": "## Steps\n\n1. Open **login**\n2. See `500`\n\nPing [~accountid:5b10a2844c20165700ede21g]", "labels": ["auth"]}),
            "POST",
            "/rest/api/3/issue",
        ),
        (
            "jira_edit_issue",
            json!({"issue_key": "ENG-1", "summary": "Login fails on Safari", "description": "Only *Safari* 17."}),
            "PUT",
            "/rest/api/3/issue/ENG-1",
        ),
        (
            "jira_list_transitions",
            json!({"issue_key": "ENG-1"}),
            "GET",
            "/rest/api/3/issue/ENG-1/transitions",
        ),
        (
            "jira_add_comment",
            json!({"issue_key": "ENG-1", "body": "Fixed in **#42**."}),
            "POST",
            "/rest/api/3/issue/ENG-1/comment",
        ),
        (
            "jira_get_comments",
            json!({"issue_key": "ENG-1"}),
            "GET",
            "/rest/api/3/issue/ENG-1/comment",
        ),
        (
            "jira_lookup_account_id",
            json!({"query": "ada"}),
            "GET",
            "/rest/api/3/user/search",
        ),
        (
            "jira_get_issue_types",
            json!({"project_key": "ENG"}),
            "GET",
            "/rest/api/3/issue/createmeta/ENG/issuetypes",
        ),
        // With a type, the fields of that type (Bug is id 1 in the example list).
        (
            "jira_get_issue_types",
            json!({"project_key": "ENG", "issue_type": "Bug"}),
            "GET",
            "/rest/api/3/issue/createmeta/ENG/issuetypes/1",
        ),
        // The example transitions list "Close Issue" (id 2).
        (
            "jira_transition_issue",
            json!({"issue_key": "ENG-1", "transition": "Close Issue", "comment": "Shipped in **1.2**."}),
            "POST",
            "/rest/api/3/issue/ENG-1/transitions",
        ),
        (
            "jira_add_worklog",
            json!({"issue_key": "ENG-1", "time_spent": "1h 30m", "comment": "Pairing on the fix"}),
            "POST",
            "/rest/api/3/issue/ENG-1/worklog",
        ),
    ];
    let listed = session.request("tools/list", json!({})).await?;
    let cased: Vec<&str> = cases.iter().map(|(tool, ..)| *tool).collect();
    crate::upstream::assert_cases_cover(&crate::harness::tool_names(&listed), &cased);
    for (tool, args, method, path) in &cases {
        let before = recorder.seen().len();
        let (is_error, text) = call(&session, tool, args.clone()).await?;
        assert!(
            !is_error,
            "{tool}: {text}; sent {:?}",
            &recorder.seen()[before..]
        );
        assert!(!text.is_empty(), "{tool} said nothing");
        assert!(!text.contains(API_TOKEN));
        let seen = recorder.seen();
        let request = seen[before..]
            .iter()
            .find(|r| r.method == *method && r.path.starts_with(path))
            .unwrap_or_else(|| panic!("{tool}: no {method} {path} in {:?}", &seen[before..]));
        assert_eq!(
            request.header("authorization"),
            Some(basic().as_str()),
            "{tool}"
        );
        assert!(
            request.violations.is_empty(),
            "{tool}: {:?}",
            request.violations
        );
    }
    // Markdown went up as ADF, mention included.
    let created: Value = recorder
        .seen()
        .iter()
        .find(|r| r.method == "POST" && r.path == "/rest/api/3/issue")
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or(Value::Null);
    let description = &created["fields"]["description"];
    assert_eq!(description["type"], "doc", "{created}");
    assert_eq!(description["version"], 1);
    let adf = description.to_string();
    assert!(
        adf.contains("\"heading\"") && adf.contains("\"orderedList\""),
        "{adf}"
    );
    assert!(
        adf.contains("\"mention\"") && adf.contains("5b10a2844c20165700ede21g"),
        "{adf}"
    );
    assert_eq!(created["fields"]["project"]["key"], "ENG");
    Ok(())
}

#[tokio::test]
async fn jira_refusals_tell_the_model_what_to_fix() -> anyhow::Result<()> {
    let (_prism, recorder, server) = start().await?;
    let canned = |status: u16, body: Value| Canned {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    };
    recorder.answer(
        "/rest/api/3/issue/NOPE-1",
        canned(404, json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})),
    );
    recorder.answer(
        "/rest/api/3/issue/BAD-1",
        canned(400, json!({"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}})),
    );
    let mut limited = canned(429, json!({"errorMessages": ["Rate limit exceeded."]}));
    limited.headers.push(("retry-after".into(), "30".into()));
    recorder.answer("/rest/api/3/issue/BUSY-1", limited);
    let session = server.session("2025-11-25").await?;
    let (is_error, text) = call(&session, "jira_get_issue", json!({"issue_key": "NOPE-1"})).await?;
    assert!(is_error && text.contains("not found"), "{text}");
    let (is_error, text) = call(
        &session,
        "jira_edit_issue",
        json!({"issue_key": "BAD-1", "summary": ""}),
    )
    .await?;
    assert!(is_error && text.contains("summary"), "{text}");
    let (is_error, text) = call(&session, "jira_get_issue", json!({"issue_key": "BUSY-1"})).await?;
    assert!(is_error && text.contains("30"), "{text}");
    Ok(())
}

/// A Jira that remembers: issues created stay, transitions change their
/// status, comments accumulate. Prism answers each request from examples
/// alone, so flows that read back their own writes need this.
#[derive(Default)]
struct JiraFake {
    issues: std::collections::BTreeMap<String, FakeIssue>,
}

struct FakeIssue {
    summary: String,
    description: Value,
    status: String,
    comments: Vec<Value>,
}

const TRANSITIONS: &[(&str, &str, &str)] = &[
    ("21", "Start progress", "In Progress"),
    ("31", "Close", "Done"),
];

impl JiraFake {
    fn answer(&mut self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let path = path.split('?').next().unwrap_or(path);
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let rest: Vec<&str> = path
            .trim_start_matches("/rest/api/3/issue")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        match (method, rest.as_slice()) {
            ("POST", []) => {
                let key = format!("ENG-{}", self.issues.len() + 1);
                self.issues.insert(
                    key.clone(),
                    FakeIssue {
                        summary: body["fields"]["summary"]
                            .as_str()
                            .unwrap_or_default()
                            .into(),
                        description: body["fields"]["description"].clone(),
                        status: "To Do".into(),
                        comments: Vec::new(),
                    },
                );
                (
                    201,
                    json!({"id": "10001", "key": key, "self": format!("http://jira/rest/api/3/issue/{key}")}),
                )
            }
            (_, [key, ..]) if !self.issues.contains_key(*key) => (
                404,
                json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
            ),
            ("GET", [key]) => {
                let issue = &self.issues[*key];
                (
                    200,
                    json!({
                        "id": "10001", "key": key, "self": format!("http://jira/rest/api/3/issue/{key}"),
                        "fields": {
                            "summary": issue.summary, "description": issue.description,
                            "status": {"name": issue.status, "statusCategory": {"key": "new", "name": issue.status}},
                            "issuetype": {"name": "Task"}, "project": {"key": "ENG", "name": "Engineering"},
                            "labels": [], "comment": {"total": issue.comments.len(), "comments": []},
                            "created": "2026-11-27T10:00:00.000+0000", "updated": "2026-11-27T10:00:00.000+0000"
                        }
                    }),
                )
            }
            ("GET", [_, "transitions"]) => (
                200,
                json!({"transitions": TRANSITIONS.iter().map(|(id, name, to)| json!({
                "id": id, "name": name, "to": {"name": to, "statusCategory": {"key": "indeterminate", "name": to}},
                "hasScreen": false, "isAvailable": true
            })).collect::<Vec<_>>()}),
            ),
            ("POST", [key, "transitions"]) => {
                let id = body["transition"]["id"].as_str().unwrap_or_default();
                match TRANSITIONS.iter().find(|(t, ..)| *t == id) {
                    Some((_, _, to)) => {
                        if let Some(issue) = self.issues.get_mut(*key) {
                            issue.status = to.to_string();
                        }
                        (204, Value::Null)
                    }
                    None => (
                        400,
                        json!({"errorMessages": ["It seems that you have tried to perform a workflow operation that is not valid."], "errors": {}}),
                    ),
                }
            }
            ("POST", [key, "comment"]) => {
                let comment = json!({
                    "id": "100", "body": body["body"],
                    "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"},
                    "created": "2026-11-27T11:00:00.000+0000", "updated": "2026-11-27T11:00:00.000+0000"
                });
                if let Some(issue) = self.issues.get_mut(*key) {
                    issue.comments.push(comment.clone());
                }
                (201, comment)
            }
            ("GET", [key, "comment"]) => {
                let comments = &self.issues[*key].comments;
                (
                    200,
                    json!({"startAt": 0, "maxResults": 50, "total": comments.len(), "comments": comments}),
                )
            }
            _ => (
                404,
                json!({"errorMessages": [format!("the fake has no {method} {path}")]}),
            ),
        }
    }
}

/// Serves `JiraFake` on 127.0.0.1; returns its port.
async fn start_fake() -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let state = std::sync::Arc::new(std::sync::Mutex::new(JiraFake::default()));
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(request) = crate::upstream::read_request(&mut stream).await else {
                    return;
                };
                let (status, body) = match state.lock() {
                    Ok(mut fake) => fake.answer(&request.method, &request.path, &request.body),
                    Err(_) => (500, Value::Null),
                };
                let body = if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                };
                let head = format!(
                    "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((port, task))
}

#[tokio::test]
async fn an_issue_is_created_read_moved_and_discussed() -> anyhow::Result<()> {
    let (port, fake) = start_fake().await?;
    let server = jira_server(port, false).await?;
    let session = server.session("2025-11-25").await?;
    let description = "## Steps\n\n1. Open the **login** page\n2. Submit\n\nSee `auth.rs`.";
    let (is_error, text) = call(
        &session,
        "jira_create_issue",
        json!({"project_key": "ENG", "issue_type": "Task", "summary": "Login fails", "description": description}),
    )
    .await?;
    assert!(!is_error && text.contains("ENG-1"), "{text}");
    // What went up as ADF comes back as the same Markdown.
    let (is_error, text) = call(&session, "jira_get_issue", json!({"issue_key": "ENG-1"})).await?;
    assert!(!is_error, "{text}");
    assert!(
        text.contains("Login fails") && text.contains("To Do"),
        "{text}"
    );
    assert!(
        text.contains("1. Open the **login** page") && text.contains("`auth.rs`"),
        "{text}"
    );
    let (is_error, text) = call(
        &session,
        "jira_transition_issue",
        json!({"issue_key": "ENG-1", "transition": "Close"}),
    )
    .await?;
    assert!(!is_error, "{text}");
    let (_, text) = call(&session, "jira_get_issue", json!({"issue_key": "ENG-1"})).await?;
    assert!(text.contains("Done"), "the transition stuck: {text}");
    let (is_error, text) = call(
        &session,
        "jira_add_comment",
        json!({"issue_key": "ENG-1", "body": "Fixed by *restarting* the service."}),
    )
    .await?;
    assert!(!is_error, "{text}");
    let (is_error, text) =
        call(&session, "jira_get_comments", json!({"issue_key": "ENG-1"})).await?;
    assert!(
        !is_error && text.contains("Fixed by *restarting* the service."),
        "{text}"
    );
    // An unknown transition is refused with the choices.
    let (is_error, text) = call(
        &session,
        "jira_transition_issue",
        json!({"issue_key": "ENG-1", "transition": "Reopen"}),
    )
    .await?;
    assert!(is_error && text.contains("Start progress"), "{text}");
    fake.abort();
    Ok(())
}
