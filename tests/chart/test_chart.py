#!/usr/bin/env python3
"""Tests of the Helm chart charts/kube-field-exporter, offline (no helm binary, no cluster).

Run from the repository root:

    python3 tests/chart/test_chart.py

Needs `pip install helm-python-sdk kubernetes-validate` (helm_python renders and lints
with Helm's own Go SDK; kubernetes_validate brings jsonschema and PyYAML). Each check
prints one line; the exit status is 1 when any check fails. The ServiceMonitor and
PrometheusRule are validated against the prometheus-operator CRDs of the shared corpus
(../shared/corpus/crds). `promtool check rules` runs on the rule groups when promtool is
on PATH.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import yaml

import helm_python as helm
import kubernetes_validate

try:
    import jsonschema
except ImportError:  # kubernetes-validate depends on it, so this is unlikely
    jsonschema = None

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kube-field-exporter"
MULTI_VALUES = ROOT / "tests" / "chart" / "values-multi.yaml"
CRDS = ROOT.parent / "shared" / "corpus" / "crds"
KUBE_VERSION = "1.33.0"
RELEASE = "kfe"
NAMESPACE = "monitoring"
VERBS = ["get", "list", "watch"]
CRD_PAIR = ("apiextensions.k8s.io", "customresourcedefinitions")
BUILTIN_API_VERSIONS = {
    "v1",
    "apps/v1",
    "rbac.authorization.k8s.io/v1",
    "networking.k8s.io/v1",
    "policy/v1",
}

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


# --- helpers -------------------------------------------------------------------------


def load_chart():
    return helm.Chart.load(str(CHART))


def multi_values():
    return yaml.safe_load(MULTI_VALUES.read_text())


def namespaced_no_schema_values():
    """Case (c): namespaces set, schemaReading off, default resources."""
    return {"namespaces": ["team-a", "team-b"], "schemaReading": False}


class Rendered:
    """A render: the manifests by (kind, namespace, name), and NOTES.txt."""

    def __init__(self, values=None):
        with load_chart() as chart:
            files = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
        self.notes = ""
        self.docs = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc is not None:
                    doc["__source"] = path
                    self.docs.append(doc)
        self.values = values

    def manifests(self):
        return [{k: v for k, v in d.items() if k != "__source"} for d in self.docs]

    def of_kind(self, kind):
        return [d for d in self.manifests() if d["kind"] == kind]

    def one(self, kind):
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    def kinds(self):
        return sorted(d["kind"] for d in self.manifests())

    def container(self):
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, containers
        return containers[0]

    def args(self):
        return self.container()["args"]


_RENDERS = {}


def rendered(case):
    """Renders cached per case: default, multi, namespaced."""
    if case not in _RENDERS:
        values = {
            "default": None,
            "multi": multi_values(),
            "namespaced": namespaced_no_schema_values(),
        }[case]
        _RENDERS[case] = Rendered(values)
    return _RENDERS[case]


def rule_pairs(role):
    """The (apiGroup, resource) pairs a Role/ClusterRole grants, checking each rule's
    shape: verbs exactly get/list/watch, no wildcards, no resourceNames or URLs."""
    pairs = []
    for rule in role.get("rules") or []:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule keys {rule}"
        assert rule["verbs"] == VERBS, f"verbs {rule['verbs']} in {role['metadata']['name']}"
        for group in rule["apiGroups"]:
            assert "*" not in group, f"wildcard group in {rule}"
            for resource in rule["resources"]:
                assert "*" not in resource and "/" not in resource, f"bad resource in {rule}"
                pairs.append((group, resource))
    assert len(pairs) == len(set(pairs)), f"duplicate grants {pairs}"
    return set(pairs)


def resource_flag(entry):
    """The kubectl form the chart must produce for a values.resources entry."""
    parts = [entry["resource"]]
    if entry.get("version"):
        parts.append(entry["version"])
    if entry.get("group"):
        parts.append(entry["group"])
    flag = ".".join(parts)
    if entry.get("metricKind"):
        flag += "=" + entry["metricKind"]
    return flag


class StderrCapture:
    """Capture file descriptor 2: Helm's Go code logs some coalescing warnings
    (e.g. `skipped value for ...: Not a table.` for a list given where a map is
    expected) straight to stderr, where Python cannot filter them."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace")
        self._file.close()
        return False


def expect_render_failure(values, needle):
    with load_chart() as chart:
        try:
            chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmError as e:
            assert needle in str(e), f"error does not mention {needle!r}: {e}"
            return str(e)
    raise AssertionError(f"render succeeded with {values}")


def strict_crd_schema(node):
    """A CRD's openAPIV3Schema made strict like the API server's field validation:
    objects with `properties` reject unknown fields (the API server would prune them,
    and `kubectl apply --validate=strict` rejects them)."""
    if isinstance(node, dict):
        node = {k: strict_crd_schema(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict_crd_schema(v) for v in node]
    return node


def crd_schema(filename, version="v1"):
    docs = [d for d in yaml.safe_load_all((CRDS / filename).read_text()) if d]
    crd = docs[0]
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return strict_crd_schema(v["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{filename} has no version {version}")


def validate_custom(doc, filename):
    """Validate a ServiceMonitor/PrometheusRule against its CRD schema."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1", doc["apiVersion"]
    if jsonschema is not None:
        schema = crd_schema(filename)
        errors = sorted(
            jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
        )
        assert not errors, "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
        )
    else:  # by hand: the fields the operator requires
        assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
        if doc["kind"] == "ServiceMonitor":
            assert doc["spec"]["selector"] and doc["spec"]["endpoints"]
        else:
            for group in doc["spec"]["groups"]:
                assert group["name"]
                for rule in group.get("rules", []):
                    assert rule["expr"] and ("alert" in rule or "record" in rule)


def leaf_paths(values, covered, prefix=""):
    """Key paths of values.yaml: a key listed in `covered` covers its subtree; other
    non-empty maps are walked; anything else is a leaf that must be covered."""
    out = []
    for key, value in values.items():
        path = prefix + key
        if path in covered or not (isinstance(value, dict) and value):
            out.append(path)
        else:
            out.extend(leaf_paths(value, covered, path + "."))
    return out


def readme_rows():
    """The README's values table: {key: (type, default cell, description)}."""
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        m = re.match(r"^\| `([^`]+)` \| ([^|]+) \| (.+?) \| (.+) \|$", line)
        if m:
            assert m.group(1) not in rows, f"README lists {m.group(1)} twice"
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip(), m.group(4).strip())
    return rows


def lookup(values, path):
    for key in path.split("."):
        values = values[key]
    return values


def assert_standard_labels(meta, what):
    labels = meta.get("labels") or {}
    expected = {
        "app.kubernetes.io/name": "kube-field-exporter",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/component": "metrics",
        "helm.sh/chart": "kube-field-exporter-0.1.0",
    }
    for key, value in expected.items():
        assert labels.get(key) == value, f"{what}: label {key}={labels.get(key)!r}, want {value!r}"
    assert labels.get("app.kubernetes.io/version"), f"{what}: no app.kubernetes.io/version"
    for key, value in labels.items():
        assert isinstance(value, str) and len(value) <= 63, f"{what}: label {key}={value!r}"
        assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value), (
            f"{what}: invalid label value {key}={value!r}"
        )


# --- lint and metadata ---------------------------------------------------------------


def lint_clean(values, label):
    report = helm.lint(str(CHART), values, strict=True, kube_version="v" + KUBE_VERSION)
    assert report["errors"] == [], f"lint errors ({label}): {report['errors']}"
    messages = report["messages"]
    for m in messages:
        print(f"    lint[{label}] severity={m['severity']} {m['path']}: {m['error']}")
    # Severity 1 (info) allowed: only "icon is recommended" is expected (no project icon
    # exists yet). Warnings (2) and errors (3) fail.
    bad = [m for m in messages if m["severity"] >= 2]
    assert not bad, f"lint warnings/errors ({label}): {bad}"
    infos = {m["error"] for m in messages if m["severity"] == 1}
    assert infos <= {"icon is recommended"}, f"unexpected lint info ({label}): {infos}"


@check
def lint_default_values():
    lint_clean(None, "default")


@check
def lint_multi_values():
    lint_clean(multi_values(), "multi")


@check
def lint_namespaced_without_schema_reading():
    lint_clean(namespaced_no_schema_values(), "namespaced")


@check
def chart_metadata():
    with load_chart() as chart:
        meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "kube-field-exporter"
    assert meta["type"] == "application"
    assert meta["version"] == "0.1.0" and meta["appVersion"] == "0.1.0", meta
    assert meta["kubeVersion"] == ">=1.25.0-0"
    assert meta["description"] and meta["home"] and meta["sources"] and meta["keywords"]
    assert meta["maintainers"], "no maintainers"
    assert meta["annotations"]["artifacthub.io/license"] == "Apache-2.0"


# --- default values -------------------------------------------------------------------


@check
def default_objects():
    r = rendered("default")
    assert r.kinds() == sorted(
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]
    ), r.kinds()


@check
def default_rbac_is_exactly_the_resources_and_crds():
    r = rendered("default")
    role = r.one("ClusterRole")
    assert rule_pairs(role) == {("apps", "deployments"), ("", "pods"), CRD_PAIR}, rule_pairs(role)
    binding = r.one("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    sa = r.one("ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ], binding["subjects"]
    deployment = r.one("Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


@check
def default_args():
    assert rendered("default").args() == [
        "serve",
        "--listen=0.0.0.0:8080",
        "--log-format=json",
        "--resource=deployments.apps",
        "--resource=pods",
    ], rendered("default").args()


@check
def default_pod_and_container():
    r = rendered("default")
    deployment = r.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }, pod["securityContext"]
    c = r.container()
    assert c["image"] == "ghcr.io/kube-field-exporter/kube-field-exporter:0.1.0", c["image"]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }, c["securityContext"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["env"] == [{"name": "RUST_LOG", "value": "info"}], c["env"]
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }, c["resources"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Readiness waits for every first list (and for CRDs): generous.
    ready = c["readinessProbe"]
    assert ready["failureThreshold"] * ready["periodSeconds"] >= 60, ready
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert key not in pod, f"default pod has {key}"


@check
def default_service():
    r = rendered("default")
    svc = r.one("Service")
    deployment = r.one("Deployment")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ], svc["spec"]["ports"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"] == selector
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items(), (selector, pod_labels)
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}, selector


@check
def labels_follow_conventions():
    for case in ("default", "multi", "namespaced"):
        r = rendered(case)
        for doc in r.manifests():
            what = f"{case}: {doc['kind']}/{doc['metadata']['name']}"
            assert_standard_labels(doc["metadata"], what)
            if doc["kind"] == "Deployment":
                assert_standard_labels(doc["spec"]["template"]["metadata"], what + " pod")
            if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
                assert doc["metadata"].get("namespace"), f"{what}: no namespace"
            else:
                assert "namespace" not in doc["metadata"], what
    multi = rendered("multi")
    assert multi.one("Deployment")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0-rc.1"
    for doc in multi.manifests():
        assert doc["metadata"]["labels"]["example.com/stack"] == "observability", doc["kind"]


@check
def notes():
    text = rendered("default").notes
    for needle in (
        f"kubectl --namespace {NAMESPACE} port-forward service/kfe-kube-field-exporter 8080:8080",
        "localhost:8080/metrics",
        "localhost:8080/readyz",
        "http://localhost:8080/",
        "kube-field-exporter schema --resource deployments.apps",
        "honor_labels: true",
    ):
        assert needle in text, f"NOTES lack {needle!r}:\n{text}"
    multi = rendered("multi").notes
    assert "the namespaces prod, staging" in multi, multi
    assert "ServiceMonitor" in multi, multi
    assert (
        "kube-field-exporter schema --resource deployments.apps --prefix kube"
        " --name-style snake --enum-heuristic=false"
    ) in multi, multi


# --- values-multi.yaml -----------------------------------------------------------------


@check
def multi_objects():
    kinds = rendered("multi").kinds()
    assert kinds == sorted(
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy",
         "PodDisruptionBudget", "PrometheusRule", "Role", "Role", "RoleBinding",
         "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"]
    ), kinds


@check
def multi_rbac_splits_namespaced_and_cluster_scoped():
    r = rendered("multi")
    values = multi_values()
    entries = values["resources"]
    namespaced = {(e.get("group", ""), e["resource"]) for e in entries if not e.get("clusterScoped")}
    cluster = {(e.get("group", ""), e["resource"]) for e in entries if e.get("clusterScoped")}
    assert ("serving.knative.dev", "services") in namespaced and ("", "services") in namespaced
    roles = r.of_kind("Role")
    assert sorted(x["metadata"]["namespace"] for x in roles) == ["prod", "staging"]
    for role in roles:
        assert rule_pairs(role) == namespaced, (role["metadata"]["namespace"], rule_pairs(role))
    bindings = r.of_kind("RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["prod", "staging"]
    for b in bindings:
        assert b["roleRef"]["kind"] == "Role" and b["roleRef"]["name"] == roles[0]["metadata"]["name"]
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "field-exporter", "namespace": NAMESPACE}
        ], b["subjects"]
    assert rule_pairs(r.one("ClusterRole")) == cluster | {CRD_PAIR}, rule_pairs(r.one("ClusterRole"))
    assert r.one("ClusterRoleBinding")["subjects"][0]["name"] == "field-exporter"
    assert r.one("ServiceAccount")["metadata"]["name"] == "field-exporter"
    assert r.one("ServiceAccount")["metadata"]["annotations"] == {"example.com/role": "exporter"}


@check
def multi_args():
    args = rendered("multi").args()
    values = multi_values()
    # Every item is one `--flag=value` (argh gets them split by normalize_args), in order.
    resources = [a for a in args if a.startswith("--resource=")]
    assert resources == [
        "--resource=deployments.apps",
        "--resource=statefulsets.v1.apps",
        "--resource=pods",
        "--resource=services.v1",
        "--resource=certificates.cert-manager.io=certificate",
        "--resource=services.serving.knative.dev=knativeservice",
        "--resource=nodes",
        "--resource=clusterissuers.cert-manager.io",
    ], resources
    assert resources == ["--resource=" + resource_flag(e) for e in values["resources"]]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=prod",
        "--namespace=staging",
    ]
    assert args[:3] == ["serve", "--listen=0.0.0.0:8080", "--log-format=text"], args[:3]
    expected_tail = [
        "--prefix=kube",
        "--name-style=snake",
        "--enum-path=spec.strategy.type",
        "--enum-heuristic=false",
        "--include=^status",
        "--include=^spec\\.replicas$",
        "--exclude=^status\\.conditions\\.message$",
        "--labels-allowlist=deployments=[app,team]",
        "--labels-allowlist=pods=[*]",
        "--annotations-allowlist=certificates=[cert-manager.io/issuer-name]",
        "--array-cap=16",
        "--enum-cap=8",
        "--label-selector=team in (web, api),tier!=cache",
        "--field-selector=metadata.namespace!=kube-system",
        "--discovery-interval=1m30s",
        "--page-size=250",
        "--enum-path=status.phase",
    ]
    assert args[3 + len(resources) + 2 :] == expected_tail, args
    # Every flag is one the binary's `serve` knows (src/cli.rs ServeArgs).
    known = {
        "resource", "namespace", "label-selector", "field-selector", "listen", "kubeconfig",
        "context", "log-format", "discovery-interval", "page-size", "prefix", "name-style",
        "enum-path", "enum-heuristic", "include", "exclude", "labels-allowlist",
        "annotations-allowlist", "array-cap", "enum-cap",
    }
    for a in args[1:]:
        flag = a[2:].split("=", 1)[0]
        assert a.startswith("--") and "=" in a and flag in known, f"bad argument {a!r}"


@check
def multi_pod_settings():
    r = rendered("multi")
    pod = r.one("Deployment")["spec"]["template"]
    spec = pod["spec"]
    values = multi_values()
    c = r.container()
    assert c["image"] == "ghcr.io/kube-field-exporter/kube-field-exporter:0.2.0-rc.1"
    assert c["env"] == [{"name": "RUST_LOG", "value": "kube_field_exporter=debug,kube=warn"}]
    assert c["resources"] == values["containerResources"]
    assert spec["imagePullSecrets"] == [{"name": "ghcr"}]
    assert spec["nodeSelector"] == values["nodeSelector"]
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["priorityClassName"] == "monitoring"
    assert pod["metadata"]["annotations"] == values["podAnnotations"]
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert spec["securityContext"]["runAsUser"] == 65532
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


@check
def multi_service_monitor():
    r = rendered("multi")
    sm = r.one("ServiceMonitor")
    values = multi_values()["serviceMonitor"]
    assert sm["metadata"]["namespace"] == NAMESPACE
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    spec = sm["spec"]
    for key in ("sampleLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit"):
        assert spec[key] == values[key], (key, spec.get(key))
    assert spec["selector"]["matchLabels"] == r.one("Service")["spec"]["selector"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = spec["endpoints"]
    assert endpoint.get("honorLabels") is True, f"honorLabels: {endpoint.get('honorLabels')!r}"
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s" and endpoint["scrapeTimeout"] == "20s"
    assert endpoint["relabelings"] == values["relabelings"]
    assert endpoint["metricRelabelings"] == values["metricRelabelings"]
    validate_custom(sm, "monitoring.coreos.com_servicemonitors.yaml")
    # Limits are left out when 0 (the defaults); honorLabels stays.
    minimal = Rendered({"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")
    assert not {"sampleLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit"} & set(
        minimal["spec"]
    ), minimal["spec"]
    assert minimal["spec"]["endpoints"][0]["honorLabels"] is True
    assert "interval" not in minimal["spec"]["endpoints"][0]
    validate_custom(minimal, "monitoring.coreos.com_servicemonitors.yaml")


@check
def numbers_render_as_integers():
    # Helm reads values as float64: `{{ . }}` would print 5000000 as 5e+06, which the
    # API server rejects for integer fields.
    big = 5_000_000
    r = Rendered(
        {
            "serviceMonitor": {"enabled": True, "sampleLimit": big, "labelValueLengthLimit": big},
            "arrayCap": big,
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"},
            "readinessProbe": {"enabled": True, "failureThreshold": 1000000},
        }
    )
    spec = r.one("ServiceMonitor")["spec"]
    assert spec["sampleLimit"] == big and spec["labelValueLengthLimit"] == big, spec
    assert f"--array-cap={big}" in r.args(), r.args()
    assert r.container()["readinessProbe"]["failureThreshold"] == 1000000
    assert r.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "50%"
    validate_custom(r.one("ServiceMonitor"), "monitoring.coreos.com_servicemonitors.yaml")
    off = Rendered({"livenessProbe": {"enabled": False}, "readinessProbe": {"enabled": False}})
    assert "livenessProbe" not in off.container() and "readinessProbe" not in off.container()


@check
def prometheus_rule_groups_verbatim():
    r = rendered("multi")
    rule = r.one("PrometheusRule")
    assert rule["spec"]["groups"] == multi_values()["prometheusRule"]["groups"]
    assert "{{ $labels.namespace }}" in json.dumps(rule["spec"]["groups"])
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    validate_custom(rule, "monitoring.coreos.com_prometheusrules.yaml")
    default_rule = Rendered({"prometheusRule": {"enabled": True}}).one("PrometheusRule")
    with load_chart() as chart:
        assert default_rule["spec"]["groups"] == chart.values["prometheusRule"]["groups"]
    alerts = [x["alert"] for g in default_rule["spec"]["groups"] for x in g["rules"]]
    assert alerts == ["KubeFieldExporterResourceNotReady", "KubeFieldExporterWatchErrors"]
    validate_custom(default_rule, "monitoring.coreos.com_prometheusrules.yaml")


@check
def promtool_checks_rule_groups():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("    promtool not on PATH: skipped")
        return
    groups = [
        Rendered({"prometheusRule": {"enabled": True}}).one("PrometheusRule")["spec"]["groups"],
        rendered("multi").one("PrometheusRule")["spec"]["groups"],
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, g in enumerate(groups):
            path = pathlib.Path(tmp) / f"rules{i}.yaml"
            path.write_text(yaml.safe_dump({"groups": g}))
            out = subprocess.run(
                [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=20
            )
            assert out.returncode == 0, out.stdout + out.stderr


@check
def multi_network_policy_and_pdb():
    r = rendered("multi")
    np_ = r.one("NetworkPolicy")["spec"]
    selector = r.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert np_["podSelector"] == {"matchLabels": selector}
    assert np_["policyTypes"] == ["Ingress", "Egress"]
    assert np_["ingress"] == [
        {
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
        }
    ], np_["ingress"]
    assert np_["egress"] == [
        {
            "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}],
        }
    ], np_["egress"]
    # Defaults: ingress from anywhere to 8080 only, egress open.
    plain = Rendered({"networkPolicy": {"enabled": True}}).one("NetworkPolicy")["spec"]
    assert plain["policyTypes"] == ["Ingress"] and "egress" not in plain
    assert plain["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    pdb = r.one("PodDisruptionBudget")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}, pdb


# --- namespaces set, schemaReading off ----------------------------------------------------


@check
def namespaced_without_schema_reading_has_no_cluster_rbac():
    r = rendered("namespaced")
    assert r.kinds() == sorted(
        ["Deployment", "Role", "Role", "RoleBinding", "RoleBinding", "Service", "ServiceAccount"]
    ), r.kinds()
    for role in r.of_kind("Role"):
        assert rule_pairs(role) == {("apps", "deployments"), ("", "pods")}
    assert sorted(x["metadata"]["namespace"] for x in r.of_kind("Role")) == ["team-a", "team-b"]
    args = r.args()
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ], args
    assert "customresourcedefinitions" not in json.dumps(r.manifests())


@check
def schema_reading_toggles_only_the_crd_rule():
    off = Rendered({"schemaReading": False})
    assert rule_pairs(off.one("ClusterRole")) == {("apps", "deployments"), ("", "pods")}
    assert "customresourcedefinitions" not in json.dumps(off.manifests())
    # Namespaced, schema reading on, nothing cluster-scoped: a ClusterRole for CRDs only.
    on = Rendered({"namespaces": ["team-a"]})
    assert rule_pairs(on.one("ClusterRole")) == {CRD_PAIR}
    assert rule_pairs(on.one("Role")) == {("apps", "deployments"), ("", "pods")}
    # Namespaced, schema reading off, a cluster-scoped resource: a ClusterRole for it only.
    nodes = Rendered(
        {
            "namespaces": ["team-a"],
            "schemaReading": False,
            "resources": [{"resource": "nodes", "group": "", "clusterScoped": True}],
        }
    )
    assert rule_pairs(nodes.one("ClusterRole")) == {("", "nodes")}
    assert nodes.of_kind("Role") == [] and nodes.of_kind("RoleBinding") == []
    # A resource named twice (two metric kinds) is granted once.
    twice = Rendered(
        {
            "resources": [
                {"resource": "services", "group": ""},
                {"resource": "services", "group": "", "version": "v1", "metricKind": "svc"},
            ]
        }
    )
    assert rule_pairs(twice.one("ClusterRole")) == {("", "services"), CRD_PAIR}


@check
def rbac_and_service_account_toggles():
    r = Rendered({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "own"}})
    assert r.kinds() == ["Deployment", "Service"], r.kinds()
    assert r.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "own"
    r = Rendered({"serviceAccount": {"create": False}, "fullnameOverride": "fields"})
    assert r.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    assert r.one("ClusterRoleBinding")["subjects"][0]["name"] == "default"
    assert r.one("Deployment")["metadata"]["name"] == "fields"


@check
def cluster_scoped_builtin_without_flag_fails_when_namespaced():
    expect_render_failure(
        {"namespaces": ["prod"], "resources": [{"resource": "nodes", "group": ""}]},
        "set clusterScoped: true",
    )
    # Without namespaces everything is cluster-wide: fine.
    Rendered({"resources": [{"resource": "nodes", "group": ""}]})


# --- values.schema.json --------------------------------------------------------------------


@check
def schema_rejects_bad_values():
    bad_values = [
        ({"nameStyle": "camel"}, "nameStyle"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"replicaCount": 2}, "replicaCount"),  # unknown top-level key
        ({"resources": {"limits": {"memory": "1Gi"}}}, "resources"),  # container resources
        ({"resources": [{"resource": "Deployment", "group": "apps"}]}, "resource"),
        ({"resources": [{"resource": "pods", "grup": ""}]}, "grup"),
        ({"resources": []}, "resources"),
        ({"arrayCap": 0}, "arrayCap"),
        ({"serviceMonitor": {"enabled": "yes"}}, "enabled"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"prefix": "__k8s"}, "prefix"),
    ]
    with load_chart() as chart, StderrCapture() as captured:
        for values, needle in bad_values:
            try:
                chart.validate_schema(values)
            except helm.HelmValuesError as e:
                assert needle in str(e), f"schema error for {values} does not name {needle}: {e}"
            else:
                raise AssertionError(f"schema accepted {values}")
            try:
                chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
            except helm.HelmError:
                pass
            else:
                raise AssertionError(f"render accepted {values}")
        for good in (None, multi_values(), namespaced_no_schema_values(), {"prefix": "_x"},
                     {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}}):
            chart.validate_schema(good)
    for line in captured.text.splitlines():
        # Only Helm's coalescing warning for `resources` given as a map is expected.
        assert "skipped value for kube-field-exporter.resources: Not a table" in line, line
        print(f"    (expected helm log) {line}")
    report = helm.lint(str(CHART), {"nameStyle": "camel"}, kube_version="v" + KUBE_VERSION)
    text = json.dumps(report)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"]), report
    assert "nameStyle" in text, report


@check
def schema_covers_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["properties"]["nameStyle"]["enum"] == ["", "as-written", "snake"]
    assert schema["properties"]["logFormat"]["enum"] == ["json", "text"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value, node, path):
        assert node is not None, f"values.schema.json does not describe {path}"
        assert "type" in node, f"values.schema.json gives {path} no type"
        if isinstance(value, dict) and "properties" in node:
            for key, sub in value.items():
                walk(sub, node["properties"].get(key), f"{path}.{key}".lstrip("."))
        # other maps (securityContext, affinity, ...) are free-form Kubernetes objects

    walk(values, schema, "")
    if jsonschema is not None:
        jsonschema.Draft7Validator.check_schema(schema)
        validator = jsonschema.Draft7Validator(schema)
        with load_chart() as chart:  # Helm validates the values merged with the defaults
            merged = [chart.merge_values(v) for v in (None, multi_values())]
        for v in merged:
            errors = list(validator.iter_errors(v))
            assert not errors, [e.message for e in errors]


# --- README ---------------------------------------------------------------------------------


@check
def readme_lists_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = readme_rows()
    leaves = leaf_paths(values, set(rows))
    missing = [p for p in leaves if p not in rows]
    assert not missing, f"README values table lacks {missing}"
    assert len(leaves) == len(rows)
    for key, (typ, default, description) in rows.items():
        value = lookup(values, key)  # KeyError: the README lists a key values.yaml lacks
        assert description, key
        if key == "prometheusRule.groups":
            assert "values.yaml" in default
            continue
        m = re.fullmatch(r"`(.*)`", default)
        assert m, f"README default of {key} is not a code span: {default}"
        assert json.loads(m.group(1)) == value, f"README default of {key}: {default} != {value!r}"
        expected_type = {
            bool: "bool", int: "int", str: "string", list: "list", dict: "object",
            type(None): "int or null",
        }[type(value)]
        assert typ == expected_type or (key.endswith("maxUnavailable") and typ == "int or string"), (
            key, typ, expected_type
        )


# --- Kubernetes validation ---------------------------------------------------------------------


@check
def manifests_validate_against_kubernetes():
    cases = [rendered(c) for c in ("default", "multi", "namespaced")]
    cases.append(Rendered({"networkPolicy": {"enabled": True}, "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}}))
    count = 0
    for r in cases:
        for doc in r.manifests():
            if doc["apiVersion"] not in BUILTIN_API_VERSIONS:
                assert doc["kind"] in ("ServiceMonitor", "PrometheusRule"), doc["kind"]
                continue
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(
                    f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}"
                ) from None
            count += 1
    print(f"    {count} built-in manifests valid for Kubernetes {KUBE_VERSION} (strict)")


@check
def custom_resources_validate_against_crds():
    if jsonschema is None:
        print("    jsonschema not importable: required fields checked by hand")
    for doc in rendered("multi").manifests():
        if doc["kind"] == "ServiceMonitor":
            validate_custom(doc, "monitoring.coreos.com_servicemonitors.yaml")
        elif doc["kind"] == "PrometheusRule":
            validate_custom(doc, "monitoring.coreos.com_prometheusrules.yaml")
    if jsonschema is not None:
        # The strict CRD schema catches a misspelt field.
        bad = copy.deepcopy(rendered("multi").one("ServiceMonitor"))
        bad["spec"]["endpoints"][0]["honourLabels"] = True
        try:
            validate_custom(bad, "monitoring.coreos.com_servicemonitors.yaml")
        except AssertionError:
            pass
        else:
            raise AssertionError("a misspelt ServiceMonitor field passed validation")


# --- main ---------------------------------------------------------------------------------


def main():
    start = time.monotonic()
    failed = 0
    for fn in CHECKS:
        t0 = time.monotonic()
        name = fn.__name__
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            if not isinstance(e, AssertionError):
                traceback.print_exc()
        else:
            print(f"ok   {name} ({time.monotonic() - t0:.2f}s)")
    total = time.monotonic() - start
    print(f"{len(CHECKS) - failed} passed, {failed} failed in {total:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
