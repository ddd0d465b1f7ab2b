"""Checks that tie the docs to the code: generated reference, alert rules,
metric names, helm commands and objects shown in the docs."""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from collections.abc import Iterator

import helm_python as helm
import yaml

from .common import CHART, NAMESPACE, OUR_GROUP, RELEASE, ROOT, Report, code_blocks, load_yaml_docs
from .schemas import crd_schemas, validate_object

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
                # `"$DATADOG_API_KEY"`: the reader's shell fills it in.
                line = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: m.group(1).lower() + "-value", line)
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


def check_docs_objects(report: Report, verbose: bool) -> None:
    """Whole hibernator.dev objects shown in docs/ and README.md validate.

    A block with a `# expect: invalid` line demonstrates a rejection and is skipped.
    """
    ours = crd_schemas()
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

