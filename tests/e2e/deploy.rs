//! The Kubernetes material under `deploy/`: `tests/deploy/validate.py`
//! renders the Helm chart with Helm's own SDK (helm-python-sdk, no helm
//! binary, no cluster) with its default values (one replica on SQLite) and
//! with `deploy/helm/values-cluster.yaml` (replicas on PostgreSQL), validates
//! every object against Kubernetes' JSON schemas (kubernetes-validate), checks
//! the facts a deployment depends on (replicas, probes, the database URL from
//! a Secret, the security context, toolhost.toml) and that `deploy/k8s/` is
//! exactly the cluster render. Its venv comes from `tests/deploy/setup.sh`,
//! which `cargo xtask test` runs. `TOOLHOST_BLESS=1` regenerates `deploy/k8s/`
//! from the chart first.

use std::process::Command;

use anyhow::Context;

use crate::harness::workspace_root;

#[test]
fn the_chart_renders_and_validates_for_one_and_for_many_replicas() -> anyhow::Result<()> {
    let root = workspace_root();
    let python = root.join("tests/deploy/.venv/bin/python");
    anyhow::ensure!(
        python.is_file(),
        "{} is missing: run tests/deploy/setup.sh (cargo xtask test does)",
        python.display()
    );
    let mut command = Command::new(&python);
    command.current_dir(&root).arg("tests/deploy/validate.py");
    if std::env::var_os("TOOLHOST_BLESS").is_some() {
        command.arg("--write-k8s");
    }
    let output = command
        .output()
        .with_context(|| format!("running {} tests/deploy/validate.py", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/deploy/validate.py: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // One line per render; both the single-replica and the cluster render ran.
    for render in [
        "ok default values:",
        "ok values-cluster.yaml:",
        "ok deploy/k8s:",
    ] {
        assert!(
            stdout.lines().any(|line| line.starts_with(render)),
            "no {render:?} line from tests/deploy/validate.py\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    Ok(())
}
