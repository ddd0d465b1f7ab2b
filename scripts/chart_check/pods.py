"""Checks on the pods the chart runs: restricted Pod Security Standard and
the real binary accepting each container's arguments (`--dry-run`)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
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


def materialize_volumes(
    spec: dict, container: dict, objects: list[dict], root: Path, rewrite: bool = True
) -> dict[str, str]:
    """Write the rendered ConfigMaps and Secrets a container mounts under `root`.

    Returns mount path -> local directory, so paths in args and env can point
    at the files the pod would see; paths inside the ConfigMap files (e.g. a
    certificate path in streaming.yaml) are rewritten the same way, unless
    `rewrite` is false (scripts/image-smoke.py mounts the directories at their
    real paths in the image). Volumes whose object the chart does not
    render are left out, except cert-manager Certificates' Secrets, which get
    a self-signed pair as cert-manager would issue one.
    """
    by_name = {(o.get("kind"), o.get("metadata", {}).get("name")): o for o in objects}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: dict[str, str] = {}
    config_files: list[Path] = []
    for index, mount in enumerate(container.get("volumeMounts", [])):
        volume = volumes.get(mount["name"], {})
        files: dict[str, bytes] = {}
        if "configMap" in volume:
            source = by_name.get(("ConfigMap", volume["configMap"]["name"]))
            if source:
                files = {k: v.encode() for k, v in source.get("data", {}).items()}
        elif "secret" in volume:
            secret_name = volume["secret"]["secretName"]
            source = by_name.get(("Secret", secret_name))
            if source:
                files = {k: base64.b64decode(v) for k, v in source.get("data", {}).items()}
            elif any(
                o.get("kind") == "Certificate" and o.get("spec", {}).get("secretName") == secret_name for o in objects
            ):
                files = self_signed_pair(root / f"gen-{index}")
            items = volume["secret"].get("items")
            if files and items:
                files = {item["path"]: files[item["key"]] for item in items if item["key"] in files}
        if not files:
            continue
        local = root / f"volume-{index}"
        local.mkdir(parents=True)
        for key, content in files.items():
            (local / key).write_bytes(content)
            if "configMap" in volume:
                config_files.append(local / key)
        mounts[mount["mountPath"].rstrip("/")] = str(local)
    prefixes = sorted((m for m in mounts if m), key=len, reverse=True)
    if prefixes and rewrite:
        pattern = re.compile("|".join(re.escape(m + "/") for m in prefixes))
        for file in config_files:
            text = file.read_text()
            file.write_text(pattern.sub(lambda match: mounts[match.group(0)[:-1]] + "/", text))
    return mounts


def self_signed_pair(workdir: Path) -> dict[str, bytes]:
    """What cert-manager would put into a Certificate's Secret: a self-signed
    pair made with the openssl CLI (empty when openssl is not installed)."""
    workdir.mkdir(parents=True)
    key, crt = workdir / "tls.key", workdir / "tls.crt"
    command = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=chart-check", "-keyout", str(key), "-out", str(crt),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"tls.crt": crt.read_bytes(), "tls.key": key.read_bytes(), "ca.crt": crt.read_bytes()}


def localize(value: str, mounts: dict[str, str]) -> str:
    """Rewrite a path inside a materialized mount to its local copy."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if mount_path + "/" in value:
            return value.replace(mount_path + "/", mounts[mount_path] + "/")
    return value


def check_dry_run(obj: dict, objects: list[dict], origin: str, binary: Path, report: Report, verbose: bool) -> None:
    """Run the real binary with each container's args and env plus --dry-run.

    ConfigMaps and Secrets the chart renders are written to a temporary
    directory and their mount paths in args/env rewritten to it, so the
    binary reads exactly the configuration files the pod would get.
    """
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
            with tempfile.TemporaryDirectory(prefix="chart-check-") as tmp:
                mounts = materialize_volumes(spec, container, objects, Path(tmp))
                args = [localize(str(a), mounts) for a in container.get("args", [])]
                env = {k: localize(v, mounts) for k, v in env.items()}
                argv = [str(binary), *args, "--dry-run"]
                base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
                try:
                    proc = subprocess.run(
                        argv, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
                    )
                except (OSError, subprocess.TimeoutExpired) as err:
                    report.fail(name, f"could not run {binary}: {err}")
                    continue
            if proc.returncode != 0:
                output = proc.stderr.strip() or proc.stdout.strip() or "no output"
                detail = [line for line in output.splitlines() if line.strip()]
                report.fail(name, f"exit {proc.returncode}: {' | '.join(detail[-5:])}\n     command: {' '.join(argv)}")
            else:
                report.ok(name, verbose)
