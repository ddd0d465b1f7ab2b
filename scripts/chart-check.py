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

The streaming user journey (charts/hibernator/ci/journeys/runner-streaming.md):
its values blocks render exactly as written (or, for a literal `$VAR`, are
refused naming the fix), together they render valid objects the binary
accepts, and the Services, ports and endpoints it names exist.

Outside the chart: every `helm install|upgrade|template` command shown in
docs/ and README.md renders with its values, every whole hibernator.dev
object shown there validates against the CRD schemas, the CRDs in charts/hibernator/crds/ validate as
CustomResourceDefinitions, the example plans in examples/plans/ validate
against the CRD schemas, docs/configuration.md is what
scripts/gen-config-reference.py generates, and the alert rules shown in
docs/monitoring.md are the ones the chart ships.

Installs nothing: run it in a venv with scripts/requirements-chart.txt. The
checks live in scripts/chart_check/ (schemas, pods, docs).
Environment: HIBERNATOR_BIN (default target/debug/hibernator).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

import helm_python as helm
import yaml

sys.dont_write_bytecode = True  # no __pycache__ next to the sources

from chart_check.common import CHART, KUBE_VERSION, NAMESPACE, OUR_GROUP, RELEASE, ROOT, Report, load_yaml_docs
from chart_check.docs import (
    check_doc_commands,
    check_docs_objects,
    check_generated_docs,
    check_metric_names,
    check_monitoring_doc,
)
from chart_check.journey import check_journey, check_set_env
from chart_check.pods import check_dry_run, check_pod_security
from chart_check.schemas import crd_schemas, validate_object


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
                    check_dry_run(obj, objects, origin, binary, report, verbose)
            kinds = {o["kind"] for o in objects}
            for needed in ("Deployment", "ClusterRole", "Service", "ServiceAccount"):
                if needed not in kinds:
                    report.fail(f"{origin}: renders a {needed}", "missing")


def check_journey_rendering(binary: Path, skip_binary: bool, report: Report, verbose: bool) -> None:
    """The streaming journey's values blocks (chart_check/journey.py), and what
    they render validated like the values files of ci/."""
    objects = check_journey(report, verbose)
    origin = "streaming journey values"
    for obj in objects or []:
        validate_object(obj, crd_schemas(), origin, report, verbose)
        check_pod_security(obj, origin, report, verbose)
        if not skip_binary:
            check_dry_run(obj, objects, origin, binary, report, verbose)
    if not skip_binary:
        check_set_env(binary, report, verbose)


def check_values_schema(report: Report, verbose: bool) -> None:
    """values.schema.json is enforced: misspelt keys and wrong enum values fail."""
    bad_values = [
        {"controler": {"replicaCount": 2}},
        {"controller": {"streaming": {"transport": "grcp"}}},
        {"webhook": {"failurePolicy": "fail"}},
        {"logFormat": "pretty"},
        {"runner": {"logFormat": "JSON"}},
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


def check_crds_and_examples(report: Report, verbose: bool) -> None:
    """The CRDs are valid CustomResourceDefinitions; the examples validate against them."""
    for file in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_yaml_docs(file.read_text()):
            validate_object(crd, {}, str(file.relative_to(ROOT)), report, verbose)
    ours = crd_schemas()
    for file in sorted((ROOT / "examples").rglob("*.yaml")):
        for obj in load_yaml_docs(file.read_text()):
            if str(obj.get("apiVersion", "")).startswith(OUR_GROUP + "/"):
                validate_object(obj, ours, str(file.relative_to(ROOT)), report, verbose)


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
    check_journey_rendering(binary, args.skip_binary, report, args.verbose)
    check_values_schema(report, args.verbose)
    check_rbac_comments(report, args.verbose)
    check_crds_and_examples(report, args.verbose)
    check_docs_objects(report, args.verbose)
    check_generated_docs(report, args.verbose)
    check_monitoring_doc(report, args.verbose)
    check_metric_names(report, args.verbose)
    check_doc_commands(report, args.verbose)
    print(f"chart-check: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
