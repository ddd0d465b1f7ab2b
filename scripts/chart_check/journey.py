"""The streaming user journey (charts/hibernator/ci/journeys/runner-streaming.md),
as users copy it: its Helm values blocks, exactly as they appear, render, and
what they show exists in the rendered chart.

A values block is the part of a fenced block from its first top-level
`controller:`, `datadog:`, `splunk:` or `prometheus:` line on (the journey
puts some of them in shell blocks after `export` lines). `$NAME` values are
what a user's shell would fill in from the journey's `export` lines (with
`--set` or `envsubst`); written literally they must be refused, naming the
fix. scripts/render-chart.py renders the same values for the process-tier
journey test.
"""

from __future__ import annotations

import copy
import re
import shlex

import helm_python as helm
import yaml

from .common import CHART, NAMESPACE, RELEASE, ROOT, Report, code_blocks, load_yaml_docs
from .docs import merge

JOURNEY = CHART / "ci" / "journeys" / "runner-streaming.md"
VALUES_START = re.compile(r"^(controller|datadog|splunk|prometheus):\s*$")


def values_blocks(markdown: str) -> list[tuple[str, str]]:
    """(text, where) of each values block, in journey order."""
    blocks = []
    for block in code_blocks(markdown):
        lines = block.splitlines()
        start = next((i for i, line in enumerate(lines) if VALUES_START.match(line)), None)
        if start is None:
            continue
        text = "\n".join(lines[start:]) + "\n"
        first = lines[start].rstrip(":")
        blocks.append((text, f"journey values block `{first}:` ({len(blocks) + 1})"))
    return blocks


def exports(markdown: str) -> dict[str, str]:
    """`export NAME="value"` lines of the journey's shell blocks."""
    found = {}
    for block in code_blocks(markdown):
        for line in block.splitlines():
            match = re.match(r"^export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
            if match:
                found[match.group(1)] = shlex.split(match.group(2))[0] if match.group(2) else ""
    return found


def expand(text: str, env: dict[str, str]) -> str:
    """`$NAME` / `${NAME}` replaced as a shell (or envsubst) would."""
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
        lambda m: env.get(m.group(1), m.group(0)),
        text,
    )


def journey_values(extra_env: dict[str, str] | None = None) -> dict:
    """Every values block of the journey merged in order, `$NAME`s expanded
    from its `export` lines ("..." placeholders kept as the journey writes
    them), then from `extra_env`; a name neither gives (the journey's
    `$SPLUNK_HEC_TOKEN`) stands for a value in the user's shell."""
    markdown = JOURNEY.read_text()
    env = {**exports(markdown), **(extra_env or {})}
    values: dict = {}
    for text, _ in values_blocks(markdown):
        for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text):
            env.setdefault(name, f"{name.lower().replace('_', '-')}-from-the-shell")
        merge(values, yaml.safe_load(expand(text, env)) or {})
    return values


def render(chart: helm.Chart, values: dict) -> list[dict]:
    manifests = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [o for path in sorted(manifests) if path.endswith(".yaml") for o in load_yaml_docs(manifests[path])]


def refused(chart: helm.Chart, values: dict, *needles: str) -> str | None:
    """None when rendering `values` fails with a message holding every needle."""
    try:
        render(chart, values)
    except helm.HelmError as err:
        missing = [n for n in needles if n not in str(err)]
        return f"the refusal does not name {missing}: {err}" if missing else None
    return "rendered without error"


def service_ports(objects: list[dict], name: str) -> dict[int, str]:
    for obj in objects:
        if obj.get("kind") == "Service" and obj["metadata"]["name"] == name:
            return {p["port"]: p["targetPort"] for p in obj["spec"]["ports"]}
    return {}


def controller_container(objects: list[dict]) -> dict:
    for obj in objects:
        if obj.get("kind") == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                if container["name"] == "controller":
                    return container
    return {}


def check_journey(report: Report, verbose: bool) -> list[dict] | None:
    """Renders the journey; returns the merged rendering for the pod checks."""
    markdown = JOURNEY.read_text()
    blocks = values_blocks(markdown)
    if len(blocks) < 6:
        report.fail("journey values blocks", f"found {len(blocks)} in {JOURNEY.relative_to(ROOT)}, expected 6")
        return None
    merged_objects = None
    with helm.Chart.load(str(CHART)) as chart:
        for text, where in blocks:
            values = yaml.safe_load(text) or {}
            literal = sorted(set(re.findall(r"\$[A-Za-z_][A-Za-z0-9_]*", text)))
            if literal:
                sink = next(iter(values))
                field = "apiKey" if sink == "datadog" else "token"
                problem = refused(chart, values, f"{sink}.{field}", "--set", "Secret")
                what = f"{where} with the literal {', '.join(literal)} is refused, naming --set and the Secret"
            else:
                try:
                    render(chart, values)
                    problem = None
                except helm.HelmError as err:
                    problem = str(err)
                what = f"{where} renders exactly as written"
            if problem:
                report.fail(what, problem)
            else:
                report.ok(what, verbose)

        what = "the journey's values blocks together (exports filled in) render"
        try:
            merged_objects = render(chart, journey_values())
            report.ok(what, verbose)
        except helm.HelmError as err:
            report.fail(what, str(err))
            return None

        checks = []
        grpc = service_ports(merged_objects, "hibernator-grpc-service")
        checks.append(("step 3: Service hibernator-grpc-service serves gRPC on 50051", grpc.get(50051) == "grpc"))
        hook = service_ports(merged_objects, "hibernator-webhook")
        checks.append(("step 4: Service hibernator-webhook serves the streaming webhook on 8080", hook.get(8080) == "http-stream"))
        checks.append(("hibernator-webhook keeps the admission webhook on 443 and 9443", hook.get(443) == "admission" and hook.get(9443) == "admission"))
        ctrl = service_ports(merged_objects, "hibernator-controller")
        checks.append(("step 8: Service hibernator-controller serves gRPC on 50051 and metrics on 8080", ctrl.get(50051) == "grpc" and ctrl.get(8080) == "metrics"))
        container = controller_container(merged_objects)
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        checks.append(("the controller container declares the ports the Services target", {"grpc", "http-stream", "metrics"} <= set(ports)))
        args = container.get("args", [])
        checks.append((
            "step 4: runners are told http://hibernator-webhook.hibernator-system.svc:8080/logs (qualified: they run in the plans' namespaces)",
            "--webhook-endpoint=http://hibernator-webhook.hibernator-system.svc:8080/logs" in args,
        ))
        secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
        checks.append((
            "step 6: datadog.apiKey and splunk.token end up in a Secret the controller reads",
            secret_env.get("DATADOG_API_KEY") == secret_env.get("SPLUNK_HEC_TOKEN") == "hibernator-sink-credentials"
            and any(o.get("kind") == "Secret" and o["metadata"]["name"] == "hibernator-sink-credentials" for o in merged_objects),
        ))
        for what, ok in checks:
            if ok:
                report.ok(what, verbose)
            else:
                report.fail(what, "not in the rendered chart")

        # The names the journey uses elsewhere, as values, and wrong ones.
        step8 = ["hibernator_streaming_connections_active", "hibernator_streaming_logs_total", "hibernator_streaming_bytes_sent_total"]
        cases_ok = [
            ("step 8's metrics in prometheus.metrics", {"prometheus": {"metrics": step8}}),
            ("step 3's endpoint as grpc.endpoint", {"controller": {"streaming": {"grpc": {"endpoint": "hibernator-grpc-service.hibernator-system:50051"}}}}),
        ]
        for what, values in cases_ok:
            try:
                render(chart, values)
                report.ok(f"{what} renders", verbose)
            except helm.HelmError as err:
                report.fail(f"{what} renders", str(err))
        cases_refused = [
            ("a webhook endpoint on the metrics port", {"controller": {"streaming": {"webhook": {"endpoint": "http://hibernator-controller:8080/logs"}}}}, ["http://hibernator-controller.hibernator-system.svc:8082/logs", "http://hibernator-webhook.hibernator-system.svc:8080/logs"]),
            ("a webhook endpoint on the admission Service", {"controller": {"streaming": {"webhook": {"endpoint": "http://hibernator-admission:443/logs"}}}}, ["no Service", "hibernator-admission"]),
            ("a gRPC endpoint in another namespace", {"controller": {"streaming": {"grpc": {"endpoint": "hibernator-grpc-service.other:50051"}}}}, ["hibernator-grpc-service.hibernator-system.svc:50051"]),
            ("a gRPC endpoint on localhost", {"controller": {"streaming": {"grpc": {"endpoint": "localhost:50051"}}}}, ["hibernator-controller.hibernator-system.svc:50051"]),
            ("datadog.apiKey together with apiKeySecret", {"datadog": {"enabled": True, "apiKey": "x", "apiKeySecret": {"name": "dd"}}}, ["both set"]),
        ]
        for what, values, needles in cases_refused:
            problem = refused(chart, values, *needles)
            if problem:
                report.fail(f"{what} is refused naming the right one", problem)
            else:
                report.ok(f"{what} is refused naming the right one", verbose)
    return merged_objects


def dry_run(binary, objects: list[dict], extra_env: dict[str, str]) -> tuple[int, str]:
    """`hibernator controller … --dry-run` as the rendered controller container
    runs it, with `extra_env` added (what `kubectl set env` does)."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from .pods import container_env, localize, materialize_volumes

    deployment = next(o for o in objects if o.get("kind") == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = controller_container(objects)
    env = container_env(container, deployment)
    if isinstance(env, str):
        return 1, env
    with tempfile.TemporaryDirectory(prefix="chart-check-") as tmp:
        mounts = materialize_volumes(spec, container, objects, Path(tmp))
        args = [localize(str(a), mounts) for a in container.get("args", [])]
        env = {k: localize(v, mounts) for k, v in {**env, **extra_env}.items()}
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        proc = subprocess.run(
            [str(binary), *args, "--dry-run"], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
        )
    return proc.returncode, proc.stdout + proc.stderr


def check_set_env(binary, report: Report, verbose: bool) -> None:
    """Step 2's `kubectl set env deployment/hibernator-controller
    HIBERNATOR_GRPC_ENDPOINT=localhost:50051 HIBERNATOR_GRPC_TLS=true`."""
    step2 = {"HIBERNATOR_GRPC_ENDPOINT": "localhost:50051", "HIBERNATOR_GRPC_TLS": "true"}
    with helm.Chart.load(str(CHART)) as chart:
        tls_off = render(chart, {})
        tls_on = render(chart, {"controller": {"streaming": {"grpc": {"tls": {"enabled": True}}}}})
    what = "step 2's set env with the chart's TLS off stops at once, naming controller.streaming.grpc.tls.enabled"
    code, output = dry_run(binary, tls_off, step2)
    if code != 0 and "controller.streaming.grpc.tls.enabled=true" in output:
        report.ok(what, verbose)
    else:
        report.fail(what, f"exit {code}: {output[-600:]}")
    what = "step 2's set env with TLS on starts, warning that runners cannot reach a loopback bind and fall back to the webhook"
    code, output = dry_run(binary, tls_on, step2)
    if code == 0 and "fall back to the webhook" in output and "HIBERNATOR_GRPC_ENDPOINT=0.0.0.0:50051" in output:
        report.ok(what, verbose)
    else:
        report.fail(what, f"exit {code}: {output[-600:]}")
