//! A newcomer's first run: `cargo xtask run` serves the product (not the test
//! fixtures), the banner fits one screen and ends with the next steps, and a
//! second server on the same machine starts even though the first holds the
//! default metrics port.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Setup, artefact_dir, tool_names, workspace_root};

/// The plugins `cargo xtask run` serves, from the list xtask builds them by.
fn served_plugins() -> anyhow::Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace_root().join("xtask/served-plugins.txt"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `target/plugins` as `cargo xtask` leaves it holds exactly the served
/// plugins, and a server on it lists the product's tools and no fixture.
#[tokio::test]
async fn a_fresh_run_serves_the_product_not_the_fixtures() -> anyhow::Result<()> {
    let served = served_plugins()?;
    assert_eq!(served, BTreeSet::from(["devtools".to_string()]));
    let dir = artefact_dir("TOOLHOST_PLUGINS", "target/plugins");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    assert_eq!(
        present,
        served,
        "{} should hold exactly the served plugins (run `cargo xtask plugins`)",
        dir.display()
    );
    // The same components, served the way `cargo xtask run` serves them.
    let mut setup = Setup::new();
    for name in &present {
        setup = setup.bundled(Box::leak(name.clone().into_boxed_str()));
    }
    let server = setup.start().await?;
    let session = server.session("2025-11-25").await?;
    let names = tool_names(&session.request("tools/list", json!({})).await?);
    let fixtures: Vec<&String> = names.iter().filter(|n| n.starts_with("test_")).collect();
    assert!(fixtures.is_empty(), "fixture tools served: {fixtures:?}");
    for product in ["hash", "json_query", "whoami"] {
        assert!(
            names.iter().any(|n| n == product),
            "{product} missing: {names:?}"
        );
    }
    Ok(())
}

/// The banner fits one 24-line screen and its last lines are the next step
/// for each way in, with the URL.
#[tokio::test]
async fn the_banner_fits_one_screen_and_ends_with_next_steps() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let lines = server
        .stdout_through("  3. ", Duration::from_secs(30))
        .expect("the banner ends with numbered next steps");
    assert!(
        lines.len() <= 24,
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(lines[0].starts_with("toolhost listening on https://127.0.0.1:"));
    let url = &server.url;
    let steps = lines
        .iter()
        .position(|l| l == "Next steps:")
        .expect("a next-steps heading");
    let tail = &lines[steps + 1..];
    assert!(
        tail[0].starts_with("  1. connect a client: ") && tail[0].contains(url.as_str()),
        "{tail:?}"
    );
    assert!(
        tail.iter()
            .any(|l| l.starts_with("  2. sign in with the CLI: ")
                && l.ends_with(&format!("toolhost login {url}"))),
        "{tail:?}"
    );
    let last = lines.last().expect("lines");
    assert!(
        last.starts_with("  3. add the GitHub plugin: ")
            && last.contains("target/integrations/github.wasm"),
        "{last}"
    );
    Ok(())
}

/// Holds the default metrics address for the test, unless something else on
/// the machine already does: either way it is taken.
fn occupy_default_metrics_port() -> Option<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:9464").ok()
}

/// A second server with default metrics settings starts (metrics on a free
/// port, which the banner names); a taken address set explicitly fails
/// loudly, naming it.
#[tokio::test]
async fn two_servers_with_default_metrics_settings_both_start() -> anyhow::Result<()> {
    let _held = occupy_default_metrics_port();
    // `[metrics]` without `listen`: the harness leaves the default alone.
    let defaults = "[metrics]\nenabled = true\n";
    let first = Setup::new()
        .bundled("devtools")
        .config(defaults)
        .start()
        .await?;
    let second = Setup::new()
        .bundled("devtools")
        .config(defaults)
        .start()
        .await?;
    for server in [&first, &second] {
        let line = server
            .stdout_line("  metrics: ")
            .expect("a metrics line in the banner");
        assert!(
            line.contains("127.0.0.1:9464 is taken"),
            "the banner says why metrics moved: {line}"
        );
        let url = server.metrics_url.clone().expect("metrics served");
        assert!(!url.contains(":9464/"), "{url}");
        let text = reqwest::get(&url).await?.text().await?;
        assert!(text.contains("toolhost_plugins_loaded"), "{text}");
        assert_eq!(server.session("2025-11-25").await?.version, "2025-11-25");
    }

    let explicit = Setup::new()
        .bundled("devtools")
        .config("[metrics]\nlisten = \"127.0.0.1:9464\"\n")
        .start()
        .await;
    let err = match explicit {
        Ok(_) => panic!("a taken metrics.listen must stop the server"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("binding the metrics listener 127.0.0.1:9464 (metrics.listen)"),
        "{err}"
    );
    Ok(())
}
