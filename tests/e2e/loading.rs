//! Loading plugins: invalid ones (bad names, bad schemas, 10,000 tools) are
//! refused with a reason naming the file, collisions name both plugins, and
//! the rest keep serving.

use serde_json::json;

use crate::harness::Setup;

#[tokio::test]
async fn invalid_plugins_are_refused_and_others_serve() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .fixture("invalid-name")
        .fixture("bad-schema")
        .fixture("collide")
        .fixture("many-tools")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let list = session.request("tools/list", json!({})).await?;
    let names: Vec<String> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    // Plugins are taken in name order, so `collide` claims `echo` first and
    // `hostile` is refused whole.
    assert!(names.contains(&"collide_only".to_string()));
    assert!(names.contains(&"echo".to_string()));
    assert!(
        !names.contains(&"caller".to_string()),
        "a colliding plugin is refused whole"
    );
    assert!(!names.contains(&"broken".to_string()));
    assert!(
        !names.iter().any(|n| n.starts_with("tool_")),
        "a plugin declaring 10,000 tools is refused whole"
    );
    let log = server.stderr();
    assert!(log.contains("bad name!"), "invalid name reported: {log}");
    assert!(log.contains("not valid JSON"), "bad schema reported");
    assert!(
        log.contains("declares 10000 tools; at most 1000"),
        "the tool cap is reported"
    );
    // The refusals cost the others nothing: the serving plugin answers.
    let res = session.call("collide_only", json!({})).await?;
    assert_eq!(res["result"]["content"][0]["text"], "collide_only", "{res}");
    assert!(
        log.contains("collide") && log.contains("hostile") && log.contains("already provides"),
        "collision names both"
    );
    Ok(())
}

#[tokio::test]
async fn prefixes_let_colliding_plugins_coexist() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .fixture("collide")
        .config("[plugins.prefixes]\ncollide = \"c_\"")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let res = session.call("c_echo", json!({"text": "x"})).await?;
    assert_eq!(res["result"]["content"][0]["text"], "collide: x", "{res}");
    let res = session.call("echo", json!({"text": "x"})).await?;
    assert_eq!(res["result"]["content"][0]["text"], "x", "{res}");
    Ok(())
}

#[tokio::test]
async fn restarts_load_from_the_compile_cache() -> anyhow::Result<()> {
    let first = Setup::new().fixture("hostile").start().await?;
    assert!(
        first.stderr().contains("\"from_cache\":false"),
        "{}",
        first.stderr()
    );
    let data_dir = first.data_dir.clone();
    drop(first);
    let cache_entries = std::fs::read_dir(data_dir.join("cache"))?.count();
    assert_eq!(cache_entries, 1, "one compiled artefact per plugin");
    let second = Setup::new()
        .fixture("hostile")
        .data_dir(data_dir)
        .start()
        .await?;
    assert!(
        second.stderr().contains("\"from_cache\":true"),
        "{}",
        second.stderr()
    );
    let session = second.session("2025-11-25").await?;
    let res = session.call("echo", json!({"text": "cached"})).await?;
    assert_eq!(res["result"]["content"][0]["text"], "cached");
    Ok(())
}
