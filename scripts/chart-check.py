#!/usr/bin/env python3
"""Render the Helm chart with real Helm and check everything it produces.

Checks, for the default values and for every values file in
charts/hibernator/ci/ (all-on-values.yaml turns every option on):

1. `helm lint --strict` (Kubernetes 1.35) finds no warning or error.
2. Rendering succeeds (Helm v4 as a library, PyPI `helm-python-sdk`: no helm
   binary), and every rendered object validates against the Kubernetes 1.35
   schemas (PyPI `kubernetes-validate`, strict: unknown fields are errors).
   Objects of our API group validate against our CRD schemas; the few
   third-party kinds the chart can render (Prometheus Operator, cert-manager)
   against schemas of the fields the chart sets (THIRD_PARTY below).
3. Pods run under the restricted Pod Security Standard, and values.schema.json
   rejects misspelt keys and bad enum values.
4. Every RBAC rule in the templates has a comment justifying it.
5. Every container the chart runs is accepted by the real binary: runs
   `$HIBERNATOR_BIN <container args> --dry-run` with the container's env.

Outside the chart: every `helm install|upgrade|template` command shown in
docs/ and README.md renders with its values, every whole hibernator.dev
object shown there validates against the CRD schemas, the CRDs in charts/hibernator/crds/ validate as
CustomResourceDefinitions, the example plans in examples/plans/ validate
against the CRD schemas, docs/configuration.md is what
scripts/gen-config-reference.py generates, and the alert rules shown in
docs/monitoring.md are the ones the chart ships.

Installs nothing: run it in a venv with scripts/requirements-chart.txt.
Environment: HIBERNATOR_BIN (default target/debug/hibernator).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "hibernator"
KUBE_VERSION = "1.35.0"
RELEASE = "hibernator"
NAMESPACE = "hibernator-system"
OUR_GROUP = "hibernator.dev"

# Schemas of the third-party kinds, limited to the fields the chart sets and
# strict about unknown fields there, so a typo in a template fails here. The
# upstream CRDs are not available offline.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "additionalProperties": False,
}
_ISSUER_REF = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["Issuer", "ClusterIssuer"]},
        "group": {"type": "string"},
    },
    "additionalProperties": False,
}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h))+$"}
_RULE = {
    "type": "object",
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        "record": {"type": "string"},
        "expr": {"type": "string", "minLength": 1},
        "for": _DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "additionalProperties": False,
}


def _object(kind: str, api_version: str, spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
        "additionalProperties": False,
    }


THIRD_PARTY: dict[tuple[str, str], dict] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _object(
        "ServiceMonitor",
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": _LABELS},
                    "additionalProperties": False,
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": False,
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _object(
        "PrometheusRule",
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": _DURATION,
                            "rules": {"type": "array", "items": _RULE},
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    ),
    ("cert-manager.io/v1", "Issuer"): _object(
        "Issuer",
        "cert-manager.io/v1",
        {
            "type": "object",
            "properties": {"selfSigned": {"type": "object", "additionalProperties": False}},
            "required": ["selfSigned"],
            "additionalProperties": False,
        },
    ),
    ("cert-manager.io/v1", "Certificate"): _object(
        "Certificate",
        "cert-manager.io/v1",
        {
            "type": "object",
            "required": ["secretName", "issuerRef", "dnsNames"],
            "properties": {
                "secretName": {"type": "string"},
                "dnsNames": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "issuerRef": _ISSUER_REF,
            },
            "additionalProperties": False,
        },
    ),
}


class Report:
    """Collects check results; prints failures as they happen."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def ok(self, what: str, verbose: bool) -> None:
        self.passed += 1
        if verbose:
            print(f"ok   {what}")

    def fail(self, what: str, why: str) -> None:
        self.failed.append(what)
        print(f"FAIL {what}: {why}")


def load_yaml_docs(text: str) -> Iterator[dict]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> JSON schema from our CRDs' openAPIV3Schema."""
    schemas = {}
    for file in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_yaml_docs(file.read_text()):
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = to_json_schema(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})
                schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
                schema["properties"]["kind"] = {"const": kind}
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def to_json_schema(node: Any) -> Any:
    """Structural OpenAPI v3 (Kubernetes flavour) -> JSON Schema.

    `nullable: true` admits null; object nodes without
    `x-kubernetes-preserve-unknown-fields` reject unknown fields, as the API
    server prunes them (a typo in an example would silently vanish).
    """
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    out.pop("nullable", None)
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("format") in ("uint8", "uint32", "int32", "int64"):
        out.pop("format")
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


def validate_object(obj: dict, ours: dict, origin: str, report: Report, verbose: bool) -> None:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{origin}: {key[1]}/{obj.get('metadata', {}).get('name', '?')}"
    schema = ours.get(key) or THIRD_PARTY.get(key)
    if schema is None and key[0].split("/")[0] == OUR_GROUP:
        report.fail(name, f"no CRD for {key[0]} {key[1]}")
        return
    try:
        if schema is not None:
            jsonschema.validate(obj, schema, cls=jsonschema.Draft202012Validator)
        else:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except jsonschema.ValidationError as err:
        path = ".".join(str(p) for p in err.absolute_path)
        report.fail(name, f"{path}: {err.message}")
        return
    except kubernetes_validate.SchemaNotFoundError as err:
        report.fail(name, err.message)
        return
    report.ok(name, verbose)


def pod_specs(obj: dict) -> Iterator[dict]:
    kind = obj.get("kind")
    spec = obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield spec["template"]["spec"]
    elif kind == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "Pod":
        yield spec


def check_pod_security(obj: dict, origin: str, report: Report, verbose: bool) -> None:
    """Restricted Pod Security Standard, as the admission plugin checks it."""
    for spec in pod_specs(obj):
        pod_sc = spec.get("securityContext", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            sc = container.get("securityContext", {})
            name = f"{origin}: {obj['kind']}/{obj['metadata']['name']} container {container['name']} is restricted"
            problems = []
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
                problems.append("runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append("runAsUser is 0")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append("seccompProfile is not RuntimeDefault")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem is not true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append("capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                problems.append("capabilities are added")
            if sc.get("privileged"):
                problems.append("privileged")
            if problems:
                report.fail(name, ", ".join(problems))
            else:
                report.ok(name, verbose)


def check_rbac_comments(report: Report, verbose: bool) -> None:
    """Every `- apiGroups:` rule in the templates follows a `#` comment line."""
    for template in sorted((CHART / "templates").glob("*.yaml")):
        source = template.read_text()
        if not re.search(r"^kind: (Cluster)?Role$", source, re.M):
            continue
        lines = source.splitlines()
        for number, line in enumerate(lines):
            if not re.match(r"^\s*- apiGroups:", line):
                continue
            previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
            what = f"{template.relative_to(ROOT)}:{number + 1} RBAC rule is justified by a comment"
            if previous.strip().startswith("#"):
                report.ok(what, verbose)
            else:
                report.fail(what, "no comment line right above the rule")


def fake_field(path: str, obj: dict) -> str:
    """Value the downward API would give for a fieldRef, for the dry run."""
    meta = obj.get("metadata", {})
    return {
        "metadata.name": f"{meta.get('name', 'pod')}-0",
        "metadata.namespace": meta.get("namespace", NAMESPACE),
        "spec.nodeName": "node-1",
        "spec.serviceAccountName": "sa",
        "status.podIP": "10.0.0.10",
    }.get(path, "value")


def container_env(container: dict, obj: dict) -> dict[str, str] | str:
    """The container's environment, or an error text for what a dry run cannot fake."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "fieldRef" in item.get("valueFrom", {}):
            env[item["name"]] = fake_field(item["valueFrom"]["fieldRef"]["fieldPath"], obj)
        elif "secretKeyRef" in item.get("valueFrom", {}) or "configMapKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = "from-a-reference"
        else:
            return f"env {item['name']} has a source the check cannot fake: {item.get('valueFrom')}"
    if container.get("envFrom"):
        return "envFrom is not supported by the dry-run check"
    return env


def check_dry_run(obj: dict, origin: str, binary: Path, report: Report, verbose: bool) -> None:
    """Run the real binary with each container's args and env plus --dry-run."""
    for spec in pod_specs(obj):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name = f"{origin}: {obj['kind']}/{obj['metadata']['name']} container {container['name']} args accepted by the binary"
            if container.get("command"):
                report.fail(name, "containers must use the image entrypoint (/hibernator), not `command`")
                continue
            env = container_env(container, obj)
            if isinstance(env, str):
                report.fail(name, env)
                continue
            argv = [str(binary), *[str(a) for a in container.get("args", [])], "--dry-run"]
            base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
            try:
                proc = subprocess.run(
                    argv, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                report.fail(name, f"could not run {binary}: {err}")
                continue
            if proc.returncode != 0:
                detail = [
                    line for line in (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines() if line.strip()
                ]
                report.fail(name, f"exit {proc.returncode}: {' | '.join(detail[-5:])}\n     command: {' '.join(argv)}")
            else:
                report.ok(name, verbose)


def render(chart: helm.Chart, values: dict, origin: str, report: Report) -> list[dict] | None:
    try:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as err:
        report.fail(f"{origin}: render", str(err))
        return None
    objects = []
    for path in sorted(manifests):
        if not path.endswith((".yaml", ".yml")):
            continue
        try:
            objects.extend(load_yaml_docs(manifests[path]))
        except yaml.YAMLError as err:
            report.fail(f"{origin}: {path} is YAML", str(err))
    return objects


def check_unique(objects: list[dict], origin: str, report: Report, verbose: bool) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        meta = obj.get("metadata", {})
        key = (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        if key in seen:
            report.fail(f"{origin}: {key[0]}/{key[2]} is unique", f"rendered twice in namespace {key[1] or '-'}")
        seen.add(key)
    report.ok(f"{origin}: {len(objects)} objects have unique names", verbose)


def check_chart(binary: Path, skip_binary: bool, report: Report, verbose: bool) -> None:
    lint = helm.lint(str(CHART), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in lint.get("messages", []) if m.get("severity", 0) >= 2] + [
        {"path": "", "error": e} for e in lint.get("errors", [])
    ]
    if problems:
        report.fail("helm lint --strict", "; ".join(f"{m['path']}: {m['error']}" for m in problems))
    else:
        report.ok("helm lint --strict", verbose)

    ours = crd_schemas()
    cases = [("default values", {})]
    for file in sorted((CHART / "ci").glob("*.yaml")):
        cases.append((str(file.relative_to(ROOT)), yaml.safe_load(file.read_text()) or {}))

    with helm.Chart.load(str(CHART)) as chart:
        for origin, values in cases:
            objects = render(chart, copy.deepcopy(values), origin, report)
            if objects is None:
                continue
            check_unique(objects, origin, report, verbose)
            for obj in objects:
                validate_object(obj, ours, origin, report, verbose)
                check_pod_security(obj, origin, report, verbose)
                if not skip_binary:
                    check_dry_run(obj, origin, binary, report, verbose)
            kinds = {o["kind"] for o in objects}
            for needed in ("Deployment", "ClusterRole", "Service", "ServiceAccount"):
                if needed not in kinds:
                    report.fail(f"{origin}: renders a {needed}", "missing")


def check_values_schema(report: Report, verbose: bool) -> None:
    """values.schema.json is enforced: misspelt keys and wrong enum values fail."""
    bad_values = [
        {"controler": {"replicaCount": 2}},
        {"controller": {"streaming": {"transport": "grcp"}}},
        {"webhook": {"failurePolicy": "fail"}},
    ]
    with helm.Chart.load(str(CHART)) as chart:
        for values in bad_values:
            what = f"values.schema.json rejects {json.dumps(values)}"
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            except helm.HelmError:
                report.ok(what, verbose)
            else:
                report.fail(what, "rendered without error")


def check_crds_and_examples(report: Report, verbose: bool) -> None:
    for file in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_yaml_docs(file.read_text()):
            validate_object(crd, {}, str(file.relative_to(ROOT)), report, verbose)
    ours = crd_schemas()
    for file in sorted((ROOT / "examples").rglob("*.yaml")):
        for obj in load_yaml_docs(file.read_text()):
            if str(obj.get("apiVersion", "")).startswith(OUR_GROUP + "/"):
                validate_object(obj, ours, str(file.relative_to(ROOT)), report, verbose)
    # Whole objects shown in the docs (a block with a `# expect: invalid` line
    # demonstrates a rejection and is skipped).
    for file in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for block in code_blocks(file.read_text()):
            if f"apiVersion: {OUR_GROUP}/" not in block or "# expect: invalid" in block:
                continue
            origin = f"{file.relative_to(ROOT)} (code block)"
            try:
                objects = list(load_yaml_docs(block))
            except yaml.YAMLError as err:
                report.fail(f"{origin} is YAML", str(err).replace("\n", " "))
                continue
            for obj in objects:
                if isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith(OUR_GROUP + "/"):
                    validate_object(obj, ours, origin, report, verbose)


def check_generated_docs(report: Report, verbose: bool) -> None:
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "scripts" / "gen-config-reference.py")
    if spec is None or spec.loader is None:
        report.fail("docs/configuration.md is current", "cannot load scripts/gen-config-reference.py")
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.generate()
    current = (ROOT / "docs" / "configuration.md").read_text() if (ROOT / "docs" / "configuration.md").exists() else ""
    if fresh != current:
        report.fail(
            "docs/configuration.md is current",
            "differs from the CRDs: run `python3 scripts/gen-config-reference.py`",
        )
    else:
        report.ok("docs/configuration.md is current", verbose)


def check_monitoring_doc(report: Report, verbose: bool) -> None:
    """docs/monitoring.md shows exactly the alert rules the chart ships."""
    what = "docs/monitoring.md alert rules match charts/hibernator/files/prometheus-rules.yaml"
    doc = ROOT / "docs" / "monitoring.md"
    text = doc.read_text() if doc.exists() else ""
    match = re.search(r"<!-- alerts:begin -->\s*```yaml\n(.*?)```\s*<!-- alerts:end -->", text, re.S)
    if not match:
        report.fail(what, "no ```yaml block between <!-- alerts:begin --> and <!-- alerts:end -->")
        return
    try:
        with helm.Chart.load(str(CHART)) as chart:
            values = {"prometheus": {"rules": {"enabled": True}}}
            manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        rendered = [
            o
            for path, text in manifests.items()
            if path.endswith(".yaml")
            for o in load_yaml_docs(text)
            if o.get("kind") == "PrometheusRule"
        ]
        shown = yaml.safe_load(match.group(1))
    except (helm.HelmError, yaml.YAMLError) as err:
        report.fail(what, str(err))
        return
    if len(rendered) != 1:
        report.fail(what, f"the chart rendered {len(rendered)} PrometheusRules, expected 1")
    elif shown != rendered[0]["spec"]:
        report.fail(what, "the documented rules differ from the rendered PrometheusRule spec (release `hibernator`)")
    else:
        report.ok(what, verbose)


def check_metric_names(report: Report, verbose: bool) -> None:
    """Every metric the alerts and the dashboard query is one docs/monitoring.md lists."""
    doc = ROOT / "docs" / "monitoring.md"
    text = doc.read_text() if doc.exists() else ""
    table = re.search(r"<!-- metrics:begin -->(.*?)<!-- metrics:end -->", text, re.S)
    if not table:
        report.fail("docs/monitoring.md lists the metrics", "no table between <!-- metrics:begin --> and <!-- metrics:end -->")
        return
    documented = set(re.findall(r"^\| `(hibernator_[a-z0-9_]+)`", table.group(1), re.M))
    sources = {
        "charts/hibernator/files/prometheus-rules.yaml": (CHART / "files" / "prometheus-rules.yaml").read_text(),
        "charts/hibernator/dashboards/hibernator.json": (CHART / "dashboards" / "hibernator.json").read_text(),
    }
    for origin, source in sources.items():
        used = set(re.findall(r"\b(hibernator_[a-z0-9_]+)", source))
        # Histograms are queried through their _bucket/_sum/_count series.
        base = {re.sub(r"_(bucket|sum|count)$", "", m) if m.endswith(("_bucket", "_sum", "_count")) else m for m in used}
        unknown = sorted(m for m in base if m not in documented)
        what = f"{origin} queries only documented metrics"
        if unknown:
            report.fail(what, "not in docs/monitoring.md: " + ", ".join(unknown))
        else:
            report.ok(what, verbose)


def code_blocks(markdown: str) -> list[str]:
    """Contents of the fenced code blocks of a Markdown text."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def named_values_files(markdown: str) -> dict[str, dict]:
    """YAML blocks that start with a `# <name>.yaml` line: values files shown in the docs."""
    named = {}
    for block in code_blocks(markdown):
        first = block.strip().splitlines()[0] if block.strip() else ""
        match = re.match(r"^#\s*([\w.-]+\.ya?ml)\s*$", first)
        if match:
            named[match.group(1)] = yaml.safe_load(block) or {}
    return named


def helm_commands(markdown: str) -> Iterator[list[str]]:
    """`helm install|upgrade|template` commands of the fenced code blocks, as argv."""
    for block in code_blocks(markdown):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if re.match(r"^helm (install|upgrade|template)\b", line):
                yield shlex.split(line)


def merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def check_doc_commands(report: Report, verbose: bool) -> None:
    """Every helm command in docs/ and README.md renders the chart with its values.

    `--set` values are parsed by Helm; `-f NAME` is a file of the repository or
    a YAML block of the same page whose first line is `# NAME`.
    """
    files = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    with helm.Chart.load(str(CHART)) as chart:
        for file in files:
            text = file.read_text()
            shown = named_values_files(text)
            for argv in helm_commands(text):
                what = f"{file.relative_to(ROOT)}: `{' '.join(argv)}` renders"
                values: dict = {}
                chart_args = [a for a in argv[2:] if not a.startswith("-")]
                problems = []
                if not any(a in ("./charts/hibernator", "charts/hibernator") for a in chart_args):
                    problems.append("does not install ./charts/hibernator")
                for i, arg in enumerate(argv):
                    if arg in ("-f", "--values") and i + 1 < len(argv):
                        name = argv[i + 1]
                        if name in shown:
                            merge(values, copy.deepcopy(shown[name]))
                        elif (ROOT / name).is_file():
                            merge(values, yaml.safe_load((ROOT / name).read_text()) or {})
                        else:
                            problems.append(f"values file {name} is neither in the repository nor shown in the page")
                    if arg == "--set" and i + 1 < len(argv):
                        try:
                            merge(values, helm.parse_set_string(argv[i + 1]))
                        except helm.HelmError as err:
                            problems.append(f"--set {argv[i + 1]}: {err}")
                if problems:
                    report.fail(what, "; ".join(problems))
                    continue
                try:
                    chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                except helm.HelmError as err:
                    report.fail(what, str(err))
                    continue
                report.ok(what, verbose)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="print passing checks too")
    parser.add_argument(
        "--skip-binary",
        action="store_true",
        help="skip the --dry-run argument check (for chart work without a built binary)",
    )
    args = parser.parse_args()
    binary = Path(os.environ.get("HIBERNATOR_BIN", ROOT / "target" / "debug" / "hibernator"))
    if not binary.is_absolute():
        binary = Path.cwd() / binary
    report = Report()
    if not args.skip_binary and not binary.is_file():
        report.fail(
            "hibernator binary",
            f"{binary} does not exist: build it (cargo build -p hibernator-operator) or set HIBERNATOR_BIN",
        )
        args.skip_binary = True
    print(f"Helm {helm.helm_sdk_version()}, Kubernetes schemas {KUBE_VERSION}, binary {binary}")
    check_chart(binary, args.skip_binary, report, args.verbose)
    check_values_schema(report, args.verbose)
    check_rbac_comments(report, args.verbose)
    check_crds_and_examples(report, args.verbose)
    check_generated_docs(report, args.verbose)
    check_monitoring_doc(report, args.verbose)
    check_metric_names(report, args.verbose)
    check_doc_commands(report, args.verbose)
    print(f"chart-check: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
