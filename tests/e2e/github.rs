//! The GitHub plugin through the real server against GitHub's own API
//! description (Prism, `tests/specs/github.json`): every tool makes the
//! request the API defines, with the token the host injected and the
//! plugin never saw, and GitHub's refusals become errors a model can act on.

use serde_json::{Value, json};

use crate::harness::{Server, Session, Setup};
use crate::upstream::{Canned, Prism, Recorder};

const TOKEN: &str = "ghp_stand-in-token-for-tests";

async fn start() -> anyhow::Result<(Prism, Recorder, Server)> {
    let prism = Prism::start("github.json").await?;
    let recorder = Recorder::start(&prism.url).await?;
    let port = recorder.port;
    let server = Setup::new()
        .integration("github")
        .env("TOOLHOST_TEST_GITHUB_TOKEN", TOKEN)
        .sidecar(
            "github",
            &format!(
                "[config]\nbase_url = \"http://localhost:{port}\"\n\
                 [network]\nallow = [\"http://localhost:{port}\"]\n\
                 allow_private = [\"127.0.0.0/8\", \"::1/128\"]\n\
                 [credentials]\n\"http://localhost:{port}\" = \
                 {{ header = \"Authorization\", value = \"Bearer ${{env:TOOLHOST_TEST_GITHUB_TOKEN}}\" }}\n"
            ),
        )
        .start()
        .await?;
    Ok((prism, recorder, server))
}

/// Calls `tool` and returns (is_error, text, structured content).
async fn call(
    session: &Session<'_>,
    tool: &str,
    args: Value,
) -> anyhow::Result<(bool, String, Value)> {
    let res = session.call(tool, args).await?;
    let result = &res["result"];
    anyhow::ensure!(result.is_object(), "{tool}: no result: {res}");
    Ok((
        result["isError"] == true,
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        result["structuredContent"].clone(),
    ))
}

#[tokio::test]
async fn every_tool_speaks_the_github_api_with_an_injected_token() -> anyhow::Result<()> {
    let (_prism, recorder, server) = start().await?;
    let session = server.session("2025-11-25").await?;
    let repo = json!({"owner": "octocat", "repo": "Hello-World"});
    let with = |extra: Value| {
        let mut args = repo.clone();
        if let (Some(map), Some(more)) = (args.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        args
    };
    // (tool, arguments, method and path the API must have seen)
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("get_me", json!({}), "GET", "/user"),
        (
            "search_repositories",
            json!({"query": "tetris language:assembly", "per_page": 5}),
            "GET",
            "/search/repositories?",
        ),
        (
            "search_issues",
            json!({"query": "repo:octocat/Hello-World is:open bug"}),
            "GET",
            "/search/issues?",
        ),
        (
            "search_code",
            json!({"query": "addClass repo:jquery/jquery"}),
            "GET",
            "/search/code?",
        ),
        (
            "get_file_contents",
            with(json!({"path": "README.md"})),
            "GET",
            "/repos/octocat/Hello-World/contents/README.md",
        ),
        (
            "list_branches",
            with(json!({})),
            "GET",
            "/repos/octocat/Hello-World/branches",
        ),
        (
            "list_commits",
            with(json!({"per_page": 2})),
            "GET",
            "/repos/octocat/Hello-World/commits",
        ),
        (
            "get_commit",
            with(json!({"ref": "6dcb09b5b57875f334f61aebed695e2e4193db5e"})),
            "GET",
            "/repos/octocat/Hello-World/commits/6dcb09b",
        ),
        (
            "list_issues",
            with(json!({"state": "open", "per_page": 2})),
            "GET",
            "/repos/octocat/Hello-World/issues?",
        ),
        (
            "get_issue",
            with(json!({"issue_number": 1347})),
            "GET",
            "/repos/octocat/Hello-World/issues/1347",
        ),
        (
            "list_issue_comments",
            with(json!({"issue_number": 1347})),
            "GET",
            "/repos/octocat/Hello-World/issues/1347/comments",
        ),
        (
            "create_issue",
            with(json!({"title": "Found a bug", "body": "It breaks.", "labels": ["bug"]})),
            "POST",
            "/repos/octocat/Hello-World/issues",
        ),
        (
            "update_issue",
            with(json!({"issue_number": 1347, "state": "closed", "state_reason": "completed"})),
            "PATCH",
            "/repos/octocat/Hello-World/issues/1347",
        ),
        (
            "add_issue_comment",
            with(json!({"issue_number": 1347, "body": "Me too"})),
            "POST",
            "/repos/octocat/Hello-World/issues/1347/comments",
        ),
        (
            "list_pull_requests",
            with(json!({"state": "open"})),
            "GET",
            "/repos/octocat/Hello-World/pulls",
        ),
        (
            "get_pull_request",
            with(json!({"pull_number": 1347})),
            "GET",
            "/repos/octocat/Hello-World/pulls/1347",
        ),
        (
            "get_pull_request_files",
            with(json!({"pull_number": 1347})),
            "GET",
            "/repos/octocat/Hello-World/pulls/1347/files",
        ),
        (
            "create_pull_request",
            with(
                json!({"title": "Amazing new feature", "head": "octocat:new-feature", "base": "master", "body": "Please pull these awesome changes in!"}),
            ),
            "POST",
            "/repos/octocat/Hello-World/pulls",
        ),
        (
            "list_releases",
            with(json!({})),
            "GET",
            "/repos/octocat/Hello-World/releases",
        ),
    ];
    let listed = session.request("tools/list", json!({})).await?;
    let cased: Vec<&str> = cases.iter().map(|(tool, ..)| *tool).collect();
    crate::upstream::assert_cases_cover(&crate::harness::tool_names(&listed), &cased);
    for (tool, args, method, path) in &cases {
        let before = recorder.seen().len();
        let (is_error, text, structured) = call(&session, tool, args.clone()).await?;
        assert!(
            !is_error,
            "{tool}: {text}; sent {:?}",
            &recorder.seen()[before..]
        );
        assert!(!text.is_empty(), "{tool} said nothing");
        assert!(structured.is_object(), "{tool}: no structured content");
        assert!(!text.contains(TOKEN) && !structured.to_string().contains(TOKEN));
        let seen = recorder.seen();
        let request = seen[before..]
            .iter()
            .find(|r| r.method == *method && r.path.starts_with(path))
            .unwrap_or_else(|| panic!("{tool}: no {method} {path} in {:?}", &seen[before..]));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{tool}: the host injects the credential"
        );
        assert!(
            request.header("x-github-api-version").is_some(),
            "{tool}: pins the API version"
        );
        assert!(
            request.violations.is_empty(),
            "{tool}: {:?}",
            request.violations
        );
    }
    // The bodies of the writes carry what the arguments said.
    let seen = recorder.seen();
    let body_of = |method: &str, path: &str| {
        seen.iter()
            .find(|r| r.method == method && r.path == path)
            .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
            .unwrap_or(Value::Null)
    };
    let created = body_of("POST", "/repos/octocat/Hello-World/issues");
    assert_eq!(created["title"], "Found a bug", "{created}");
    assert_eq!(created["labels"], json!(["bug"]), "{created}");
    let updated = body_of("PATCH", "/repos/octocat/Hello-World/issues/1347");
    assert_eq!(updated["state"], "closed", "{updated}");
    let pull = body_of("POST", "/repos/octocat/Hello-World/pulls");
    assert_eq!(
        (pull["head"].as_str(), pull["base"].as_str()),
        (Some("octocat:new-feature"), Some("master"))
    );
    Ok(())
}

#[tokio::test]
async fn github_refusals_tell_the_model_what_to_fix() -> anyhow::Result<()> {
    let (_prism, recorder, server) = start().await?;
    let json_body = |body: Value| body.to_string();
    recorder.answer(
        "/repos/octocat/missing/",
        Canned {
            status: 404,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json_body(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
        },
    );
    recorder.answer(
        "/repos/octocat/limited/",
        Canned {
            status: 403,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), "1893456000".into()),
            ],
            body: json_body(json!({"message": "API rate limit exceeded for user ID 1."})),
        },
    );
    recorder.answer(
        "/repos/octocat/strict/",
        Canned {
            status: 422,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json_body(json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]})),
        },
    );
    recorder.answer(
        "/repos/octocat/down/",
        Canned {
            status: 502,
            headers: vec![],
            body: "Bad gateway".into(),
        },
    );
    let session = server.session("2025-11-25").await?;
    let issue = |repo: &str| json!({"owner": "octocat", "repo": repo, "issue_number": 1});
    let (is_error, text, _) = call(&session, "get_issue", issue("missing")).await?;
    assert!(is_error && text.contains("not found"), "{text}");
    let (is_error, text, _) = call(&session, "get_issue", issue("limited")).await?;
    assert!(
        is_error && text.contains("rate limit") && text.contains("2030-01-01"),
        "{text}"
    );
    let (is_error, text, _) = call(
        &session,
        "create_issue",
        json!({"owner": "octocat", "repo": "strict", "title": "x"}),
    )
    .await?;
    assert!(is_error && text.contains("title is required"), "{text}");
    let (is_error, text, _) = call(&session, "get_issue", issue("down")).await?;
    assert!(is_error && text.contains("502"), "{text}");
    Ok(())
}
