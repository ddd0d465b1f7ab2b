"""Checks on the pods the chart runs: restricted Pod Security Standard and
the real binary accepting each container's arguments (`--dry-run`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .common import NAMESPACE, Report

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
