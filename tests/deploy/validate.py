"""Offline check of toolhost's Kubernetes material under deploy/.

Renders the Helm chart (deploy/helm/toolhost) with Helm's own Go SDK through
helm-python-sdk (no helm binary, no cluster): once with its default values
(one replica, SQLite) and once with deploy/helm/values-cluster.yaml (several
replicas on PostgreSQL), plus a few renders of the optional paths. Every
object is validated against Kubernetes' JSON schemas (kubernetes-validate,
strict: unknown fields are errors) for the oldest Kubernetes the chart
claims (Chart.yaml kubeVersion) and the newest the package knows, and the
facts a deployment depends on are checked: replicas, probes, the database
URL from a Secret, the security context, toolhost.toml. The plain manifests
in deploy/k8s/ must be exactly the cluster render, so they cannot drift from
the chart.

    tests/deploy/.venv/bin/python tests/deploy/validate.py              # check
    tests/deploy/.venv/bin/python tests/deploy/validate.py --write-k8s  # regenerate deploy/k8s/, then check

Installed by tests/deploy/setup.sh; run by tests/e2e/deploy.rs. Exits 0 with
one line per render, else 1 with every problem found.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/toolhost"
CLUSTER_VALUES = ROOT / "deploy/helm/values-cluster.yaml"
K8S = ROOT / "deploy/k8s"
RELEASE = "toolhost"
NAMESPACE = "toolhost"
CONTAINER = "toolhost"
DATA_DIR = "/var/lib/toolhost"
POSTGRES_ENV = "TOOLHOST_CLUSTER__POSTGRES_URL"
REDIS_ENV = "TOOLHOST_CLUSTER__REDIS_URL"
REPLICA_ENV = "TOOLHOST_CLUSTER__REPLICA_ID"
CONFIG_ENV = "TOOLHOST_CONFIG"
USERS_FILE = f"{DATA_DIR}/auth/users.toml"
WRITE_COMMAND = "tests/deploy/.venv/bin/python tests/deploy/validate.py --write-k8s"
# Objects in the order `kubectl apply -k` should meet them (it sorts by kind
# anyway); also the order of kustomization.yaml's resources.
K8S_ORDER = [
    "serviceaccount.yaml",
    "secret.yaml",
    "configmap.yaml",
    "pvc.yaml",
    "service.yaml",
    "deployment.yaml",
    "pdb.yaml",
    "hpa.yaml",
]


class Problems:
    """Collects failures so one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def check(self, condition: bool, where: str, message: str) -> bool:
        if not condition:
            self.add(where, message)
        return condition


def kube_versions() -> list[str]:
    """The oldest Kubernetes Chart.yaml admits and the newest with schemas."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    match = re.match(r"^\s*>=\s*v?(\d+\.\d+)", str(chart.get("kubeVersion", "")))
    if not match:
        raise SystemExit(f"{CHART / 'Chart.yaml'}: kubeVersion should read '>=1.N.0-0', not {chart.get('kubeVersion')!r}")
    newest = kv_utils.major_minor(kv_utils.latest_version())
    return [match.group(1), newest] if match.group(1) != newest else [newest]


# --- rendering -------------------------------------------------------------


def render(values: dict[str, Any] | None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def documents(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(template name, object) for every non-empty YAML document."""
    out = []
    for name in sorted(rendered):
        if not name.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(rendered[name]):
            if doc:
                out.append((name, doc))
    return out


def validate_schemas(
    objects: list[tuple[str, dict[str, Any]]], versions: list[str], problems: Problems
) -> None:
    for where, obj in objects:
        label = f"{where} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path) or "(top)"
                problems.add(label, f"invalid for Kubernetes {version} at {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.add(label, e.message)
            except Exception as e:  # a schema that does not load, a bad apiVersion
                problems.add(label, f"could not be validated for Kubernetes {version}: {e}")


# --- facts -----------------------------------------------------------------


def by_kind(objects: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [obj for _, obj in objects if obj.get("kind") == kind]


def one(objects, kind: str, where: str, problems: Problems) -> dict[str, Any] | None:
    found = by_kind(objects, kind)
    if problems.check(len(found) == 1, where, f"expected one {kind}, found {len(found)}"):
        return found[0]
    return None


def toolhost_toml(objects, where: str, problems: Problems) -> dict[str, Any]:
    config_map = one(objects, "ConfigMap", where, problems)
    if config_map is None:
        return {}
    text = config_map.get("data", {}).get("toolhost.toml")
    if not problems.check(isinstance(text, str), where, "the ConfigMap has no toolhost.toml"):
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problems.add(where, f"toolhost.toml is not valid TOML ({e}):\n{text}")
        return {}


def container_of(deployment: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"].get("containers", [])
    named = [c for c in containers if c.get("name") == CONTAINER]
    problems.check(len(named) == 1, where, f"no container named {CONTAINER!r}")
    return named[0] if named else {}


def port_number(container: dict[str, Any], port: Any) -> Any:
    """A probe's port, by name or number, as a number."""
    for p in container.get("ports", []):
        if port in (p.get("name"), p.get("containerPort")):
            return p.get("containerPort")
    return None


def env_var(container: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in container.get("env", []) if e.get("name") == name), None)


def check_common(objects, where: str, problems: Problems) -> dict[str, Any]:
    """What every render must have. Returns facts for the caller's checks."""
    deployment = one(objects, "Deployment", where, problems)
    config = toolhost_toml(objects, where, problems)
    if deployment is None:
        return {}
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    selector = deployment["spec"]["selector"].get("matchLabels", {})
    problems.check(
        selector.items() <= labels.items(), where, "the Deployment's selector does not match its pods"
    )
    container = container_of(deployment, where, problems)

    # Probes: plain HTTP on the metrics listener that toolhost.toml opens.
    metrics_port = port_number(container, "metrics")
    listen = config.get("metrics", {}).get("listen", "")
    problems.check(
        metrics_port is not None and listen == f"0.0.0.0:{metrics_port}",
        where,
        f"metrics.listen {listen!r} is not the container's metrics port {metrics_port}",
    )
    problems.check(config.get("metrics", {}).get("enabled") is True, where, "metrics.enabled is not true")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        problems.check(get.get("path") == path, where, f"{probe} path is {get.get('path')!r}, not {path}")
        problems.check(
            port_number(container, get.get("port")) == metrics_port and metrics_port is not None,
            where,
            f"{probe} is not on the metrics port",
        )
        problems.check(get.get("scheme", "HTTP") == "HTTP", where, f"{probe} is not plain HTTP")

    # The API listener and the Service in front of it.
    https_port = port_number(container, "https")
    problems.check(
        config.get("server", {}).get("listen") == f"0.0.0.0:{https_port}",
        where,
        f"server.listen {config.get('server', {}).get('listen')!r} is not the container's https port {https_port}",
    )
    api = [s for s in by_kind(objects, "Service") if any(p.get("targetPort") == "https" for p in s["spec"]["ports"])]
    if problems.check(len(api) == 1, where, f"expected one Service for the https port, found {len(api)}"):
        problems.check(
            api[0]["spec"].get("selector", {}).items() <= labels.items(),
            where,
            "the Service does not select the Deployment's pods",
        )
        problems.check(
            all(p.get("targetPort") != "metrics" for p in api[0]["spec"]["ports"]),
            where,
            "the API Service also exposes the metrics port",
        )

    # The command line and toolhost.toml agree on the layout.
    args = container.get("args", [])
    problems.check(args[:1] == ["serve"], where, f"the container does not run `toolhost serve`: {args}")
    flags = dict(zip(args[1::2], args[2::2]))
    problems.check(flags.get("--data-dir") == DATA_DIR, where, f"--data-dir is {flags.get('--data-dir')!r}")
    problems.check(flags.get("--log-format") == "json", where, "logs are not JSON")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    config_path = flags.get("--config", "")
    problems.check(
        any(config_path.startswith(path + "/") and m["name"] == "config" for path, m in mounts.items()),
        where,
        f"--config {config_path!r} is not in the ConfigMap's mount",
    )
    # `kubectl exec deploy/toolhost -- toolhost user add NAME` finds the
    # server's config (and so its database) through TOOLHOST_CONFIG.
    config_env = env_var(container, CONFIG_ENV) or {}
    problems.check(
        config_env.get("value") == config_path and config_path,
        where,
        f"{CONFIG_ENV} is {config_env.get('value')!r}, not the --config file {config_path!r} "
        "(operator commands run in the pod would miss the server's database)",
    )
    problems.check(DATA_DIR in mounts, where, f"nothing writable is mounted at {DATA_DIR}")
    problems.check("/tmp" in mounts, where, "nothing writable is mounted at /tmp")
    problems.check(config.get("server", {}).get("data_dir") == DATA_DIR, where, "server.data_dir disagrees with --data-dir")
    problems.check(config.get("plugins", {}).get("dir") == flags.get("--plugins"), where, "plugins.dir disagrees with --plugins")
    audit = config.get("audit", {})
    problems.check(audit.get("stdout") is True, where, "audit.stdout is not true (log shippers see no audit records)")
    problems.check(
        str(audit.get("dir", DATA_DIR + "/audit")).startswith(DATA_DIR + "/"), where, "audit.dir is not on the data dir"
    )
    problems.check("postgres_url" not in config.get("cluster", {}), where, "the PostgreSQL URL is in the ConfigMap")

    # Non-root, read-only root filesystem, no capabilities, seccomp.
    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    problems.check(pod_sc.get("runAsNonRoot") is True, where, "the pod's securityContext lacks runAsNonRoot: true")
    problems.check(
        isinstance(pod_sc.get("runAsUser"), int) and pod_sc["runAsUser"] > 0, where, "the pod does not run as a non-zero uid"
    )
    problems.check(
        pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where, "seccomp profile is not RuntimeDefault"
    )
    problems.check(sc.get("readOnlyRootFilesystem") is True, where, "the root filesystem is writable")
    problems.check(sc.get("allowPrivilegeEscalation") is False, where, "privilege escalation is allowed")
    problems.check(sc.get("capabilities", {}).get("drop") == ["ALL"], where, "capabilities are not all dropped")
    problems.check(pod.get("automountServiceAccountToken") is False, where, "the pod mounts a service-account token")
    return {"deployment": deployment, "pod": pod, "container": container, "config": config, "labels": labels}


def check_default(objects, where: str, problems: Problems) -> str:
    facts = check_common(objects, where, problems)
    if not facts:
        return ""
    deployment, container, pod = facts["deployment"], facts["container"], facts["pod"]
    problems.check(deployment["spec"].get("replicas") == 1, where, f"replicas is {deployment['spec'].get('replicas')}, not 1")
    problems.check(env_var(container, POSTGRES_ENV) is None, where, f"{POSTGRES_ENV} is set without postgres values")
    problems.check(env_var(container, REDIS_ENV) is None, where, f"{REDIS_ENV} is set without redis values")
    problems.check(not by_kind(objects, "HorizontalPodAutoscaler"), where, "an HPA is rendered by default")
    problems.check(not by_kind(objects, "PodDisruptionBudget"), where, "a PDB is rendered for a single replica")
    problems.check(not by_kind(objects, "Secret"), where, "a Secret is rendered though no value holds one")
    data = next((v for v in pod.get("volumes", []) if v.get("name") == "data"), {})
    problems.check("emptyDir" in data, where, "the data dir is not an emptyDir by default")
    return f"1 replica, SQLite on an emptyDir, {len(objects)} objects"


def check_cluster(objects, where: str, problems: Problems) -> str:
    facts = check_common(objects, where, problems)
    if not facts:
        return ""
    deployment, container, config, labels = facts["deployment"], facts["container"], facts["config"], facts["labels"]
    name = deployment["metadata"]["name"]

    hpa = one(objects, "HorizontalPodAutoscaler", where, problems)
    replicas = deployment["spec"].get("replicas")
    if hpa is not None:
        target = hpa["spec"]["scaleTargetRef"]
        problems.check(
            (target.get("kind"), target.get("name")) == ("Deployment", name), where, f"the HPA scales {target}, not this Deployment"
        )
        problems.check(hpa["spec"].get("minReplicas") == 3, where, f"HPA minReplicas is {hpa['spec'].get('minReplicas')}, not 3")
        problems.check(replicas is None, where, "the Deployment sets replicas though the HPA owns the count")
        count = f"HPA {hpa['spec']['minReplicas']}-{hpa['spec']['maxReplicas']} replicas"
    else:
        problems.check(replicas == 3, where, f"replicas is {replicas}, not 3")
        count = f"{replicas} replicas"

    pdb = one(objects, "PodDisruptionBudget", where, problems)
    if pdb is not None:
        problems.check(pdb["spec"].get("minAvailable") == 2, where, f"PDB minAvailable is {pdb['spec'].get('minAvailable')}, not 2")
        problems.check(
            pdb["spec"].get("selector", {}).get("matchLabels", {}).items() <= labels.items(),
            where,
            "the PDB does not select the Deployment's pods",
        )

    for secret_env in (POSTGRES_ENV, REDIS_ENV):
        env = env_var(container, secret_env)
        ref = (env or {}).get("valueFrom", {}).get("secretKeyRef", {})
        problems.check(
            env is not None and "value" not in env and ref.get("name") and ref.get("key"),
            where,
            f"{secret_env} does not come from a secretKeyRef: {env}",
        )
    ref = (env_var(container, POSTGRES_ENV) or {}).get("valueFrom", {}).get("secretKeyRef", {})
    replica = env_var(container, REPLICA_ENV) or {}
    problems.check(
        replica.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
        where,
        f"{REPLICA_ENV} is not the pod's name (each replica's audit chain is named by it): {replica}",
    )
    problems.check(not by_kind(objects, "Secret"), where, "the cluster values create a Secret; they should reference existing ones")
    public_url = config.get("server", {}).get("public_url", "")
    problems.check(str(public_url).startswith("https://"), where, f"server.public_url is {public_url!r}, not an https URL")
    tls = config.get("tls", {})
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    problems.check(
        bool(tls.get("cert")) and any(tls["cert"].startswith(p + "/") and m["name"] == "tls" for p, m in mounts.items()),
        where,
        "tls.cert is not in the TLS Secret's mount",
    )
    # Users live in PostgreSQL (`toolhost user add` in a pod): a new cluster
    # needs no users Secret; one is only an optional seed (check_users_seed).
    problems.check(
        USERS_FILE not in mounts and not any(v.get("name") == "users" for v in facts["pod"].get("volumes", [])),
        where,
        "the cluster values mount a users.toml Secret, which a fresh install need not have",
    )
    return f"{count}, PDB minAvailable {pdb['spec']['minAvailable'] if pdb else '?'}, PostgreSQL from Secret {ref.get('name')}, {public_url}, {len(objects)} objects"


def check_users_seed(objects, where: str, problems: Problems) -> str:
    """users.existingSecret: an old release's users.toml, imported at each start."""
    facts = check_common(objects, where, problems)
    if not facts:
        return ""
    mounts = {m["mountPath"]: m for m in facts["container"].get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in facts["pod"].get("volumes", [])}
    users = mounts.get(USERS_FILE)
    problems.check(
        users is not None and users.get("subPath") == "users.toml" and users.get("readOnly") is True,
        where,
        f"users.toml is not mounted read-only at {USERS_FILE}",
    )
    auth = mounts.get(f"{DATA_DIR}/auth")
    problems.check(
        auth is not None and "emptyDir" in volumes.get(auth["name"], {}),
        where,
        "the auth dir under users.toml is not a writable emptyDir (the server writes issuer.json there)",
    )
    secret = volumes.get((users or {}).get("name"), {}).get("secret", {})
    problems.check(
        secret.get("secretName") == "toolhost-users"
        and secret.get("items") == [{"key": "users.toml", "path": "users.toml"}],
        where,
        f"users.toml does not come from the Secret's key: {secret}",
    )
    return "users.toml from a Secret, read-only over a writable auth dir, as an import seed"


# Optional paths: values -> a check of the render.
CONFIG_SHAPES = {
    "server": {"public_url": "https://tools.example.com", "max_connections": 5000},
    "plugins": {"prefixes": {"github": "gh_", "odd key": "x_"}, "limits": {"memory_mib": 128, "deadline_ms": 67108864}},
    "limits": {"trusted_proxies": ["10.0.0.0/8", "fd00::/8"], "tool_calls_per_hour": 0},
    "auth": {
        "mode": "embedded",
        "rules": [
            {"effect": "deny", "plugin": "github", "tools": ["delete_*"]},
            {"effect": "allow", "groups": ["admins"], "subjects": ["a \"quoted\" name", "unicodé"]},
        ],
    },
    "audit": {"stdout": True, "dir": DATA_DIR + "/audit", "fsync": None},
}


def check_config_shapes(objects, where: str, problems: Problems) -> str:
    facts = check_common(objects, where, problems)
    config = facts.get("config", {})
    for section, table in CONFIG_SHAPES.items():
        for key, value in table.items():
            got = config.get(section, {}).get(key)
            if value is None:
                problems.check(key not in config.get(section, {}), where, f"{section}.{key}: null should be left out")
            else:
                problems.check(got == value, where, f"{section}.{key} came out as {got!r}, not {value!r}")
    return "nested tables, inline arrays of tables, quoted keys and strings survive into toolhost.toml"


def check_persistent(objects, where: str, problems: Problems) -> str:
    facts = check_common(objects, where, problems)
    if not facts:
        return ""
    claim = one(objects, "PersistentVolumeClaim", where, problems)
    data = next((v for v in facts["pod"].get("volumes", []) if v.get("name") == "data"), {})
    problems.check(
        claim is not None and data.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"],
        where,
        "the data dir is not on the chart's claim",
    )
    problems.check(
        facts["deployment"]["spec"].get("strategy", {}).get("type") == "Recreate",
        where,
        "one pod on a ReadWriteOnce claim must update by Recreate",
    )
    return "1 replica, SQLite on a PersistentVolumeClaim, Recreate"


def check_inline_secrets(objects, where: str, problems: Problems) -> str:
    facts = check_common(objects, where, problems)
    secrets = {s["metadata"]["name"]: s for s in by_kind(objects, "Secret")}
    problems.check(len(secrets) == 3, where, f"expected the postgres, redis and TLS Secrets, found {sorted(secrets)}")
    env = env_var(facts.get("container", {}), POSTGRES_ENV) or {}
    ref = env.get("valueFrom", {}).get("secretKeyRef", {})
    problems.check(
        ref.get("name") in secrets and ref.get("key") in secrets[ref["name"]].get("data", {}),
        where,
        f"{POSTGRES_ENV} does not point into the Secret the chart made",
    )
    tls = [s for s in secrets.values() if s.get("type") == "kubernetes.io/tls"]
    problems.check(len(tls) == 1, where, "no kubernetes.io/tls Secret")
    redis = env_var(facts.get("container", {}), REDIS_ENV) or {}
    problems.check(
        redis.get("valueFrom", {}).get("secretKeyRef", {}).get("name") in secrets,
        where,
        f"{REDIS_ENV} does not point into the Secret the chart made",
    )
    return "Secrets created from values: postgres and redis URLs, TLS pair"


# Values that must be refused, and a word of the reason.
REFUSED = [
    ({"replicaCount": 3}, "need shared state"),
    ({"autoscaling": {"enabled": True}, "postgres": {"existingSecret": "db"}}, "public URL"),
    ({"config": {"server": {"public_url": "http://mcp.example.com"}}}, "must be an https URL"),
    ({"config": {"cluster": {"postgres_url": "postgres://u:p@db/t"}}}, "would land in a ConfigMap"),
    ({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}, "must be below the replica count"),
    (
        {"replicaCount": 2, "persistence": {"enabled": True}, "postgres": {"existingSecret": "db"},
         "config": {"server": {"public_url": "https://mcp.example.com"}}},
        "one claim to every replica",
    ),
]


# --- deploy/k8s ----------------------------------------------------------------


def k8s_files(rendered: dict[str, str]) -> dict[str, str]:
    """File name -> text of the plain manifests: the cluster render, one file per template."""
    header = (
        "# Rendered from the Helm chart deploy/helm/toolhost with deploy/helm/values-cluster.yaml\n"
        f"# (release {RELEASE!r}, no namespace): the objects of\n"
        "#   helm template toolhost deploy/helm/toolhost -f deploy/helm/values-cluster.yaml\n"
        "# Do not edit: change the chart or the values, then run\n"
        f"#   {WRITE_COMMAND}\n"
        "# (tests/deploy/validate.py fails while this file differs from a fresh render).\n"
    )
    files = {}
    for name, text in sorted(rendered.items()):
        base = name.rsplit("/", 1)[-1]
        if not base.endswith(".yaml") or not any(yaml.safe_load_all(text)):
            continue
        files[base] = f"{header}# Source: {name}\n{text.strip()}\n"
    unknown = sorted(set(files) - set(K8S_ORDER))
    if unknown:
        raise SystemExit(f"validate.py: add {unknown} to K8S_ORDER")
    order = [f for f in K8S_ORDER if f in files]
    files["kustomization.yaml"] = (
        header.replace("the objects of", "this list of the objects of")
        + "#\n# Create the Secrets it names first (deploy/README.md), then:\n"
        + "#   kubectl apply -k deploy/k8s -n NAMESPACE\n"
        + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + "".join(f"  - {f}\n" for f in order)
    )
    return files


def check_k8s(expected: dict[str, str], versions: list[str], problems: Problems) -> str:
    present = {p.name for p in K8S.iterdir() if p.is_file()} if K8S.is_dir() else set()
    for name in sorted(present | set(expected)):
        where = f"deploy/k8s/{name}"
        if name not in present:
            problems.add(where, f"missing (run {WRITE_COMMAND})")
            continue
        text = (K8S / name).read_text()
        if name not in expected:
            problems.add(where, f"is not part of the cluster render (remove it, or run {WRITE_COMMAND})")
        elif text != expected[name]:
            problems.add(where, f"differs from a fresh render of the chart with values-cluster.yaml (run {WRITE_COMMAND})")
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as e:
            problems.add(where, f"is not YAML: {e}")
            continue
        if name == "kustomization.yaml":
            listed = [r for d in docs for r in d.get("resources", [])]
            problems.check(
                sorted(listed) == sorted(present - {name}),
                where,
                f"lists {listed}, but the directory holds {sorted(present - {name})}",
            )
            continue
        validate_schemas([(where, d) for d in docs], versions, problems)
    return f"{len(present)} files match the cluster render and validate"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-k8s", action="store_true", help="regenerate deploy/k8s/ from the cluster render first")
    args = parser.parse_args()

    versions = kube_versions()
    problems = Problems()
    summary: list[str] = []
    cluster_values = helm.values_from_yaml(CLUSTER_VALUES.read_text())

    for label, values in (("default values", None), ("values-cluster.yaml", cluster_values)):
        try:
            report = helm.lint(CHART, values, strict=True, kube_version=f"v{versions[0]}.0")
        except helm.HelmError as e:
            problems.add(f"helm lint ({label})", str(e))
            continue
        for message in report.get("messages", []):
            if message.get("severity", 0) >= 2:
                problems.add(f"helm lint ({label})", f"{message.get('path')}: {message.get('error')}")
        for error in report.get("errors", []):
            problems.add(f"helm lint ({label})", str(error))

    renders = [
        ("default values", None, check_default),
        ("values-cluster.yaml", cluster_values, check_cluster),
        ("config shapes", {"config": CONFIG_SHAPES}, check_config_shapes),
        ("persistence", {"persistence": {"enabled": True, "storageClassName": "fast"}}, check_persistent),
        (
            "users seed",
            {**cluster_values, "users": {"existingSecret": "toolhost-users", "key": "users.toml"}},
            check_users_seed,
        ),
        (
            "inline secrets",
            {"postgres": {"url": "postgres://toolhost:pw@db:5432/toolhost"},
             "redis": {"url": "redis://:pw@redis:6379/0"},
             "tls": {"cert": "-----BEGIN CERTIFICATE-----\n", "key": "-----BEGIN PRIVATE KEY-----\n"}},
            check_inline_secrets,
        ),
    ]
    cluster_render: dict[str, str] = {}
    for label, values, check in renders:
        where = f"render ({label})"
        try:
            rendered = render(values)
        except helm.HelmError as e:
            problems.add(where, f"helm could not render the chart: {e}")
            continue
        if values is cluster_values:
            cluster_render = rendered
        try:
            objects = documents(rendered)
        except yaml.YAMLError as e:
            problems.add(where, f"the output is not YAML: {e}")
            continue
        before = len(problems.items)
        validate_schemas([(f"{where} {name}", obj) for name, obj in objects], versions, problems)
        line = check(objects, where, problems)
        if len(problems.items) == before:
            summary.append(f"ok {label}: {line}; valid for Kubernetes {' and '.join(versions)}")

    for values, reason in REFUSED:
        where = f"render (refuses {values})"
        try:
            render(values)
            problems.add(where, "rendered, but the chart should refuse these values")
        except helm.HelmRenderError as e:
            problems.check(reason in str(e), where, f"refused for another reason: {e}")
        except helm.HelmError as e:
            problems.add(where, f"failed otherwise: {e}")
    summary.append(f"ok the chart refuses {len(REFUSED)} broken value sets, each with its reason")

    if cluster_render:
        expected = k8s_files(cluster_render)
        if args.write_k8s:
            K8S.mkdir(parents=True, exist_ok=True)
            for stale in K8S.iterdir():
                if stale.is_file() and stale.name not in expected:
                    stale.unlink()
            for name, text in expected.items():
                (K8S / name).write_text(text)
        before = len(problems.items)
        line = check_k8s(expected, versions, problems)
        if len(problems.items) == before:
            summary.append(f"ok deploy/k8s: {line}")

    if problems.items:
        print(f"FAILED: {len(problems.items)} problem(s) in the Kubernetes material under deploy/:", file=sys.stderr)
        for item in problems.items:
            print(f"  - {item}", file=sys.stderr)
        return 1
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
